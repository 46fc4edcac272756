"""AWS's real localproxy (aws-samples/aws-iot-securetunneling-localproxy) and a
real sshd, run as processes against a localiot relay: for
tests/test_tunneling_real_localproxy.py and bench/tunneling.py.

The binary is $LOCALIOT_LOCALPROXY, `localproxy` on PATH, or where
bench/build_localproxy.sh puts it (~/.cache/localiot/localproxy/bin); sshd is
/usr/sbin/sshd (Debian's openssh-server). Both are found or answered None with
the reason, never installed from here."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

PROTOCOL = "aws.iot.securetunneling-{}.0"
# localproxy's buffer for bytes on their way to a local TCP peer may hold 131076 bytes by default and
# it keeps reading the tunnel when it is full: a local peer that falls behind for a moment makes it
# exit with "[fatal] basic_multi_buffer too long" (aws-iot-securetunneling-localproxy issue #160;
# AWS's per-tunnel bandwidth quota hides it). Its documented setting raises the ceiling.
ROOMY = {"tcp": {"write_buffer_size": str(64 << 20)}}
BUILT = os.path.join(os.environ.get("LOCALPROXY_PREFIX") or os.path.expanduser("~/.cache/localiot/localproxy"),
                     "bin", "localproxy")  # bench/build_localproxy.sh's output


def localproxy_binary() -> tuple[str | None, str]:
    """(path, "") or (None, why not)."""
    path = os.environ.get("LOCALIOT_LOCALPROXY") or shutil.which("localproxy") \
        or (BUILT if os.path.exists(BUILT) else None)
    if not path:
        return None, "AWS localproxy not found: set LOCALIOT_LOCALPROXY, put localproxy on PATH or run " \
                     f"bench/build_localproxy.sh (builds {BUILT})"
    if not os.access(path, os.X_OK):
        return None, f"LOCALIOT_LOCALPROXY={path} is not an executable file"
    return path, ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ca_directory(api_endpoint: str, into: str) -> str:
    """A --capath folder: the installation CA from /_localiot/ca.pem, hashed by `openssl rehash`."""
    os.makedirs(into, exist_ok=True)
    with urllib.request.urlopen(api_endpoint + "/_localiot/ca.pem") as response, \
            open(os.path.join(into, "ca.pem"), "wb") as out:
        out.write(response.read())
    subprocess.run(["openssl", "rehash", into], check=True, capture_output=True)
    return into


class LocalProxyProcess:
    """One localproxy process. `mapping` is what -d / -s take ("22", "SSH1=127.0.0.1:22,SSH2=..."
    or "5555", "SSH1=5555,SSH2=5556"); the token travels in AWSIOT_TUNNEL_ACCESS_TOKEN, not argv.
    `version` 2 sets the subprotocol to aws.iot.securetunneling-2.0 (and -y V2 on a source);
    `settings` are tunneling.proxy.* settings (e.g. ROOMY) passed with --settings-json;
    `destination_client_type` ("V1") is -y alone, keeping the subprotocol (protocol 3)."""

    def __init__(self, binary: str, endpoint: str, capath: str, token: str, mode: str, mapping: str, *,
                 version: int = 3, client_token: str | None = None, workdir: str | None = None,
                 verbosity: int = 4, settings: dict | None = None, destination_client_type: str | None = None):
        self.mode, self.mapping = mode, mapping
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"localproxy-{mode}-")
        self.log_path = os.path.join(self.workdir, f"{mode}.log")
        argv = [binary, "--proxy-endpoint", endpoint, "--capath", capath,
                "-d" if mode == "destination" else "-s", mapping, "-v", str(verbosity),
                "--config-dir", self.workdir]
        proxy = dict(settings or {})
        if version != 3:
            proxy["websocket"] = {**proxy.get("websocket", {}), "subprotocol": PROTOCOL.format(version)}
            if mode == "source":
                argv += ["-y", f"V{version}"]
        if destination_client_type:  # -y alone: a source whose destination is an older local proxy
            argv += ["-y", destination_client_type]
        if proxy:  # --settings-json: tunneling.proxy.* as --export-default-settings writes them
            path = os.path.join(self.workdir, "settings.json")
            with open(path, "w") as out:
                json.dump({"tunneling": {"proxy": proxy}}, out)
            argv += ["--settings-json", path]
        env = dict(os.environ, AWSIOT_TUNNEL_ACCESS_TOKEN=token)
        if client_token:
            env["AWSIOT_TUNNEL_CLIENT_TOKEN"] = client_token
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=self.workdir)

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_for(self, text: str, count: int = 1, timeout: float = 20.0) -> None:
        """Until the log holds `text` `count` times (AssertionError with the log if not, or if it exits)."""
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            if self.process.poll() is not None:
                raise AssertionError(f"localproxy ({self.mode}) exited {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"localproxy ({self.mode}) never logged {text!r}:\n{self.log()[-4000:]}")
            time.sleep(0.02)

    def ready(self, services: int = 1, timeout: float = 20.0) -> "LocalProxyProcess":
        """Connected to the relay (and, as a source, listening on its `services` ports)."""
        self.wait_for("Successfully established websocket connection", timeout=timeout)
        if self.mode == "source":
            self.wait_for("Listening for new connection on port", services, timeout)
        return self

    def wait_exit(self, timeout: float = 20.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"localproxy ({self.mode}) still running:\n{self.log()[-4000:]}") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class EchoServer:
    """A threaded TCP echo server on a free loopback port."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn):
        with conn:
            try:
                while data := conn.recv(1 << 18):
                    conn.sendall(data)
            except OSError:
                pass

    def close(self):
        self.sock.close()


