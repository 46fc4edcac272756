#!/usr/bin/env python
"""Server instructions per mutual-TLS (or, with --plain, plain TCP) connection, counted by
callgrind: steady on a machine other work loads, where CPU times are not.

The server (`localiot serve --in-memory` from a source tree, or Mosquitto set up as
bench/broker.py sets it up, with device certificates from a localiot tree) runs under
`valgrind --tool=callgrind`; after provisioning and 10 warm-up connections its counters are
zeroed (`callgrind_control -z`), `--connects` connections are made one after the other with
the bench's client (mqtt_clients.mqtt_open: TCP, mutual-TLS handshake, CONNECT -> CONNACK,
DISCONNECT, close), and the counters are dumped (`callgrind_control -d`). Every thread of
the server process is counted. The dump stays in --out for `callgrind_annotate --inclusive=yes`.
`--plain`: the plain MQTT listener (`--mqtt-plain`; Mosquitto's plain listener), no certificates.

    .venv/bin/python bench/broker_connect_callgrind.py --tree . [--tree /tmp/main-copy] [--mosquitto] [--connects 100]
    .venv/bin/python bench/broker_connect_callgrind.py --plain --tree . --mosquitto --connects 1000
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker_servers import Localiot, Mosquitto, ensure_mosquitto, mosquitto_server_cert, provision  # noqa: E402
from mqtt_clients import DISCONNECT, client_ssl_contexts, mqtt_open  # noqa: E402
from procs import HOST, free_port, wait_port  # noqa: E402


async def connects(port: int, contexts: list, count: int, prefix: str) -> None:
    loop = asyncio.get_running_loop()
    for i in range(count):
        sock = await mqtt_open(loop, HOST, port, contexts[i % len(contexts)], f"{prefix}-{i}")
        sock.send(DISCONNECT)
        sock.close()


def counted(pid: int, out: str, port: int, contexts: list, count: int) -> int:
    """Instructions of `count` connections, between a zeroing and a dump of the server's counters."""
    asyncio.run(connects(port, contexts, 10, "warm"))
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True, timeout=300)
    asyncio.run(connects(port, contexts, count, "counted"))
    time.sleep(2)  # the last disconnects' work
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True, timeout=300)
    time.sleep(1)
    dump = max(glob.glob(f"{out}.{pid}.*"), key=os.path.getmtime)
    with open(dump, errors="replace") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(("summary:", "totals:")))


def localiot(tree: str, work: str, out: str, count: int, plain: bool = False) -> int:
    api, tls, port = free_port(), free_port(), free_port()
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", sys.executable, "-m", "localiot",
            "serve", "--in-memory", "--port", str(api), "--mqtt-tls-port", str(tls), "--mqtt-alpn-port", "0",
            "--log-level", "WARNING"]
    if plain:
        argv += ["--mqtt-plain", "--mqtt-plain-port", str(port)]
    with open(os.path.join(work, "localiot-callgrind.log"), "wb") as log_file:
        proc = subprocess.Popen(argv, cwd=tree, stdout=subprocess.DEVNULL, stderr=log_file, start_new_session=True)
    try:
        deadline = time.time() + 900  # a Python server starts slowly under valgrind
        while True:
            try:
                urllib.request.urlopen(f"http://{HOST}:{api}/_localiot/health", timeout=5).read()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise SystemExit(f"localiot did not start under valgrind (tree {tree})")
                time.sleep(2)
        if plain:
            wait_port(port, proc, "localiot", "")
            return counted(proc.pid, out, port, [None], count)
        wait_port(tls, proc, "localiot", "")
        certs = provision(f"http://{HOST}:{api}", 4, work)
        contexts = client_ssl_contexts({"tls": {"cafile": certs["client_ca"], "certs": certs["certs"]}})
        return counted(proc.pid, out, tls, contexts, count)
    finally:
        proc.terminate()
        proc.wait(120)


def mosquitto(tree: str, work: str, out: str, count: int, plain: bool = False) -> int:
    wrapper = os.path.join(work, "mosquitto-callgrind.sh")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={out}.%p {ensure_mosquitto()} "$@"\n')
    os.chmod(wrapper, 0o755)
    if plain:
        mos = Mosquitto(wrapper, work, None, 100, 1000)
        try:
            return counted(mos.proc.pid, out, mos.plain_port, [None], count)
        finally:
            mos.stop()
    source = Localiot(work, [], root=tree)  # device certificates and their issuer, as broker.py gets them
    try:
        certs = provision(source.api, 4, work)
    finally:
        source.stop()
    mos = Mosquitto(wrapper, work, dict(mosquitto_server_cert(work, certs["chain_ca"]), client_ca=certs["device_ca"]),
                    100, 1000)
    try:
        contexts = client_ssl_contexts({"tls": {"cafile": mos.tls_ca, "certs": certs["certs"]}})
        return counted(mos.proc.pid, out, mos.tls_port, contexts, count)
    finally:
        mos.stop()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", action="append", default=[], help="a localiot source tree (repeatable)")
    p.add_argument("--mosquitto", action="store_true", help="Mosquitto too, with the first tree's certificates")
    p.add_argument("--connects", type=int, default=100)
    p.add_argument("--plain", action="store_true", help="the plain MQTT listener instead of mutual TLS")
    p.add_argument("--out", default=None, help="where the callgrind dumps go (default: a temporary directory)")
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="bench-callgrind-")
    out_dir = args.out or work
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for i, tree in enumerate(args.tree):
        total = localiot(os.path.abspath(tree), work, os.path.join(out_dir, f"localiot-{i}.cg"), args.connects,
                         args.plain)
        rows.append((f"localiot `{os.path.abspath(tree)}`", total))
    if args.mosquitto:
        tree = os.path.abspath(args.tree[0] if args.tree else ".")
        rows.append(("mosquitto", mosquitto(tree, work, os.path.join(out_dir, "mosquitto.cg"), args.connects,
                                            args.plain)))
    kind = "plain" if args.plain else "mutual-TLS"
    print(f"| server | instructions per {kind} connection ({args.connects} connections) |\n|---|--:|")
    for label, total in rows:
        print(f"| {label} | {total / args.connects / 1e6:.3f} M |")
    print(f"(callgrind dumps in {out_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
