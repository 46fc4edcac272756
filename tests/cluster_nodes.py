"""Several localiot nodes for the multi-node tests.

`Node`: a real `localiot serve` process sharing one store (tests/test_cluster_*.py):
each node is its own process, so a test can SIGKILL or SIGSTOP one and watch the
others. `two_nodes`: two servers in this process (each on its own loop thread)
joined by one nats-server, each with its own SQLite file or both on one
PostgreSQL database (tests/test_fabric_pubsub.py, tests/test_multinode_cluster.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from localiot.testing import DevicePool, plain_device
# (a test module that uses two_nodes picks its store itself: it does not hold
# local_server by name, so the kit does not run it once per session store)
from localiot.testing import server as kit

BIN = Path(sys.executable).parent
START_SECONDS = 60


class Node:
    def __init__(self, name: str, folder: Path, *, store: str, fabric: str | None = None, period: float = 0.2,
                 extra: list[str] | None = None, env: dict | None = None):
        self.name, self.folder = name, folder / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = self.folder / "serve.log"
        self.args = [str(BIN / "localiot"), "serve", "--port", "0", "--mqtt-tls-port", "0",
                     "--mqtt-alpn-port", "0", "--data-dir", str(self.folder / "data"), *(extra or [])]
        self.env = {**os.environ, "LOCALIOT_STORE": store, "LOCALIOT_NODE_ID": name,
                    "LOCALIOT_BACKGROUND_PERIOD": str(period), **(env or {})}
        if fabric:
            self.env["LOCALIOT_FABRIC"] = fabric
        self.process: subprocess.Popen | None = None
        self.endpoint = ""

    def start(self) -> "Node":
        return self.launch().wait_ready()

    def launch(self) -> "Node":
        """Start the process without waiting (start several, then wait_ready each)."""
        out = open(self.log, "w")
        # SIGINT as at a terminal: a suite run as a background job ignores it, and the node
        # would inherit that (tests/test_cluster_stop.py sends it, as Ctrl-C does)
        self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                        preexec_fn=_interruptible)
        out.close()
        return self

    def wait_ready(self) -> "Node":
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            for line in self.log.read_text().splitlines():
                if line.startswith("localiot ready on "):
                    self.endpoint = line.removeprefix("localiot ready on ").strip()
                    return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"node {self.name} did not start:\n{self.log.read_text()[-3000:]}")

    def health(self) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.endpoint + "/_localiot/health", timeout=10) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def listener(self, name: str) -> int:
        return int(self.health()[1]["listeners"][name].rsplit(":", 1)[1])

    def signal(self, number: int) -> None:
        """Send `number` (SIGSTOP, SIGCONT ...) to the node's process."""
        self.process.send_signal(number)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(predicate, seconds: float = 20.0, every: float = 0.1):
    """Poll `predicate` until it answers something true (real time passing: a node's
    death is noticed by PostgreSQL and by the others' next lock try); its answer."""
    deadline = time.monotonic() + seconds
    while True:
        answer = predicate()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(every)


@contextmanager
def two_nodes(nats: str, *, shared_postgres: bool, **settings):
    """Two in-process nodes on one nats-server with plain MQTT listeners and no timers:
    each with its own SQLite file, or (shared_postgres) both on one fresh PostgreSQL database."""
    settings = dict(mqtt_plain=True, fabric=nats, background_period=0, **settings)
    if not shared_postgres:
        with kit.local_server(store="sqlite", **settings) as a, kit.local_server(store="sqlite", **settings) as b:
            yield a, b
        return
    from localiot.testing.postgres import shared_server

    pg = shared_server()
    dsn = pg.create_database()
    try:
        with kit.local_server(store=dsn, **settings) as a, kit.local_server(store=dsn, **settings) as b:
            yield a, b
    finally:
        pg.drop_database(dsn)


@contextmanager
def postgres_node(**settings):
    """One in-process localiot on a throwaway database of the shared PostgreSQL: (server, dsn).
    A module using it picks its store itself: it holds no local_server by name, so the kit
    does not run it once per session store."""
    from localiot.testing.postgres import shared_server

    pg = shared_server()
    dsn = pg.create_database()
    try:
        with kit.local_server(mqtt_plain=True, background_period=0, store=dsn, **settings) as server:
            yield server, dsn
    finally:
        pg.drop_database(dsn)


@pytest.fixture
def devices():
    """MQTT devices a test connects (closed after it)."""
    pool = DevicePool()
    yield pool
    pool.close()


def on(devices, server, client_id=None, **kw):
    """A plain MQTT device connected to `server`, closed with the test."""
    return devices.add(plain_device(server, client_id, **kw))


def until(predicate, seconds: float = 5.0) -> bool:
    """What crosses nodes arrives asynchronously: poll briefly for its effect."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _interruptible() -> None:
    """In the node's process, before exec: SIGINT's default disposition (Python then installs
    its KeyboardInterrupt handler; a signal ignored at exec would stay ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
