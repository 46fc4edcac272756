"""A node killed with SIGKILL: its devices reconnect through another node,
nothing it acknowledged is lost, and what is published for its away sessions
after its death is queued by the node that adopted them. Two `localiot serve` processes on one
PostgreSQL database and one nats-server (so one of them can really die)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localiot.testing import Device

BIN = Path(sys.executable).parent


class Node:
    """`localiot serve` in a process of its own, plain MQTT on for allow-all devices."""

    def __init__(self, folder: Path, name: str, store: str, fabric: str):
        self.log = folder / f"{name}.log"
        (folder / name).mkdir()
        args = [str(BIN / "localiot"), "serve", "--port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0",
                "--mqtt-plain", "--mqtt-plain-port", "0", "--data-dir", str(folder / name), "--log-level", "INFO"]
        env = {**os.environ, "LOCALIOT_STORE": store, "LOCALIOT_FABRIC": fabric, "LOCALIOT_NODE_ID": name,
               "LOCALIOT_BACKGROUND_PERIOD": "0"}
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.mqtt_port = 0

    def wait_ready(self) -> "Node":
        self.mqtt_port = self._ready_port()
        return self

    def _ready_port(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = self.log.read_text()
            if "localiot ready on " in text:
                for line in text.splitlines():
                    if "MQTT tcp listener on" in line:
                        return int(line.rsplit(":", 1)[1])
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"node did not start:\n{self.log.read_text()[-3000:]}")

    def device(self, client_id: str, **kw) -> Device:
        return Device(self.mqtt_port, client_id, version=4, **kw)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def two_nodes(localiot_nats, tmp_path):
    from localiot.testing.postgres import shared_server

    pg = shared_server()
    dsn = pg.create_database()
    nodes = []
    try:
        nodes.append(Node(tmp_path, "a", dsn, localiot_nats))
        nodes.append(Node(tmp_path, "b", dsn, localiot_nats))  # both start at once (imports, migrations)
        yield [node.wait_ready() for node in nodes]
    finally:
        for node in nodes:
            node.stop()
        pg.drop_database(dsn)


def test_sigkill_of_a_node_loses_nothing_it_acknowledged(two_nodes):
    a, b = two_nodes
    made = []
    try:
        # a persistent session on node a that is away, and one that is connected
        away = a.device("away", clean=False).connect_ok()
        made.append(away)
        away.subscribe("work/#", qos=1)
        away.close()
        here = a.device("here", clean=False).connect_ok()
        made.append(here)
        here.subscribe("alerts/#", qos=1)
        publisher = a.device("pub").connect_ok()
        made.append(publisher)
        for i in range(5):  # acknowledged by node a: stored for "away" before each PUBACK
            assert publisher.publish(f"work/{i}", str(i).encode(), qos=1) == 0
        a.kill()
        assert here.wait_closed()
        # node b notices (no heartbeat for a few seconds) and adopts a's persistent sessions:
        # what is published for them from now on is queued again
        deadline = time.monotonic() + 15
        while "adopted 2 persistent sessions" not in b.log.read_text():
            assert time.monotonic() < deadline, b.log.read_text()[-2000:]
            time.sleep(0.1)
        late = b.device("pub-late").connect_ok()
        made.append(late)
        assert late.publish("work/late", b"late", qos=1) == 0

        back = b.device("away", clean=False)
        made.append(back)
        back.connect_ok()
        assert back.session_present is True
        assert sorted(back.expect().payload for _ in range(6)) == [b"0", b"1", b"2", b"3", b"4", b"late"]

        here_again = b.device("here", clean=False)
        made.append(here_again)
        here_again.connect_ok()
        assert here_again.session_present is True  # its subscriptions came along from the store
        sender = b.device("pub-b").connect_ok()
        made.append(sender)
        assert sender.publish("alerts/fire", b"!", qos=1) == 0
        assert here_again.expect("alerts/fire").payload == b"!"
    finally:
        for device in made:
            try:
                device.close()
            except Exception:
                pass