class SinkServer(EchoServer):
    """A one-way transfer's far end: each connection sends an 8-byte big-endian length, then
    that many bytes; the sink reads them all and answers b"ok"."""

    @staticmethod
    def _echo(conn):
        with conn:
            try:
                header = b""
                while len(header) < 8 and (data := conn.recv(8 - len(header))):
                    header += data
                left = int.from_bytes(header, "big")
                buffer = bytearray(1 << 20)
                while left > 0 and (count := conn.recv_into(buffer, min(len(buffer), left))):
                    left -= count
                if left == 0:
                    conn.sendall(b"ok")
            except OSError:
                pass


def one_way(port, data: bytes, timeout: float = 120.0) -> bool:
    """Send `data` to a SinkServer through the local port; True once the sink has all of it."""
    with (port if isinstance(port, socket.socket) else connect(port, timeout)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(len(data).to_bytes(8, "big"))
        conn.sendall(data)
        answer = b""
        while len(answer) < 2 and (got := conn.recv(2 - len(answer))):
            answer += got
        return answer == b"ok"


def connect(port: int, timeout: float = 30.0, attempts: int = 50) -> socket.socket:
    """A connection to a local port (a source localproxy may still be binding it)."""
    for _ in range(attempts):
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except ConnectionRefusedError:
            time.sleep(0.05)
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def staggered_connections(port: int, count: int, timeout: float = 120.0) -> list[socket.socket]:
    """`count` connections to a source localproxy's port, one at a time: it listens with a backlog
    of 0 (acceptor_.listen(0) in TcpAdapterProxy.cpp), so simultaneous connects may be reset."""
    conns = []
    for _ in range(count):
        conns.append(connect(port, timeout))
        time.sleep(0.05)
    return conns


def echo_round_trip(port, data: bytes, timeout: float = 120.0) -> bytes:
    """Send `data` through the local port (or an open connection to it), read as many bytes back
    (writing and reading overlap, the reader receives straight into one buffer: a slow reader
    would overflow localproxy). A bytearray, compared with bytes as is."""
    with (port if isinstance(port, socket.socket) else connect(port, timeout)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer = threading.Thread(target=conn.sendall, args=(data,), daemon=True)
        writer.start()
        got = bytearray(len(data))
        view, filled = memoryview(got), 0
        while filled < len(data):
            count = conn.recv_into(view[filled:], min(1 << 20, len(data) - filled))
            if not count:
                break
            filled += count
        writer.join(timeout)
        return got if filled == len(got) else got[:filled]  # (no copy of a whole echo)


class Sshd:
    """sshd in the foreground on a free loopback port, with a temporary host key and one
    authorized client key (for the user running it)."""

    BINARY = "/usr/sbin/sshd"

    @classmethod
    def unavailable(cls) -> str:
        if not os.access(cls.BINARY, os.X_OK) or not shutil.which("ssh") or not shutil.which("ssh-keygen"):
            return "openssh-server / openssh-client not installed (apt-get install -y openssh-server openssh-client)"
        if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
            try:
                os.makedirs("/run/sshd", mode=0o755)  # sshd's privilege separation directory
            except OSError as error:
                return f"sshd needs /run/sshd: {error}"
        return ""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="localiot-sshd-")
        for key in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(self.dir, key)],
                           check=True)
        self.client_key = os.path.join(self.dir, "client")
        shutil.copy(self.client_key + ".pub", os.path.join(self.dir, "authorized_keys"))
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "sshd.log")
        self.process = subprocess.Popen(
            [self.BINARY, "-D", "-e", "-p", str(self.port), "-h", os.path.join(self.dir, "host"),
             "-o", "ListenAddress=127.0.0.1", "-o", f"AuthorizedKeysFile={self.dir}/authorized_keys",
             "-o", "PidFile=none", "-o", "UsePAM=no", "-o", "StrictModes=no",
             "-o", "PermitRootLogin=prohibit-password"],
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while "Server listening" not in open(self.log_path).read():
            assert self.process.poll() is None and time.monotonic() < deadline, open(self.log_path).read()
            time.sleep(0.02)

    def ssh(self, port: int, *command: str, input: bytes | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        """`ssh -p port 127.0.0.1 command...` with the authorized key (through a tunnel: the source's
        port), `input` on its stdin."""
        return subprocess.run(
            ["ssh", "-p", str(port), "-i", self.client_key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20",
             "127.0.0.1", *command], capture_output=True, timeout=timeout, input=input,
            **({} if input is not None else {"stdin": subprocess.DEVNULL}))

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":  # servers of its own: `python tunneling_binary.py` prints the echo's, then the sink's port
    import sys

    server, sink = EchoServer(), SinkServer()
    print(server.port, flush=True)
    print(sink.port, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
