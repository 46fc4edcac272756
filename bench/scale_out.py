#!/usr/bin/env python
"""Several localiot nodes on one machine: PostgreSQL for state, NATS between nodes (issue 21).

One run starts a throwaway PostgreSQL (localiot.testing.postgres), a
nats-server (localiot.testing.nats), three `localiot serve` nodes on them
(plain MQTT on, log level WARNING) and, for the comparison, one node on its
own SQLite file. Then:

1. **Delivery latency, same node vs cross node**: one publisher on node 1
   sends QoS 0 messages at a steady rate (``--rate``/s for ``--duration``
   s), each carrying its send time; one subscriber on node 1 and one on node 2
   record when each arrives. p50/p99 per path.
2. **API, PostgreSQL vs SQLite** (one node each, same population, same run):
   DescribeThing and UpdateThingShadow replayed as pre-signed raw HTTP over
   ``--connections`` keep-alive connections (bench/api_floor.py's client).
   Requests/s, p50/p99, CPU µs per request in the node and in PostgreSQL.
2b. **QoS 1, same node vs cross node**: a persistent-session subscriber
   (clean session 0, QoS 1, acknowledging) on node 1 or node 2, the
   publisher on node 1: PUBACK latency p50/p99 of single messages at
   ``--qos1-rate``/s, then acknowledged messages/s with ``--qos1-window``
   messages in flight (a cross-node PUBACK waits until node 2 committed the
   message: localiot.fabric.confirm).
3. **Scaling, 1, 2, 3 nodes** (the first n of the three): QoS 0 fan-out (one
   publisher and ``--subscribers`` subscribers to ``fan/#`` per node; the
   publishers send bursts of ``--burst``, at most ``--window`` bursts ahead
   of what every subscriber received, so no queue grows without bound) and
   DescribeThing spread over the n nodes.
   Messages delivered/s and requests/s, and CPU per message and per request
   (utime+stime from /proc/PID/stat of the nodes, and of nats-server or
   PostgreSQL's processes): on a machine with more cores than this one,
   CPU per unit is what predicts the rate n nodes reach.

Usage:  .venv/bin/python bench/scale_out.py [--duration 5] [--rate 500] [--connections 16]
                                             [--population 500] [--subscribers 4] [--qos1-rate 100] [--qos1-window 100]
                                             [--only latency,qos1,api,scaling] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_floor import Requests, connect  # noqa: E402  (pre-signed requests and the lean HTTP client)
from control_plane import pct  # noqa: E402
from mqtt_clients import (AckingSubscriber, CountingSubscriber, LatencySubscriber, Publisher,  # noqa: E402
                          _Client, open_client, publish_packet, subscribe, subscribe_packet)
from procs import free_port, proc_cpu  # noqa: E402

from localiot.testing.nats import NatsServer  # noqa: E402
from localiot.testing.postgres import PostgresServer  # noqa: E402

BIN = os.path.dirname(sys.executable)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------
class Node:
    """One `localiot serve` process; `store` a postgresql:// DSN or None (SQLite in its folder)."""

    def __init__(self, name: str, workdir: str, store: str | None, fabric: str | None):
        self.name = name
        folder = os.path.join(workdir, name)
        os.makedirs(folder, exist_ok=True)
        self.mqtt_port = free_port()
        args = [os.path.join(BIN, "localiot"), "serve", "--port", "0", "--mqtt-tls-port", "0",
                "--mqtt-alpn-port", "0", "--mqtt-plain", "--mqtt-plain-port", str(self.mqtt_port),
                "--data-dir", os.path.join(folder, "data"), "--log-level", "WARNING"]
        env = dict(os.environ, LOCALIOT_NODE_ID=name)
        if store:
            env["LOCALIOT_STORE"] = store
        if fabric:
            env["LOCALIOT_FABRIC"] = fabric
        self.log_path = os.path.join(folder, "serve.log")
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid
        self.endpoint = ""

    def wait_ready(self, timeout: float = 90.0) -> "Node":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, errors="replace") as f:
                found = re.search(r"localiot ready on (http://\S+)", f.read())
            if found:
                self.endpoint = found.group(1)
                self.api_port = int(self.endpoint.rsplit(":", 1)[1])
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(self.log_path, errors="replace") as f:
            raise SystemExit(f"node {self.name} did not start:\n{f.read()[-3000:]}")

    def health(self) -> dict:
        with urllib.request.urlopen(self.endpoint + "/_localiot/health", timeout=10) as answer:
            return json.load(answer)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def postgres_pids(pg: PostgresServer) -> list[int]:
    """The postmaster and every backend/worker it forked."""
    with open(os.path.join(pg._dir, "data", "postmaster.pid")) as f:
        master = int(f.readline())
    pids = [master]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += proc_cpu(pid)
        except (OSError, ValueError):  # a backend that ended meanwhile
            pass
    return total


