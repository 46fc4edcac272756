"""Real `localiot serve` processes sharing one store, for the multi-node tests
(tests/test_cluster_*.py): each node is its own process, so a test can
SIGKILL one and watch the others."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

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
        self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=self.env)
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
