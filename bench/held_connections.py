#!/usr/bin/env python
"""50,000 idle mutual-TLS MQTT connections held by localiot nodes (issue 12).

One process may open at most RLIMIT_NOFILE files. Where the hard limit cannot
be raised (a container without CAP_SYS_RESOURCE: 20,000 here), no single
broker, Mosquitto included, holds 50,000 sockets; localiot spreads them over
several nodes on one PostgreSQL and one NATS (issue 21, bench/scale_out.py).

1. Raise RLIMIT_NOFILE (soft to hard, and hard to what is needed when root may)
   and report what it got; refuse a layout that needs more per process.
2. Start a throwaway PostgreSQL (localiot.testing.postgres), a nats-server
   (localiot.testing.nats) and ``--nodes`` `localiot serve` nodes on them, each
   with its mutual-TLS MQTT listener on its own port. Register ``--certs``
   device certificates and a policy allowing iot:* through node 1's API
   (bench/broker_servers.provision); every node trusts them (shared store, shared CA).
3. Open ``--connections`` idle mutual-TLS connections in total, spread evenly
   over the nodes, from client processes of at most ``--per-process`` sockets,
   each bound to its own loopback source address (one source address has about
   28,000 ephemeral ports). Each connection sends CONNECT with its own client id
   and waits for its CONNACK; one in ``--sample-every`` also subscribes
   (QoS 0) to a check topic. Hold them ``--hold`` seconds.
4. Per node: connections held (counted by the clients, and as the node's
   accepted TCP sockets in /proc/net/tcp), RSS before/after and per connection, CPU seconds to
   accept them, the open rate, CPU while holding. Then every connection sends
   PINGREQ and must get PINGRESP, and one message published (QoS 1) on each
   node must reach every sampled subscriber on every node. Then everything is
   closed and the nodes are stopped (SIGTERM), which must exit 0.
5. For comparison in the same run: Mosquitto and one localiot node on its own
   SQLite file, each holding ``--compare`` idle mutual-TLS connections (the
   count one process can hold under this limit), measured by
   bench/broker_phases.idle_phase, as bench/broker.py does.

Usage:  .venv/bin/python bench/held_connections.py [--connections 50000] [--nodes 3]
            [--per-process 16000] [--hold 30] [--compare 16000] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from broker_phases import idle_phase, tls_spec  # noqa: E402
from broker_servers import (RUNNING, Broker, Mosquitto, ensure_mosquitto, mosquitto_server_cert,  # noqa: E402
                            provision, tls_probe)
from held_clients import Holders, read_packet  # noqa: E402
from mqtt_clients import DISCONNECT, _send, client_ssl_contexts, mqtt_open, publish_packet  # noqa: E402
from procs import BIN, HOST, free_port, log, proc_cpu, proc_rss, raise_nofile  # noqa: E402

from localiot.testing.nats import NatsServer  # noqa: E402
from localiot.testing.postgres import PostgresServer  # noqa: E402

FD_MARGIN = 300  # files a process holds besides the connections (libraries, pipes, store, logs)


# ---------------------------------------------------------------------------
# localiot nodes
# ---------------------------------------------------------------------------
class Node(Broker):
    """`localiot serve` with its mutual-TLS listener on a port of its own: on PostgreSQL + NATS
    (`store`, `fabric`) or, with neither, on the SQLite file in its folder. A Broker, so
    broker_phases.idle_phase measures it as bench/broker.py measures its localiot."""

    name = "localiot"

    def __init__(self, label: str, workdir: str, store: str | None, fabric: str | None):
        self.label = label
        folder = os.path.join(workdir, label)
        os.makedirs(folder, exist_ok=True)
        self.api_port, self.tls_port = free_port(), free_port()
        argv = [os.path.join(BIN, "localiot"), "serve", "--port", str(self.api_port),
                "--mqtt-tls-port", str(self.tls_port), "--mqtt-alpn-port", "0", "--device-advisor-port", "0",
                "--data-dir", os.path.join(folder, "data"), "--log-level", "WARNING"]
        env = dict(os.environ, LOCALIOT_NODE_ID=label)
        for key, value in (("LOCALIOT_STORE", store), ("LOCALIOT_FABRIC", fabric)):
            if value:
                env[key] = value
        self.log_path = os.path.join(folder, "serve.log")
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        RUNNING.append(self)
        self.api = f"http://{HOST}:{self.api_port}"
        self.exit_code: int | None = None
        self.stop_seconds = 0.0

    def logged(self, text: str) -> int:
        """How many lines of the node's log hold `text`."""
        with open(self.log_path, errors="replace") as f:
            return sum(text in line for line in f)

    def logged_errors(self) -> list[str]:
        """The ERROR lines of the node's log."""
        with open(self.log_path, errors="replace") as f:
            return [line.strip() for line in f if " ERROR " in line]

    def wait_ready(self, timeout: float = 90.0) -> "Node":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, errors="replace") as f:
                if "localiot ready on" in f.read():
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(self.log_path, errors="replace") as f:
            raise SystemExit(f"node {self.label} did not start:\n{f.read()[-3000:]}")

    def health(self) -> dict:
        with urllib.request.urlopen(self.api + "/_localiot/health", timeout=10) as answer:
            return json.load(answer)

    def stop(self, timeout: float = 180.0) -> None:
        """SIGTERM, as docker stop sends; SIGKILL after `timeout` s. A node still running after 10 s
        gets its threads' stacks written to stop-stacks.txt (py-spy dump) beside its log: what it
        waits for. Not SIGINT: a script started in the background of a non-interactive shell
        ignores SIGINT and so do the nodes it starts (the ninth pass's first "hang": asyncio installs
        no SIGINT handler where SIGINT is ignored)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            spy = shutil.which("py-spy") or os.path.join(BIN, "py-spy")
            if os.path.exists(spy):
                self.stacks = os.path.join(os.path.dirname(self.log_path), "stop-stacks.txt")
                with open(self.stacks, "w") as out:
                    subprocess.run([spy, "dump", "--pid", str(self.pid)], stdout=out, stderr=subprocess.STDOUT,
                                   timeout=60, check=False)
                log(f"{self.label} still running 10 s after SIGTERM: its stacks are in {self.stacks}")
            try:
                self.proc.wait(max(0.0, timeout - (time.monotonic() - t0)))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stop_seconds = time.monotonic() - t0
        self.exit_code = self.proc.returncode
        if self in RUNNING:
            RUNNING.remove(self)


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------
class HealthWatch:
    """GET /_localiot/health on every node, one after the other per node, while the clients close:
    the slowest answer per node (its loop's longest stall, about) and how long after the close
    the node answered within 100 ms again."""

    def __init__(self, nodes: list[Node]):
        self.nodes, self.t0 = nodes, time.monotonic()
        self.worst = [0.0] * len(nodes)
        self.responsive_after = [0.0] * len(nodes)  # seconds after t0 of the end of the last slow answer
        self._done = threading.Event()
        self._threads = [threading.Thread(target=self._watch, args=(i,), daemon=True) for i in range(len(nodes))]
        for thread in self._threads:
            thread.start()

    def _watch(self, i: int) -> None:
        while not self._done.is_set():
            t = time.monotonic()
            try:
                self.nodes[i].health()
            except Exception:
                pass
            seconds = time.monotonic() - t
            self.worst[i] = max(self.worst[i], seconds)
            if seconds > 0.1:
                self.responsive_after[i] = time.monotonic() - self.t0
            time.sleep(0.1)

    def stop(self) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join(120)


def split_evenly(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def sum_per_node(answers: list[dict], key: str) -> list[int]:
    return [sum(col) for col in zip(*(a[key] for a in answers))]


async def publish_checks(nodes: list[Node], tls: dict, topic: str, payloads: list[bytes]) -> None:
    """One QoS 1 PUBLISH per node (payloads[i] on node i), each acknowledged before the next."""
    loop = asyncio.get_running_loop()
    ctx = client_ssl_contexts({"tls": tls})[0]
    for i, (node, payload) in enumerate(zip(nodes, payloads)):
        sock = await mqtt_open(loop, HOST, node.tls_port, ctx, f"held-publisher-{uuid.uuid4().hex[:8]}-{i}")
        try:
            await _send(loop, sock, publish_packet(topic, payload, 1, 1))
            first, body = await read_packet(loop, sock, bytearray())
            if first != 0x40:
                raise SystemExit(f"node {i + 1}: expected a PUBACK, got {first:#x} {body.hex()}")
            await _send(loop, sock, DISCONNECT)
        finally:
            sock.close()


def accepted(nodes: list[Node]) -> list[int]:
    """Each node's accepted connections on its mutual-TLS listener that it has not closed yet:
    its TCP sockets at 127.0.0.1:its port, ESTABLISHED or CLOSE_WAIT (the client closed first,
    the node still holds its end). From `ss` (netlink: 0.4 s with 100,000 sockets, where
    reading /proc/net/tcp takes several seconds), else /proc/net/tcp."""
    index = {n.tls_port: i for i, n in enumerate(nodes)}
    counts = [0] * len(nodes)
    if shutil.which("ss"):
        ports = " or ".join(f"sport = :{port}" for port in index)
        listing = subprocess.run(["ss", "-Htn4", "state", "established", "state", "close-wait", f"( {ports} )"],
                                 capture_output=True, text=True, check=True).stdout
        for line in listing.splitlines():
            local = next(field for field in line.split() if ":" in field)  # then the peer's
            host, _, port = local.rpartition(":")
            if host == HOST and int(port) in index:  # not a client that got the same port number
                counts[index[int(port)]] += 1
        return counts
    local = {f"0100007F:{port:04X}": i for port, i in index.items()}
    fd = os.open("/proc/net/tcp", os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 22):
            chunks.append(chunk)
    finally:
        os.close(fd)
    for line in b"".join(chunks).decode().splitlines()[1:]:
        fields = line.split(None, 4)
        i = local.get(fields[1])
        if i is not None and fields[3] in ("01", "08"):
            counts[i] += 1
    return counts


def node_state(nodes: list[Node]) -> list[dict]:
    return [{"rss": proc_rss(n.pid), "sockets": held, "cpu": proc_cpu(n.pid)}
            for n, held in zip(nodes, accepted(nodes))]


def cluster_run(args, workdir: str) -> dict:
    from scale_out import cpu_of, postgres_pids

    folder = os.path.join(workdir, "cluster")
    os.makedirs(folder)
    pg = PostgresServer().start()
    nats = NatsServer().start()
    nodes: list[Node] = []
    holders = None
    try:
        dsn = pg.create_database("held")
        log(f"PostgreSQL on {pg.port}, NATS at {nats.url}; starting {args.nodes} nodes")
        nodes = [Node(f"node{i + 1}", folder, dsn, nats.url) for i in range(args.nodes)]
        for node in nodes:
            node.wait_ready()
        deadline = time.monotonic() + 30
        while not all(n.health()["fabric"].get("connected") for n in nodes):
            if time.monotonic() > deadline:
                raise SystemExit(f"nodes not on NATS: {[n.health()['fabric'] for n in nodes]}")
            time.sleep(0.2)
        if any(n.health()["store"]["backend"] != "postgresql" for n in nodes):
            raise SystemExit("a node is not on PostgreSQL")
        log(f"registering {args.certs} device certificates and a policy through node 1's API")
        certs = provision(nodes[0].api, args.certs, folder)
        for i, node in enumerate(nodes):
            node.tls_ca = certs["client_ca"]
            why = tls_probe(node.tls_port, node.tls_ca, certs["certs"][i % len(certs["certs"])])
            if why:
                raise SystemExit(f"node {i + 1} refused a mutual-TLS CONNECT: {why}; see {node.log_path}")
        tls = tls_spec(nodes[0], certs)
        ports = [n.tls_port for n in nodes]
        tag = uuid.uuid4().hex[:6]
        topic = f"held/check/{tag}"
        base = dict(ports=ports, tls=tls, concurrency=args.concurrency, topic=topic)
        # warm each node's code paths and allocators before the baseline, as idle_phase does
        warm = Holders([dict(base, count=20 * len(nodes), source=None, sample_every=7, prefix=f"held-warm-{tag}")])
        warm.ask(("open",), 120)
        warm.ask(("close",), 60)
        warm.join()
        time.sleep(args.settle)

        procs = math.ceil(args.connections / args.per_process)
        octet = random.randint(100, 250)  # fresh source addresses: no TIME_WAIT left from an earlier run
        sources = [f"127.{octet}.0.{p + 1}" for p in range(procs)]
        specs = [dict(base, count=c, source=sources[p], sample_every=args.sample_every, prefix=f"held-{tag}-{p}")
                 for p, c in enumerate(split_evenly(args.connections, procs))]
        log(f"opening {args.connections:,} mutual-TLS connections over {len(nodes)} nodes from {procs} client "
            f"processes ({', '.join(sources)}), {args.concurrency} handshakes in flight each")
        pg_pids = postgres_pids(pg)
        before = node_state(nodes)
        pg0, nats0 = cpu_of(pg_pids + postgres_pids(pg)), proc_cpu(nats.process.pid)
        holders = Holders(specs)
        t0 = time.monotonic()

        def progress():
            held = accepted(nodes)
            log(f"  {sum(held):,} held after {time.monotonic() - t0:.0f} s ({', '.join(f'{h:,}' for h in held)}), "
                f"load average {os.getloadavg()[0]:.1f}")

        opened = holders.ask(("open",), args.open_timeout, progress)
        open_seconds = max(o["seconds"] for o in opened)  # the clients' own first connect to last CONNACK
        accept_cpu = [proc_cpu(n.pid) - b["cpu"] for n, b in zip(nodes, before)]
        pg_cpu, nats_cpu = cpu_of(postgres_pids(pg)) - pg0, proc_cpu(nats.process.pid) - nats0
        per_node = sum_per_node(opened, "opened")
        failed = sum_per_node(opened, "failed")
        log(f"opened {sum(per_node):,} in {open_seconds:.0f} s ({sum(failed)} failed"
            + (f": {opened[0]['errors'] or [e for o in opened for e in o['errors']][:1]}" if sum(failed) else "") + ")")
        time.sleep(args.settle)
        after = node_state(nodes)
        log(f"holding them {args.hold:g} s")
        time.sleep(args.hold)
        held = node_state(nodes)
        log("PINGREQ on every connection")
        pings = holders.ask(("ping", args.check_timeout), args.check_timeout + 120)
        payloads = [f"from node{i + 1} {tag}".encode() for i in range(len(nodes))]
        holders.send(("expect", topic, payloads, args.check_timeout))
        asyncio.run(publish_checks(nodes, tls, topic, payloads))
        delivered = holders.collect("expect", args.check_timeout + 120)
        alive = [n.proc.poll() is None for n in nodes]
        watch = HealthWatch(nodes)
        holders.ask(("close",), 120)
        holders.join()
        holders = None
        t_close = time.monotonic()
        while any(accepted(nodes)) and time.monotonic() - t_close < 60:
            time.sleep(0.2)
        released = accepted(nodes)
        release_seconds = time.monotonic() - t_close
        settled = node_state(nodes)
        time.sleep(3)  # work the nodes still do once every client is gone
        after_close = [100 * (proc_cpu(n.pid) - x["cpu"]) / 3 for n, x in zip(nodes, settled)]
        log(f"every connection closed; node CPU % over the next 3 s: {', '.join(f'{c:.0f}' for c in after_close)}")
        watch.stop()
        log(f"health while closing: slowest answer {', '.join(f'{w:.1f}' for w in watch.worst)} s; answering within "
            f"100 ms again {', '.join(f'{r:.1f}' for r in watch.responsive_after)} s after the close")
        for node in nodes:
            node.stop()
        logged = [n.logged_errors() for n in nodes]
        for node, lines in zip(nodes, logged):
            if lines:
                log(f"{node.label} logged {len(lines)} ERROR(s), the first: {lines[0]}")
        return {
            "nodes": [{
                "opened": per_node[i], "failed": failed[i],
                "sockets": after[i]["sockets"] - before[i]["sockets"],  # before: warm-ups not yet closed
                "rss0": before[i]["rss"], "rss1": after[i]["rss"], "rss_held": held[i]["rss"],
                "accept_cpu": accept_cpu[i], "hold_cpu": held[i]["cpu"] - after[i]["cpu"],
                "pinged": sum_per_node(pings, "answered")[i], "ping_lost": sum_per_node(pings, "lost")[i],
                "sampled": sum_per_node(opened, "sampled")[i], "complete": sum_per_node(delivered, "complete")[i],
                "alive": alive[i], "left_open": released[i], "cpu_after_close": after_close[i],
                "exit": nodes[i].exit_code, "logged_errors": len(logged[i]),
                "stop_seconds": nodes[i].stop_seconds, "health_worst": watch.worst[i],
                "responsive_after": watch.responsive_after[i], "lock_lost": nodes[i].logged("lost its lock connection"),
            } for i in range(len(nodes))],
            "open_seconds": open_seconds, "pg_cpu": pg_cpu, "nats_cpu": nats_cpu,
            "client_cpu": sum(o["cpu"] for o in opened), "procs": procs, "sources": sources,
            "ping_seconds": max(p["seconds"] for p in pings), "release_seconds": release_seconds,
            "errors": ([e for group in (opened, pings, delivered) for o in group for e in o["errors"]][:5]
                       + [f"{n.label}'s log: {lines[0]}" for n, lines in zip(nodes, logged) if lines]),
            "payloads": len(payloads),
        }
    finally:
        if holders is not None:
            holders.kill()
        for node in nodes:
            if node.proc.poll() is None:
                node.stop()
        nats.stop()
        pg.stop()


def comparison_run(args, workdir: str) -> dict:
    """Mosquitto and a single localiot node on SQLite, each holding args.compare connections."""
    folder = os.path.join(workdir, "compare")
    os.makedirs(folder)
    started: list[Broker] = []
    try:
        single = Node("sqlite", folder, None, None)
        started.append(single)
        single.wait_ready()
        certs = provision(single.api, args.certs, folder)
        single.tls_ca = certs["client_ca"]
        server = mosquitto_server_cert(folder, certs["chain_ca"])  # the same client chain as localiot gets
        mosquitto = Mosquitto(ensure_mosquitto(), folder, dict(server, client_ca=certs["device_ca"]), 100, 1000)
        started.append(mosquitto)
        out = {}
        for broker in (mosquitto, single):
            why = tls_probe(broker.tls_port, broker.tls_ca, certs["certs"][0])
            if why:
                raise SystemExit(f"{broker.name} refused a mutual-TLS CONNECT: {why}")
            log(f"{broker.name}{' (SQLite)' if broker is single else ''}: {args.compare:,} idle mutual-TLS connections")
            r = out[broker.name] = idle_phase(broker, tls_spec(broker, certs), args.compare, args)
            if r.get("opened"):
                log(f"  {r['opened']:,} held ({r['still_open']:,} still open at the end): "
                    f"{r['per_conn'] / 1024:.1f} KB each, opened at {r['open_rate']:,.0f}/s")
        return out
    finally:
        for broker in started:
            broker.stop()


def mb(b: float) -> str:
    return f"{b / 2**20:,.0f}"


def render(results: dict, args) -> str:
    lim = results["limit"]
    c = results.get("cluster")
    lines = [f"Machine: {os.cpu_count()} cores, {results['memory']}, Python {platform.python_version()}, load average "
             f"{results['load']} at start; RLIMIT_NOFILE {lim['soft']:,} (hard {lim['hard']:,}; "
             f"{lim['needed']:,} needed per process)."]
    if c:
        n = c["nodes"]
        total = sum(x["opened"] for x in n)
        lines += ["", f"{args.connections:,} idle mutual-TLS connections over {len(n)} localiot nodes on PostgreSQL + "
                  f"NATS, from {c['procs']} client processes ({', '.join(c['sources'])}), held {args.hold:g} s; then "
                  f"PINGREQ on every connection and one QoS 1 message published on each node to a topic that one "
                  f"connection in {args.sample_every} subscribed to:", "",
                  "| node | held (clients / accepted at the node) | RSS before → after MB | KB per connection | "
                  "CPU s to accept | CPU ms per accept | opened/s | CPU % while held | PINGRESP | "
                  "subscribers with every message | exit | ERRORs logged |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for i, x in enumerate(n):
            per = (x["rss1"] - x["rss0"]) / x["opened"] / 1024 if x["opened"] else float("nan")
            lines.append(
                f"| node{i + 1} | {x['opened']:,} / {x['sockets']:,} | {mb(x['rss0'])} → {mb(x['rss1'])} "
                f"({mb(x['rss_held'])} after the hold) | {per:.1f} | {x['accept_cpu']:.0f} | "
                f"{1e3 * x['accept_cpu'] / max(1, x['opened']):.2f} | {x['opened'] / c['open_seconds']:,.0f} | "
                f"{100 * x['hold_cpu'] / args.hold:.1f} | {x['pinged']:,} of {x['opened']:,} | "
                f"{x['complete']} of {x['sampled']} | {x['exit']} | {x.get('logged_errors', '-')} |")
        rss = sum(x["rss1"] - x["rss0"] for x in n)
        cpu = sum(x["accept_cpu"] for x in n)
        lines.append(f"| **total** | **{total:,}** / {sum(x['sockets'] for x in n):,} | +{mb(rss)} | "
                     f"{rss / max(1, total) / 1024:.1f} | {cpu:.0f} | {1e3 * cpu / max(1, total):.2f} | "
                     f"{total / c['open_seconds']:,.0f} | | {sum(x['pinged'] for x in n):,} | "
                     f"{sum(x['complete'] for x in n)} of {sum(x['sampled'] for x in n)} | | |")
        busy_after = ", ".join(f"{x.get('cpu_after_close', float('nan')):.0f}%" for x in n)
        stops = ", ".join(f"{x['stop_seconds']:.1f}" for x in n)
        if "health_worst" in n[0]:
            lines += ["", "While the clients closed, the slowest /_localiot/health answer per node: "
                      + ", ".join(f"{x['health_worst']:.1f} s" for x in n) + "; within 100 ms again "
                      + ", ".join(f"{x['responsive_after']:.1f} s" for x in n) + " after the close; lock sessions "
                      "lost (\"lost its lock connection\" logged): " + ", ".join(str(x["lock_lost"]) for x in n) + "."]
        lines += ["", f"Opening took {c['open_seconds']:.0f} s; meanwhile PostgreSQL used {c['pg_cpu']:.0f} CPU s, "
                  f"nats-server {c['nats_cpu']:.1f}, the client processes {c['client_cpu']:.0f}. "
                  f"Failed: {sum(x['failed'] for x in n)}; PINGREQ lost: {sum(x['ping_lost'] for x in n)} "
                  f"(all answered within {c['ping_seconds']:.1f} s). After closing, the nodes released every "
                  f"socket in {c['release_seconds']:.1f} s (left: {sum(x['left_open'] for x in n)}); "
                  f"node CPU in the 3 s after: {busy_after}; SIGTERM stopped them in {stops} s "
                  "(exit codes in the table)."]
        if c["errors"]:
            lines += ["", "First errors: " + "; ".join(c["errors"])]
    cmp_ = results.get("compare")
    if cmp_:
        mos = cmp_.get("mosquitto", {})
        lines += ["", f"The same run, one process each, {args.compare:,} idle mutual-TLS connections "
                  f"(bench/broker_phases.idle_phase):", "",
                  "| broker | held | still open at the end | RSS before → after MB | KB per connection | "
                  "vs Mosquitto | opened/s | broker CPU s to accept | CPU ms per accept |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        rows = [("Mosquitto", mos), ("localiot, one node, SQLite", cmp_.get("localiot", {}))]
        if c:
            x = c["nodes"][0]
            rows.append((f"localiot node1 of the cluster ({x['opened']:,} held)",
                         {"opened": x["opened"], "still_open": x["pinged"], "rss0": x["rss0"], "rss1": x["rss1"],
                          "per_conn": (x["rss1"] - x["rss0"]) / max(1, x["opened"]),
                          "open_rate": x["opened"] / c["open_seconds"], "broker_cpu_s": x["accept_cpu"]}))
        for label, r in rows:
            if not r.get("opened"):
                lines.append(f"| {label} | 0 | | | | | | | {r.get('error') or r.get('first_error') or ''} |")
                continue
            ratio = r["per_conn"] / mos["per_conn"] if mos.get("opened") else float("nan")
            lines.append(f"| {label} | {r['opened']:,} | {r['still_open']:,} | {mb(r['rss0'])} → {mb(r['rss1'])} | "
                         f"{r['per_conn'] / 1024:.1f} | {ratio:.2f}x | {r['open_rate']:,.0f} | "
                         f"{r['broker_cpu_s']:.1f} | {1e3 * r['broker_cpu_s'] / r['opened']:.2f} |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=50_000, help="idle mutual-TLS connections over the nodes")
    p.add_argument("--nodes", type=int, default=3, help="localiot nodes on one PostgreSQL + NATS")
    p.add_argument("--per-process", type=int, default=16_000, help="connections per client process at most")
    p.add_argument("--concurrency", type=int, default=8, help="TLS handshakes in flight per client process")
    p.add_argument("--sample-every", type=int, default=100, help="one connection in this many subscribes")
    p.add_argument("--hold", type=float, default=30, help="seconds to hold the connections before the checks")
    p.add_argument("--check-timeout", type=float, default=60, help="seconds for the PINGRESPs / the messages")
    p.add_argument("--open-timeout", type=float, default=3600, help="seconds to open the connections at most")
    p.add_argument("--certs", type=int, default=4, help="device certificates (connections take them in turn)")
    p.add_argument("--compare", type=int, default=16_000,
                   help="connections for Mosquitto and single-node localiot (0: skip the comparison)")
    p.add_argument("--gen-procs", type=int, default=2, help="client processes for the comparison")
    p.add_argument("--settle", type=float, default=3, help="seconds to wait before reading RSS")
    p.add_argument("--quiet-wait", type=float, default=10,
                   help="comparison: wait this long at most for a quiet machine")
    p.add_argument("--quiet-threshold", type=float, default=10, help="'quiet' = at most this CPU %% busy")
    p.add_argument("--skip-cluster", action="store_true", help="only the comparison")
    p.add_argument("--out", help="also write the tables to this file")
    p.add_argument("--save-results", metavar="FILE", help="also write the figures and arguments as JSON")
    p.add_argument("--render", metavar="FILE", help="only print the tables of a --save-results file")
    p.add_argument("--keep", action="store_true", help="keep the working directory (logs, certificates)")
    args = p.parse_args(argv)
    args.tls_conn_concurrency = args.conn_concurrency = args.concurrency  # names idle_phase reads
    args.idle_timeout = args.open_timeout
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        with open(args.render) as f:
            saved = json.load(f)
        print(render(saved["results"], argparse.Namespace(**saved["args"])))
        return 0
    per_node = math.ceil(args.connections / args.nodes)
    needed = max(per_node, min(args.per_process, args.connections), args.compare) + FD_MARGIN
    raise_nofile(needed)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    log(f"RLIMIT_NOFILE: {soft:,} (hard {hard:,}); {needed:,} needed per process")
    if not args.skip_cluster and per_node + FD_MARGIN > soft:
        nodes = math.ceil(args.connections / (soft - FD_MARGIN))
        raise SystemExit(f"{per_node:,} connections per node need RLIMIT_NOFILE {per_node + FD_MARGIN:,}, "
                         f"and this process got {soft:,}: use --nodes {nodes}")
    if args.per_process + FD_MARGIN > soft:
        args.per_process = soft - FD_MARGIN
        log(f"--per-process lowered to {args.per_process:,} (RLIMIT_NOFILE)")
    if args.compare + FD_MARGIN > soft:
        args.compare = soft - FD_MARGIN
        log(f"--compare lowered to {args.compare:,} (RLIMIT_NOFILE)")
    with open("/proc/meminfo") as f:
        memory = f"{int(f.readline().split()[1]) / 2**20:.0f} GB"
    results = {"limit": {"soft": soft, "hard": hard, "needed": needed}, "memory": memory,
               "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    workdir = tempfile.mkdtemp(prefix="bench-held-")
    good = False
    try:
        if not args.skip_cluster:
            results["cluster"] = cluster_run(args, workdir)
        if args.compare:
            results["compare"] = comparison_run(args, workdir)
        good = all_held(results.get("cluster"), args)
    finally:
        if not good or args.keep:
            log(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.save_results:
        with open(args.save_results, "w") as f:
            json.dump({"results": results, "args": vars(args)}, f, indent=1)
    text = render(results, args)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    if not good:
        log("not every connection was held, answered and delivered to, or a node did not stop cleanly")
    return 0 if good else 1


def all_held(c: dict | None, args) -> bool:
    """Every connection opened, accepted, answered PINGREQ; every sampled subscriber got every
    message; every node alive through the checks and stopped by SIGTERM with exit code 0."""
    if c is None:
        return True
    return sum(x["opened"] for x in c["nodes"]) == args.connections and all(
        x["opened"] == x["pinged"] == x["sockets"] and x["complete"] == x["sampled"] and x["alive"]
        and x["exit"] == 0 and x["left_open"] == 0 and not x["logged_errors"] for x in c["nodes"])

if __name__ == "__main__":
    sys.exit(main())
