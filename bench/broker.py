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
`require_certificate true` and `cafile` = localiot's CA (GET
/_localiot/ca.pem), so it accepts exactly the same client certificates.
If localiot's TLS listener does not accept connections, its TLS figures are
skipped with a message (Mosquitto's are still measured).

Usage:  .venv/bin/python bench/broker.py [--duration S] [--idle-connections N] [--tls-10k] ...
See bench/broker_README.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, HERE)

import broker_load as load

REGION = "us-east-1"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
BROKERS = ("mosquitto", "localiot")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def proc_cpu(pid: int) -> float:
    """CPU seconds (user+system, all threads) a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds all cores spent not idle so far (includes interrupts and softirqs)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def proc_rss(pid: int) -> int:
    """Resident set size in bytes."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def raise_nofile(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        log(f"RLIMIT_NOFILE raised from {soft} to {hard} (inherited by both brokers and the generator)")
    if hard < needed:
        log(f"warning: RLIMIT_NOFILE hard limit {hard} < {needed} needed; raise it (ulimit -Hn) as root")
    return hard


def wait_port(port: int, proc: subprocess.Popen, name: str, log_path: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}; see {log_path}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{name} did not open port {port}; see {log_path}")


def stop_process(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def find_mosquitto() -> str | None:
    for path in (shutil.which("mosquitto"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if path and os.path.exists(path):
            return path
    return None


def ensure_mosquitto() -> str:
    path = find_mosquitto()
    if path:
        return path
    log("mosquitto is not installed: installing the Debian package with apt-get install -y mosquitto")
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else [])
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = sudo + ["apt-get", "install", "-y", "--no-install-recommends", "mosquitto"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        log("apt-get install failed: running apt-get update first")
        subprocess.run(sudo + ["apt-get", "update"], env=env, check=False)
        subprocess.run(install, env=env, check=False)
    path = find_mosquitto()
    if not path:
        raise SystemExit("could not install mosquitto; install it with: apt-get install -y mosquitto")
    log(f"installed {path}")
    return path


RUNNING: list = []  # brokers started and not stopped yet


def idle_brokers_cpu(broker) -> float:
    """CPU seconds used so far by the running brokers other than `broker`."""
    total = 0.0
    for b in RUNNING:
        if b is not broker:
            try:
                total += proc_cpu(b.pid)
            except OSError:
                pass
    return total


class Broker:
    name = ""
    windows: list | None = None  # (label, t0, t1) of every measured window, for --gc-stats
    proc: subprocess.Popen
    plain_port = 0
    tls_port = 0
    tls_ok = False  # the TLS listener accepts our client certificates
    tls_note = ""
    tls_ca = ""  # CA file clients use to verify the broker's server certificate

    @property
    def pid(self) -> int:
        return self.proc.pid

    def measured(self, label: str, t0: float, t1: float) -> None:
        if self.windows is None:
            self.windows = []
        self.windows.append((label, t0, t1))

    def stop(self) -> None:
        stop_process(self.proc)
        if self in RUNNING:
            RUNNING.remove(self)


class Mosquitto(Broker):
    name = "mosquitto"

    def __init__(self, exe: str, workdir: str, tls: dict | None, inflight: int, queued: int):
        self.plain_port = free_port()
        self.tls_port = free_port() if tls else 0
        self.conf = os.path.join(workdir, "mosquitto.conf")
        self.log_path = os.path.join(workdir, "mosquitto.log")
        lines = [
            "# written by bench/broker.py",
            "per_listener_settings false",
            "allow_anonymous true",
            "persistence false",
            f"max_queued_messages {queued}",
            "max_queued_bytes 0",
            f"max_inflight_messages {inflight}",
            "max_keepalive 65535",
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "connection_messages false",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # keep reading the key files in our private temporary directory
        lines += ["", f"listener {self.plain_port} {HOST}"]
        if tls:
            lines += [
                "", f"listener {self.tls_port} {HOST}",
                f"cafile {tls['client_ca']}",
                f"certfile {tls['server_cert']}",
                f"keyfile {tls['server_key']}",
                "require_certificate true",
            ]
            self.tls_ca = tls["server_ca"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.exe = exe
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([exe, "-c", self.conf], stdout=self.logf, stderr=self.logf,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        RUNNING.append(self)
        wait_port(self.plain_port, self.proc, "mosquitto", self.log_path)
        if tls:
            wait_port(self.tls_port, self.proc, "mosquitto", self.log_path)

    def stop(self) -> None:
        super().stop()
        self.logf.close()


# --gc-stats: localiot runs under this wrapper, which times every garbage collection
# (gc.callbacks, time.monotonic: the same clock as the windows here) and writes them at exit.
GC_WRAPPER = """
import atexit, gc, json, sys, time
out, events, start = sys.argv.pop(1), [], [0.0]
def timing(phase, info):
    if phase == "start":
        start[0] = time.monotonic()
    else:
        events.append((start[0], info["generation"], time.monotonic() - start[0]))
gc.callbacks.append(timing)
def dump():
    with open(out, "w") as f:
        json.dump(events, f)
atexit.register(dump)
from localiot.cli import main
main(sys.argv[1:])
"""


class Localiot(Broker):
    name = "localiot"

    def __init__(self, workdir: str, extra: list[str], gc_stats: bool = False):
        self.plain_port = free_port()
        self.tls_port = free_port()
        self.api_port = free_port()
        self.log_path = os.path.join(workdir, "localiot.log")
        self.logf = open(self.log_path, "ab")
        args = ["serve", "--in-memory", "--port", str(self.api_port), "--mqtt-plain",
                "--mqtt-plain-port", str(self.plain_port), "--mqtt-tls-port", str(self.tls_port),
                "--mqtt-alpn-port", "0", "--log-level", "WARNING", *extra]
        self.argv = [sys.executable, "-m", "localiot", *args]
        self.gc_file = None
        if gc_stats:
            wrapper = os.path.join(workdir, "localiot_gc.py")
            with open(wrapper, "w") as f:
                f.write(GC_WRAPPER)
            self.gc_file = os.path.join(workdir, f"localiot-gc-{uuid.uuid4().hex[:6]}.json")
            self.argv = [sys.executable, wrapper, self.gc_file, *args]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self.logf,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=ROOT)
        RUNNING.append(self)
        deadline = time.time() + 60
        while True:
            line = self.proc.stdout.readline()
            if not line or time.time() > deadline:
                raise SystemExit(f"localiot did not start; see {self.log_path}")
            self.logf.write(line)
            if b"localiot ready on" in line:
                break
        threading.Thread(target=self._drain, daemon=True).start()
        wait_port(self.plain_port, self.proc, "localiot", self.log_path)
        self.api = f"http://{HOST}:{self.api_port}"

    def _drain(self):
        for line in self.proc.stdout:
            self.logf.write(line)

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGINT)
        if self in RUNNING:
            RUNNING.remove(self)
        self.logf.close()
        if self.gc_file:
            GC_REPORT.extend(gc_report(self.gc_file, self.windows or []))


GC_REPORT: list[str] = []


def gc_report(path: str, windows: list) -> list[str]:
    """Per measured window: time localiot spent in garbage collection, by generation."""
    try:
        with open(path) as f:
            events = json.load(f)
    except (OSError, ValueError):
        return [f"(no GC record in {path}: localiot did not exit cleanly)"]
    lines = []
    for label, t0, t1 in windows:
        inside = [(gen, d) for t, gen, d in events if t0 <= t < t1]
        by_gen = {g: [d for gen, d in inside if gen == g] for g in (0, 1, 2)}
        total = sum(d for _, d in inside)
        lines.append(f"| {label} | {t1 - t0:.1f} | {1e3 * total:,.0f} | {100 * total / (t1 - t0):.0f} | "
                     + " | ".join(f"{len(v)} / {1e3 * max(v, default=0):.1f}" for v in by_gen.values()) + " |")
    return lines


# ---------------------------------------------------------------------------
# certificates
# ---------------------------------------------------------------------------
def provision(api: str, count: int, workdir: str) -> dict:
    """localiot's CA and `count` device certificates from CreateKeysAndCertificate (policy iot:*)."""
    import boto3

    with urllib.request.urlopen(f"{api}/_localiot/ca.pem", timeout=10) as r:
        ca_pem = r.read()
    client_ca = os.path.join(workdir, "localiot-ca.pem")
    with open(client_ca, "wb") as f:
        f.write(ca_pem)
    iot = boto3.client("iot", endpoint_url=api, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                       aws_secret_access_key=SECRET_KEY)
    policy = f"bench-broker-{uuid.uuid4().hex[:8]}"
    iot.create_policy(policyName=policy, policyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }))
    certs = []
    for i in range(count):
        r = iot.create_keys_and_certificate(setAsActive=True)
        iot.attach_policy(policyName=policy, target=r["certificateArn"])
        cert, key = os.path.join(workdir, f"device-{i}.pem"), os.path.join(workdir, f"device-{i}.key")
        with open(cert, "w") as f:
            f.write(r["certificatePem"])
        with open(key, "w") as f:
            f.write(r["keyPair"]["PrivateKey"])
        os.chmod(key, 0o600)
        certs.append((cert, key))
    return {"client_ca": client_ca, "certs": certs}


def mosquitto_server_cert(workdir: str) -> dict:
    """A server certificate for Mosquitto made exactly like localiot's (RSA 2048, SANs
    localhost/127.0.0.1, signed by an RSA 2048 root, localiot.pki): in-memory localiot
    does not export its CA key, so the root is a second, equivalent CA."""
    from localiot.pki import InstallationCA

    ca = InstallationCA.generate()
    cert_pem, key_pem = ca.issue_server_certificate(["localhost"], [HOST])
    paths = {k: os.path.join(workdir, f"mosquitto-{k}.pem") for k in ("server_ca", "server_cert", "server_key")}
    for k, data in (("server_ca", ca.pem), ("server_cert", cert_pem), ("server_key", key_pem)):
        with open(paths[k], "wb") as f:
            f.write(data)
    os.chmod(paths["server_key"], 0o600)
    return paths


def tls_probe(port: int, cafile: str, cert: tuple[str, str], timeout: float = 5) -> str | None:
    """None if an MQTT CONNECT over mutual TLS gets a successful CONNACK, else why not."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.load_cert_chain(*cert)
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(load.connect_packet(f"bench-probe-{uuid.uuid4().hex[:8]}"))
                got = b""
                while len(got) < 4:
                    chunk = s.recv(4 - len(got))
                    if not chunk:
                        return f"connection closed after the TLS handshake (got {got.hex() or 'nothing'})"
                    got += chunk
                if got[0] != 0x20 or got[3] != 0:
                    return f"CONNACK refused: {got.hex()}"
                s.sendall(load.DISCONNECT)
        return None
    except Exception as e:
        return f"{type(e).__name__}: {e}"


# ---------------------------------------------------------------------------
# load-generator processes
# ---------------------------------------------------------------------------
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


def pct(sorted_values: list, q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


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
    specs = [{"role": "idle", "host": HOST, "port": port, "tls": tls, "count": c, "concurrency": conc,
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
def fmt_n(x, digits=0) -> str:
    if isinstance(x, str):
        return x
    if x is None or x != x:
        return "-"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def ratio(a, b, digits=2) -> str:
    if a is None or b is None or a != a or b != b or not b:
        return "-"
    return f"{a / b:.{digits}f}x"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 1) + ":" if i else "-" * (w + 2) for i, w in enumerate(widths)) + "|"]
    for r in rows:
        out.append("| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                   + " |")
    return out


HEADER = ["", "mosquitto", "localiot", "localiot/mosquitto"]


def get(results, broker, metric, key):
    return results.get(broker, {}).get(metric, {}).get(key)


def metric_rows(results, metric, spec) -> list[list[str]]:
    rows = []
    for label, key, digits, with_ratio in spec:
        m = get(results, "mosquitto", metric, key)
        lo = get(results, "localiot", metric, key)
        rows.append([label, fmt_n(m, digits), fmt_n(lo, digits), ratio(lo, m) if with_ratio else ""])
    return rows


def skipped(results, metric) -> list[str]:
    notes = []
    for b in BROKERS:
        why = results.get(b, {}).get("skipped", {}).get(metric)
        if why:
            notes.append(f"- {b}: skipped: {why}")
    return notes


def has(results, metrics) -> bool:
    return any(m in results.get(b, {}) or m in results.get(b, {}).get("skipped", {})
               for b in BROKERS for m in metrics)


def render(results: dict, args, meta: dict) -> str:
    out = []
    cores = os.cpu_count()
    out.append(f"MQTT broker benchmark: Mosquitto {meta['mosquitto_version']} vs localiot (one Python process, "
               f"uvloop), same load generator")
    out.append(f"Machine: {cores} CPU cores shared by the broker under test AND the load generator "
               f"({args.pub_procs} publisher processes + 1 subscriber process, or {args.gen_procs} connection "
               f"processes); Mosquitto is single-threaded, localiot is one Python process. CPU % = user+system "
               f"over the window, 100% = one core.")
    out.append("")
    w = args.duration
    mark = len(out)
    out.append(f"QoS 0 fan-in: {args.publishers} publishers -> 1 subscriber on '#', {args.payload}-byte payloads, "
               f"messages/s received by the subscriber over {w:g} s after {args.warmup:g} s warm-up")
    out.append("")
    out += table(HEADER, metric_rows(results, "qos0", [
        ("messages/s received (subscriber)", "rate", 0, True),
        ("messages/s written by publishers", "offered", 0, True),
        ("broker CPU %", "broker_cpu", 0, False),
        (f"generator CPU %: publishers ({args.pub_procs} procs)", "pub_cpu", 0, False),
        ("generator CPU %: subscriber (1 proc)", "sub_cpu", 0, False),
        ("machine CPU % (both cores: 200)", "machine_cpu", 0, False),
        ("other CPU %: idle broker / rest", "other_cpu", None, False),
        ("broker RSS at end of window (MB)", "rss_mb", 1, False),
        ("broker busy after the window (s)", "busy_after", 1, False),
    ]))
    out += skipped(results, "qos0")
    out.append("")
    if not has(results, ('qos0',)):
        del out[mark:]
    mark = len(out)
    out.append(f"QoS 1 throughput: {args.publishers} publishers at QoS 1, each keeping {args.qos1_window} PUBLISHes "
               f"in flight (refilled on PUBACK) -> 1 subscriber on '#' at QoS 1 acking every message; "
               f"{w:g} s window after {args.warmup:g} s warm-up")
    out.append("")
    out += table(HEADER, metric_rows(results, "qos1", [
        ("messages/s received (subscriber)", "rate", 0, True),
        ("PUBACKs/s received by publishers", "acked", 0, True),
        ("PUBACKed but not received in the window (%)", "unreceived_pct", 1, False),
        ("broker CPU %", "broker_cpu", 0, False),
        (f"generator CPU %: publishers ({args.pub_procs} procs)", "pub_cpu", 0, False),
        ("generator CPU %: subscriber (1 proc)", "sub_cpu", 0, False),
        ("machine CPU % (both cores: 200)", "machine_cpu", 0, False),
        ("other CPU %: idle broker / rest", "other_cpu", None, False),
        ("broker busy after the window (s)", "busy_after", 1, False),
    ]))
    out += skipped(results, "qos1")
    out.append("")
    if not has(results, ('qos1',)):
        del out[mark:]
    mark = len(out)
    out.append(f"End-to-end latency at a fixed rate: {args.rate:,} messages/s in total from {args.publishers} "
               f"publishers (QoS 0, {args.payload}-byte payload carrying the send time) -> 1 subscriber on '#'; "
               f"{args.latency_rounds} rounds of {args.latency_duration / args.latency_rounds:g} s per broker (brokers "
               f"taking turns, each round after {args.latency_warmup:g} s warm-up), samples pooled")
    out.append("")
    out += table(HEADER, metric_rows(results, "latency", [
        ("p50 (ms)", "p50", 3, True),
        ("p90 (ms)", "p90", 3, True),
        ("p99 (ms)", "p99", 3, True),
        ("p99.9 (ms)", "p99.9", 3, True),
        ("max (ms)", "max", 3, True),
        ("p99 of each round: min-max (ms)", "p99_rounds", None, False),
        ("samples", "samples", 0, False),
        ("broker CPU %", "broker_cpu", 0, False),
        ("generator CPU % (publishers + subscriber)", "gen_cpu", 0, False),
        ("machine CPU % (both cores: 200)", "machine_cpu", 0, False),
        ("other CPU %: idle broker / rest", "other_cpu", None, False),
    ]))
    out += skipped(results, "latency")
    out.append("")
    if not has(results, ('latency',)):
        del out[mark:]
    mark = len(out)
    out.append(f"Connections/s: loops of connect [+ TLS handshake] + CONNECT -> CONNACK + DISCONNECT + close, "
               f"{args.conn_concurrency * args.gen_procs} in flight for plain TCP, "
               f"{args.tls_conn_concurrency * args.gen_procs} for mutual TLS ({args.gen_procs} processes); "
               f"{args.conn_duration:g} s window after {args.conn_warmup:g} s warm-up. TLS: RSA 2048 device "
               f"certificates from CreateKeysAndCertificate, no session resumption")
    out.append("")
    rows = []
    for metric, what in (("conn_plain", "plain TCP"), ("conn_tls", "mutual TLS")):
        rows += metric_rows(results, metric, [
            (f"{what}: connections/s", "rate", 0, True),
            (f"{what}: connect time p50 (ms)", "p50", 2, True),
            (f"{what}: broker CPU %", "broker_cpu", 0, False),
            (f"{what}: generator CPU % (of which kernel)", "gen_cpu_str", None, False),
            (f"{what}: other CPU %: idle broker / rest", "other_cpu", None, False),
            (f"{what}: broker busy after the window (s)", "busy_after", 1, False),
            (f"{what}: errors", "errors", 0, False),
        ])
    out += table(HEADER, rows)
    out += skipped(results, "conn_plain") + skipped(results, "conn_tls")
    for b in BROKERS:
        for metric in ("conn_plain", "conn_tls"):
            e = get(results, b, metric, "first_error")
            if e:
                out.append(f"- {b} {metric}: first error: {e}")
    out.append("")
    if not has(results, ('conn_plain', 'conn_tls')):
        del out[mark:]
    mark = len(out)
    out.append(f"Resident memory per idle connection: RSS of the broker process after opening N idle "
               f"connections (CONNECT, keep-alive 1200 s, clean session; settled {args.settle:g} s) minus RSS "
               f"before, / N")
    out.append("")
    rows = []
    for metric, what in (("idle_plain", "plain TCP"), ("idle_tls", "mutual TLS")):
        rows += metric_rows(results, metric, [
            (f"{what}: N connections opened", "opened", 0, False),
            (f"{what}: still open when measured", "still_open", 0, False),
            (f"{what}: KB per connection", "per_conn_kb", 1, True),
            (f"{what}: RSS before (MB)", "rss0_mb", 1, False),
            (f"{what}: RSS with N open (MB)", "rss1_mb", 1, False),
            (f"{what}: connections opened/s (N open)", "open_rate", 0, True),
            (f"{what}: failed", "failed", 0, False),
        ])
    out += table(HEADER, rows)
    out += skipped(results, "idle_plain") + skipped(results, "idle_tls")
    for b in BROKERS:
        for metric in ("idle_plain", "idle_tls"):
            e = get(results, b, metric, "first_error")
            if e:
                out.append(f"- {b} {metric}: first error: {e}")
    out.append("")
    if not has(results, ('idle_plain', 'idle_tls')):
        del out[mark:]
    out.append("Goals (issue 4):")
    q0 = [get(results, b, "qos0", "rate") for b in BROKERS]
    if all(q0):
        r = q0[1] / q0[0]
        out.append(f"- QoS 0 fan-in >= 0.5x Mosquitto: {r:.2f}x -> {'met' if r >= 0.5 else 'NOT met'}")
    p99 = [get(results, b, "latency", "p99") for b in BROKERS]
    if all(p99):
        r = p99[1] / p99[0]
        out.append(f"- p99 latency <= 2x Mosquitto's: {r:.2f}x -> {'met' if r <= 2 else 'NOT met'}")
    idle = results.get("localiot", {}).get("idle_tls")
    if idle and idle.get("count"):
        n = idle["count"]
        held = idle["opened"]
        if n >= 10000:
            held = idle.get("still_open", 0)
            ok = held >= 10000 and idle["alive"]
            out.append(f"- 10,000 concurrent idle TLS connections: {held:,} of {n:,} held, localiot RSS "
                       f"{idle['rss1'] / 2**20:,.0f} MB -> {'met' if ok else 'NOT met'}")
        else:
            out.append(f"- 10,000 concurrent idle TLS connections: not run ({n:,} in this run; pass --tls-10k)")
    else:
        why = results.get("localiot", {}).get("skipped", {}).get("idle_tls", "the idle test did not run")
        out.append(f"- 10,000 concurrent idle TLS connections: not measured ({why}; run with --tests idle --tls-10k)")
    out.append("")
    out.append(f"Total wall time {meta['wall']:.0f}s; {cores} CPUs; {platform.platform()}; python "
               f"{platform.python_version()}; generator: uvloop, {args.pub_procs}+1 processes for message tests, "
               f"{args.gen_procs} for connection tests; localiot: --in-memory, plain listener without "
               f"authentication (allow-all) for message tests")
    return "\n".join(out)


def derive(results: dict) -> None:
    for r in results.values():
        if "qos0" in r:
            r["qos0"]["rss_mb"] = r["qos0"]["rss"] / 2**20
        for k in ("qos0", "qos1", "latency"):
            if k in r:
                m = r[k]
                m["gen_cpu"] = m["pub_cpu"] + m["sub_cpu"]
                other = max(0.0, m["machine_cpu"] - m["broker_cpu"] - m["gen_cpu"] - m["idle_broker_cpu"])
                m["other_cpu"] = f"{m['idle_broker_cpu']:.0f} / {other:.0f}"
        if "qos1" in r and r["qos1"]["acked"]:
            r["qos1"]["unreceived_pct"] = max(0.0, 100 * (1 - r["qos1"]["rate"] / r["qos1"]["acked"]))
        for k in ("conn_plain", "conn_tls"):
            if k in r:
                m = r[k]
                other = max(0.0, m["machine_cpu"] - m["broker_cpu"] - m["gen_cpu"] - m["idle_broker_cpu"])
                m["other_cpu"] = f"{m['idle_broker_cpu']:.0f} / {other:.0f}"
                m["gen_cpu_str"] = f"{m['gen_cpu']:.0f} ({m['gen_sys_cpu']:.0f})"
        for k in ("idle_plain", "idle_tls"):
            if k in r and "rss0" in r[k]:
                r[k]["per_conn_kb"] = r[k]["per_conn"] / 1024
                r[k]["rss0_mb"] = r[k]["rss0"] / 2**20
                r[k]["rss1_mb"] = r[k]["rss1"] / 2**20


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
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
                loc = Localiot(tmp, [], args.gc_stats) if "localiot" in brokers else None
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
                loc = Localiot(tmp, [], args.gc_stats)  # also the CA for Mosquitto's client certificates
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
                    server = mosquitto_server_cert(tmp)
                    mos = Mosquitto(mosq_exe, tmp, dict(server, client_ca=certs["client_ca"]),
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
    print(render(results, args, {"mosquitto_version": version, "wall": time.monotonic() - wall0}), flush=True)
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
