"""The brokers under test, as subprocesses: Mosquitto (installed with apt-get
if missing) and `localiot serve`, their TLS material (device certificates
from CreateKeysAndCertificate, Mosquitto's server certificate), a TLS
probe, and the optional garbage-collection report of localiot."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import mqtt_clients
from procs import HOST, ROOT, free_port, log, proc_cpu, stop_process, wait_port

REGION = "us-east-1"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
BROKERS = ("mosquitto", "localiot")


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

    def __init__(self, workdir: str, extra: list[str], gc_stats: bool = False, root: str = ROOT,
                 store: str = "memory"):
        self.plain_port = free_port()
        self.tls_port = free_port()
        self.api_port = free_port()
        self.log_path = os.path.join(workdir, "localiot.log")
        self.logf = open(self.log_path, "ab")
        # store "memory": --in-memory (every row in the process's RSS); "file": the SQLite file
        # `localiot serve` uses by default (rows on disk, WAL), in a directory of the workdir
        where = ["--in-memory"] if store == "memory" else ["--data-dir", os.path.join(workdir, f"data-{uuid.uuid4().hex[:6]}")]
        args = ["serve", *where, "--port", str(self.api_port), "--mqtt-plain",
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
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=root)
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
    """localiot's CAs and `count` device certificates from CreateKeysAndCertificate (policy iot:*).

    "client_ca": what clients trust for localiot's server certificate (GET /_localiot/ca.pem);
    "device_ca": the device certificates' issuer (GET /_localiot/device-ca.pem), what another
    broker trusts for them; "chain_ca": the CA an OpenSSL client sends after the device
    certificate, or None. A localiot with a device CA apart from its root (2026-12-04 on)
    gets the device certificate alone; an older one, whose ca.pem issued the device
    certificates, gets certificate + CA (the client completes its chain from its trust
    store), and then device_ca = chain_ca = client_ca."""
    import boto3

    with urllib.request.urlopen(f"{api}/_localiot/ca.pem", timeout=10) as r:
        ca_pem = r.read()
    client_ca = os.path.join(workdir, "localiot-ca.pem")
    with open(client_ca, "wb") as f:
        f.write(ca_pem)
    try:
        with urllib.request.urlopen(f"{api}/_localiot/device-ca.pem", timeout=10) as r:
            device_pem = r.read()
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
        device_ca, chain_ca = client_ca, client_ca  # an older tree: ca.pem issues device certificates
    else:
        device_ca, chain_ca = os.path.join(workdir, "localiot-device-ca.pem"), None
        with open(device_ca, "wb") as f:
            f.write(device_pem)
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
    return {"client_ca": client_ca, "device_ca": device_ca, "chain_ca": chain_ca, "certs": certs}


def mosquitto_server_cert(workdir: str, chain_ca: str | None = None) -> dict:
    """A server certificate for Mosquitto made exactly like localiot's (RSA 2048, SANs
    localhost/127.0.0.1, signed by an RSA 2048 root, localiot.pki): in-memory localiot
    does not export its CA key, so the root is a second, equivalent CA.

    Both brokers must receive the same client chain. localiot's clients trust its root
    (ca.pem), which does not issue device certificates: they send the device certificate
    alone, and so do Mosquitto's, trusting this root alone ("server_ca"). `chain_ca`
    (provision()'s, for an older localiot whose root issued the device certificates):
    its clients send certificate + that CA, so it goes beside Mosquitto's root in what
    Mosquitto's clients trust and they send the same two certificates (without it
    Mosquitto parsed one certificate less per handshake, 1.7 M instructions, ~11%)."""
    from localiot.pki import InstallationCA

    ca = InstallationCA.generate()
    cert_pem, key_pem = ca.issue_server_certificate(["localhost"], [HOST])
    trusted = ca.pem
    if chain_ca is not None:
        with open(chain_ca, "rb") as f:
            trusted += b"\n" + f.read()
    paths = {k: os.path.join(workdir, f"mosquitto-{k}.pem") for k in ("server_ca", "server_cert", "server_key")}
    for k, data in (("server_ca", trusted), ("server_cert", cert_pem), ("server_key", key_pem)):
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
                s.sendall(mqtt_clients.connect_packet(f"bench-probe-{uuid.uuid4().hex[:8]}"))
                got = b""
                while len(got) < 4:
                    chunk = s.recv(4 - len(got))
                    if not chunk:
                        return f"connection closed after the TLS handshake (got {got.hex() or 'nothing'})"
                    got += chunk
                if got[0] != 0x20 or got[3] != 0:
                    return f"CONNACK refused: {got.hex()}"
                s.sendall(mqtt_clients.DISCONNECT)
        return None
    except Exception as e:
        return f"{type(e).__name__}: {e}"


# ---------------------------------------------------------------------------
# load-generator processes
# ---------------------------------------------------------------------------
