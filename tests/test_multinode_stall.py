"""A node that is alive but stalled (SIGSTOP: no heartbeats, its TCP connections
still open) is not taken for dead: while its PostgreSQL session holds its
liveness lock, the other node adopts none of its persistent sessions, and once
it resumes (SIGCONT) its devices go on through it (localiot.fabric.liveness).
Two `localiot serve` processes on one PostgreSQL database and one nats-server."""

import json
import signal
import time

import psycopg
import pytest

from cluster_nodes import Node, wait_for
from localiot.broker.persistence import REF_KIND
from localiot.fabric.liveness import DEAD_AFTER, HEARTBEAT
from localiot.testing import Device

PLAIN = ["--mqtt-plain", "--mqtt-plain-port", "0", "--log-level", "INFO"]


@pytest.fixture
def cluster(localiot_nats, tmp_path):
    from localiot.testing.postgres import shared_server

    pg = shared_server()
    dsn = pg.create_database()
    nodes = [Node(name, tmp_path, store=dsn, fabric=localiot_nats, period=0, extra=PLAIN).launch()
             for name in ("a", "b")]
    try:
        yield dsn, [node.wait_ready() for node in nodes]
    finally:
        for node in nodes:
            node.signal(signal.SIGCONT) if node.process.poll() is None else None
            node.stop()
        pg.drop_database(dsn)


def home_of(dsn: str, client_id: str) -> str | None:
    """The node the stored session's ref names (its fabric node id: name-random)."""
    with psycopg.connect(dsn) as conn:
        for (doc,) in conn.execute("SELECT doc FROM objects WHERE kind = %s", (REF_KIND,)):
            ref = json.loads(doc)
            if ref.get("clientId") == client_id:
                return ref.get("node")
    return None


def test_a_stalled_node_keeps_its_sessions_and_goes_on_when_it_resumes(cluster):
    dsn, (a, b) = cluster
    sleeper = Device(a.listener("mqtt-plain"), "sleeper", version=4, clean=False).connect_ok()
    waker = Device(b.listener("mqtt-plain"), "waker", version=4).connect_ok()
    try:
        sleeper.subscribe("wake/#", qos=1)
        assert wait_for(lambda: (home_of(dsn, "sleeper") or "").startswith("a-"))
        time.sleep(2.5 * HEARTBEAT)  # b has heard a's heartbeats: a is a node b knows
        a.signal(signal.SIGSTOP)
        try:
            time.sleep(DEAD_AFTER + 4 * HEARTBEAT)  # silent long enough to be taken for dead
            # b finds a silent on its next checks (later still on a loaded machine) ...
            assert wait_for(lambda: "stalled, not dead" in b.log.read_text(), seconds=30)
            assert "node a-" in b.log.read_text()
            time.sleep(2 * HEARTBEAT)  # ... and adopts nothing on the checks after that
            assert "sessions of nodes that are gone" not in b.log.read_text()
            assert "is gone" not in b.log.read_text()
            assert home_of(dsn, "sleeper").startswith("a-")
        finally:
            a.signal(signal.SIGCONT)
        assert waker.publish("wake/up", b"morning", qos=1) == 0
        assert sleeper.expect("wake/up").payload == b"morning"
        assert home_of(dsn, "sleeper").startswith("a-")
    finally:
        sleeper.close()
        waker.close()
