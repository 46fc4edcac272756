"""A cluster node stops on SIGINT / SIGTERM, promptly and with exit code 0, after
what bench/held_connections.py (ninth pass) did to it: its loop stalled past
the lock connection's idle_session_timeout (it had one then), so PostgreSQL
ended that session (localiot.cluster.locks), and every client went at once.
Since, a stalled node keeps its session (last test). Its stop then waited
for every presence record of those clients to be written (minutes for 16,700 on
a loaded PostgreSQL; here the records wait on locks another session holds, as
long as the store's lock_timeout, once per unit): those it no longer writes
after the workers' grace (localiot.cluster.workers.stopping).

Real `localiot serve` processes (tests/cluster_nodes.py) on a throwaway
PostgreSQL database and a real nats-server; real plain MQTT clients."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

import psycopg
import pytest

from cluster_nodes import Node, wait_for
from localiot.background import registered
from localiot.cluster.locks import TAKER
from localiot.services import load_all
from localiot.services.registry import things
from localiot.store.postgresql import _lock_key

PLAIN = ["--mqtt-plain", "--mqtt-plain-port", "0", "--device-advisor-port", "0", "--log-level", "INFO"]
CLIENTS = 50
STOP_LIMIT = 15.0  # seconds: the workers' grace (3 s) and a cancelled statement, with room for a loaded machine
ACCOUNT, REGION = "123456789012", "us-east-1"  # plain MQTT clients' (the defaults)
load_all()
JOBS = sorted(job.name for job in registered())


@pytest.fixture
def cluster(localiot_nats, localiot_postgres, tmp_path):
    dsn = localiot_postgres.create_database()
    nodes = [Node(name, tmp_path, store=dsn, fabric=localiot_nats, period=1.0, extra=PLAIN).launch()
             for name in ("a", "b")]
    try:
        yield dsn, [node.wait_ready() for node in nodes]
    finally:
        for node in nodes:
            if node.process.poll() is None:
                node.signal(signal.SIGCONT)
            node.kill()
        localiot_postgres.drop_database(dsn)


def stopped(node: Node, number: int) -> tuple[int | None, float]:
    """Send `number`; (exit code, seconds it took), the exit code None when still running after STOP_LIMIT."""
    t0 = time.monotonic()
    node.signal(number)
    try:
        code = node.process.wait(STOP_LIMIT)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - t0


def lock_session(dsn: str, name: str) -> int | None:
    """The backend pid of node `name`'s lock connection (None: it has none)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                           (f"{TAKER}{name}",)).fetchone()
    return row[0] if row else None


async def hold_clients(port: int, count: int) -> list[asyncio.StreamWriter]:
    """`count` plain MQTT 3.1.1 clients, clean sessions, each CONNACKed."""
    gate = asyncio.Semaphore(64)

    async def one(i: int) -> asyncio.StreamWriter:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            client_id = f"leaver-{i}".encode()
            body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id
            writer.write(bytes([0x10, len(body)]) + body)
            assert await reader.readexactly(4) == b"\x20\x02\x00\x00"
            return writer

    return await asyncio.gather(*(one(i) for i in range(count)))


def end_lock_session(dsn: str, node: Node) -> None:
    """PostgreSQL ends the node's lock session (as it did after idle_session_timeout when the
    node's loop stalled); the node notices at its next statement."""
    assert wait_for(lambda: lock_session(dsn, node.name))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (lock_session(dsn, node.name),))
    assert wait_for(lambda: "terminating connection due to administrator command" in node.log.read_text(),
                    seconds=30)


def test_a_node_whose_lock_session_postgresql_ended_stops_on_sigint(cluster):
    dsn, (a, b) = cluster
    end_lock_session(dsn, a)
    code, _ = stopped(a, signal.SIGINT)
    assert code == 0, a.log.read_text()[-3000:]
    assert "localiot stopped" in a.log.read_text()


def test_it_stops_on_sigterm_when_its_clients_records_wait_on_postgresql(cluster):
    dsn, (a, b) = cluster

    async def scenario() -> tuple[int | None, float]:
        clients = await hold_clients(a.listener("mqtt-plain"), CLIENTS)
        with psycopg.connect(dsn, autocommit=True) as blocker:
            # Another session holds the locks the node's presence records of these clients take
            # (their thing documents'): they wait on PostgreSQL as records waited on a loaded
            # one in the bench, here until the store's lock_timeout (30 s).
            keys = [_lock_key(ACCOUNT, REGION, "doc", things.KIND, f"leaver-{i}") for i in range(CLIENTS)]

            def take_all() -> bool:  # tried, never waited for: the node's connect records take them too
                for n, key in enumerate(keys):
                    if not blocker.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                        blocker.execute("SELECT pg_advisory_unlock(k) FROM unnest(%s::bigint[]) AS k", (keys[:n],))
                        return False
                return True

            assert wait_for(take_all, seconds=30)
            end_lock_session(dsn, a)
            for writer in clients:  # every client goes at once
                writer.write(b"\xe0\x00")
                writer.close()
            await asyncio.sleep(1)
            return await asyncio.get_running_loop().run_in_executor(None, stopped, a, signal.SIGTERM)

    code, seconds = asyncio.run(scenario())
    log = a.log.read_text()
    assert code == 0, f"still running {seconds:.0f} s after SIGTERM:\n{log[-3000:]}"
    assert "localiot stopped" in log


def test_a_stalled_node_keeps_its_lock_session_and_its_jobs(cluster):
    """Stalled (SIGSTOP) longer than the idle_session_timeout it used to have (10 s): its kernel
    still answers PostgreSQL's keepalive probes, so the session and its locks stay."""
    dsn, (a, b) = cluster
    share = -(-len(JOBS) // 2)

    def settled() -> bool:  # every job held, each node at its share: nothing moves by itself any more
        held = [a.health()[1]["periodic"]["held"], b.health()[1]["periodic"]["held"]]
        return len(held[0]) + len(held[1]) == len(JOBS) and max(map(len, held)) <= share

    assert wait_for(settled, seconds=30)
    session, held = lock_session(dsn, "a"), set(a.health()[1]["periodic"]["held"])
    a.signal(signal.SIGSTOP)
    try:
        time.sleep(13)
    finally:
        a.signal(signal.SIGCONT)
    time.sleep(2)  # a period or two: a statement on the lock connection went through
    assert lock_session(dsn, "a") == session
    assert set(a.health()[1]["periodic"]["held"]) == held
    assert "lost its lock connection" not in a.log.read_text()
