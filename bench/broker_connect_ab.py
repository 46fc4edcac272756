#!/usr/bin/env python
"""Paired A/B of the broker's connect path: server CPU per connection of two
localiot source trees, measured in alternating rounds on the same machine.

Each tree runs as `localiot serve --in-memory` from its own directory (so
`python -m localiot` imports that tree's package); every round opens
`--connects` connections per server, `--concurrency` at a time, each one
connect [+ mutual-TLS handshake] + CONNECT -> CONNACK + DISCONNECT + close,
from this process (uvloop), and reads the server's CPU seconds from /proc
before and after. The machine is shared: rounds alternate so both trees see
the same conditions, and the median of the rounds is reported.

    .venv/bin/python bench/broker_connect_ab.py --a /tmp/main-copy --b . [--tls] [--rounds 4] [--mosquitto]

`--mosquitto` adds Mosquitto as a third server in the same alternating rounds (its TLS
listener as bench/broker.py sets it up, its clients sending the same certificate chain as tree B's),
and prints each tree's ratio to it: on a machine other work loads, rounds taken in turn
compare better than broker.py's windows one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uvloop  # noqa: E402

from broker_servers import Localiot, Mosquitto, ensure_mosquitto, mosquitto_server_cert, provision  # noqa: E402
from mqtt_clients import DISCONNECT, client_ssl_contexts, mqtt_open  # noqa: E402
from procs import HOST, log, proc_cpu  # noqa: E402


async def connects(port: int, contexts: list, count: int, concurrency: int, prefix: str) -> int:
    loop = asyncio.get_running_loop()
    todo = iter(range(count))
    errors = 0

    async def worker():
        nonlocal errors
        for i in todo:
            try:
                sock = await mqtt_open(loop, HOST, port, contexts[i % len(contexts)], f"{prefix}-{i}")
            except Exception:
                errors += 1
                continue
            try:
                sock.send(DISCONNECT)
            except OSError:
                pass
            sock.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return errors


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", required=True, help="source tree A (a checkout's root)")
    p.add_argument("--b", required=True, help="source tree B")
    p.add_argument("--tls", action="store_true", help="mutual TLS (certificates from CreateKeysAndCertificate)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--connects", type=int, default=2000, help="connections per server per round")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--mosquitto", action="store_true", help="Mosquitto too, in the same rounds; ratios to it")
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="bench-connect-ab-")
    trees = {"A": os.path.abspath(args.a), "B": os.path.abspath(args.b)}
    servers, contexts, provisioned = {}, {}, {}
    try:
        for name, root in trees.items():
            servers[name] = srv = Localiot(work, [], root=root)
            if args.tls:
                folder = os.path.join(work, name)
                os.makedirs(folder, exist_ok=True)
                certs = provisioned[name] = provision(srv.api, 4, folder)
                contexts[name] = client_ssl_contexts({"tls": {"cafile": certs["client_ca"], "certs": certs["certs"]}})
            else:
                contexts[name] = [None]
        if args.mosquitto:
            tls = None
            if args.tls:  # tree B's device certificates and issuer (the tree under test: B's client chain)
                certs = provisioned["B"]
                tls = dict(mosquitto_server_cert(work, certs["chain_ca"]), client_ca=certs["device_ca"])
            servers["mosquitto"] = mos = Mosquitto(ensure_mosquitto(), work, tls, 100, 1000)
            contexts["mosquitto"] = [None]
            if args.tls:
                contexts["mosquitto"] = client_ssl_contexts({"tls": {"cafile": mos.tls_ca, "certs": certs["certs"]}})
        names = list(servers)
        per = {name: [] for name in names}
        rates = {name: [] for name in names}
        for r in range(args.rounds + 1):  # round 0 warms every server up, not counted
            # each server takes each place in the order in turn (first after another's load ...)
            turn = r % len(names)
            for name in (names[turn:] + names[:turn] if len(names) > 2 else (names if r % 2 else names[::-1])):
                srv = servers[name]
                port = srv.tls_port if args.tls else srv.plain_port
                n = args.connects if r else max(200, args.connects // 10)
                c0, t0 = proc_cpu(srv.pid), time.monotonic()
                errors = uvloop.run(connects(port, contexts[name], n, args.concurrency, f"ab{r}{name}"))
                time.sleep(0.3)  # the last disconnects' work
                ms = 1000 * (proc_cpu(srv.pid) - c0) / n
                rate = n / (time.monotonic() - t0 - 0.3)
                if r:
                    per[name].append(ms)
                    rates[name].append(rate)
                log(f"round {r} {name}: {ms:.3f} ms server CPU per connection, {rate:,.0f}/s, {errors} errors")
        print(f"| server | server CPU ms per {'mutual-TLS' if args.tls else 'plain'} connection (median of "
              f"{args.rounds}) | rounds | connections/s (median) |\n|---|--:|---|--:|")
        for name in names:
            label = f"{name} `{trees[name]}`" if name in trees else name
            print(f"| {label} | {statistics.median(per[name]):.3f} | {', '.join(f'{v:.3f}' for v in per[name])} | "
                  f"{statistics.median(rates[name]):,.0f} |")
        if args.mosquitto:
            mos_ms, mos_rate = statistics.median(per["mosquitto"]), statistics.median(rates["mosquitto"])
            for name in trees:
                print(f"{name}: server CPU {statistics.median(per[name]) / mos_ms:.2f}x Mosquitto's, "
                      f"connections/s {statistics.median(rates[name]) / mos_rate:.2f}x")
    finally:
        for srv in servers.values():
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
