"""Device Advisor's test endpoint and test-case engine (the API that defines
suites and starts runs is localiot.services.deviceadvisor).

- `catalog`: the test case ids and configuration keys AWS documents, and the
  check of a suite's rootGroup.
- `endpoint`: the TLS listener of its own (`--device-advisor-port`) the
  device under test connects to; `certs`: the server certificates it can
  present (right, wrong subject, self-signed, expired, large); `websocket`:
  MQTT over WebSocket on the same port (`GET /mqtt`, SigV4-presigned), for
  the suites over WebSocket.
- `interposer`: each device connection, a real broker connection behind a
  scripted interposer; `journal`: what the device did, timed; `state`: one
  run while it executes (its device, connections, journal, current script).
- `runner`: `start_run` / `stop_run`, called by the API; moves the run's
  store document (kind "advisor-run", shaped like GetSuiteRun's output)
  through its cases; `cases`: one coroutine per AWS test id; `logs`: each
  case's log, served at its logUrl.

Why the endpoint reuses the real broker instead of an MQTT server of its
own: AWS's test endpoint stands in front of AWS IoT Core, and its shadow
and job cases use the account's real shadow and job services. Here each
device connection to the endpoint is a real broker `Connection` (real
certificate authentication and policies, the real shadow and jobs doors,
sessions and QoS 1), with a scripted interposer between the TLS transport
and it: the current test case sees every packet in both directions
(decoded with `localiot.broker.codec`) and may hold, answer or drop one
(leave a CONNECT or SUBSCRIBE unanswered, hold back a PUBACK or PINGRESP,
disconnect). Nothing of MQTT, shadows or jobs is implemented twice, and the
test's own actions (a desired state, a job) go through the handlers the
API serves.
"""
