#!/usr/bin/env python
"""Where localiot's memory per mutual-TLS connection goes: RSS growth per
connection for TLS connections that only complete the handshake (transport,
OpenSSL, an MQTT connection object waiting for its CONNECT) against ones that
also connect (identity, session, policy variables), on a fresh `localiot
serve --in-memory` with one device certificate from CreateKeysAndCertificate.

Rounds alternate; the first two show first-time growth (what bench/broker.py's
idle test reports), later ones reuse memory the allocator kept from the
closed connections of earlier rounds.

Usage:  .venv/bin/python bench/broker_tls_memory.py [--connections 500] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker_servers import Localiot, provision  # noqa: E402
from mqtt_clients import connect_packet  # noqa: E402
from procs import HOST, proc_rss  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=500, help="connections per round (opened in < 20 s: the "
                   "broker closes a connection that sends no CONNECT for 20 s)")
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="bench-tls-memory-")
    broker = Localiot(work, [])
    try:
        tls = provision(broker.api, 1, work)
        ctx = ssl.create_default_context(cafile=tls["client_ca"])
        ctx.load_cert_chain(*tls["certs"][0])

        def open_one(i: int, mqtt: bool):
            s = ctx.wrap_socket(socket.create_connection((HOST, broker.tls_port)), server_hostname="localhost")
            if mqtt:
                s.sendall(connect_packet(f"tls-memory-{i}"))
                if s.recv(4)[:1] != b"\x20":
                    raise ConnectionError("no CONNACK")
            return s

        print("| round | connections | KB per connection (RSS growth) |\n|---:|---|---:|")
        for r in range(args.rounds):
            mqtt = r % 2 == 1
            for s in [open_one(i, mqtt) for i in range(30)]:  # warm the code paths first
                s.close()
            time.sleep(1.5)
            before = proc_rss(broker.pid)
            held = [open_one(i, mqtt) for i in range(args.connections)]
            time.sleep(1.5)
            grown = proc_rss(broker.pid) - before
            print(f"| {r + 1} | {'TLS + MQTT CONNECT' if mqtt else 'TLS handshake only'} | "
                  f"{grown / args.connections / 1024:.1f} |", flush=True)
            for s in held:
                s.close()
            time.sleep(2)
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
