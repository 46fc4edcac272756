#!/usr/bin/env python
"""api_floor.py's operations, two versions of localiot A/B, phases interleaved.

On a shared machine the CPU per request of one server moves by up to 2x
between phases minutes apart, so two versions measured in separate runs
cannot be told apart. This starts the floor and two localiot servers at once
(each on its own data directory, 1,000 things and their shadows), and runs
every operation's phase round-robin: floor, A, B (B, A on odd rounds), so both
versions see the same load; it reports the median CPU µs per request of each
over the rounds, its ratio to the floor's median, and B/A.

    git archive <commit> localiot | tar -x -C /tmp/before
    .venv/bin/python bench/api_floor_ab.py --a /tmp/before --rounds 5 --duration 2

`--a DIR` / `--b DIR`: a directory holding a `localiot/` package to run
instead of the installed one (default: the installed one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_floor as af  # noqa: E402
from control_plane import ServerProc  # noqa: E402

OPS = ("DescribeThing", "GetThingShadow", "UpdateThingShadow", "ListThings", "CreateThing", "Publish")
THINGS = 1000
# Runs `localiot serve` from the package under sys.argv[1] (ahead of the installed, editable one).
_RUN_FROM = ("import sys; src = sys.argv.pop(1); "
             "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower() "
             "and 'editable' not in type(f).__module__.lower()]; "
             "sys.path.insert(0, src); sys.argv[0] = 'localiot'; from localiot.cli import main; sys.exit(main())")


def start(name: str, source: str | None, workdir: str) -> ServerProc:
    args = ["serve", "--port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0", "--log-level", "WARNING",
            "--data-dir", os.path.join(workdir, name)]
    argv = [sys.executable, "-c", _RUN_FROM, source, *args] if source else [sys.executable, "-m", "localiot", *args]
    return ServerProc(name, argv, None, workdir, re.compile(r"localiot ready on http://[^:]+:(\d+)"))


def pool(op: str, reqs: af.Requests, rng: random.Random, start: int, size: int = 2000) -> list[bytes]:
    """A phase's requests; `size` distinct ones for the reads (DescribeThing: names at random,
    GetThingShadow: the first `size` shadows, or `size` at random when more than 2,000)."""
    if op == "DescribeThing":
        return [reqs.describe_thing(rng.randrange(THINGS)) for _ in range(size)]
    if op == "GetThingShadow":
        if size > 2000:
            return [reqs.get_shadow(rng.randrange(THINGS)) for _ in range(size)]
        return [reqs.get_shadow(i % THINGS) for i in range(size)]
    if op == "UpdateThingShadow":
        return [reqs.update_shadow(i % THINGS, i) for i in range(2000)]
    if op == "ListThings":
        return [reqs.list_things()]
    if op == "Publish":
        return [reqs.publish(i) for i in range(2000)]
    return [reqs.create_thing(i) for i in range(start, start + 3000)]  # CreateThing: new names, each sent once


async def run(args, endpoints: dict, pids: dict) -> dict:
    ports = {name: int(ep.rsplit(":", 1)[1]) for name, ep in endpoints.items()}
    reqs = {name: af.Requests(ep) for name, ep in endpoints.items()}
    subscribers = []
    for name in ("A", "B"):  # Publish goes to a topic with one MQTT subscriber, as in api_floor.py
        health = json.loads(urllib.request.urlopen(endpoints[name] + "/_localiot/health").read())
        mqtt_port = int(health["listeners"]["mqtt-plain"].rsplit(":", 1)[1])
        _, subscriber = await asyncio.get_running_loop().create_connection(af.Subscriber, "127.0.0.1", mqtt_port)
        await asyncio.wait_for(subscriber.suback, 10)
        subscribers.append(subscriber)
        await af.drive(ports[name], pids[name], [reqs[name].create_thing(i) for i in range(THINGS)],
                       args.connections, duration=None)
        await af.drive(ports[name], pids[name], [reqs[name].update_shadow(i, 0) for i in range(THINGS)],
                       args.connections, duration=None)
    rng, created, out = random.Random(7), {"A": THINGS, "B": THINGS}, {}
    for round_ in range(args.rounds):
        floor = await af.drive(ports["floor"], pids["floor"], pool("DescribeThing", reqs["floor"], rng, 0),
                               args.connections, duration=args.duration)
        out.setdefault("floor", []).append(floor.us_per_request)
        for op in args.ops:
            for name in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
                requests = pool(op, reqs[name], rng, created[name], args.pool)
                once = op == "CreateThing"
                created[name] += len(requests) if once else 0
                result = await af.drive(ports[name], pids[name], requests, args.connections,
                                        duration=None if once else args.duration)
                if result.errors:
                    raise SystemExit(f"{name} {op}: {result.errors}")
                out.setdefault((op, name), []).append(result.us_per_request)
        af.log(f"round {round_ + 1} of {args.rounds} done")
    return out


def render(out: dict, args, loads) -> str:
    floor = statistics.median(out["floor"])
    lines = [f"api_floor_ab: {args.rounds} rounds of {args.duration:g} s phases, {args.connections} connections, "
             f"{THINGS} things, pool {args.pool}; load average before {loads[0][0]:.2f}, after {loads[1][0]:.2f}",
             f"A = {args.a or 'installed'}, B = {args.b or 'installed'}; floor median {floor:.0f} µs/req", "",
             "| operation | A µs/req | A x floor | B µs/req | B x floor | B/A |", "|---|---|---|---|---|---|"]
    for op in args.ops:
        a, b = statistics.median(out[(op, "A")]), statistics.median(out[(op, "B")])
        lines.append(f"| {op} | {a:.0f} | {a / floor:.2f} | {b:.0f} | {b / floor:.2f} | {b / a:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    global THINGS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", help="directory holding the localiot/ package of version A (default: installed)")
    p.add_argument("--b", help="directory holding the localiot/ package of version B (default: installed)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=2.0, help="seconds per phase")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--ops", default=",".join(OPS))
    p.add_argument("--things", type=int, default=THINGS, help="things (and shadows) preloaded (default 1000)")
    p.add_argument("--pool", type=int, default=2000,
                   help="distinct requests per read phase (default 2000; a phase sends ~10,000-40,000)")
    args = p.parse_args(argv)
    THINGS = args.things
    args.ops = args.ops.split(",")
    os.environ.setdefault("LOCALIOT_MQTT_PLAIN", "1")
    os.environ.setdefault("LOCALIOT_MQTT_PLAIN_PORT", "0")
    loads = [os.getloadavg()]
    workdir = tempfile.mkdtemp(prefix="localiot-apifloor-ab-")
    servers = {"floor": af.start_floor(workdir), "A": start("A", args.a, workdir), "B": start("B", args.b, workdir)}
    try:
        endpoints = {name: server.wait_ready() for name, server in servers.items()}
        import uvloop

        out = uvloop.run(run(args, endpoints, {name: s.proc.pid for name, s in servers.items()}))
    finally:
        for server in servers.values():
            server.stop()
    loads.append(os.getloadavg())
    print(render(out, args, loads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
