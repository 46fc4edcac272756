"""Time-driven work on several nodes sharing one PostgreSQL store (issue 21
item 3): each @periodic job runs on exactly one node, moves to another node
when its holder is SIGKILLed, a clock move is the whole installation's, and
the installation CA is one for every node (item 4).

Real `localiot serve` processes (tests/cluster_nodes.py) on a throwaway
PostgreSQL (localiot.testing.postgres). Takeover needs real time to pass
(the dead node's session closing, the others' next lock try, every 0.2 s
here): those waits poll with a deadline; the rest moves the injectable clock."""

from __future__ import annotations

import json
import urllib.request

import psycopg
import pytest

from cluster_nodes import Node, wait_for
from fleethub_kit import ROLE_ARN, fleethub_client
from localiot.background import registered
from localiot.cluster.locks import OWNER
from localiot.services import load_all
from localiot.testing import ALLOW_ALL, Device, ca_file, make_client, move_clock, new_certificate

load_all()
JOBS = sorted(job.name for job in registered())


@pytest.fixture
def dsn(localiot_postgres):
    url = localiot_postgres.create_database()
    yield url
    localiot_postgres.drop_database(url)


@pytest.fixture
def start(tmp_path, dsn):
    started: list[Node] = []

    def start_nodes(*names: str) -> list[Node]:
        """Nodes launched together (their start-up overlaps), each ready when this returns."""
        nodes = [Node(name, tmp_path, store=dsn) for name in names]
        started.extend(nodes)
        for node in nodes:
            node.launch()
        return [node.wait_ready() for node in nodes]

    def start_node(name: str) -> Node:
        return start_nodes(name)[0]

    start_node.many = start_nodes
    yield start_node
    for node in started:
        node.stop()


def held(node: Node) -> set[str]:
    return set(node.health()[1]["periodic"]["held"])


def offset(node: Node) -> float:
    """The node's clock offset (GET /_localiot/clock: reads, runs nothing)."""
    with urllib.request.urlopen(node.endpoint + "/_localiot/clock") as answer:
        return json.load(answer)["offset"]


def holders_in_postgres(dsn: str) -> dict[str, int]:
    """application_name -> owner locks its session holds in this database, as PostgreSQL sees it
    (advisory locks are per database; the server may hold other tests' databases too)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT a.application_name, count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.classid = %s AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) GROUP BY 1", (OWNER,)).fetchall()
    return dict(rows)


def runs(node: Node) -> dict[str, int]:
    return node.health()[1]["periodic"]["runs"]


def spread(nodes: list[Node]) -> list[set[str]] | None:
    """Each node's jobs once every job has one holder and the jobs are spread
    (none holds more than its share), else None."""
    sets = [held(n) for n in nodes]
    share = -(-len(JOBS) // len(nodes))
    if sum(map(len, sets)) == len(JOBS) and set().union(*sets) == set(JOBS) and all(len(s) <= share for s in sets):
        return sets
    return None


def test_every_job_runs_on_exactly_one_node(start, dsn):
    nodes = start.many("n1", "n2", "n3")
    sets = wait_for(lambda: spread(nodes), seconds=30)
    assert sets and all(sets)  # every job on one node, and every node runs some
    assert sum(holders_in_postgres(dsn).values()) == len(JOBS)
    for node in nodes:
        report = node.health()[1]["periodic"]
        assert report["mode"] == "postgresql-advisory-locks" and report["connected"] is True
    # Over two seconds of timers (every 0.2 s), a job runs on its holder and nowhere else.
    before = [runs(n) for n in nodes]
    wait_for(lambda: False, seconds=2.0)
    after = [runs(n) for n in nodes]
    assert [held(n) for n in nodes] == sets  # (nothing moved meanwhile)
    for mine, was, now in zip(sets, before, after):
        ran = {job for job in now if now[job] > was.get(job, 0)}
        assert ran <= mine
        assert "fleethub-applications" not in mine or "fleethub-applications" in ran


def test_sigkill_of_the_holder_moves_its_timers_to_another_node(start, dsn):
    first = start("first")
    assert wait_for(lambda: held(first) == set(JOBS))  # alone, the first node takes every job
    second = start("second")
    assert wait_for(lambda: spread([first, second]), seconds=30)  # then hands half over
    first.kill()  # SIGKILL: its PostgreSQL sessions close, its advisory locks are freed
    assert wait_for(lambda: held(second) == set(JOBS))
    assert list(holders_in_postgres(dsn).values()) == [len(JOBS)]
    # A Fleet Hub application goes CREATING -> ACTIVE on the "fleethub-applications"
    # timer alone (no clock move): only the surviving node's timer can do it now.
    make_client(second).update_indexing_configuration(
        thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    hub = fleethub_client(second)
    app = hub.create_application(applicationName="after-takeover", roleArn=ROLE_ARN)["applicationId"]
    assert wait_for(lambda: hub.describe_application(applicationId=app)["applicationState"] == "ACTIVE")


def test_a_clock_move_is_shared_and_runs_the_work_on_the_receiving_node(start):
    a, b = start.many("a", "b")
    assert wait_for(lambda: spread([a, b]), seconds=30)
    tunnels = make_client(b, "iotsecuretunneling")
    tunnel = tunnels.open_tunnel(timeoutConfig={"maxLifetimeTimeoutMinutes": 5})["tunnelId"]
    # The move through b closes the tunnel before it answers, whichever node holds
    # tunnel expiry: every job runs once on b, under its run lock; a adopts b's clock.
    before = runs(b)
    moved = move_clock(b, advance=600)
    assert tunnels.describe_tunnel(tunnelId=tunnel)["tunnel"]["status"] == "CLOSED"
    after = runs(b)
    assert all(after[job] > before.get(job, 0) for job in JOBS)
    assert wait_for(lambda: abs(offset(a) - moved["offset"]) < 0.001)
    # A node started later reads the installation's clock from the store.
    c = start("c")
    assert abs(offset(c) - moved["offset"]) < 0.001
    move_clock(a, reset=True)
    assert wait_for(lambda: offset(b) == 0 and offset(c) == 0)


def test_nodes_started_at_once_share_one_installation_ca(start, tmp_path):
    nodes = start.many("x", "y", "z")  # three nodes starting at once race to create the CA
    assert len(nodes) == 3
    pems = set()
    for node in nodes:
        with urllib.request.urlopen(node.endpoint + "/_localiot/ca.pem") as answer:
            pems.add(answer.read())
    assert len(pems) == 1
    # A device trusting that CA, with a certificate issued through x, connects to every node.
    cert = new_certificate(make_client(nodes[0]), tmp_path, policy=ALLOW_ALL)
    ca = ca_file(nodes[0], tmp_path)
    for node in nodes:
        device = Device(node.listener("iot:Data-ATS"), f"device-{node.name}", ca=ca, cert=cert)
        try:
            device.connect_ok()
        finally:
            device.close()
