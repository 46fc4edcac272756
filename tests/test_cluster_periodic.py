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
import threading
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

    def start_node(name: str, **kwargs) -> Node:
        node = Node(name, tmp_path, store=dsn, **kwargs).start()
        started.append(node)
        return node

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
    """application_name -> owner locks its session holds, as PostgreSQL sees it."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT a.application_name, count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.classid = %s AND l.granted GROUP BY 1", (OWNER,)).fetchall()
    return dict(rows)


def test_every_job_runs_on_exactly_one_node(start, dsn):
    nodes = [start(name) for name in ("n1", "n2", "n3")]
    assert wait_for(lambda: sum(len(held(n)) for n in nodes) == len(JOBS))
    sets = [held(n) for n in nodes]
    assert set().union(*sets) == set(JOBS)  # every job has a holder ...
    assert sum(map(len, sets)) == len(JOBS)  # ... and only one
    assert sum(holders_in_postgres(dsn).values()) == len(JOBS)
    # Timers run a job on its holder only: the others count no run of it.
    wait_for(lambda: False, seconds=1.0)
    for node in nodes:
        report = node.health()[1]["periodic"]
        assert report["mode"] == "postgresql-advisory-locks" and report["connected"] is True
        assert set(report["runs"]) <= set(report["held"])
    holder = next(n for n in nodes if "fleethub-applications" in held(n))
    assert holder.health()[1]["periodic"]["runs"]["fleethub-applications"] >= 1


def test_sigkill_of_the_holder_moves_its_timers_to_another_node(start, dsn):
    first = start("first")
    assert wait_for(lambda: held(first) == set(JOBS))  # the first node takes every job
    second = start("second")
    assert held(second) == set()
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
    a = start("a")
    assert wait_for(lambda: held(a) == set(JOBS))
    b = start("b")
    tunnels = make_client(b, "iotsecuretunneling")
    tunnel = tunnels.open_tunnel(timeoutConfig={"maxLifetimeTimeoutMinutes": 5})["tunnelId"]
    # b holds no job; the move through b still closes the tunnel before it answers,
    # each job running on b under its run lock, and a adopts b's clock.
    moved = move_clock(b, advance=600)
    assert tunnels.describe_tunnel(tunnelId=tunnel)["tunnel"]["status"] == "CLOSED"
    assert wait_for(lambda: abs(offset(a) - moved["offset"]) < 0.001)
    runs = b.health()[1]["periodic"]["runs"]
    assert runs["tunneling-expiry"] >= 1 and held(b) == set()
    # A node started later reads the installation's clock from the store.
    c = start("c")
    assert abs(offset(c) - moved["offset"]) < 0.001
    move_clock(a, reset=True)
    assert wait_for(lambda: offset(b) == 0 and offset(c) == 0)


def test_nodes_started_at_once_share_one_installation_ca(start, tmp_path):
    nodes: list[Node] = []
    threads = [threading.Thread(target=lambda n=n: nodes.append(start(n))) for n in ("x", "y", "z")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
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
