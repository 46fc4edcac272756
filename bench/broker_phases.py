"""The measurements of bench/broker.py: load-generator process groups
(bench/broker_load.py roles), waiting for a quiet machine and an idle
broker, py-spy recording, and one function per test (message flow,
latency rounds, connections/s, idle connections)."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

import broker_load as load
from broker_servers import Broker, idle_brokers_cpu
from figures import pct
from procs import BIN, HOST, ROOT, log, machine_busy, proc_cpu, proc_rss


MP = multiprocessing.get_context("fork")


class Workers:
    """A group of load-generator processes, one role each."""

    def __init__(self, specs: list[dict]):
        self.procs = []
        for spec in specs:
            parent, child = MP.Pipe()
            p = MP.Process(target=load.worker_main, args=(child, spec), daemon=True)
            p.start()
            child.close()
            self.procs.append((p, parent))

    def collect(self, expected: str, timeout: float) -> list:
        out = []
        deadline = time.monotonic() + timeout
        for p, pipe in self.procs:
            while not pipe.poll(0.2):
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"load generator: no {expected!r} within {timeout:.0f}s")
                if not p.is_alive() and not pipe.poll(0):
                    self.kill()
                    raise RuntimeError(f"load generator process exited with {p.exitcode}")
            try:
                msg = pipe.recv()
            except EOFError:
                self.kill()
                raise RuntimeError(f"load generator process exited with {p.exitcode}") from None
            if msg[0] == "error":
                self.kill()
                raise RuntimeError(f"load generator failed:\n{msg[1]}")
            if msg[0] != expected:
                self.kill()
                raise RuntimeError(f"load generator: expected {expected!r}, got {msg[0]!r}")
            out.append(msg[1])
        return out

    def send(self, msg: tuple) -> None:
        for _, pipe in self.procs:
            pipe.send(msg)

    def join(self) -> None:
        for p, pipe in self.procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
            pipe.close()

    def kill(self) -> None:
        for p, _ in self.procs:
            if p.is_alive():
                p.kill()
        for p, _ in self.procs:
            p.join()


def wait_quiet(args, what: str) -> None:
    """Wait (up to --quiet-wait s) until the machine is nearly idle: other processes on this
    machine (a test suite ...) would take CPU from the broker and the generator."""
    if args.quiet_wait <= 0:
        return
    deadline = time.monotonic() + args.quiet_wait
    busy = 0.0
    while True:
        b0, o0, t0 = machine_busy(), idle_brokers_cpu(None), time.monotonic()
        time.sleep(0.5)
        dt = time.monotonic() - t0
        busy = 100 * (machine_busy() - b0) / dt
        ours = 100 * (idle_brokers_cpu(None) - o0) / dt
        if busy <= args.quiet_threshold:
            return
        if time.monotonic() > deadline:
            log(f"  machine still {busy:.0f}% busy ({ours:.0f}% of it our brokers) before {what} after "
                f"waiting {args.quiet_wait:g}s: measuring anyway (see 'other CPU %')")
            return


def wait_broker_idle(broker: Broker, since: float, max_wait: float) -> float:
    """Seconds from `since` until the broker process uses < 10% of a core (over 0.5 s): work it
    still does after the load stopped (queues it drains). Gives up after max_wait s."""
    deadline = time.monotonic() + max_wait
    while True:
        c0, t0 = proc_cpu(broker.pid), time.monotonic()
        time.sleep(0.5)
        busy = (proc_cpu(broker.pid) - c0) / (time.monotonic() - t0)
        if busy < 0.10 or time.monotonic() > deadline:
            return max(0.0, t0 - since)


def sleep_until(t: float) -> None:
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)


class Spy:
    """py-spy record of localiot during each measured window (--py-spy DIR)."""

    def __init__(self, directory: str | None):
        self.dir = directory
        self.exe = None
        self.files: list[tuple[str, str]] = []
        if directory:
            self.exe = shutil.which("py-spy") or os.path.join(BIN, "py-spy")
            if not os.path.exists(self.exe):
                raise SystemExit("--py-spy needs py-spy: .venv/bin/pip install py-spy")
            os.makedirs(directory, exist_ok=True)

    def start(self, broker: Broker, label: str, seconds: float):
        if not self.dir or broker.name != "localiot":
            return None
        out = os.path.join(self.dir, f"{label}.txt")
        p = subprocess.Popen([self.exe, "record", "--pid", str(broker.pid), "--duration", str(max(1, int(seconds))),
                              "--rate", "200", "--format", "raw", "--output", out, "--nonblocking"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.files.append((label, out))
        return p

    @staticmethod
    def finish(p) -> None:
        if p is not None:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def summarize_profile(paths: list[str], top: int = 15) -> list[str]:
    """Top functions of py-spy raw (collapsed stacks) files: self and inclusive share of samples."""
    self_n: dict[str, int] = {}
    incl_n: dict[str, int] = {}
    total = 0
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if not stack:
                    continue
                n = int(count)
                total += n
                frames = [re.sub(r":\d+\)$", ")", fr.strip()) for fr in stack.split(";")]
                frames = [fr.replace(ROOT + "/", "").replace(sys.prefix + "/", "") for fr in frames]
                self_n[frames[-1]] = self_n.get(frames[-1], 0) + n
                for fr in set(frames):
                    incl_n[fr] = incl_n.get(fr, 0) + n
    if not total:
        return ["(no samples)"]
    lines = [f"{total} samples; self = on top of the stack, total = anywhere in it",
             "| self % | total % | function |", "|------:|--------:|----------|"]
    for fr, n in sorted(self_n.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"| {100 * n / total:5.1f} | {100 * incl_n[fr] / total:6.1f} | `{fr}` |")
    return lines


# ---------------------------------------------------------------------------
# phases
# ---------------------------------------------------------------------------
def split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts) if items[i::parts]]


def flow_phase(broker: Broker, mode: str, args, spy: Spy, duration: float | None = None,
               label: str | None = None) -> dict:
    """qos0 / qos1 / latency: 1 subscriber process on '#', publishers in --pub-procs processes."""
    wait_quiet(args, f"{broker.name} {mode}")
    tag = f"{broker.name[:3]}-{mode}-{uuid.uuid4().hex[:6]}"
    common = {"host": HOST, "port": broker.plain_port, "mode": mode}
    sub = Workers([dict(common, role="sub", client_id=f"{tag}-sub", topic_filter="#")])
    sub.collect("ready", 30)
    n = args.publishers
    ids = list(range(n))
    specs = []
    for part in split(ids, args.pub_procs):
        specs.append(dict(common, role="pub", client_ids=[f"{tag}-pub{i:03d}" for i in part],
                          topics=[f"bench/pub/{i:03d}" for i in part], payload_size=args.payload,
                          window=args.qos1_window, rate=args.rate * len(part) / n))
    pubs = Workers(specs)
    try:
        pubs.collect("ready", 60)
    except Exception:
        sub.kill()
        raise
    warmup = args.latency_warmup if mode == "latency" else args.warmup
    if duration is None:
        duration = args.latency_duration if mode == "latency" else args.duration
    t_start = time.monotonic() + 0.3
    t0 = t_start + warmup
    t1 = t0 + duration
    sub.send(("go", t_start, t0, t1))
    pubs.send(("go", t_start, t0, t1))
    sleep_until(t0)
    c0, m0, i0 = proc_cpu(broker.pid), machine_busy(), idle_brokers_cpu(broker)
    spying = spy.start(broker, label or mode, duration)
    sleep_until(t1)
    c1, m1, i1 = proc_cpu(broker.pid), machine_busy(), idle_brokers_cpu(broker)
    broker.measured(label or mode, t0, t1)
    rss = proc_rss(broker.pid)
    (s,) = sub.collect("done", 60)
    ps = pubs.collect("done", 60)
    sub.join()
    pubs.join()
    Spy.finish(spying)
    busy_after = wait_broker_idle(broker, t1, args.drain_wait)
    out = {
        "rate": s["received"] / s["elapsed"],
        "offered": sum(p["sent"] for p in ps) / s["elapsed"],
        "acked": sum(p.get("acked", 0) for p in ps) / s["elapsed"],
        "broker_cpu": 100 * (c1 - c0) / (t1 - t0),
        "pub_cpu": 100 * sum(p["cpu"] for p in ps) / s["elapsed"],
        "sub_cpu": 100 * s["cpu"] / s["elapsed"],
        "machine_cpu": 100 * (m1 - m0) / (t1 - t0),
        "idle_broker_cpu": 100 * (i1 - i0) / (t1 - t0),
        "rss": rss,
        "busy_after": busy_after,
        "window": duration,
    }
    if mode == "latency":
        out["lat"] = sorted(s["latencies_ns"])
        out.update(percentiles(out["lat"]))
    return out


def percentiles(lat: list) -> dict:
    out = {"samples": len(lat)}
    for q in (50, 90, 99, 99.9):
        out[f"p{q}"] = pct(lat, q) / 1e6
    out["max"] = lat[-1] / 1e6 if lat else float("nan")
    return out


def latency_rounds(order: list, args, spy: Spy) -> dict:
    """The latency test in --latency-rounds short rounds, brokers taking turns (first in one round,
    second in the next), samples pooled: a burst of load from elsewhere on the machine then lands
    on both brokers' samples rather than on one broker's whole run."""
    rounds = max(1, args.latency_rounds)
    per = args.latency_duration / rounds
    runs: dict[str, list] = {b.name: [] for b in order}
    for i in range(rounds):
        for b in (order if i % 2 == 0 else order[::-1]):
            log(f"{b.name}: latency round {i + 1}/{rounds}")
            r = flow_phase(b, "latency", args, spy, duration=per, label=f"latency-{i + 1}")
            log(f"  p50 {r['p50']:.3f} ms, p99 {r['p99']:.3f} ms, broker CPU {r['broker_cpu']:.0f}%, "
                f"machine {r['machine_cpu']:.0f}%")
            runs[b.name].append(r)
    merged = {}
    for name, rs in runs.items():
        lat = sorted(x for r in rs for x in r.pop("lat"))
        m = {k: sum(r[k] for r in rs) / len(rs) for k in
             ("rate", "offered", "broker_cpu", "pub_cpu", "sub_cpu", "machine_cpu", "idle_broker_cpu",
              "busy_after")}
        m.update(percentiles(lat))
        p99s = [r["p99"] for r in rs]
        m["p99_rounds"] = f"{min(p99s):.3f}-{max(p99s):.3f}"
        m["rounds"] = len(rs)
        merged[name] = m
    return merged


def tls_spec(broker: Broker, certs: dict | None) -> dict | None:
    if certs is None:
        return None
    return {"cafile": broker.tls_ca, "certs": certs["certs"]}


def connrate_phase(broker: Broker, tls: dict | None, args, spy: Spy) -> dict:
    port = broker.tls_port if tls else broker.plain_port
    wait_quiet(args, f"{broker.name} connections/s")
    tag = f"{broker.name[:3]}-cr{'t' if tls else 'p'}-{uuid.uuid4().hex[:6]}"
    conc = args.tls_conn_concurrency if tls else args.conn_concurrency
    specs = [{"role": "connrate", "host": HOST, "port": port, "tls": tls, "concurrency": conc,
              "prefix": f"{tag}-{w}", "worker": w} for w in range(args.gen_procs)]
    group = Workers(specs)
    group.collect("ready", 30)
    t_start = time.monotonic() + 0.3
    t0 = t_start + args.conn_warmup
    t1 = t0 + args.conn_duration
    group.send(("go", t_start, t0, t1))
    sleep_until(t0)
    c0, m0, i0 = proc_cpu(broker.pid), machine_busy(), idle_brokers_cpu(broker)
    spying = spy.start(broker, "connect-tls" if tls else "connect-plain", args.conn_duration)
    sleep_until(t1)
    c1, m1, i1 = proc_cpu(broker.pid), machine_busy(), idle_brokers_cpu(broker)
    broker.measured("connect-tls" if tls else "connect-plain", t0, t1)
    rs = group.collect("done", 60)
    group.join()
    Spy.finish(spying)
    busy_after = wait_broker_idle(broker, t1, args.drain_wait)
    elapsed = t1 - t0
    times = sorted(t for r in rs for t in r["connect_times"])
    errors = [r["first_error"] for r in rs if r["first_error"]]
    return {
        "rate": sum(r["connected"] for r in rs) / elapsed,
        "errors": sum(r["errors"] for r in rs),
        "first_error": errors[0] if errors else None,
        "p50": pct(times, 50) * 1e3,
        "p99": pct(times, 99) * 1e3,
        "broker_cpu": 100 * (c1 - c0) / elapsed,
        "gen_cpu": 100 * sum(r["cpu"] for r in rs) / elapsed,
        "gen_sys_cpu": 100 * sum(r["sys_cpu"] for r in rs) / elapsed,
        "machine_cpu": 100 * (m1 - m0) / elapsed,
        "idle_broker_cpu": 100 * (i1 - i0) / elapsed,
        "busy_after": busy_after,
        "concurrency": conc * len(specs),
    }


def idle_phase(broker: Broker, tls: dict | None, count: int, args) -> dict:
    port = broker.tls_port if tls else broker.plain_port
    tag = f"{broker.name[:3]}-idle{'t' if tls else 'p'}-{uuid.uuid4().hex[:6]}"
    # warm the broker's code paths and allocators first, then take the baseline
    warm = Workers([{"role": "idle", "host": HOST, "port": port, "tls": tls, "count": 50, "concurrency": 10,
                     "prefix": f"{tag}-warm"}])
    (w,) = warm.collect("ready", 60)
    warm.send(("close",))
    warm.collect("done", 30)
    warm.join()
    if w["failed"]:
        return {"error": w["first_error"], "opened": 0}
    time.sleep(args.settle)
    wait_quiet(args, f"{broker.name} idle connections")
    rss0 = proc_rss(broker.pid)
    per = [count // args.gen_procs + (1 if i < count % args.gen_procs else 0) for i in range(args.gen_procs)]
    conc = args.tls_conn_concurrency if tls else args.conn_concurrency
    # each loopback source address gives ~28,000 ephemeral ports towards one listener
    sources = [f"127.0.0.{k + 1}" for k in range(max(1, -(-count // 25_000)))] if count > 25_000 else None
    specs = [{"role": "idle", "host": HOST, "port": port, "tls": tls, "count": c, "concurrency": conc,
              "sources": sources,
              "prefix": f"{tag}-{i}"} for i, c in enumerate(per) if c]
    group = Workers(specs)
    t0 = time.monotonic()
    c0 = proc_cpu(broker.pid)
    infos = group.collect("ready", args.idle_timeout)
    c1 = proc_cpu(broker.pid)
    broker.measured(f"opening {count} idle {'TLS' if tls else 'plain'}", t0, time.monotonic())
    open_s = time.monotonic() - t0
    time.sleep(args.settle)
    rss1 = proc_rss(broker.pid)
    opened = sum(i["opened"] for i in infos)
    failed = sum(i["failed"] for i in infos)
    errors = [i["first_error"] for i in infos if i["first_error"]]
    alive = broker.proc.poll() is None
    group.send(("close",))
    try:
        closing = group.collect("done", 60)
    finally:
        group.join()
    still_open = sum(c.get("still_open", 0) for c in closing)
    return {
        "still_open": still_open,
        "count": count, "opened": opened, "failed": failed, "first_error": errors[0] if errors else None,
        "rss0": rss0, "rss1": rss1, "per_conn": (rss1 - rss0) / opened if opened else float("nan"),
        "open_seconds": open_s, "open_rate": opened / open_s if open_s else float("nan"),
        "broker_cpu_s": c1 - c0, "gen_cpu_s": sum(i["cpu"] for i in infos), "alive": alive,
    }


# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------
