"""A node killed with SIGKILL: its devices reconnect through another node,
nothing it acknowledged is lost, and what is published for its away sessions
after its death is queued by the node that adopted them. Two `localiot serve` processes on one
PostgreSQL database and one nats-server (so one of them can really die)."""

import time

import pytest
from cluster_nodes import Node

from localiot.testing import Device, DevicePool


class PlainNode(Node):
    """A `localiot serve` process (tests/cluster_nodes.py) with plain MQTT for allow-all devices,
    INFO logs (the adoption is read from them) and no timers."""

    def __init__(self, folder, name: str, store: str, fabric: str):
        super().__init__(name, folder, store=store, fabric=fabric, period=0,
                         extra=["--mqtt-plain", "--mqtt-plain-port", "0", "--log-level", "INFO"])
        self.mqtt_port = 0

    def wait_ready(self) -> "PlainNode":
        super().wait_ready()
        self.mqtt_port = self.listener("mqtt-plain")
        return self

    def device(self, client_id: str, **kw) -> Device:
        return Device(self.mqtt_port, client_id, version=4, **kw)


@pytest.fixture
def two_nodes(localiot_nats, tmp_path):
    from localiot.testing.postgres import shared_server

    pg = shared_server()
    dsn = pg.create_database()
    nodes = [PlainNode(tmp_path, name, dsn, localiot_nats) for name in ("a", "b")]
    try:
        for node in nodes:  # both start at once (imports, migrations)
            node.launch()
        yield [node.wait_ready() for node in nodes]
    finally:
        for node in nodes:
            node.stop()
        pg.drop_database(dsn)


def test_sigkill_of_a_node_loses_nothing_it_acknowledged(two_nodes):
    a, b = two_nodes
    made = DevicePool()
    try:
        # a persistent session on node a that is away, and one that is connected
        away = a.device("away", clean=False).connect_ok()
        made.add(away)
        away.subscribe("work/#", qos=1)
        away.close()
        here = a.device("here", clean=False).connect_ok()
        made.add(here)
        here.subscribe("alerts/#", qos=1)
        publisher = a.device("pub").connect_ok()
        made.add(publisher)
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
        made.add(late)
        assert late.publish("work/late", b"late", qos=1) == 0

        back = b.device("away", clean=False)
        made.add(back)
        back.connect_ok()
        assert back.session_present is True
        assert sorted(back.expect().payload for _ in range(6)) == [b"0", b"1", b"2", b"3", b"4", b"late"]

        here_again = b.device("here", clean=False)
        made.add(here_again)
        here_again.connect_ok()
        assert here_again.session_present is True  # its subscriptions came along from the store
        sender = b.device("pub-b").connect_ok()
        made.add(sender)
        assert sender.publish("alerts/fire", b"!", qos=1) == 0
        assert here_again.expect("alerts/fire").payload == b"!"
    finally:
        made.close()
