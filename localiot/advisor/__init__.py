"""Device Advisor's test endpoint and test-case engine.

- `catalog`: the test case ids and configuration keys AWS documents, and the
  check of a suite's rootGroup.
- `runner`: runs a suite run (a store document of kind "advisor-run" shaped
  like GetSuiteRun's output), case after case, and serves the per-case logs.
- the endpoint: a TLS listener of its own (`--device-advisor-port`).

Why the endpoint reuses the real broker: AWS's test endpoint stands in front
of AWS IoT Core; shadow and job cases use the account's real shadow and job
services. Here each device connection to the endpoint is a real broker
`Connection` (real certificate authentication and policies, the real shadow
and jobs doors, sessions and QoS 1), with a scripted interposer between the
TLS transport and it: the current test case sees every packet in both
directions (decoded with `localiot.broker.codec`) and may hold, answer or
drop one (refuse a CONNECT, withhold a SUBACK, disconnect). Nothing of MQTT,
shadows or jobs is implemented twice.
"""
