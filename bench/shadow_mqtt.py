"""Shadow update round trips over MQTT against `localiot serve`.

    .venv/bin/python bench/shadow_mqtt.py [--devices 20] [--updates 200]

Starts localiot (in-memory, plain MQTT listener) as a subprocess. Each device
is a paho-mqtt client that subscribes to its shadow's update/accepted and
update/delta topics, then sends updates one after another (desired != reported,
so every update also produces a delta) and waits for both replies. Reports the
round trip (publish -> accepted and delta both received) at p50/p99 and the
updates/s all devices achieve together. The devices run in this process, so
on a 2-core machine the figures include the client's own cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt

BIN = Path(sys.executable).parent


def start_localiot():
    process = subprocess.Popen(
        [str(BIN / "localiot"), "serve", "--in-memory", "--port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0",
         "--mqtt-plain", "--mqtt-plain-port", "0", "--log-level", "ERROR"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith("localiot ready on "):
            return process, line.split()[-1]
    raise SystemExit("localiot did not start")


def plain_port(api: str) -> int:
    with urllib.request.urlopen(api + "/_localiot/health") as response:
        return int(json.load(response)["listeners"]["mqtt-plain"].rsplit(":", 1)[1])


class Device(threading.Thread):
    def __init__(self, port: int, name: str, updates: int, results: list, barrier: threading.Barrier):
        super().__init__(daemon=True)
        self.port, self.name, self.updates, self.results, self.barrier = port, name, updates, results, barrier
        self.pending: dict[str, set] = {}
        self.cond = threading.Condition()

    def on_message(self, client, userdata, msg):
        token = json.loads(msg.payload).get("clientToken")
        kind = msg.topic.rsplit("/", 1)[1]
        with self.cond:
            if token in self.pending:
                self.pending[token].discard(kind)
                self.cond.notify_all()

    def run(self):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.name)
        client.on_message = self.on_message
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        base = f"$aws/things/{self.name}/shadow/update"
        client.subscribe([(base + "/accepted", 0), (base + "/delta", 0)])
        time.sleep(0.5)
        self.barrier.wait()
        for i in range(self.updates):
            token = f"{self.name}-{i}"
            with self.cond:
                self.pending[token] = {"accepted", "delta"}
            body = {"state": {"desired": {"n": i}, "reported": {"n": -1}}, "clientToken": token}
            started = time.perf_counter()
            client.publish(base, json.dumps(body), qos=0)
            with self.cond:
                if not self.cond.wait_for(lambda: not self.pending[token], timeout=10):
                    raise SystemExit(f"{token}: no reply in 10 s")
                del self.pending[token]
            self.results.append(time.perf_counter() - started)
        client.loop_stop()
        client.disconnect()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--updates", type=int, default=200, help="updates per device")
    args = parser.parse_args()
    process, api = start_localiot()
    try:
        port = plain_port(api)
        results: list[float] = []
        barrier = threading.Barrier(args.devices + 1)
        devices = [Device(port, f"dev{i}", args.updates, results, barrier) for i in range(args.devices)]
        for d in devices:
            d.start()
        barrier.wait()
        started = time.perf_counter()
        for d in devices:
            d.join()
        elapsed = time.perf_counter() - started
        ms = sorted(r * 1000 for r in results)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(f"devices={args.devices} updates={len(ms)} (each waits for update/accepted and update/delta)")
        print(f"round trip p50 {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms")
        print(f"throughput {len(ms) / elapsed:.0f} updates/s ({os.cpu_count()} cores shared with the clients)")
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
