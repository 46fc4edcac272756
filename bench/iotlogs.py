#!/usr/bin/env python
"""The cost of AWS IoT logging on the broker: QoS 0 fan-in throughput with
logging off vs DEBUG logging of every publish, same run, same server.

One localiot (`localiot serve --in-memory --mqtt-plain --log-level INFO`,
its server log to a file) is driven by bench/broker.py's load generator
(publishers -> 1 subscriber on '#', 64-byte QoS 0 messages) in alternating
rounds, waiting for the broker to go idle after each:

  * off:   logging never configured (first round), then SetV2LoggingOptions
           defaultLogLevel DISABLED;
  * debug: SetV2LoggingOptions defaultLogLevel DEBUG: a Publish-In JSON line
           on the server log for every message received (no CloudWatch
           shipping: no downstream endpoint).

It prints messages/s received by the subscriber and the broker's CPU per
round, the mean of each mode, debug/off, and how many Publish-In lines the
server log got (so the debug rounds really logged every publish).

Usage:  .venv/bin/python bench/iotlogs.py [--rounds 2] [--duration 5] [--warmup 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import broker as bench  # noqa: E402  (bench/broker.py: the server wrapper and the load generator)

ROLE = "arn:aws:iam::123456789012:role/iot-logging"


def qos0_round(server, args, tag: str) -> dict:
    common = {"host": bench.HOST, "port": server.plain_port, "mode": "qos0"}
    sub = bench.Workers([dict(common, role="sub", client_id=f"{tag}-sub", topic_filter="#")])
    sub.collect("ready", 30)
    ids = list(range(args.publishers))
    pubs = bench.Workers([dict(common, role="pub", client_ids=[f"{tag}-pub{i:03d}" for i in part],
                               topics=[f"bench/pub/{i:03d}" for i in part], payload_size=64, window=100,
                               rate=0) for part in bench.split(ids, args.pub_procs)])
    pubs.collect("ready", 60)
    t_start = time.monotonic() + 0.3
    t0, t1 = t_start + args.warmup, t_start + args.warmup + args.duration
    sub.send(("go", t_start, t0, t1))
    pubs.send(("go", t_start, t0, t1))
    bench.sleep_until(t0)
    c0 = bench.proc_cpu(server.pid)
    bench.sleep_until(t1)
    c1 = bench.proc_cpu(server.pid)
    (s,) = sub.collect("done", 60)
    pubs.collect("done", 60)
    sub.join()
    pubs.join()
    # the publishers filled the kernel's socket buffers: the broker works through them before the next round
    drain = bench.wait_broker_idle(server, t1, args.drain_wait)
    return {"rate": s["received"] / s["elapsed"], "cpu": 100 * (c1 - c0) / (t1 - t0),
            "us_per_msg": 1e6 * (c1 - c0) / max(1, s["received"]), "drain": drain}


def publish_in_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if b'"eventType": "Publish-In"' in line)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2, help="rounds of each mode, alternating")
    p.add_argument("--duration", type=float, default=4, help="measurement window per round (s)")
    p.add_argument("--warmup", type=float, default=2, help="warm-up before each window (s)")
    p.add_argument("--publishers", type=int, default=2, help="few: each fills its socket buffers, drained later")
    p.add_argument("--drain-wait", type=float, default=180, help="max wait for the broker to go idle (s)")
    p.add_argument("--pub-procs", type=int, default=1)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-iotlogs-") as workdir:
        server = bench.Localiot(workdir, ["--log-level", "INFO"])
        iot = boto3.client("iot", endpoint_url=server.api, region_name=bench.REGION,
                           aws_access_key_id=bench.ACCESS_KEY, aws_secret_access_key=bench.SECRET_KEY)
        results: dict[str, list] = {"off": [], "debug": []}
        lines: dict[str, int] = {"off": 0, "debug": 0}
        try:
            for n in range(args.rounds):
                for mode in ("off", "debug"):
                    if mode == "debug":
                        iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="DEBUG")
                    elif n:
                        iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="DISABLED")
                    before = publish_in_lines(server.log_path)
                    got = qos0_round(server, args, f"{mode}{n}")
                    lines[mode] += publish_in_lines(server.log_path) - before
                    results[mode].append(got)
                    print(f"round {n + 1} {mode:5s}: {got['rate']:8.0f} msg/s  broker CPU {got['cpu']:4.0f}%  "
                          f"{got['us_per_msg']:6.1f} CPU us/msg  busy {got['drain']:.0f}s after", flush=True)
        finally:
            server.stop()
    mean = {m: sum(r["rate"] for r in rs) / len(rs) for m, rs in results.items()}
    cost = {m: sum(r["us_per_msg"] for r in rs) / len(rs) for m, rs in results.items()}
    print()
    print(f"QoS 0 fan-in, {args.publishers} publishers -> 1 subscriber, 64-byte payloads, "
          f"{args.rounds} x {args.duration:.0f} s per mode")
    print(f"  logging off : {mean['off']:8.0f} msg/s  {cost['off']:6.1f} broker CPU us/msg  "
          f"Publish-In lines written: {lines['off']}")
    print(f"  DEBUG       : {mean['debug']:8.0f} msg/s  {cost['debug']:6.1f} broker CPU us/msg  "
          f"Publish-In lines written: {lines['debug']}")
    print(f"  debug/off   : {mean['debug'] / mean['off']:.2f} throughput, "
          f"{cost['debug'] / cost['off']:.2f} CPU per message")
    print("  (the machine is shared: CPU per message is the steadier figure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
