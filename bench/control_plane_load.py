"""The load generator of bench/control_plane.py: prepared requests sent with
aiohttp at a fixed concurrency (a fixed list, or for a duration) or one at a
time, with the server's and the generator's CPU over each phase."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp

from figures import pct  # noqa: F401 (control_plane.py takes it from here)
from procs import proc_cpu
from sigv4_requests import Req


class CpuMeter:
    """Server and load-generator CPU used during one phase, as % of one core."""

    def __init__(self, pid: int | None):
        self.pid = pid

    def start(self):
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.s0 = proc_cpu(self.pid) if self.pid else 0.0

    def stop(self, result: "Result") -> "Result":
        wall = time.perf_counter() - self.t0
        result.client_cpu = (time.process_time() - self.c0) / wall * 100
        result.server_cpu = ((proc_cpu(self.pid) - self.s0) / wall * 100) if self.pid else float("nan")
        return result


@dataclass
class Result:
    ok: int = 0
    server_cpu: float = float("nan")  # % of one core while the phase ran
    client_cpu: float = float("nan")
    errors: dict = field(default_factory=dict)  # "status 500" / exception name -> count
    samples: list = field(default_factory=list)  # first few error bodies
    elapsed: float = 0.0
    latencies: list = field(default_factory=list)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def add_error(self, key: str, detail: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1
        if len(self.samples) < 3:
            self.samples.append(f"{key}: {detail[:300]}")

    async def sent(self, session, req) -> None:
        """Send `req` and count its answer: ok (2xx) or an error by kind."""
        try:
            status, body = await send(session, req)
        except Exception as exc:  # connection reset, timeout ...
            self.add_error(type(exc).__name__, str(exc))
            return
        if 200 <= status < 300:
            self.ok += 1
        else:
            self.add_error(f"HTTP {status}", body.decode(errors="replace"))

    def merge(self, other: "Result") -> None:
        # CPU shares are time-weighted
        total = self.elapsed + other.elapsed
        for attr in ("server_cpu", "client_cpu"):
            mine, theirs = getattr(self, attr), getattr(other, attr)
            setattr(self, attr, theirs if mine != mine else (mine * self.elapsed + theirs * other.elapsed) / total)
        self.ok += other.ok
        self.elapsed += other.elapsed
        for k, v in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v
        self.samples = (self.samples + other.samples)[:3]


async def send(session: aiohttp.ClientSession, req: Req) -> tuple[int, bytes]:
    async with session.request(req.method, req.url, headers=req.headers, data=req.body) as resp:
        return resp.status, await resp.read()


async def run_fixed(session, requests: list[Req], concurrency: int) -> Result:
    """Send every request once, `concurrency` in flight."""
    result = Result()
    it = iter(requests)

    async def worker():
        for req in it:
            await result.sent(session, req)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    return result


async def run_duration(session, pool: list[Req], concurrency: int, duration: float) -> Result:
    """Cycle through `pool` for `duration` seconds, `concurrency` in flight.

    Requests still in flight at the deadline are awaited and counted; the
    elapsed time runs until the last one answered.
    """
    result = Result()
    deadline = time.perf_counter() + duration
    counter = 0

    async def worker():
        nonlocal counter
        while time.perf_counter() < deadline:
            req = pool[counter % len(pool)]
            counter += 1
            await result.sent(session, req)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    return result


async def run_sequential(session, make_req, samples: int, max_seconds: float) -> Result:
    """One request at a time; per-request latency in seconds."""
    result = Result()
    start = time.perf_counter()
    for _ in range(samples):
        req = make_req()
        t0 = time.perf_counter()
        try:
            status, body = await send(session, req)
        except Exception as exc:
            result.add_error(type(exc).__name__, str(exc))
            continue
        t1 = time.perf_counter()
        if 200 <= status < 300:
            result.ok += 1
            result.latencies.append(t1 - t0)
        else:
            result.add_error(f"HTTP {status}", body.decode(errors="replace"))
        if t1 - start > max_seconds and len(result.latencies) >= 10:
            break
    result.elapsed = time.perf_counter() - start
    return result
