#!/usr/bin/env python
"""Control-plane throughput and ListThings page latency: moto's server vs localiot.

One run starts moto's server and localiot as subprocesses on free loopback
ports, drives both with the same load from this process, stops them, and
prints:

  * requests/s under concurrent load (``--concurrency`` connections in flight)
    for CreateThing (distinct names), DescribeThing (random existing names),
    ListThings first page (AWS default page size, i.e. no maxResults) and
    ListThings first page with maxResults=250, with ``--things`` things present;
  * ListThings page latency (p50/p99, one request at a time) for the first
    page and for a page in the middle of the list (reached via nextToken) at
    each of ``--latency-sizes`` things.

The load generator does not call boto3 in the hot loop.  Requests are built
before each timed phase with exactly the headers a boto3 client sends
(User-Agent, X-Amz-Date, SigV4 Authorization for service "iot" in us-east-1,
amz-sdk-*), signed with a cached-key SigV4 signer that is checked byte for
byte against botocore's ``SigV4Auth`` at start-up, and sent with
``aiohttp`` (one ``ClientSession``, connector limit = concurrency).  Every
counted request must answer 2xx; anything else is counted as an error and
printed.

Usage:  .venv/bin/python bench/control_plane.py [--things N] [--concurrency C] [--duration S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import aiohttp

try:  # the load generator is cheaper on uvloop; both servers get the same client
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, HERE)
from control_plane_load import CpuMeter, Result, pct, run_duration, run_fixed, run_sequential, send
from procs import free_port
from sigv4_requests import NAME_FMT, Client, Req, check_signer_against_botocore


# ---------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------
class ServerProc:
    def __init__(self, name: str, argv: list[str], port: int | None, logdir: str, ready: re.Pattern | None):
        self.name = name
        self.log_path = os.path.join(logdir, f"{name}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE if ready else self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.port = port
        self._ready = ready

    def wait_ready(self, timeout: float = 60.0) -> str:
        deadline = time.time() + timeout
        if self._ready is not None:  # localiot prints its port once listening
            while time.time() < deadline:
                line = self.proc.stdout.readline()
                if not line:
                    break
                self.log.write(line)
                m = self._ready.search(line.decode(errors="replace"))
                if m:
                    self.port = int(m.group(1))
                    # keep draining stdout so the server never blocks on a full pipe
                    import threading

                    threading.Thread(target=self._drain, daemon=True).start()
                    return self.endpoint
            raise SystemExit(f"{self.name} did not become ready; see {self.log_path}")
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self.endpoint
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"{self.name} did not open port {self.port}; see {self.log_path}")

    def _drain(self):
        for line in self.proc.stdout:
            self.log.write(line)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            # SIGTERM, not SIGINT: a bench started from a background shell hands its children SIGINT
            # ignored, which cost every stop 30 s; localiot serve stops on SIGTERM as on Ctrl-C, so
            # cProfile (if used) still writes its file
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.log.close()


def start_moto(logdir: str) -> ServerProc:
    port = free_port()
    moto = os.path.join(BIN, "moto_server")
    argv = [moto, "-H", "127.0.0.1", "-p", str(port)] if os.path.exists(moto) else \
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return ServerProc("moto", argv, port, logdir, None)


def start_localiot(logdir: str, data_dir: str | None, profile: str | None) -> ServerProc:
    store = ["--in-memory"] if data_dir is None else ["--data-dir", data_dir]
    args = ["serve", "--port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0", "--log-level", "WARNING", *store]
    if profile:
        argv = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "localiot", *args]
    else:
        exe = os.path.join(BIN, "localiot")
        argv = [exe, *args] if os.path.exists(exe) else [sys.executable, "-m", "localiot", *args]
    return ServerProc("localiot", argv, None, logdir, re.compile(r"localiot ready on http://[^:]+:(\d+)"))


# ---------------------------------------------------------------------------
# the benchmark
# ---------------------------------------------------------------------------
@dataclass
class ServerReport:
    name: str
    throughput: dict = field(default_factory=dict)  # op -> Result
    create_segments: list = field(default_factory=list)  # (from, to, Result)
    latency: dict = field(default_factory=dict)  # (size, kind) -> Result
    skipped: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def sanity(session, req: Req, what: str) -> dict:
    status, body = await send(session, req)
    if not 200 <= status < 300:
        raise SystemExit(f"{what}: HTTP {status} {body[:500]!r}")
    return json.loads(body) if body else {}


async def middle_token(session, client: Client, count: int) -> tuple[str | None, int]:
    """Walk the list with the default page size until half of it has been seen."""
    token, seen, pages = None, 0, 0
    while seen < count // 2:
        doc = await sanity(session, client.list_things(token=token), "ListThings walk")
        seen += len(doc.get("things", []))
        pages += 1
        token = doc.get("nextToken")
        if not token:
            return None, pages
    return token, pages


async def bench_server(name: str, endpoint: str, pid: int, args) -> ServerReport:
    report = ServerReport(name)
    meter = CpuMeter(pid)
    client = Client(endpoint)
    C = args.concurrency
    connector = aiohttp.TCPConnector(limit=C, limit_per_host=C, ttl_dns_cache=None, use_dns_cache=False)
    timeout = aiohttp.ClientTimeout(total=300)
    max_latency_size = args.moto_max_latency_size if name == "moto" else max(args.latency_sizes + [args.things])
    targets = sorted(set([args.things] + [s for s in args.latency_sizes if s <= max_latency_size]))
    rng = random.Random(42)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
        # warm up the server (imports, first-request paths) without leaving state behind
        await sanity(session, client.list_things(), "ListThings warm-up")
        for _ in range(20):
            status, _ = await send(session, client.describe_thing("bench-warmup-missing"))
        count = 0
        for target in targets:
            # --- CreateThing: distinct names, `concurrency` in flight ----------------------
            reqs = [client.create_thing(NAME_FMT.format(i)) for i in range(count, target)]
            log(f"{name}: CreateThing {count} -> {target} things")
            meter.start()
            res = meter.stop(await run_fixed(session, reqs, C))
            report.create_segments.append((count, target, res))
            log(f"{name}:   {res.ok} ok, {res.error_count} errors, {res.rps:,.0f} req/s")
            count = target
            first = await sanity(session, client.list_things(), "ListThings")
            if target == args.things:
                await throughput_phase(session, client, report, args, count, rng, meter)
            # --- ListThings page latency at this size ----------------------------------
            if target in args.latency_sizes:
                await latency_phase(session, client, report, args, count, name)
        for s in args.latency_sizes:
            if s > max_latency_size:
                report.skipped.append(s)
    return report


async def throughput_phase(session, client, report, args, count, rng, meter):
    C, D, name = args.concurrency, args.duration, report.name
    create = Result()
    for lo, hi, res in report.create_segments:
        if hi <= args.things:
            create.merge(res)
    report.throughput["CreateThing"] = create

    names = [NAME_FMT.format(rng.randrange(count)) for _ in range(4096)]
    doc = await sanity(session, client.describe_thing(names[0]), "DescribeThing")
    assert doc.get("thingName") == names[0], doc
    log(f"{name}: DescribeThing for {D}s with {count} things")
    pool = [client.describe_thing(n) for n in names]
    meter.start()
    res = meter.stop(await run_duration(session, pool, C, D))
    report.throughput["DescribeThing"] = res
    log(f"{name}:   {res.ok} ok, {res.error_count} errors, {res.rps:,.0f} req/s")

    for label, size in (("ListThings (default page)", None), ("ListThings maxResults=250", 250)):
        doc = await sanity(session, client.list_things(size), label)
        got = len(doc.get("things", []))
        report.notes.append(f"{label}: a page holds {got} things, nextToken {'present' if doc.get('nextToken') else 'absent'}")
        log(f"{name}: {label} for {D}s with {count} things ({got} per page)")
        pool = [client.list_things(size) for _ in range(64)]
        meter.start()
        res = meter.stop(await run_duration(session, pool, C, D))
        report.throughput[label] = res
        log(f"{name}:   {res.ok} ok, {res.error_count} errors, {res.rps:,.1f} req/s")


async def latency_phase(session, client, report, args, count, name):
    first = await run_sequential(session, lambda: client.list_things(), args.latency_samples, args.latency_max_seconds)
    report.latency[(count, "first page")] = first
    token, pages = await middle_token(session, client, count)
    if token is None:
        report.notes.append(f"{count} things: no nextToken found while walking to the middle")
        return
    # the same token every time: that is the page at position count/2
    mid = await run_sequential(session, lambda: client.list_things(token=token), args.latency_samples,
                               args.latency_max_seconds)
    report.latency[(count, "middle page")] = mid
    log(f"{name}: page latency @{count}: first p50 {pct(first.latencies, 50) * 1e3:.2f} ms, "
        f"middle (after {pages} pages) p50 {pct(mid.latencies, 50) * 1e3:.2f} ms")


# ---------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------
def rate(r) -> str:
    if r is None:
        return "-"
    return f"{r.rps:,.1f}" if r.rps < 100 else f"{r.rps:,.0f}"


def cpu(r, attr: str = "server_cpu") -> str:
    value = getattr(r, attr) if r is not None else float("nan")
    return "-" if value != value else f"{value:.0f}"


def table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    pad = lambda cells: "| " + " | ".join(
        (str(c).rjust(w) if a == "r" else str(c).ljust(w)) for c, w, a in zip(cells, widths, align)) + " |"
    sep = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align)) + "|"
    return [pad(header), sep, *(pad(r) for r in rows)]


def render(reports: dict[str, ServerReport], args, wall: float) -> str:
    out = []
    moto, loc = reports.get("moto"), reports.get("localiot")
    out.append(f"Throughput: {args.things:,} things present, {args.concurrency} connections in flight, "
               f"{args.duration:g}s per read operation (CreateThing: {args.things:,} distinct names)")
    out.append("")
    ops = ["CreateThing", "DescribeThing", "ListThings (default page)", "ListThings maxResults=250"]
    rows = []
    for op in ops:
        m = moto.throughput.get(op) if moto else None
        l = loc.throughput.get(op) if loc else None
        rows.append([op, rate(m), rate(l), f"{l.rps / m.rps:.2f}x" if m and l and m.rps else "-",
                     f"{m.error_count if m else '-'} / {l.error_count if l else '-'}",
                     f"{cpu(m)} / {cpu(l)}", f"{cpu(m, 'client_cpu')} / {cpu(l, 'client_cpu')}"])
    out += table(["operation", "moto req/s", "localiot req/s", "localiot/moto", "errors moto / localiot",
                  "server CPU % moto / localiot", "load-gen CPU % moto / localiot"], rows, "lrrrrrr")
    out.append("")
    out.append("CreateThing by population segment (req/s):")
    out.append("")
    segs = {}
    for rep in (moto, loc):
        if rep:
            for lo, hi, res in rep.create_segments:
                segs.setdefault((lo, hi), {})[rep.name] = res
    rows = []
    for (lo, hi), by in sorted(segs.items()):
        cell = lambda n: (rate(by[n]) + (f" ({by[n].error_count} err)" if by[n].error_count else "")) if n in by else "skipped"
        rows.append([f"{lo:,} -> {hi:,}", cell("moto"), cell("localiot"),
                     f"{cpu(by.get('moto'))} / {cpu(by.get('localiot'))}"])
    out += table(["things", "moto req/s", "localiot req/s", "server CPU % moto / localiot"], rows, "lrrr")
    out.append("")
    out.append("ListThings page latency, default page size, one request at a time (ms):")
    out.append("")
    rows = []
    for size in args.latency_sizes:
        for kind in ("first page", "middle page"):
            m = moto.latency.get((size, kind)) if moto else None
            l = loc.latency.get((size, kind)) if loc else None
            f = lambda r, p: f"{pct(r.latencies, p) * 1e3:.2f}" if r and r.latencies else ("skipped" if r is None else "-")
            rows.append([f"{size:,}", kind, f(m, 50), f(m, 99), f(l, 50), f(l, 99),
                         f"{len(m.latencies) if m else 0} / {len(l.latencies) if l else 0}"])
    out += table(["things", "page", "moto p50", "moto p99", "localiot p50", "localiot p99", "samples moto / localiot"],
                 rows, "rlrrrrr")
    notes = []
    for rep in (moto, loc):
        if not rep:
            continue
        if rep.skipped:
            notes.append(f"{rep.name}: latency at {', '.join(f'{s:,}' for s in rep.skipped)} things skipped "
                         f"(moto's ListThings/DescribeThing are O(n) per call; raise --moto-max-latency-size to include)")
        for (size, kind), r in rep.latency.items():
            if r.error_count:
                notes.append(f"{rep.name}: latency {size} {kind}: {r.error_count} errors {r.errors}")
        for note in rep.notes:
            notes.append(f"{rep.name}: {note}")
        for op, r in rep.throughput.items():
            if r.error_count:
                notes.append(f"{rep.name}: {op}: {r.error_count} errors {r.errors}; e.g. {r.samples[:1]}")
        for lo, hi, r in rep.create_segments:
            if r.error_count:
                notes.append(f"{rep.name}: CreateThing {lo}->{hi}: {r.error_count} errors {r.errors}; e.g. {r.samples[:1]}")
    if notes:
        out.append("")
        out.append("Notes:")
        out.extend(f"- {n}" for n in notes)
    out.append("")
    out.append(f"Total wall time {wall:.0f}s; {os.cpu_count()} CPUs; python {platform.python_version()}; "
               f"localiot store: {'in-memory' if args.localiot_in_memory else 'SQLite file (--data-dir, WAL)'}; "
               f"moto: in-memory (moto_server)")
    return "\n".join(out)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--things", type=int, default=10_000, help="things present for the throughput phase (default 10000)")
    p.add_argument("--concurrency", type=int, default=64, help="connections in flight (default 64)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per read operation (default 10)")
    p.add_argument("--latency-sizes", default="1000,10000,100000",
                   help="comma-separated thing counts for the ListThings latency study (default 1000,10000,100000)")
    p.add_argument("--latency-samples", type=int, default=200, help="sequential requests per latency point (default 200)")
    p.add_argument("--latency-max-seconds", type=float, default=10.0,
                   help="stop a latency point early after this many seconds (default 10)")
    p.add_argument("--moto-max-latency-size", type=int, default=10_000,
                   help="largest population moto is grown to for the latency study (default 10000)")
    p.add_argument("--servers", default="moto,localiot", help="which servers to run (default moto,localiot)")
    p.add_argument("--localiot-in-memory", action="store_true", help="run localiot with --in-memory instead of --data-dir")
    p.add_argument("--profile-localiot", metavar="FILE", help="run localiot under cProfile, writing FILE on exit")
    args = p.parse_args(argv)
    args.latency_sizes = [int(s) for s in args.latency_sizes.split(",") if s.strip()]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    check_signer_against_botocore()
    wall0 = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="localiot-bench-")
    servers: dict[str, ServerProc] = {}
    reports: dict[str, ServerReport] = {}
    try:
        # both servers run for the whole benchmark; only one is under load at a time
        if "moto" in args.servers:
            servers["moto"] = start_moto(workdir)
        if "localiot" in args.servers:
            data_dir = None if args.localiot_in_memory else os.path.join(workdir, "localiot-data")
            servers["localiot"] = start_localiot(workdir, data_dir, args.profile_localiot)
        endpoints = {name: s.wait_ready() for name, s in servers.items()}
        for name, endpoint in endpoints.items():
            log(f"{name} on {endpoint} (pid {servers[name].proc.pid}, log {servers[name].log_path})")
        if uvloop is not None:
            uvloop.install()
        for name in args.servers:
            reports[name] = asyncio.run(bench_server(name, endpoints[name], servers[name].proc.pid, args))
    finally:
        for name, s in servers.items():
            s.stop()
            log(f"stopped {name} (exit {s.proc.returncode})")
    print(render(reports, args, time.perf_counter() - wall0))
    errors = sum(r.error_count for rep in reports.values() for r in
                 [*rep.throughput.values(), *(x[2] for x in rep.create_segments), *rep.latency.values()])
    shutil.rmtree(workdir, ignore_errors=True) if errors == 0 else log(f"server logs kept in {workdir}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
