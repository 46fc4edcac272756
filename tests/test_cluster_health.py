"""GET /_localiot/health reports the store, the message fabric and the node
(issue 21 item 4), and answers 503 when the node cannot serve: its store or
its fabric unreachable. Real `localiot serve` processes on a real SQLite
file, a real PostgreSQL that the test stops, a real nats-server that the
test stops."""

from __future__ import annotations

import pytest

from cluster_nodes import Node, wait_for
from localiot.store.migrations import MIGRATIONS
from localiot.testing.nats import NatsServer
from localiot.testing.postgres import PostgresServer

SCHEMA = max(version for version, _ in MIGRATIONS)


@pytest.fixture
def nodes():
    started: list[Node] = []
    yield started
    for node in started:
        node.stop()


def test_a_single_sqlite_node_is_healthy_and_says_what_it_is(nodes, tmp_path):
    node = Node("solo", tmp_path, store="", period=0)
    nodes.append(node.start())
    status, health = node.health()
    assert status == 200 and health["status"] == "running"
    assert health["store"] == {"backend": "sqlite", "location": str(tmp_path / "solo" / "data" / "localiot.db"),
                               "reachable": True, "schemaVersion": SCHEMA}
    assert health["fabric"] == {"kind": "none", "connected": None}
    assert health["node"]["id"] == "solo" and health["node"]["pid"] == node.process.pid
    assert health["periodic"] == {"mode": "single-node", "held": "all"}
    assert health["workers"] is None  # SQLite: units of work run on the loop
    assert health["listeners"]["api"] == node.endpoint.removeprefix("http://")


def test_a_node_whose_postgresql_is_gone_answers_503(nodes, tmp_path):
    pg = PostgresServer().start()
    try:
        dsn = pg.create_database()
        node = Node("pg", tmp_path, store=dsn)
        nodes.append(node.start())
        status, health = node.health()
        assert status == 200 and health["status"] == "running"
        store = health["store"]
        assert store["backend"] == "postgresql" and store["reachable"] is True
        assert store["schemaVersion"] == SCHEMA and store["location"] == dsn
        assert health["periodic"]["mode"] == "postgresql-advisory-locks"
        workers = health["workers"]
        assert workers["threads"] == 4 and workers["busy"] >= 0 and workers["queued"] >= 0
        assert wait_for(lambda: node.health()[1]["periodic"]["held"])
    finally:
        pg.stop()  # immediate shutdown: every session is cut
    status, health = wait_for(lambda: (lambda answer: answer if answer[0] == 503 else None)(node.health()))
    assert health["status"] == "unhealthy"
    assert health["store"]["reachable"] is False and health["store"]["error"]
    # With its sessions gone it holds no job: it runs no timers until PostgreSQL is back.
    assert wait_for(lambda: node.health()[1]["periodic"]["held"] == [])


def test_a_node_that_lost_nats_answers_503(nodes, tmp_path, localiot_postgres):
    nats = NatsServer().start()
    dsn = localiot_postgres.create_database()
    try:
        node = Node("meshed", tmp_path, store=dsn, fabric=nats.url)
        nodes.append(node.start())
        status, health = node.health()
        assert status == 200
        fabric = health["fabric"]
        assert fabric["kind"] == "nats" and fabric["connected"] is True and fabric["url"] == nats.url
        assert fabric["nodeId"].startswith("meshed-")
        assert fabric["qos1"] == {"waiting": 0, "batches": 0, "timeouts": 0, "requeued": 0}
    finally:
        nats.stop()
    status, health = wait_for(lambda: (lambda answer: answer if answer[0] == 503 else None)(node.health()))
    assert health["status"] == "unhealthy" and health["fabric"]["connected"] is False
    assert health["store"]["reachable"] is True  # only the fabric is gone
    node.stop()
    localiot_postgres.drop_database(dsn)
