"""api_floor.py's ratio in one run with less noise: interleaved rounds, medians, pinned CPUs.

With ``--rounds N`` api_floor.py runs, for each operation and population, N
rounds in which the floor (DescribeThing, its fixed body) and the server each
get ``--duration`` seconds of the same client load, alternating every
``--slice`` seconds on connections kept open for the round (which one starts
flips with round + operation index). A server's CPU for the round is
utime+stime from /proc/PID/stat summed over its slices, as a single-phase run
reads it over its phase. Per operation it reports the median over the rounds
of the per-round ratio (server round i / floor round i), the min-max of those
ratios, and the medians of the raw CPU µs per request.

Why slices: on a machine shared with other work the floor's own phase reads
42-73 µs per request from one minute to the next, and two 2 s phases seconds
apart still disagree: two identical floors measured that way gave per-round
ratios with a stdev of 0.10-0.13; alternating every 0.25-0.5 s, 0.02-0.07.
The load moves within seconds; slices a quarter second apart see the same.

``--pin SERVER_CPU,CLIENT_CPU`` puts every server process (all its threads)
on one CPU and the load client on another, for both servers alike: left to
the scheduler, the client is often woken on the server's CPU and preempts it
(0.05-0.9 involuntary context switches per request measured on the floor,
~0.01 pinned), and how often changes from phase to phase. ``--warmup S``: a
discarded phase of S seconds on each server before the rounds of each population.

A Publish slice's CPU runs on until the subscriber has every message (or none
came for 0.5 s): the broker is still delivering when the last reply is in, and
that delivery is part of a Publish's cost.

CreateThing in a round sends a batch of new names once each (their count is
what the growth phase did in ``--duration`` seconds, at least 1,000), so the
population grows by ~N batches after its reads; GetThingShadow reads shadows
written once before the rounds.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request

from procs import proc_cpu

ROUND_OPS = ("DescribeThing", "GetThingShadow", "UpdateThingShadow", "ListThings", "Publish", "CreateThing")


def parse_pin(text: str) -> tuple[set[int], set[int]]:
    """'1,0' -> ({1}, {0}): the servers' CPU, then the client's."""
    server, client = (int(x) for x in text.split(","))
    allowed = os.sched_getaffinity(0)
    if server == client or not {server, client} <= allowed:
        raise SystemExit(f"--pin needs two different CPUs of {sorted(allowed)}, got {text}")
    return {server}, {client}


def pin_process(pid: int, cpus: set[int]) -> None:
    """Every thread the process has now; threads it starts later inherit it."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:  # a thread that ended meanwhile
            continue


def pin_servers(pids: list[int], pin: tuple[set[int], set[int]]) -> None:
    """The servers on pin[0], this process (the load client) on pin[1]. PostgreSQL's
    processes (localiot-pg) are left to the scheduler."""
    for pid in pids:
        pin_process(pid, pin[0])
    os.sched_setaffinity(0, pin[1])


def localiot_source() -> str:
    """The localiot package a server started from here imports (PYTHONPATH comes first)."""
    where = subprocess.run([sys.executable, "-c", "import localiot; print(localiot.__file__)"],
                           capture_output=True, text=True, check=True).stdout.strip()
    return os.path.dirname(where)


async def settle(subscriber, target: int, quiet: float = 0.5, limit: float = 10.0) -> None:
    """Until the subscriber has `target` messages, or none came for `quiet` seconds."""
    last, since, deadline = subscriber.received, time.monotonic(), time.monotonic() + limit
    while subscriber.received < target and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if subscriber.received != last:
            last, since = subscriber.received, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


class Rounds:
    """The per-round figures of one (server, operation, size)."""

    def __init__(self):
        self.server: list = []  # api_floor.Result per round
        self.floor: list = []
        self.delivered: list[int] = []

    @property
    def ratios(self) -> list[float]:
        return [s.us_per_request / f.us_per_request for s, f in zip(self.server, self.floor)]

    @property
    def errors(self) -> int:
        return sum(sum(r.errors.values()) for r in self.server + self.floor)


