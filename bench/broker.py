#!/usr/bin/env python
"""MQTT data plane: Mosquitto vs localiot's broker, same run, same load generator.

One run starts Mosquitto (Debian package `mosquitto`, installed with apt-get
if missing) and localiot (`localiot serve --in-memory --mqtt-plain ...`) as
subprocesses on free loopback ports, drives both with the same lean MQTT
3.1.1 load generator (bench/broker_load.py: pre-built packets, batched
writes, asyncio Protocols on uvloop, several processes), and prints one
table per metric with mosquitto, localiot and localiot/mosquitto:

  * QoS 0 fan-in: 10 publishers -> 1 subscriber on '#', 64-byte payloads,
    messages/s received by the subscriber over a fixed window after warm-up;
  * QoS 1 throughput: publishers keep a window of in-flight PUBLISHes
    (refilled on PUBACK), the subscriber subscribes at QoS 1 and acks;
  * end-to-end latency p50/p90/p99 at a fixed total rate (QoS 0, send time
    in the payload);
  * connections/s (TCP [+ TLS handshake] + CONNECT/CONNACK + DISCONNECT)
    over plain TCP and over mutual TLS;
  * resident memory per idle connection (plain and mutual TLS): RSS delta
    of the broker process / N connections.

Every timed row also shows the CPU used during the window (user+system from
/proc, % of one core) by the broker and by the load-generator processes, the
whole machine's busy time, and what the rest of the machine used: the two
cores are shared by the broker, the generator and anything else running.
Before each measurement the script waits (up to --quiet-wait s) for the
machine to be idle, and after each it waits for the broker to go idle and
reports how long it stayed busy. The latency test runs in short rounds with
the brokers taking turns, samples pooled. Optional: --py-spy DIR records
localiot during every window and prints where it spent its time; --gc-stats
times localiot's garbage collections per window.

Mutual TLS: device certificates come from CreateKeysAndCertificate against
localiot's API (boto3), with a policy allowing iot:* attached; localiot
serves them on --mqtt-tls-port. Mosquitto gets a TLS listener with
`require_certificate true` and `cafile` = localiot's device CA (GET
/_localiot/device-ca.pem), so it accepts exactly the same client certificates;
both brokers' clients trust only the broker's root, which did not issue the
device certificates, so both get the device certificate alone (for an older
localiot whose root issued them: certificate + root, to both; broker_servers).
If localiot's TLS listener does not accept connections, its TLS figures are
skipped with a message (Mosquitto's are still measured).

Usage:  .venv/bin/python bench/broker.py [--duration S] [--idle-connections N] [--tls-10k] ...
See the broker section of bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from broker_phases import Spy, connrate_phase, flow_phase, idle_phase, latency_rounds, summarize_profile, tls_spec
from broker_servers import (BROKERS, GC_REPORT, Localiot, Mosquitto, ensure_mosquitto, mosquitto_server_cert, provision,
                            tls_probe)
from broker_report import derive, render
from procs import log, raise_nofile


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--brokers", default="mosquitto,localiot", help="which brokers to measure")
    p.add_argument("--tests", default="idle,connect,qos0,qos1,latency",
                   help="which tests: idle, connect, qos0, qos1, latency")
    p.add_argument("--no-tls", action="store_true", help="skip every mutual-TLS measurement")
    p.add_argument("--publishers", type=int, default=10)
    p.add_argument("--payload", type=int, default=64, help="payload bytes (>= 8 for the latency test)")
    p.add_argument("--pub-procs", type=int, default=2, help="processes for the publishers (+1 for the subscriber)")
    p.add_argument("--gen-procs", type=int, default=2, help="processes for connection tests")
    p.add_argument("--duration", type=float, default=10, help="QoS 0 / QoS 1 measurement window (s)")
    p.add_argument("--warmup", type=float, default=3, help="QoS 0 / QoS 1 warm-up before the window (s)")
    p.add_argument("--qos1-window", type=int, default=100, help="in-flight QoS 1 PUBLISHes per publisher")
    p.add_argument("--inflight", type=int, default=100,
                   help="Mosquitto max_inflight_messages (QoS 1 towards one client; localiot's is 100, as AWS)")
    p.add_argument("--max-queued", type=int, default=1_000_000, help="Mosquitto max_queued_messages")
    p.add_argument("--rate", type=int, default=2000, help="latency test: total messages/s")
    p.add_argument("--latency-duration", type=float, default=20, help="latency: total window per broker (s)")
    p.add_argument("--latency-rounds", type=int, default=10,
                   help="latency: split the window into this many rounds, brokers taking turns")
    p.add_argument("--latency-warmup", type=float, default=1, help="latency: warm-up in each round (s)")
    p.add_argument("--conn-duration", type=float, default=5, help="connections/s window (s)")
    p.add_argument("--conn-warmup", type=float, default=1)
    p.add_argument("--conn-concurrency", type=int, default=16, help="plain connects in flight per process")
    p.add_argument("--tls-conn-concurrency", type=int, default=8, help="TLS connects in flight per process")
    p.add_argument("--certs", type=int, default=4, help="device certificates (connections use them in turn)")
    p.add_argument("--localiot-store", choices=("memory", "file"), default="memory",
                   help="localiot's store: in memory (--in-memory) or the SQLite file `localiot serve` uses by default")
    p.add_argument("--idle-connections", type=int, default=2000, help="N for memory per idle connection")
    p.add_argument("--idle-tls-connections", type=int, default=None,
                   help="N for the TLS memory test (default: --idle-connections)")
    p.add_argument("--tls-10k", action="store_true", help="hold 10,000 idle TLS connections (issue 4's goal)")
    p.add_argument("--idle-timeout", type=float, default=300, help="max seconds to open the idle connections")
    p.add_argument("--settle", type=float, default=1.5, help="seconds to wait before reading RSS")
    p.add_argument("--drain-wait", type=float, default=120,
                   help="after a message test, wait up to this long for the broker to go idle")
    p.add_argument("--quiet-wait", type=float, default=10,
                   help="before each measurement, wait up to this long for the machine to be idle (0: don't)")
    p.add_argument("--quiet-threshold", type=float, default=10, help="'idle' = at most this CPU %% busy")
    p.add_argument("--py-spy", metavar="DIR", help="record localiot with py-spy during each window (raw stacks in DIR)")
    p.add_argument("--gc-stats", action="store_true",
                   help="run localiot under a wrapper that times its garbage collections (per window)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs, certificates)")
    p.add_argument("--save-results", metavar="FILE",
                   help="also write the measured figures and the arguments as JSON (to render the report again)")
    args = p.parse_args(argv)
    if args.tls_10k:
        args.idle_tls_connections = 10000
    if args.idle_tls_connections is None:
        args.idle_tls_connections = args.idle_connections
    if args.payload < 8:
        p.error("--payload must be at least 8 bytes")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    brokers = [b for b in args.brokers.split(",") if b]
    tests = set(args.tests.split(","))
    wall0 = time.monotonic()
    need = max(args.idle_connections, args.idle_tls_connections) + 200
    raise_nofile(need)
    mosq_exe = ensure_mosquitto() if "mosquitto" in brokers else None
    version = "?"
    if mosq_exe:
        m = re.search(rb"version (\S+)", subprocess.run([mosq_exe, "-h"], capture_output=True, check=False).stdout)
        version = m.group(1).decode() if m else "?"
    tmp = tempfile.mkdtemp(prefix="bench-broker-")
    log(f"working directory {tmp}; {os.cpu_count()} CPUs shared by the brokers and the load generator")
    spy = Spy(args.py_spy)
    results: dict = {b: {"skipped": {}} for b in BROKERS}
    failed = False
    try:
        # --- plain TCP: fresh brokers, memory first --------------------------------------
        plain_tests = [t for t in ("idle", "connect", "qos0", "qos1", "latency") if t in tests]
        if plain_tests:
            started = []
            try:
                loc = Localiot(tmp, [], args.gc_stats, store=args.localiot_store) if "localiot" in brokers else None
                started.append(loc)
                mos = Mosquitto(mosq_exe, tmp, None, args.inflight, args.max_queued) if mosq_exe else None
                started.append(mos)
                order = [b for b in (mos, loc) if b is not None]
                for test in plain_tests:
                    if test == "latency":
                        for name, r in latency_rounds(order, args, spy).items():
                            results[name]["latency"] = r
                            log(f"{name}: latency pooled: p50 {r['p50']:.3f} ms, p99 {r['p99']:.3f} ms")
                        continue
                    for b in order:
                        log(f"{b.name}: {test} (plain TCP)")
                        if test == "idle":
                            r = idle_phase(b, None, args.idle_connections, args)
                            results[b.name]["idle_plain"] = r
                            if r.get("opened"):
                                log(f"  {r['opened']} idle: {r['per_conn'] / 1024:.1f} KB/connection")
                        elif test == "connect":
                            r = results[b.name]["conn_plain"] = connrate_phase(b, None, args, spy)
                            log(f"  {r['rate']:,.0f} connections/s, broker CPU {r['broker_cpu']:.0f}%")
                        else:
                            r = results[b.name][test] = flow_phase(b, test, args, spy)
                            log(f"  {r['rate']:,.0f} msg/s, broker CPU {r['broker_cpu']:.0f}%, generator "
                                f"{r['pub_cpu']:.0f}% + {r['sub_cpu']:.0f}%, busy {r['busy_after']:.1f}s after")
                        if b.proc.poll() is not None:
                            raise SystemExit(f"{b.name} exited with {b.proc.returncode} during {test}")
            finally:
                for b in started:
                    if b is not None:
                        b.stop()
        # --- mutual TLS: fresh brokers, memory first -------------------------------------
        tls_tests = [t for t in ("idle", "connect") if t in tests]
        if tls_tests and not args.no_tls:
            started = []
            try:
                loc = Localiot(tmp, [], args.gc_stats, store=args.localiot_store)  # also the CA for Mosquitto's client certificates
                started.append(loc)
                log(f"provisioning {args.certs} device certificates with CreateKeysAndCertificate")
                certs = provision(loc.api, args.certs, tmp)
                loc.tls_ca = certs["client_ca"]
                why = tls_probe(loc.tls_port, loc.tls_ca, certs["certs"][0])
                if why:
                    msg = (f"localiot's MQTT over TLS listener (--mqtt-tls-port {loc.tls_port}) does not accept "
                           f"mutual-TLS connections yet ({why})")
                    log(msg + ": skipping localiot's TLS measurements")
                    for t in ("conn_tls", "idle_tls"):
                        results["localiot"]["skipped"][t] = msg
                else:
                    loc.tls_ok = True
                mos = None
                if mosq_exe:
                    server = mosquitto_server_cert(tmp, certs["chain_ca"])  # the same client chain
                    mos = Mosquitto(mosq_exe, tmp, dict(server, client_ca=certs["device_ca"]),
                                    args.inflight, args.max_queued)
                    started.append(mos)
                    why = tls_probe(mos.tls_port, mos.tls_ca, certs["certs"][0])
                    if why:
                        raise SystemExit(f"Mosquitto's TLS listener refused our certificate: {why}; "
                                         f"see {mos.log_path}")
                    mos.tls_ok = True
                order = [b for b in (mos, loc if "localiot" in brokers else None) if b is not None and b.tls_ok]
                for test in tls_tests:
                    for b in order:
                        log(f"{b.name}: {test} (mutual TLS)")
                        tls = tls_spec(b, certs)
                        if test == "idle":
                            r = idle_phase(b, tls, args.idle_tls_connections, args)
                            results[b.name]["idle_tls"] = r
                            if r.get("opened"):
                                log(f"  {r['opened']} idle: {r['per_conn'] / 1024:.1f} KB/connection, "
                                    f"opened at {r['open_rate']:,.0f}/s")
                        else:
                            r = results[b.name]["conn_tls"] = connrate_phase(b, tls, args, spy)
                            log(f"  {r['rate']:,.0f} connections/s, broker CPU {r['broker_cpu']:.0f}%")
                        if b.proc.poll() is not None:
                            raise SystemExit(f"{b.name} exited with {b.proc.returncode} during TLS {test}")
            finally:
                for b in started:
                    b.stop()
        elif args.no_tls:
            for b in BROKERS:
                if "connect" in tests:
                    results[b]["skipped"]["conn_tls"] = "--no-tls"
                if "idle" in tests:
                    results[b]["skipped"]["idle_tls"] = "--no-tls"
    except BaseException:
        failed = True
        log(f"failed; logs and configuration kept in {tmp}")
        raise
    finally:
        if not failed and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    derive(results)
    meta = {"mosquitto_version": version, "wall": time.monotonic() - wall0}
    if args.save_results:
        with open(args.save_results, "w") as f:
            json.dump({"results": results, "args": vars(args), "meta": meta}, f, indent=1, default=str)
    print(render(results, args, meta), flush=True)
    if GC_REPORT:
        print("\nlocaliot garbage collection per measured window (--gc-stats; collections / longest pause ms):")
        print("| window | s | GC ms | GC % of window | gen 0 | gen 1 | gen 2 |")
        print("|---|--:|--:|--:|--:|--:|--:|")
        print("\n".join(GC_REPORT))
    groups: dict[str, list[str]] = {}
    for label, path in spy.files:  # the latency rounds are summed into one profile
        groups.setdefault(re.sub(r"-\d+$", "", label), []).append(path)
    for label, paths in groups.items():
        where = paths[0] if len(paths) == 1 else f"{os.path.dirname(paths[0])}/{label}-*.txt"
        print(f"\npy-spy: localiot during the {label} window{'s' if len(paths) > 1 else ''} ({where})")
        print("\n".join(summarize_profile(paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