class Meter:
    """CPU seconds of named process groups over one phase."""

    def __init__(self, groups: dict):
        self.groups = groups  # name -> callable returning pids (re-read: backends come and go)
        self.start = {name: cpu_of(pids()) for name, pids in groups.items()}
        self.t0 = time.perf_counter()

    def stop(self) -> dict:
        out = {name: cpu_of(pids()) - self.start[name] for name, pids in self.groups.items()}
        out["elapsed"] = time.perf_counter() - self.t0
        return out


# ---------------------------------------------------------------------------
# MQTT phases
# ---------------------------------------------------------------------------
async def subscriber(loop, factory, port: int, client_id: str, topic: str):
    client = await open_client(loop, lambda: factory(loop), "127.0.0.1", port, client_id)
    await asyncio.wait_for(client.connack, 10)
    client.transport.write(subscribe_packet(1, topic, 0))
    await asyncio.wait_for(client.suback, 10)
    return client


async def latency_phase(nodes: list[Node], args) -> dict:
    loop = asyncio.get_running_loop()
    same = await subscriber(loop, LatencySubscriber, nodes[0].mqtt_port, "lat-same", "lat/t")
    cross = await subscriber(loop, LatencySubscriber, nodes[1].mqtt_port, "lat-cross", "lat/t")
    publisher = await subscriber(loop, CountingSubscriber, nodes[0].mqtt_port, "lat-pub", "lat/none")
    await asyncio.sleep(1.0)  # the subscriptions reach every node
    start = time.monotonic_ns()
    warm = start + 500_000_000
    for sub in (same, cross):
        sub.window_from, sub.window_to = warm, start + int(args.duration * 1e9)
    interval = 1.0 / args.rate
    sent = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < args.duration:
        due = int((time.monotonic() - t0) / interval) + 1
        while sent < due:
            publisher.transport.write(publish_packet("lat/t", time.monotonic_ns().to_bytes(8, "big") + b"x" * 56))
            sent += 1
        await asyncio.sleep(interval / 2)
    await asyncio.sleep(1.0)
    out = {"sent": sent}
    for name, sub in (("same node", same), ("cross node", cross)):
        lat = [v / 1e6 for v in sub.latencies]
        out[name] = {"received": sub.count, "p50": pct(lat, 50), "p99": pct(lat, 99)}
    for client in (same, cross, publisher):
        client.transport.close()
    return out


class AckTimer(_Client):
    """QoS 1 publisher of single messages: the PUBACK latency of each (packet id -> send time)."""

    def __init__(self, loop):
        super().__init__(loop)
        self.sent: dict[int, int] = {}
        self.latencies: list[float] = []

    def publish(self, topic: str, pid: int) -> None:
        self.sent[pid] = time.monotonic_ns()
        self.transport.write(publish_packet(topic, b"q" * 64, 1, pid))

    def data_received(self, data):
        now = time.monotonic_ns()
        for buf, first, start, end in self.frames(data):
            if first == 0x40:
                sent = self.sent.pop((buf[start] << 8) | buf[start + 1], None)
                if sent is not None:
                    self.latencies.append((now - sent) / 1e6)
            else:
                self.control(first, buf[start:end])