class Side:
    """One server's share of a round: its pool replayed over kept connections in slices,
    its CPU (utime+stime from /proc/PID/stat), requests and time summed over them."""

    def __init__(self, af, port: int, cpu_now, pool: list[bytes], once: bool):
        self.af, self.port, self.cpu_now, self.pool, self.once = af, port, cpu_now, pool, once
        self.result, self.sent, self.conns = af.Result(), 0, []

    async def open(self, connections: int) -> None:
        self.conns = [await self.af.connect(self.port) for _ in range(connections)]

    def close(self) -> None:
        for conn in self.conns:
            conn.transport.close()

    async def slice(self, seconds: float | None, count: int | None = None) -> None:
        """For `seconds`, cycling the pool, or the next `count` requests of a send-once pool."""
        result, deadline = self.result, None if seconds is None else time.perf_counter() + seconds
        stop = min(len(self.pool), self.sent + count) if self.once else None

        async def worker(at: int) -> None:
            conn = self.conns[at]
            while (time.perf_counter() < deadline) if stop is None else (self.sent < stop):
                raw = self.pool[self.sent % len(self.pool)]
                self.sent += 1
                t0 = time.perf_counter()
                try:
                    status, body, keep = await conn.request(raw)
                except ConnectionError as exc:
                    result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + 1
                    conn = self.conns[at] = await self.af.connect(self.port)
                    continue
                result.latencies.append(time.perf_counter() - t0)
                self.af.count_reply(result, status, body)
                if not keep or conn.closed:
                    conn.transport.close()
                    conn = self.conns[at] = await self.af.connect(self.port)

        cpu0, start = self.cpu_now(), time.perf_counter()
        await asyncio.gather(*(worker(at) for at in range(len(self.conns))))
        result.elapsed += time.perf_counter() - start
        result.cpu += self.cpu_now() - cpu0


