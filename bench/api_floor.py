#!/usr/bin/env python
"""API hot path against the HTTP floor: server CPU per request, localiot vs a bare handler.

One run starts three servers as subprocesses on free loopback ports:

  * ``floor``: a bare aiohttp + uvloop handler (this file, ``--floor-server``)
    that reads the request and answers a fixed DescribeThing body: the least
    any Python HTTP API on aiohttp can spend per request;
  * ``localiot`` (SQLite file in WAL mode, plain MQTT on for the Publish
    subscriber);
  * moto's server, for the record (at the smallest population only);
  * ``localiot-pg`` with ``--servers ...,localiot-pg``: localiot on a fresh
    database of a throwaway PostgreSQL started for the run
    (localiot.testing.postgres); its CPU per request counts the localiot
    process and every PostgreSQL process of that cluster.

Each is driven by the same lean asyncio client: requests are built and
SigV4-signed before a phase (the headers boto3 sends) and replayed as raw
HTTP/1.1 bytes over ``--connections`` keep-alive connections, one request in
flight per connection; responses are framed by Content-Length.  Every
counted request must answer 2xx.

Per operation and population it reports requests/s, latency p50/p99, the
server's CPU µs per request (utime+stime from /proc/PID/stat over the phase,
divided by the requests answered) and the ratio of that to the floor's,
measured in the same run.  Operations: DescribeThing, CreateThing (the
population grows by it: 0 -> first size, then on to the next size),
UpdateThingShadow, GetThingShadow, ListThings (maxResults=100, first page),
iot-data Publish (QoS 0, to a topic with one MQTT subscriber on localiot).

With ``--floor-beside`` the floor's phase runs again right before each localiot
phase and each ratio is taken to that one: on a shared machine the load moves a
lot between phases minutes apart.

With ``--rounds N`` (bench/api_floor_rounds.py) each localiot operation runs N
rounds in which the floor and localiot alternate every ``--slice`` seconds, and
the ratio reported is the median of the N per-round ratios, with their min-max;
``--pin SERVER_CPU,CLIENT_CPU`` puts the servers on one CPU and the client on
another (both servers alike), ``--warmup S`` discards a first phase on each.

Usage:  .venv/bin/python bench/api_floor.py [--sizes 1000,100000] [--duration S] [--connections 32]
        [--servers floor,localiot,localiot-pg,moto] [--floor-beside]
        [--rounds N [--slice S] [--warmup S] [--ops DescribeThing,...]] [--pin 1,0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from control_plane import ServerProc, start_localiot, start_moto  # noqa: E402  (the launchers)
from api_floor_rounds import (  # noqa: E402  (--rounds and --pin)
    ROUND_OPS, bench_rounds, localiot_source, parse_pin, pin_servers, render_rounds)
from figures import pct  # noqa: E402
from procs import free_port, proc_cpu  # noqa: E402  (the process CPU reader)
from sigv4_requests import _boto3_user_agent, _q  # noqa: E402  (boto3's User-Agent, SigV4 quoting)

REGION = "us-east-1"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NAME_FMT = "floor-thing-{:07d}"
TOPIC = "bench/floor"
FLOOR_BODY = json.dumps({
    "defaultClientId": "floor-thing-0000001", "thingName": "floor-thing-0000001",
    "thingId": "5f1c0a4e-6f0e-4a43-9d7e-0123456789ab",
    "thingArn": "arn:aws:iot:us-east-1:123456789012:thing/floor-thing-0000001",
    "attributes": {}, "version": 1,
}, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------
# the floor: a bare aiohttp + uvloop handler
# ---------------------------------------------------------------------------
def floor_server(port: int) -> None:
    import uvloop
    from aiohttp import web

    async def handler(request: web.BaseRequest) -> web.Response:
        await request.read()
        return web.Response(body=FLOOR_BODY, headers={"Content-Type": "application/json",
                                                      "x-amzn-RequestId": str(uuid.uuid4())})

    async def main():
        runner = web.ServerRunner(web.Server(handler, access_log=None), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        print(f"floor ready on http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


def start_floor(logdir: str) -> ServerProc:
    import re

    port = free_port()
    argv = [sys.executable, os.path.abspath(__file__), "--floor-server", str(port)]
    return ServerProc("floor", argv, None, logdir, re.compile(r"floor ready on http://[^:]+:(\d+)"))


# ---------------------------------------------------------------------------
# requests: SigV4 as botocore signs them, built once, replayed as bytes
# ---------------------------------------------------------------------------
class Signer:
    """SigV4 for one (key, day, region, service): the signing key is derived once."""

    def __init__(self, host: str, service: str, when: dt.datetime | None = None):
        when = when or dt.datetime.now(dt.timezone.utc)
        self.host, self.service = host, service
        self.amz_date = when.strftime("%Y%m%dT%H%M%SZ")
        self.scope = f"{when:%Y%m%d}/{REGION}/{service}/aws4_request"
        key = hmac.new(("AWS4" + SECRET_KEY).encode(), f"{when:%Y%m%d}".encode(), hashlib.sha256).digest()
        for part in (REGION, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self.key = key
        self.user_agent = _boto3_user_agent()

    def sign(self, method: str, path: str, query: dict | None, body: bytes | None,
             content_type: str = "application/json") -> bytes:
        """The whole HTTP/1.1 request. `path` is already URI-encoded."""
        qs = "&".join(f"{_q(k)}={_q(v)}" for k, v in sorted((query or {}).items()))
        lower = {"host": self.host, "x-amz-date": self.amz_date}
        if body is not None:
            lower["content-type"] = content_type
        signed = ";".join(sorted(lower))
        canonical = "\n".join([method, path, qs, "".join(f"{k}:{lower[k]}\n" for k in sorted(lower)), signed,
                               hashlib.sha256(body or b"").hexdigest()])
        to_sign = "\n".join(["AWS4-HMAC-SHA256", self.amz_date, self.scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        signature = hmac.new(self.key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers = {"Host": self.host, "Accept-Encoding": "identity", "User-Agent": self.user_agent,
                   "X-Amz-Date": self.amz_date,
                   "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{self.scope}, "
                                    f"SignedHeaders={signed}, Signature={signature}",
                   "amz-sdk-invocation-id": str(uuid.uuid4()), "amz-sdk-request": "attempt=1",
                   "Content-Length": str(len(body or b""))}
        if body is not None:
            headers["Content-Type"] = content_type
        target = path + ("?" + qs if qs else "")
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        return head.encode() + (body or b"")


def check_signer_against_botocore() -> None:
    from unittest import mock

    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    for service, method, path, query, body in [("iot", "GET", "/things", {"maxResults": "100"}, None),
                                               ("iotdata", "POST", "/things/t1/shadow", None, b'{"state":{}}')]:
        raw = Signer("127.0.0.1:4566", service, when).sign(method, path, query, body)
        ours = [line for line in raw.split(b"\r\n") if line.startswith(b"Authorization: ")][0][15:].decode()
        qs = "&".join(f"{k}={v}" for k, v in (query or {}).items())
        req = AWSRequest(method=method, url=f"http://127.0.0.1:4566{path}" + (f"?{qs}" if qs else ""),
                         data=body or b"", headers={"Content-Type": "application/json"} if body is not None else {})
        with mock.patch.object(botocore.auth, "get_current_datetime", lambda: when.replace(tzinfo=None)):
            SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), service, REGION).add_auth(req)
        if req.headers["Authorization"] != ours:
            raise SystemExit(f"signer mismatch:\n {req.headers['Authorization']}\n {ours}")


class Requests:
    def __init__(self, endpoint: str):
        host = endpoint.split("://", 1)[1]
        self.iot, self.data = Signer(host, "iot"), Signer(host, "iotdata")

    def create_thing(self, i: int) -> bytes:
        return self.iot.sign("POST", "/things/" + NAME_FMT.format(i), None, b"{}")

    def describe_thing(self, i: int) -> bytes:
        return self.iot.sign("GET", "/things/" + NAME_FMT.format(i), None, None)

    def list_things(self) -> bytes:
        return self.iot.sign("GET", "/things", {"maxResults": "100"}, None)

    def update_shadow(self, i: int, value: int) -> bytes:
        body = json.dumps({"state": {"reported": {"temperature": value, "status": "ok"}}}).encode()
        return self.data.sign("POST", f"/things/{NAME_FMT.format(i)}/shadow", None, body)

    def get_shadow(self, i: int) -> bytes:
        return self.data.sign("GET", f"/things/{NAME_FMT.format(i)}/shadow", None, None)

    def publish(self, value: int) -> bytes:
        body = json.dumps({"seq": value, "temperature": 21.5}).encode()
        return self.data.sign("POST", f"/topics/{_q(TOPIC)}", {"qos": "0"}, body, "application/octet-stream")


# ---------------------------------------------------------------------------
# the lean client: raw requests over keep-alive connections
# ---------------------------------------------------------------------------
class Conn(asyncio.Protocol):
    def __init__(self):
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        self._check()

    def connection_lost(self, exc):
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            if self.buf and self._length() is None:  # body delimited by the close
                self.waiter.set_result(self._take(len(self.buf)))
            else:
                self.waiter.set_exception(ConnectionError("connection closed"))

    def _length(self):
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return -1
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            return None
        return end + 4 + int(head[at + 17: head.find(b"\r\n", at + 2) if head.find(b"\r\n", at + 2) > 0 else None])

    def _take(self, n):
        head_end = self.buf.find(b"\r\n\r\n")
        status = int(self.buf[9:12])
        keep = not (b"\r\nconnection: close" in bytes(self.buf[:head_end]).lower() or self.buf.startswith(b"HTTP/1.0"))
        body = bytes(self.buf[head_end + 4:n])
        del self.buf[:n]
        return status, body, keep

    def _check(self):
        if self.waiter is None or self.waiter.done():
            return
        n = self._length()
        if n is not None and n >= 0 and len(self.buf) >= n:
            self.waiter.set_result(self._take(n))

    async def request(self, raw: bytes):
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


async def connect(port: int) -> Conn:
    _, conn = await asyncio.get_running_loop().create_connection(Conn, "127.0.0.1", port)
    return conn


@dataclass
class Result:
    ok: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0  # server CPU seconds over the phase
    latencies: list = field(default_factory=list)
    errors: dict = field(default_factory=dict)
    sample: str = ""

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    @property
    def us_per_request(self) -> float:
        return self.cpu / self.ok * 1e6 if self.ok else float("nan")


def count_reply(result: "Result", status: int, body: bytes) -> None:
    """One reply into `result`: an OK, or an error by its HTTP status (the first one's body kept)."""
    if 200 <= status < 300:
        result.ok += 1
    else:
        result.errors[f"HTTP {status}"] = result.errors.get(f"HTTP {status}", 0) + 1
        result.sample = result.sample or body[:300].decode(errors="replace")


async def drive(port: int, pid: int, pool: list[bytes], connections: int, *, duration: float | None) -> Result:
    """Replay `pool` over `connections` keep-alive connections: each request once
    (duration None) or cycling for `duration` seconds."""
    result = Result()
    conns = [await connect(port) for _ in range(connections)]
    counter = 0
    cpu_of = pid if callable(pid) else (lambda: proc_cpu(pid))  # a pid, or fn() -> CPU seconds
    cpu0, start = cpu_of(), time.perf_counter()
    deadline = start + duration if duration is not None else None

    async def worker(conn: Conn):
        nonlocal counter
        while True:
            if deadline is not None:
                if time.perf_counter() >= deadline:
                    return
                raw = pool[counter % len(pool)]
            elif counter >= len(pool):
                return
            else:
                raw = pool[counter]
            counter += 1
            t0 = time.perf_counter()
            try:
                status, body, keep = await conn.request(raw)
            except ConnectionError as exc:
                result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + 1
                conn = await connect(port)
                continue
            result.latencies.append(time.perf_counter() - t0)
            count_reply(result, status, body)
            if not keep or conn.closed:
                conn.transport.close()
                conn = await connect(port)

    await asyncio.gather(*(worker(c) for c in conns))
    result.elapsed = time.perf_counter() - start
    result.cpu = cpu_of() - cpu0
    for c in conns:
        c.transport.close()
    return result


# ---------------------------------------------------------------------------
# one MQTT subscriber (plain MQTT 3.1.1) on localiot's broker
# ---------------------------------------------------------------------------
class Subscriber(asyncio.Protocol):
    def __init__(self):
        self.buf = bytearray()
        self.received = 0
        self.suback = asyncio.get_event_loop().create_future()

    def connection_made(self, transport):
        client_id = b"api-floor-sub"
        # keep-alive 0 (off): the subscriber must outlive the long growth phase
        var = b"\x00\x04MQTT\x04\x02\x00\x00" + struct.pack("!H", len(client_id)) + client_id
        transport.write(b"\x10" + bytes([len(var)]) + var)
        topic = TOPIC.encode()
        sub = struct.pack("!H", 1) + struct.pack("!H", len(topic)) + topic + b"\x00"
        transport.write(b"\x82" + bytes([len(sub)]) + sub)

    def data_received(self, data):
        self.buf += data
        while len(self.buf) >= 2:
            mult, length, i = 1, 0, 1
            while True:
                if i >= len(self.buf):
                    return
                byte = self.buf[i]
                length += (byte & 127) * mult
                mult *= 128
                i += 1
                if not byte & 128:
                    break
            if len(self.buf) < i + length:
                return
            kind = self.buf[0] >> 4
            del self.buf[:i + length]
            if kind == 3:
                self.received += 1
            elif kind == 9 and not self.suback.done():
                self.suback.set_result(True)


# ---------------------------------------------------------------------------
# the benchmark
# ---------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


OPS = ("DescribeThing", "CreateThing", "UpdateThingShadow", "GetThingShadow", "ListThings", "Publish")


async def bench_server(name: str, endpoint: str, pid: int, sizes: list[int], args, floor=None) -> dict:
    """{(op, size): Result} for one server. `floor` (endpoint, pid): with --floor-beside, the
    floor's phase run again right before each of this server's phases, kept as ("floor", op, size)."""
    port = int(endpoint.rsplit(":", 1)[1])
    reqs = Requests(endpoint)
    rng = random.Random(7)
    out: dict = {}

    async def beside(op: str, size: int) -> None:
        if floor is None:
            return
        floor_port = int(floor[0].rsplit(":", 1)[1])
        pool = [Requests(floor[0]).describe_thing(rng.randrange(size)) for _ in range(2000)]
        out[("floor", op, size)] = await drive(floor_port, floor[1], pool, args.connections, duration=args.duration)
    have = 0
    subscriber = None
    if name.startswith("localiot"):
        health = json.loads(urllib.request.urlopen(endpoint + "/_localiot/health").read())
        mqtt_port = int(health["listeners"]["mqtt-plain"].rsplit(":", 1)[1])
        _, subscriber = await asyncio.get_running_loop().create_connection(Subscriber, "127.0.0.1", mqtt_port)
        await asyncio.wait_for(subscriber.suback, 10)
    for size in sizes:
        if name == "floor":
            pool = [reqs.describe_thing(rng.randrange(size)) for _ in range(2000)]
            out[("floor", size)] = await drive(port, pid, pool, args.connections, duration=args.duration)
            log(f"floor @{size}: {out[('floor', size)].us_per_request:.0f} µs/req")
            continue
        log(f"{name}: creating things {have}..{size}")
        await beside("CreateThing", size)
        out[("CreateThing", size)] = await drive(port, pid, [reqs.create_thing(i) for i in range(have, size)],
                                                 args.connections, duration=None)
        have = size
        pools = {
            "DescribeThing": [reqs.describe_thing(rng.randrange(size)) for _ in range(2000)],
            "UpdateThingShadow": [reqs.update_shadow(i % size, i) for i in range(2000)],
            "ListThings": [reqs.list_things()],
            "Publish": [reqs.publish(i) for i in range(2000)],
        }
        for op, pool in pools.items():
            if op == "ListThings":  # GetThingShadow after UpdateThingShadow, on shadows it surely made
                made = max(1, min(size, 2000, out[("UpdateThingShadow", size)].ok) - args.connections)
                await beside("GetThingShadow", size)
                out[("GetThingShadow", size)] = r = await drive(
                    port, pid, [reqs.get_shadow(i % made) for i in range(2000)], args.connections,
                    duration=args.duration)
                log(f"{name} GetThingShadow @{size}: {r.rps:.0f}/s {r.us_per_request:.0f} µs/req errors {r.errors}")
            await beside(op, size)
            before = subscriber.received if subscriber else 0
            out[(op, size)] = r = await drive(port, pid, pool, args.connections, duration=args.duration)
            if subscriber is not None and op == "Publish":
                await asyncio.sleep(0.5)
                r.delivered = subscriber.received - before
            log(f"{name} {op} @{size}: {r.rps:.0f}/s {r.us_per_request:.0f} µs/req errors {r.errors} {r.sample}")
    return out


def postgres_cpu(pg) -> float:
    """CPU seconds the PostgreSQL cluster's processes (postmaster and its children) used so far."""
    postmaster = int(open(os.path.join(pg._dir, "data", "postmaster.pid")).readline())
    total = proc_cpu(postmaster)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == postmaster:
                        total += proc_cpu(int(entry))
            except (OSError, ValueError):
                continue
    return total


def render(results: dict, sizes: list[int], args, loads: tuple) -> str:
    lines = [f"api_floor: {args.connections} keep-alive connections, {args.duration:.0f} s per read phase; "
             f"load average before {loads[0][0]:.2f} {loads[0][1]:.2f} {loads[0][2]:.2f}, "
             f"after {loads[1][0]:.2f} {loads[1][1]:.2f} {loads[1][2]:.2f} ({os.cpu_count()} cores)", ""]
    header = ["server", "operation", "things", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "x floor", "errors"]
    rows = []
    for size in sizes:
        floor = results.get("floor", {}).get(("floor", size))
        if floor:
            rows.append(["floor", "fixed DescribeThing body", str(size), f"{floor.rps:.0f}",
                         f"{pct(floor.latencies, 50) * 1e3:.2f}", f"{pct(floor.latencies, 99) * 1e3:.2f}",
                         f"{floor.us_per_request:.0f}", "1.00", str(sum(floor.errors.values()))])
        for server in ("localiot", "localiot-pg", "moto"):
            for op in OPS:
                r = results.get(server, {}).get((op, size))
                if r is None:
                    continue
                near = results.get(server, {}).get(("floor", op, size)) or floor  # --floor-beside
                ratio = r.us_per_request / near.us_per_request if near else float("nan")
                note = op + (" (grow to size)" if op == "CreateThing" else "")
                if near is not floor:
                    note += f" (floor {near.us_per_request:.0f})"
                if getattr(r, "delivered", None) is not None:
                    note += f" ({r.delivered} delivered)"
                rows.append([server, note, str(size), f"{r.rps:.0f}", f"{pct(r.latencies, 50) * 1e3:.2f}",
                             f"{pct(r.latencies, 99) * 1e3:.2f}", f"{r.us_per_request:.0f}", f"{ratio:.2f}",
                             str(sum(r.errors.values()))])
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    lines += [fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(fmt(r) for r in rows)]
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,100000", help="thing populations (default 1000,100000)")
    p.add_argument("--moto-sizes", default="1000", help="populations moto is measured at (default 1000)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per read phase (default 5)")
    p.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    p.add_argument("--servers", default="floor,localiot,moto")
    p.add_argument("--floor-beside", action="store_true",
                   help="run the floor's phase again right before each localiot phase and take each ratio "
                        "to that one (on a shared machine the load moves between phases minutes apart)")
    p.add_argument("--rounds", type=int, default=0, metavar="N",
                   help="N rounds per localiot operation and size, floor and localiot phases alternating; "
                        "report the median of the per-round ratios and their min-max (needs the floor)")
    p.add_argument("--warmup", type=float, default=1.0, metavar="S",
                   help="with --rounds: a discarded phase of S seconds on each server first (default 1)")
    p.add_argument("--slice", type=float, default=0.25, metavar="S",
                   help="with --rounds: floor and server alternate every S seconds within a round, on kept "
                        "connections (default 0.25; 0: one piece each)")
    p.add_argument("--ops", default=",".join(ROUND_OPS), help="with --rounds: the operations (default all)")
    p.add_argument("--pin", metavar="SERVER_CPU,CLIENT_CPU",
                   help="pin every server process (all threads) to one CPU and this load client to another")
    p.add_argument("--profile-localiot", metavar="FILE", help="run localiot under cProfile, writing FILE on exit")
    p.add_argument("--floor-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.moto_sizes = [int(s) for s in args.moto_sizes.split(",")]
    args.servers = args.servers.split(",")
    args.round_ops = args.ops.split(",")
    if not set(args.round_ops) <= set(ROUND_OPS):
        p.error(f"--ops: one or more of {','.join(ROUND_OPS)}")
    if args.rounds and "floor" not in args.servers:
        p.error("--rounds needs the floor among --servers")
    args.pin = parse_pin(args.pin) if args.pin else None
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.floor_server is not None:
        floor_server(args.floor_server)
        return 0
    check_signer_against_botocore()
    if any(name.startswith("localiot") for name in args.servers):
        log(f"localiot from {localiot_source()}")
    loads = [os.getloadavg()]
    workdir = tempfile.mkdtemp(prefix="localiot-apifloor-")
    servers: dict[str, ServerProc] = {}
    results: dict = {}
    rounds: dict = {}  # with --rounds: {localiot server: {(op, size): Rounds}}
    stack, pg = contextlib.ExitStack(), None
    try:
        if "floor" in args.servers:
            servers["floor"] = start_floor(workdir)
        if "localiot" in args.servers:
            os.environ.setdefault("LOCALIOT_MQTT_PLAIN", "1")
            os.environ.setdefault("LOCALIOT_MQTT_PLAIN_PORT", "0")
            servers["localiot"] = start_localiot(workdir, os.path.join(workdir, "data"), args.profile_localiot)
        if "localiot-pg" in args.servers:
            from localiot.testing.postgres import PostgresServer

            pg = PostgresServer().start()
            stack.callback(pg.stop)
            os.environ["LOCALIOT_STORE"] = pg.create_database()
            servers["localiot-pg"] = start_localiot(workdir, os.path.join(workdir, "data-pg"), None)
            servers["localiot-pg"].name = "localiot-pg"
            del os.environ["LOCALIOT_STORE"]
        if "moto" in args.servers:
            servers["moto"] = start_moto(workdir)
        endpoints = {name: s.wait_ready() for name, s in servers.items()}
        import uvloop

        if args.pin:
            pin_servers([s.proc.pid for s in servers.values()], args.pin)
        for name in servers:  # one server under load at a time, the floor first
            pid = servers[name].proc.pid
            cpu = (lambda pid=pid: proc_cpu(pid) + postgres_cpu(pg)) if name == "localiot-pg" else pid
            if args.rounds and name.startswith("localiot"):
                log(f"{name} on {endpoints[name]} (pid {pid}): {args.rounds} rounds against the floor")
                rounds[name] = uvloop.run(bench_rounds(name, endpoints[name], cpu,
                                                       (endpoints["floor"], servers["floor"].proc.pid),
                                                       args.sizes, args))
                continue
            if args.rounds and name == "floor" and "moto" not in servers:
                continue  # the floor's phases are in the rounds; a phase of its own only as moto's reference
            sizes = args.moto_sizes if name == "moto" else args.sizes
            log(f"{name} on {endpoints[name]} (pid {pid})")
            floor = None
            if args.floor_beside and name.startswith("localiot") and "floor" in servers:
                floor = (endpoints["floor"], servers["floor"].proc.pid)
            results[name] = uvloop.run(bench_server(name, endpoints[name], cpu, sizes, args, floor))
    finally:
        for s in servers.values():
            s.stop()
        stack.close()
    loads.append(os.getloadavg())
    if not args.rounds or set(results) - {"floor"}:
        print(render(results, args.sizes, args, loads))
    if rounds:
        print(render_rounds(rounds, args.sizes, args, loads))
    errors = sum(sum(r.errors.values()) for res in results.values() for r in res.values())
    errors += sum(r.errors for res in rounds.values() for r in res.values())
    shutil.rmtree(workdir, ignore_errors=True) if errors == 0 else log(f"server logs kept in {workdir}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
