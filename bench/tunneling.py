"""Secure Tunneling relay benchmark: throughput and round-trip latency through
localiot's relay against a direct TCP connection, measured in the same run.

    .venv/bin/python bench/tunneling.py [--localproxy [PATH]] [--megabytes 100] [--streams 10] [--pings 2000]
    .venv/bin/python bench/tunneling.py --pump [--megabytes 400] [--runs 3]

Starts `localiot serve --in-memory` as a subprocess, opens a tunnel with boto3,
and runs a TCP echo server in this process behind a destination local proxy,
with a source local proxy in front:

- default: both proxies are Python, in this process (tests/tunneling_localproxy.py,
  protocol 3, written from AWS's guides), through ws://.../tunnel on the API port;
- `--localproxy`: both are AWS's real localproxy binary (tests/tunneling_binary.py
  finds it; bench/build_localproxy.sh builds it), each its own process, through
  wss://localhost:<ALPN port>/tunnel with the installation CA, as a user runs it.

Measured:

- one stream: `--megabytes` MB written to the source's local port and echoed
  back byte-exact (MB/s = bytes one way / time until the last byte returned);
- N concurrent: `--streams` connections on one service (protocol 3 connections
  multiplexed on one stream), `--megabytes`/N MB each;
- 1-byte echo: `--pings` sequential round trips, p50/p99;
- with `--localproxy`, also one stream one way: `--megabytes` MB from the
  source's port into a sink behind the destination (a second service), MB/s
  until the sink has them all (the bytes cross the relay once, as in a file
  copy; in the echo they cross it twice).

The same three loads run directly against the echo server for the ratio, and
the CPU seconds of the relay (the localiot process) and of the proxies are
printed (with `--localproxy`, the relay's for each throughput load too). In
the default mode the Python proxies share this process's core with the echo
server, so those figures are a floor for the relay. The load's payloads are
1 MiB of random bytes repeated (nothing to generate per run) and echoes are
compared in place, so the load costs little next to the relay.

`--pump`: the relay alone (bench/tunneling_pump.py): a protocol-level source
and destination in this process that send prebuilt DATA frames and count what
arrives, without a TCP side or a payload copy, over ws:// on the API port and
wss:// on the ALPN port (a new tunnel each), then the same bytes over one
direct TCP connection; `--runs` rounds. It shows what the relay carries when
the ends cost next to nothing (localproxy cannot speak plain ws://: it always
wraps its WebSocket in TLS).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import json
import socket
import ssl
import threading
import urllib.request

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from tunneling_binary import (ROOMY, LocalProxyProcess, ca_directory, echo_round_trip, free_port,  # noqa: E402
                              localproxy_binary, one_way, staggered_connections)
from tunneling_localproxy import LocalProxy, echo_server, round_trip  # noqa: E402


_PATTERN = os.urandom(1 << 20)


def payload(size: int) -> bytes:
    """`size` bytes that are cheap to make: 1 MiB of random bytes, repeated (a byte that comes back
    at the wrong offset still shows, as the repeat is not a divisor of the frame or read sizes)."""
    return (_PATTERN * (size // len(_PATTERN) + 1))[:size]


def start_server(logdir: str):
    exe = os.path.join(os.path.dirname(sys.executable), "localiot")
    proc = subprocess.Popen([exe, "serve", "--port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0",
                             "--device-advisor-port", "0", "--in-memory", "--log-level", "WARNING"],
                            stdout=subprocess.PIPE,
                            stderr=open(os.path.join(logdir, "localiot.log"), "wb"), stdin=subprocess.DEVNULL)
    for line in proc.stdout:
        found = re.search(rb"localiot ready on (http://\S+)", line)
        if found:
            return proc, found.group(1).decode()
    raise SystemExit(f"localiot did not start; see {logdir}/localiot.log")


async def throughput(port: int, total: int, streams: int) -> float:
    size = total // streams
    payloads = [payload(size) for _ in range(streams)]
    started = time.perf_counter()
    results = await asyncio.gather(*(round_trip(port, p, timeout=600) for p in payloads))
    elapsed = time.perf_counter() - started
    assert results == payloads, "bytes came back different"
    return size * streams / elapsed / 1e6


async def pings(port: int, count: int) -> tuple[float, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        writer.write(b"x")
        await writer.drain()
        assert await reader.readexactly(1) == b"x"
        samples.append((time.perf_counter() - started) * 1e6)
    writer.close()
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


async def measure(port: int, args) -> dict:
    total = args.megabytes * 1_000_000
    await throughput(port, 1_000_000, 1)  # warm-up
    return {
        "one stream MB/s": await throughput(port, total, 1),
        f"{args.streams} concurrent MB/s": await throughput(port, total, args.streams),
        "1-byte echo p50/p99 us": await pings(port, args.pings),
    }


RELAY_CPU: dict[str, float] = {}  # load -> relay CPU seconds during it (--localproxy)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:  # Linux: utime + stime
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(endpoint: str, opened: dict, args, relay_pid: int) -> tuple[dict, dict, dict]:
    """Python proxies in this process: (direct, relayed, CPU seconds of the relayed loads)."""
    echo, echo_port = await echo_server()
    try:
        destination = await LocalProxy(endpoint, opened["destinationAccessToken"], "destination",
                                       {"BENCH": echo_port}).start()
        source = await LocalProxy(endpoint, opened["sourceAccessToken"], "source", {"BENCH": 0}).start()
        try:
            direct = await measure(echo_port, args)
            before = cpu_seconds(relay_pid), time.process_time()
            relayed = await measure(source.ports["BENCH"], args)
            cpu = {"relay": cpu_seconds(relay_pid) - before[0],
                   "proxies + echo + load": time.process_time() - before[1]}
        finally:
            await source.stop()
            await destination.stop()
            await asyncio.sleep(0.1)  # the echo server's connections see their EOF
        return direct, relayed, cpu
    finally:
        echo.close()


def echo_checked(conn: socket.socket, data: bytes, timeout: float = 600) -> bool:
    """True when `data` sent on `conn` came back the same (tests' echo_round_trip: one
    preallocated buffer, 1 MiB reads, compared in place)."""
    conn.settimeout(timeout)
    return echo_round_trip(conn, data, timeout) == data


def measure_blocking(port: int, args, sink_port: int | None = None, relay_pid: int | None = None) -> dict:
    """The same loads with blocking sockets and threads (for the localproxy processes); with a
    sink, also one stream one way (the source's bytes into a sink behind the destination).
    With `relay_pid`, each throughput load's relay CPU seconds go into RELAY_CPU[load]."""
    total = args.megabytes * 1_000_000

    def timed(name: str, load, *load_args):
        before = cpu_seconds(relay_pid) if relay_pid else 0.0
        result = load(*load_args)
        if relay_pid:
            RELAY_CPU[name] = cpu_seconds(relay_pid) - before
        return result

    def throughput_blocking(total: int, streams: int) -> float:
        data = payload(total // streams)  # the same bytes on every connection: nothing to make per stream
        results = [False] * streams
        conns = staggered_connections(port, streams)  # connected before the clock starts
        workers = [threading.Thread(target=lambda i=i: results.__setitem__(i, echo_checked(conns[i], data)))
                   for i in range(streams)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        bad = results.count(False)
        if bad:  # reported, not hidden: see bench/README.md (localproxy and simultaneous connections)
            print(f"WARNING: {bad} of {streams} streams came back different or cut short (see the "
                  "localproxy logs)", flush=True)
        return len(data) * streams / elapsed / 1e6

    def pings_blocking(count: int) -> tuple[float, float]:
        samples = []
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(count):
                started = time.perf_counter()
                conn.sendall(b"x")
                assert conn.recv(1) == b"x"
                samples.append((time.perf_counter() - started) * 1e6)
        samples.sort()
        return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]

    def one_way_blocking(total: int) -> float:
        data = payload(total)
        conn = staggered_connections(sink_port, 1)[0]
        started = time.perf_counter()
        assert one_way(conn, data, 600), "the sink did not receive every byte"
        return total / (time.perf_counter() - started) / 1e6

    throughput_blocking(1_000_000, 1)  # warm-up
    return {
        "one stream MB/s": timed("one stream MB/s", throughput_blocking, total, 1),
        **({"one stream one-way MB/s": timed("one stream one-way MB/s", one_way_blocking, total)}
           if sink_port else {}),
        f"{args.streams} concurrent MB/s": timed(f"{args.streams} concurrent MB/s", throughput_blocking, total,
                                                 args.streams),
        "1-byte echo p50/p99 us": pings_blocking(args.pings),
    }


def run_binary(endpoint: str, opened: dict, args, logdir: str, relay_pid: int) -> tuple[dict, dict, dict]:
    """AWS localproxy processes at both ends, a threaded echo server in its own process:
    (direct, relayed, CPU seconds of the relayed loads)."""
    with urllib.request.urlopen(endpoint + "/_localiot/health") as response:
        alpn = json.load(response)["listeners"]["mqtt-alpn"]
    relay = f"localhost:{alpn.rsplit(':', 1)[1]}"
    capath = ca_directory(endpoint, os.path.join(logdir, "ca"))
    echo = subprocess.Popen([sys.executable, os.path.join(HERE, "..", "tests", "tunneling_binary.py")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    echo_port, sink_port = int(echo.stdout.readline()), int(echo.stdout.readline())
    port, sink_local, proxies = free_port(), free_port(), []
    try:
        for mode, mapping in (("destination", f"BENCH=127.0.0.1:{echo_port},SINK=127.0.0.1:{sink_port}"),
                              ("source", f"BENCH={port},SINK={sink_local}")):
            workdir = os.path.join(logdir, mode)
            os.makedirs(workdir)
            proxies.append(LocalProxyProcess(args.localproxy, relay, capath, opened[f"{mode}AccessToken"], mode,
                                             mapping, workdir=workdir, settings=ROOMY).ready(services=2))
        direct = measure_blocking(echo_port, args, sink_port)
        pids = {"relay": relay_pid, "localproxy source": proxies[1].process.pid,
                "localproxy destination": proxies[0].process.pid, "echo server": echo.pid}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        own = time.process_time()
        relayed = measure_blocking(port, args, sink_local, relay_pid)
        cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        cpu["load"] = time.process_time() - own
        return direct, relayed, cpu
    finally:
        for proxy in proxies:
            proxy.stop()
        echo.stdin.close()
        echo.wait(10)


def run_pump(endpoint: str, tunnels, args, logdir: str, relay_pid: int) -> None:
    """The relay alone (bench/tunneling_pump.py) over ws:// and wss://, a new tunnel each, and a
    direct TCP connection carrying the same bytes, in this order, `--runs` times."""
    from tunneling_pump import direct, pump

    with urllib.request.urlopen(endpoint + "/_localiot/health") as response:
        alpn_port = json.load(response)["listeners"]["mqtt-alpn"].rsplit(":", 1)[1]
    context = ssl.create_default_context(cafile=os.path.join(ca_directory(endpoint, os.path.join(logdir, "ca")),
                                                            "ca.pem"))
    context.set_alpn_protocols(["http/1.1"])  # the ALPN port's HTTP, as localproxy asks for it
    print(f"the relay alone, {args.megabytes} MB one way per run (protocol-level source and destination "
          "in this process)")
    print(f"{'run':<4} {'path':<22} {'MB/s':>8} {'relay CPU-s':>12} {'MB/relay CPU-s':>15} {'pump CPU-s':>11}")
    for run_number in range(1, args.runs + 1):
        for label, url, tls in (("ws:// API port", endpoint, None),
                                ("wss:// ALPN port", f"https://localhost:{alpn_port}", context)):
            opened = tunnels.open_tunnel(destinationConfig={"services": ["BENCH"]})
            before = cpu_seconds(relay_pid)
            rate, own = pump(url, opened["sourceAccessToken"], opened["destinationAccessToken"], args.megabytes,
                             tls)
            relay = cpu_seconds(relay_pid) - before
            print(f"{run_number:<4} {label:<22} {rate:>8.1f} {relay:>12.2f} {rate and args.megabytes / relay:>15.0f} "
                  f"{own:>11.2f}", flush=True)
        print(f"{run_number:<4} {'direct TCP':<22} {direct(args.megabytes):>8.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--localproxy", nargs="?", const="", default=None, metavar="PATH",
                        help="AWS's localproxy at both ends (PATH, or found as the tests find it)")
    parser.add_argument("--pump", action="store_true",
                        help="the relay alone: protocol-level ends (bench/tunneling_pump.py), ws:// and wss://")
    parser.add_argument("--runs", type=int, default=1, help="with --pump: rounds of ws://, wss://, direct")
    args = parser.parse_args()
    if args.localproxy == "":
        args.localproxy, why = localproxy_binary()
        if args.localproxy is None:
            raise SystemExit(why)
    logdir = tempfile.mkdtemp(prefix="bench-tunneling-")
    proc, endpoint = start_server(logdir)
    try:
        tunnels = boto3.client("iotsecuretunneling", endpoint_url=endpoint, region_name="us-east-1",
                               aws_access_key_id="bench", aws_secret_access_key="bench")
        if args.pump:
            return run_pump(endpoint, tunnels, args, logdir, proc.pid)
        opened = tunnels.open_tunnel(destinationConfig={"services": ["BENCH", "SINK"] if args.localproxy else ["BENCH"]})
        if args.localproxy:
            direct, relayed, cpu = run_binary(endpoint, opened, args, logdir, proc.pid)
        else:
            direct, relayed, cpu = asyncio.run(run(endpoint, opened, args, proc.pid))
    finally:
        proc.terminate()
        proc.wait(10)
    kind = "AWS localproxy (wss://, ALPN port)" if args.localproxy else "Python proxies (ws://, API port)"
    print(f"through the relay: {kind}; logs in {logdir}")
    print(f"{'load':<24} {'direct TCP':>16} {'through relay':>16} {'relay/direct':>12}")
    for key in direct:
        d, r = direct[key], relayed[key]
        if isinstance(d, tuple):
            print(f"{key:<24} {d[0]:>7.0f}/{d[1]:<8.0f} {r[0]:>7.0f}/{r[1]:<8.0f} {r[0] / d[0]:>11.1f}x")
        else:
            print(f"{key:<24} {d:>16.1f} {r:>16.1f} {r / d:>11.2f}x")
    print("CPU seconds of the relayed loads: " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items()))
    carried = (2 * (1_000_000 + 2 * args.megabytes * 1_000_000) + 2 * args.pings) / 1e6  # both directions
    if "one stream one-way MB/s" in relayed:
        carried += args.megabytes
    print(f"relay: {carried:.0f} MB carried, {carried / cpu['relay']:.0f} MB per relay CPU-second")
    for load, seconds in RELAY_CPU.items():  # MB through the relay: an echo's bytes cross it twice
        crossed = args.megabytes * (1 if "one-way" in load else 2)
        print(f"  {load:<24} relay {seconds:.2f} CPU-s, {crossed / seconds:.0f} MB per relay CPU-second")


if __name__ == "__main__":
    main()