async def bench_rounds(name: str, endpoint: str, cpu, floor: tuple[str, int], sizes: list[int], args) -> dict:
    """{(op, size): Rounds} for one localiot server against the floor (endpoint, pid)."""
    import api_floor as af  # here: api_floor imports this module at its top

    port, floor_port = int(endpoint.rsplit(":", 1)[1]), int(floor[0].rsplit(":", 1)[1])
    reqs, floor_reqs = af.Requests(endpoint), af.Requests(floor[0])
    rng = random.Random(7)
    health = json.loads(urllib.request.urlopen(endpoint + "/_localiot/health").read())
    mqtt_port = int(health["listeners"]["mqtt-plain"].rsplit(":", 1)[1])
    mqtt, subscriber = await asyncio.get_running_loop().create_connection(af.Subscriber, "127.0.0.1", mqtt_port)
    await asyncio.wait_for(subscriber.suback, 10)
    out: dict = {}
    have = 0
    cpu_now = cpu if callable(cpu) else (lambda: proc_cpu(cpu))
    floor_cpu = lambda: proc_cpu(floor[1])  # noqa: E731
    slices = max(1, round(args.duration / args.slice)) if args.slice else 1

    async def phase(port_, cpu_, pool, duration):
        return await af.drive(port_, cpu_, pool, args.connections, duration=duration)

    for size in sizes:
        af.log(f"{name}: creating things {have}..{size}")
        grown = await phase(port, cpu, [reqs.create_thing(i) for i in range(have, size)], None)
        af.log(f"{name} growth to {size}: {grown.rps:.0f}/s {grown.us_per_request:.0f} µs/req errors {grown.errors}")
        have = size
        batch = max(1000, int(grown.rps * args.duration))
        shadows = min(size, 2000)
        await phase(port, cpu, [reqs.update_shadow(i, 0) for i in range(shadows)], None)
        floor_pool = [floor_reqs.describe_thing(rng.randrange(size)) for _ in range(2000)]
        if args.warmup:
            await phase(floor_port, floor[1], floor_pool, args.warmup)
            await phase(port, cpu, [reqs.describe_thing(rng.randrange(size)) for _ in range(2000)], args.warmup)
        for round_ in range(args.rounds):
            for index, op in enumerate(args.round_ops):
                if op == "CreateThing":  # new names, each sent once
                    pool = [reqs.create_thing(i) for i in range(have, have + batch)]
                    have += batch
                elif op == "DescribeThing":
                    pool = [reqs.describe_thing(rng.randrange(size)) for _ in range(2000)]
                elif op == "GetThingShadow":
                    pool = [reqs.get_shadow(i % shadows) for i in range(2000)]
                elif op == "UpdateThingShadow":
                    pool = [reqs.update_shadow(i % size, i) for i in range(2000)]
                elif op == "ListThings":
                    pool = [reqs.list_things()]
                else:
                    pool = [reqs.publish(i) for i in range(2000)]
                once = op == "CreateThing"
                server = Side(af, port, cpu_now, pool, once)
                base = Side(af, floor_port, floor_cpu, floor_pool, False)
                await server.open(args.connections)
                await base.open(args.connections)
                before = subscriber.received
                for at in range(slices):  # floor, server or server, floor; the first flips each round
                    for side in (base, server) if (round_ + index) % 2 == 0 else (server, base):
                        if side is base:
                            await base.slice(args.duration / slices)
                            continue
                        await server.slice(None if once else args.duration / slices, -(-batch // slices))
                        if op == "Publish":  # the deliveries still under way count to the server's slice
                            at_end = cpu_now()
                            await settle(subscriber, before + server.result.ok)
                            server.result.cpu += cpu_now() - at_end
                server.close()
                base.close()
                rounds = out.setdefault((op, size), Rounds())
                rounds.server.append(server.result)
                rounds.floor.append(base.result)
                if op == "Publish":
                    rounds.delivered.append(subscriber.received - before)
            af.log(f"{name} @{size}: round {round_ + 1} of {args.rounds}, x floor (server/floor µs): " + ", ".join(
                f"{op} {out[(op, size)].ratios[-1]:.2f} ({out[(op, size)].server[-1].us_per_request:.0f}/"
                f"{out[(op, size)].floor[-1].us_per_request:.0f})" for op in args.round_ops))
    mqtt.close()
    return out


def render_rounds(results: dict, sizes: list[int], args, loads: tuple) -> str:
    """One row per (server, operation, size): medians over the rounds."""
    pin = f"; servers on CPU {min(args.pin[0])}, client on CPU {min(args.pin[1])}" if args.pin else ""
    slicing = f"in {args.slice:g} s slices" if args.slice else "in one piece each"
    lines = [f"api_floor --rounds {args.rounds}: {args.connections} keep-alive connections, "
             f"{args.duration:g} s per server per round {slicing}, floor and server alternating, "
             f"warm-up {args.warmup:g} s{pin}; "
             f"load average before {loads[0][0]:.2f} {loads[0][1]:.2f} {loads[0][2]:.2f}, "
             f"after {loads[1][0]:.2f} {loads[1][1]:.2f} {loads[1][2]:.2f} ({os.cpu_count()} cores)", ""]
    header = ["server", "operation", "things", "req/s", "CPU µs/req", "floor µs/req", "x floor (median)",
              "min-max", "errors"]
    rows = []
    for size in sizes:
        for server, per_op in results.items():
            for op in args.round_ops:
                r = per_op.get((op, size))
                if r is None or not r.server:
                    continue
                ratios = r.ratios
                note = op + (f" ({min(r.delivered)}-{max(r.delivered)} delivered)" if r.delivered else "")
                rows.append([server, note, str(size), f"{statistics.median(x.rps for x in r.server):.0f}",
                             f"{statistics.median(x.us_per_request for x in r.server):.0f}",
                             f"{statistics.median(x.us_per_request for x in r.floor):.0f}",
                             f"{statistics.median(ratios):.2f}", f"{min(ratios):.2f}-{max(ratios):.2f}",
                             str(r.errors)])
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    lines += [fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(fmt(r) for r in rows)]
    return "\n".join(lines)