async def qos1_phase(nodes: list[Node], args) -> dict:
    """Persistent QoS 1 subscriber on node 1 (same) or node 2 (cross), publisher on node 1."""
    loop = asyncio.get_running_loop()
    out = {}
    for path, node, tag in (("same node", nodes[0], "same"), ("cross node", nodes[1], "cross")):
        sub = await open_client(loop, lambda: AckingSubscriber(loop), "127.0.0.1", node.mqtt_port,
                                f"q1-sub-{tag}", clean=False)
        await subscribe(sub, f"q1/{tag}", 1)
        await asyncio.sleep(1.0)  # the subscription reaches every node
        timer = await open_client(loop, lambda: AckTimer(loop), "127.0.0.1", nodes[0].mqtt_port, f"q1-lat-{tag}")
        interval = 1.0 / args.qos1_rate
        t0 = time.monotonic()
        pid = 0
        while time.monotonic() - t0 < args.duration:
            pid = pid % 65535 + 1
            timer.publish(f"q1/{tag}", pid)
            await asyncio.sleep(interval)
        await asyncio.sleep(1.0)
        lat = timer.latencies[len(timer.latencies) // 10:]  # the first tenth warms up
        pub = await open_client(loop, lambda: Publisher(loop, f"q1/{tag}", b"r" * 64, 1, args.qos1_window),
                                "127.0.0.1", nodes[0].mqtt_port, f"q1-pub-{tag}")
        base = sub.count
        t0 = time.monotonic()
        pub.start()
        await asyncio.sleep(args.duration)
        acked, elapsed = pub.acked, time.monotonic() - t0
        pub.running = False
        await asyncio.sleep(1.0)
        out[path] = {"p50": pct(lat, 50), "p99": pct(lat, 99), "acked": acked, "per_s": acked / elapsed,
                     "delivered": sub.count - base}
        for client in (sub, timer, pub):
            client.transport.close()
    return out


async def fanout_phase(nodes: list[Node], meter_groups: dict, args) -> dict:
    """One publisher and args.subscribers subscribers per node; bursts of args.burst per publisher."""
    loop = asyncio.get_running_loop()
    subs = []
    for i, node in enumerate(nodes):
        for k in range(args.subscribers):
            subs.append(await subscriber(loop, CountingSubscriber, node.mqtt_port, f"fan-s{i}-{k}", "fan/#"))
    pubs = [await subscriber(loop, CountingSubscriber, node.mqtt_port, f"fan-p{i}", "fan-none")
            for i, node in enumerate(nodes)]
    await asyncio.sleep(1.0)
    blob = [publish_packet(f"fan/{i}", b"y" * 64) * args.burst for i in range(len(pubs))]
    per_round = args.burst * len(pubs) * len(subs)
    received = lambda: sum(s.count for s in subs)  # noqa: E731
    short = rounds = 0
    meter = Meter(meter_groups)
    base = expected = received()
    progress_at = time.monotonic()
    t_end = progress_at + args.duration
    while time.monotonic() < t_end:
        got = received()
        if expected - got <= per_round * (args.window - 1):  # at most `window` rounds in flight
            for pub, data in zip(pubs, blob):
                pub.transport.write(data)
            expected += per_round
            rounds += 1
            progress_at = time.monotonic()
            continue
        await asyncio.sleep(0.0005)
        if received() > got:
            progress_at = time.monotonic()
        elif time.monotonic() - progress_at > 1.0:  # QoS 0 messages dropped: count them, go on
            short += expected - received()
            expected = received()
    deadline = time.monotonic() + 2.0
    while received() < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.002)
    short += max(0, expected - received())
    cpu = meter.stop()
    delivered = sum(s.count for s in subs) - base
    for client in subs + pubs:
        client.transport.close()
    return {"delivered": delivered, "published": rounds * args.burst * len(pubs), "short": short,
            "per_s": delivered / cpu["elapsed"], "cpu": cpu}


# ---------------------------------------------------------------------------
# API phases
# ---------------------------------------------------------------------------
async def drive(ports: list[int], pool: list[bytes], connections: int, duration: float | None) -> dict:
    """Replay `pool` over `connections` keep-alive connections spread over `ports`."""
    conns = [await connect(ports[i % len(ports)]) for i in range(connections)]
    counter = ok = 0
    errors: dict = {}
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + duration if duration else None

    async def worker(conn):
        nonlocal counter, ok
        while True:
            if deadline is None and counter >= len(pool):
                return
            if deadline is not None and time.perf_counter() >= deadline:
                return
            raw = pool[counter % len(pool)]
            counter += 1
            t0 = time.perf_counter()
            status, body, keep = await conn.request(raw)
            latencies.append(time.perf_counter() - t0)
            if 200 <= status < 300:
                ok += 1
            else:
                errors[status] = body[:200]
            if not keep:
                raise SystemExit("the server closed a keep-alive connection")

    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.transport.close()
    if errors:
        raise SystemExit(f"requests failed: {errors}")
    lat = [v * 1000 for v in latencies]
    return {"ok": ok, "rps": ok / elapsed, "p50": pct(lat, 50), "p99": pct(lat, 99)}


