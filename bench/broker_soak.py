#!/usr/bin/env python
"""Broker soak: localiot's memory over time under steady QoS 1 load with
subscribers connecting and disconnecting, and every acknowledged message
counted (issue 12).

One run starts `localiot serve --in-memory --mqtt-plain` (bench/broker_servers.py)
and, in this process on uvloop, with the lean client of bench/mqtt_clients.py:

  * `--publishers` QoS 1 publishers on `soak/<n>`, each keeping up to 100
    PUBLISHes in flight; every payload carries (publisher, sequence number);
  * one subscriber on `soak/+` at QoS 1, connected throughout, acking every
    message and ticking each (publisher, sequence) off a bitmap;
  * `--churners` clients that connect, subscribe to `churn/#` at QoS 1,
    stay 0.2-2 s, then leave (half with DISCONNECT, half by dropping the
    socket), again and again; half of them reuse persistent sessions (clean
    session 0, fixed client ids), so the broker parks and requeues messages
    for them; the others take clean sessions with client ids from a set of
    8 each (`--fresh-ids`: a new id every time); a publisher feeds
    `churn/x` at 50 messages/s.

First the publishers run unthrottled for `--calibrate` seconds: that QoS 1
rate (messages/s received by the subscriber) is the measured maximum, and
the soak runs at `--fraction` (0.5) of it for `--minutes` (10), unless
`--rate` gives it. Every `--sample` seconds a line on stderr gives localiot's
RSS, the rate, and the churn; at the end a table on stdout gives RSS at the
start, the end and the peak, and the messages acknowledged to publishers,
received by the subscriber, lost (acknowledged, never received) and
duplicated.

Usage:  .venv/bin/python bench/broker_soak.py [--minutes 10] [--rate R] [--churners 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from broker_servers import Localiot  # noqa: E402
from figures import fmt_n, table  # noqa: E402
from mqtt_clients import _Client, open_client, publish_packet, subscribe  # noqa: E402
from procs import HOST, log, proc_rss  # noqa: E402

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

WINDOW = 100  # QoS 1 PUBLISHes in flight per publisher
MAX_SEQ = 1 << 26


class Counter(_Client):
    """QoS 1 subscriber: acks everything; ticks (publisher, sequence) off per-publisher bitmaps."""

    def __init__(self, loop, publishers: int = 0):
        super().__init__(loop)
        self.seen = [bytearray(MAX_SEQ // 8) for _ in range(publishers)]
        self.received = self.duplicates = self.other = 0

    def data_received(self, data):
        acks, seen = [], self.seen
        for buf, first, start, end in self.frames(data):
            if first & 0xF0 == 0x30:
                p = start + 2 + ((buf[start] << 8) | buf[start + 1])
                if first & 0x06:
                    acks.append(b"\x40\x02" + buf[p:p + 2])
                    p += 2
                if seen and end - p >= 6:
                    pub, seq = buf[p], int.from_bytes(buf[p + 1:p + 5], "big")
                    bit, byte = 1 << (seq & 7), seq >> 3
                    if seen[pub][byte] & bit:
                        self.duplicates += 1
                    else:
                        seen[pub][byte] |= bit
                        self.received += 1
                else:
                    self.other += 1
            else:
                self.control(first, buf[start:end])
        if acks and self.transport is not None:
            self.transport.write(b"".join(acks))


class Publisher(_Client):
    """QoS 1 publisher of numbered payloads; `send(k)` writes up to k more within the window."""

    def __init__(self, loop, index: int, topic: str):
        super().__init__(loop)
        self.index, self.topic = index, topic
        self.seq = self.acked = 0
        self.inflight = 0
        self.pid = 0

    def send(self, k: int) -> None:
        k = min(k, WINDOW - self.inflight)
        if k <= 0 or self.transport is None or self.paused:
            return
        out = []
        for _ in range(k):
            self.pid = self.pid % 65535 + 1
            payload = bytes((self.index,)) + self.seq.to_bytes(4, "big") + b"soak-payload-64-bytes".ljust(59, b".")
            out.append(publish_packet(self.topic, payload, 1, self.pid))
            self.seq += 1
        self.inflight += k
        self.transport.write(b"".join(out))

    def data_received(self, data):
        acked = 0
        for buf, first, start, end in self.frames(data):
            if first & 0xF0 == 0x40:
                acked += 1
            else:
                self.control(first, buf[start:end])
        self.acked += acked
        self.inflight -= acked


async def connect(loop, factory, port: int, client_id: str, clean: bool = True):
    return await open_client(loop, factory, HOST, port, client_id, 1200, clean)


async def drive(pubs: list[Publisher], rate: float | None, until: float) -> None:
    """Publish until `until` (monotonic): at `rate` messages/s in total, or as fast as the windows allow."""
    tick = 0.01
    owed = 0.0
    while time.monotonic() < until:
        if rate is None:
            for p in pubs:
                p.send(WINDOW)
        else:
            owed += rate * tick / len(pubs)
            whole = int(owed)
            owed -= whole
            for p in pubs:
                p.send(whole)
        await asyncio.sleep(tick)


async def churn(loop, port: int, index: int, stats: dict, stop: asyncio.Event, fresh_ids: bool) -> None:
    persistent = index % 2 == 1
    rng = random.Random(index)
    n = 0
    while not stop.is_set():
        client_id = f"churn-p-{index}" if persistent else f"churn-{index}-{n if fresh_ids else n % 8}"
        n += 1
        try:
            proto = await connect(loop, lambda: Counter(loop), port, client_id, clean=not persistent)
            await subscribe(proto, "churn/#")
            stats["connects"] += 1
            await asyncio.sleep(rng.uniform(0.2, 2.0))
            stats["received"] += proto.other
            if rng.random() < 0.5:
                proto.transport.write(b"\xe0\x00")
                proto.transport.close()
            else:
                proto.transport.abort()
        except (OSError, ConnectionError, asyncio.TimeoutError) as e:
            stats["errors"] += 1
            stats["last_error"] = repr(e)
            await asyncio.sleep(0.5)


async def soak(args, broker: Localiot) -> dict:
    loop = asyncio.get_running_loop()
    port = broker.plain_port
    sub = await connect(loop, lambda: Counter(loop, args.publishers), port, "soak-subscriber")
    await subscribe(sub, "soak/+")
    pubs = [await connect(loop, lambda i=i: Publisher(loop, i, f"soak/{i}"), port, f"soak-pub-{i}")
            for i in range(args.publishers)]
    feeder = await connect(loop, lambda: Publisher(loop, 0, "churn/x"), port, "churn-feeder")
    rate = args.rate
    if rate is None:
        log(f"calibrating: {len(pubs)} QoS 1 publishers unthrottled for {args.calibrate:.0f} s")
        r0, t0 = sub.received, time.monotonic()
        await drive(pubs, None, t0 + args.calibrate)
        measured = (sub.received - r0) / (time.monotonic() - t0)
        rate = args.fraction * measured
        log(f"maximum QoS 1 rate {measured:,.0f} msg/s; soaking at {rate:,.0f} msg/s")
    else:
        measured = None
    stats = {"connects": 0, "errors": 0, "received": 0, "last_error": None}
    stop = asyncio.Event()
    churners = [loop.create_task(churn(loop, port, i, stats, stop, args.fresh_ids)) for i in range(args.churners)]
    start = time.monotonic()
    end = start + args.minutes * 60
    samples = []

    async def feed():
        while not stop.is_set():
            feeder.send(1)
            await asyncio.sleep(0.02)

    feeding = loop.create_task(feed())
    driving = loop.create_task(drive(pubs, rate, end))
    last = (start, sub.received)
    while time.monotonic() < end:
        await asyncio.sleep(min(args.sample, max(0.0, end - time.monotonic())))
        now = time.monotonic()
        rss = proc_rss(broker.pid) / 2**20
        window_rate = (sub.received - last[1]) / max(1e-9, now - last[0])
        last = (now, sub.received)
        samples.append((now - start, rss, window_rate))
        log(f"t={now - start:5.0f}s  localiot RSS {rss:6.1f} MB  {window_rate:8,.0f} msg/s received  "
            f"acked {sum(p.acked for p in pubs):,}  churn connects {stats['connects']:,} "
            f"(errors {stats['errors']})")
    await driving
    stop.set()
    feeding.cancel()
    for c in churners:
        c.cancel()
    sent = sum(p.seq for p in pubs)
    deadline = time.monotonic() + 60  # in flight at the end: acked and delivered within a minute
    while time.monotonic() < deadline and (sum(p.inflight for p in pubs) or sub.received < sum(p.acked for p in pubs)):
        await asyncio.sleep(0.1)
    acked = sum(p.acked for p in pubs)
    lost = sum(1 for p in pubs for seq in range(p.acked) if not sub.seen[p.index][seq >> 3] & (1 << (seq & 7)))
    return {"measured": measured, "rate": rate, "samples": samples, "sent": sent, "acked": acked,
            "received": sub.received, "duplicates": sub.duplicates, "lost": lost, "churn": stats,
            "subscriber_connected": sub.transport is not None}


def render(r: dict, args) -> str:
    samples = r["samples"]
    rss = [s[1] for s in samples]
    lines = [f"Broker soak: localiot, {args.minutes:g} min, {args.publishers} QoS 1 publishers -> 1 subscriber "
             f"on soak/+, {args.churners} subscribers churning on churn/#", ""]
    if r["measured"] is not None:
        lines.append(f"Measured maximum QoS 1 rate: {r['measured']:,.0f} msg/s; soak rate "
                     f"{args.fraction:.0%} of it: {r['rate']:,.0f} msg/s")
    else:
        lines.append(f"Soak rate (--rate): {r['rate']:,.0f} msg/s")
    step = max(1, len(samples) // 20)
    shown = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    lines += [""] + table(["t (s)", "localiot RSS (MB)", "msg/s received"],
                          [[f"{t:.0f}", f"{m:.1f}", fmt_n(rate)] for t, m, rate in shown])
    churn_stats = r["churn"]
    figures = [["RSS at the first sample (MB)", f"{rss[0]:.1f}" if rss else "-"],
               ["RSS at the end (MB)", f"{rss[-1]:.1f}" if rss else "-"],
               ["RSS peak (MB)", f"{max(rss):.1f}" if rss else "-"],
               ["messages published / acknowledged", f"{r['sent']:,} / {r['acked']:,}"],
               ["received by the subscriber", f"{r['received']:,}"],
               ["lost (acknowledged, never received)", f"{r['lost']:,}"],
               ["duplicates", f"{r['duplicates']:,}"],
               ["churn: connections / errors", f"{churn_stats['connects']:,} / {churn_stats['errors']}"],
               ["subscriber still connected", "yes" if r["subscriber_connected"] else "NO"]]
    lines += [""] + table(["figure", "value"], figures)
    if churn_stats["last_error"]:
        lines.append(f"\nLast churn error: {churn_stats['last_error']}")
    return "\n".join(line for line in lines if line is not None) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--minutes", type=float, default=10, help="length of the soak")
    p.add_argument("--rate", type=float, default=None, help="messages/s in total (default: --fraction of the "
                   "rate measured in --calibrate)")
    p.add_argument("--fraction", type=float, default=0.5, help="share of the measured maximum QoS 1 rate")
    p.add_argument("--calibrate", type=float, default=10, help="seconds of unthrottled QoS 1 to measure the maximum")
    p.add_argument("--publishers", type=int, default=4)
    p.add_argument("--churners", type=int, default=8, help="subscribers connecting and disconnecting")
    p.add_argument("--sample", type=float, default=10, help="seconds between RSS samples")
    p.add_argument("--fresh-ids", action="store_true", help="clean-session churners take a new client id each "
                   "time (localiot keeps a connectivity and audit record per client id, so RSS grows with them)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="bench-soak-")
    broker = Localiot(workdir, [])
    try:
        runner = uvloop.run if uvloop is not None else asyncio.run
        result = runner(soak(args, broker))
    finally:
        broker.stop()
    sys.stdout.write(render(result, args))
    return 0 if result["lost"] == 0 and result["subscriber_connected"] else 1


if __name__ == "__main__":
    sys.exit(main())