async def populate(node: Node, population: int, connections: int) -> None:
    requests = Requests(node.endpoint)
    await drive([node.api_port], [requests.create_thing(i) for i in range(population)], connections, None)


def api_pool(node: Node, op: str, population: int) -> list[bytes]:
    requests = Requests(node.endpoint)
    if op == "DescribeThing":
        return [requests.describe_thing(i % population) for i in range(4000)]
    return [requests.update_shadow(i % population, i) for i in range(4000)]


async def api_phase(nodes: list[Node], op: str, meter_groups: dict, args) -> dict:
    # each node gets requests signed for its own host
    per_node = [api_pool(node, op, args.population) for node in nodes]
    meter = Meter(meter_groups)
    results = await asyncio.gather(*(drive([node.api_port], reqs, max(1, args.connections // len(nodes)),
                                            args.duration) for node, reqs in zip(nodes, per_node)))
    cpu = meter.stop()
    ok = sum(r["ok"] for r in results)
    return {"ok": ok, "rps": ok / cpu["elapsed"], "p50": max(r["p50"] for r in results),
            "p99": max(r["p99"] for r in results), "cpu": cpu}


# ---------------------------------------------------------------------------
def us(seconds: float, count: int) -> str:
    return f"{seconds / count * 1e6:.0f}" if count else "-"


def render(results: dict, args) -> str:
    lines = [f"Machine: {os.cpu_count()} cores, {platform.python_version()}, load average at start "
             f"{results['load']}; {args.duration:g} s per phase.", ""]
    lat = results.get("latency")
    if lat is not None:
        lines += ["Delivery latency, QoS 0, publisher on node 1 "
                  f"({args.rate}/s for {args.duration:g} s, {lat['sent']} sent), in ms:", "",
                  "| path | received | p50 | p99 |", "| --- | ---: | ---: | ---: |"]
        for path in ("same node", "cross node"):
            r = lat[path]
            lines.append(f"| {path} (subscriber on node {1 if path == 'same node' else 2}) | {r['received']} | "
                         f"{r['p50']:.2f} | {r['p99']:.2f} |")
    if "qos1" in results:
        lines += ["", f"QoS 1, publisher on node 1, persistent-session subscriber (PUBACK latency: single messages "
                  f"at {args.qos1_rate}/s; rate: {args.qos1_window} in flight):", "",
                  "| path | PUBACK p50 ms | PUBACK p99 ms | acknowledged msg/s | delivered |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for path, r in results["qos1"].items():
            lines.append(f"| {path} | {r['p50']:.2f} | {r['p99']:.2f} | {r['per_s']:.0f} | {r['delivered']} |")
    if "api" not in results:
        return "\n".join(lines) + "\n"
    lines += ["", f"API, one node each, {args.population} things, {args.connections} connections:", "",
              "| store | operation | requests/s | p50 ms | p99 ms | node CPU µs/req | PostgreSQL CPU µs/req |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for (store, op), r in results["api"].items():
        pg = us(r["cpu"].get("postgresql", 0), r["ok"]) if store == "PostgreSQL" else "-"
        lines.append(f"| {store} | {op} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
                     f"{us(r['cpu']['nodes'], r['ok'])} | {pg} |")
    lines += ["", f"Scaling on PostgreSQL + NATS (QoS 0 fan-out: {args.subscribers} subscribers to fan/# and one "
              f"publisher per node, bursts of {args.burst}, {args.window} in flight; API: DescribeThing over the n nodes):", "",
              "| nodes | fan-out delivered msg/s | nodes CPU µs/msg | nats-server CPU µs/msg | short | "
              "API req/s | nodes CPU µs/req | PostgreSQL CPU µs/req |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, r in results["scaling"].items():
        f, a = r["fanout"], r["api"]
        lines.append(f"| {n} | {f['per_s']:.0f} | {us(f['cpu']['nodes'], f['delivered'])} | "
                     f"{us(f['cpu']['nats'], f['delivered'])} | {f['short']} | {a['rps']:.0f} | "
                     f"{us(a['cpu']['nodes'], a['ok'])} | {us(a['cpu']['postgresql'], a['ok'])} |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured phase")
    parser.add_argument("--rate", type=int, default=500, help="latency phase: messages/s")
    parser.add_argument("--connections", type=int, default=16, help="API keep-alive connections")
    parser.add_argument("--population", type=int, default=500, help="things created before the API phases")
    parser.add_argument("--subscribers", type=int, default=4, help="fan-out subscribers per node")
    parser.add_argument("--burst", type=int, default=200, help="fan-out messages per publisher per round")
    parser.add_argument("--window", type=int, default=3, help="fan-out rounds in flight at most")
    parser.add_argument("--qos1-rate", type=int, default=100, help="QoS 1 phase: messages/s for the latency")
    parser.add_argument("--qos1-window", type=int, default=100, help="QoS 1 phase: messages in flight")
    parser.add_argument("--only", default="latency,qos1,api,scaling", help="phases to run (comma-separated)")
    parser.add_argument("--out", help="also write the tables to this file")
    return parser.parse_args(argv)


async def run(args) -> dict:
    workdir = tempfile.mkdtemp(prefix="localiot-scale-")
    pg = PostgresServer().start()
    nats = NatsServer().start()
    nodes: list[Node] = []
    lite = None
    try:
        dsn = pg.create_database("scale")
        log(f"PostgreSQL on {pg.port}, NATS at {nats.url}")
        nodes = [Node(f"node{i + 1}", workdir, dsn, nats.url) for i in range(3)]
        lite = Node("sqlite", workdir, None, None)
        for node in nodes + [lite]:
            node.wait_ready()
        results: dict = {"load": " ".join(f"{x:.1f}" for x in os.getloadavg())}
        for node in nodes:
            health = node.health()
            if health["store"]["backend"] != "postgresql" or health["fabric"].get("connected") is not True:
                raise SystemExit(f"{node.name} is not on PostgreSQL + NATS: {health['store']}, {health['fabric']}")
        pg_pids = lambda: postgres_pids(pg)  # noqa: E731

        phases = set(args.only.split(","))
        if "latency" in phases:
            log("latency: same node vs cross node")
            results["latency"] = await latency_phase(nodes, args)
        if "qos1" in phases:
            log("QoS 1: same node vs cross node")
            results["qos1"] = await qos1_phase(nodes, args)
            for path, r in results["qos1"].items():
                log(f"  {path}: PUBACK p50 {r['p50']:.2f} ms, {r['per_s']:.0f} msg/s")
        if "api" not in phases:
            return results

        log("API: PostgreSQL vs SQLite")
        await populate(nodes[0], args.population, args.connections)
        await populate(lite, args.population, args.connections)
        results["api"] = {}
        for op in ("DescribeThing", "UpdateThingShadow"):
            for label, node in (("SQLite", lite), ("PostgreSQL", nodes[0])):
                groups = {"nodes": lambda n=node: [n.pid], "postgresql": pg_pids}
                results["api"][(label, op)] = await api_phase([node], op, groups, args)
                log(f"  {label} {op}: {results['api'][(label, op)]['rps']:.0f}/s")
        lite.stop()

        results["scaling"] = {}
        for n in (1, 2, 3):
            members = nodes[:n]
            groups = {"nodes": lambda m=members: [x.pid for x in m], "nats": lambda: [nats.process.pid],
                      "postgresql": pg_pids}
            fan = await fanout_phase(members, groups, args)
            api = await api_phase(members, "DescribeThing", groups, args)
            results["scaling"][n] = {"fanout": fan, "api": api}
            log(f"  {n} node(s): fan-out {fan['per_s']:.0f} msg/s, API {api['rps']:.0f} req/s")
        return results
    finally:
        for node in nodes + ([lite] if lite is not None else []):
            node.stop()
        nats.stop()
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    results = asyncio.run(run(args))
    text = render(results, args)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
