"""Which nodes are alive, and who adopts the persistent sessions of a node that died.

Every node says it is alive on `liot.c.alive` every `HEARTBEAT` seconds; a
node not heard for `DEAD_AFTER` seconds is dead. With a store the nodes
share, the persistent sessions a dead node held (their ref documents name
it) would otherwise have nobody queueing their QoS 1 messages until their
clients come back: the live node with the smallest id adopts them (loads
them as its own disconnected sessions, subscribed to their filters). It
does the same once, `DEAD_AFTER` seconds after it starts, for sessions held
by nodes that are not alive at all (every node restarted). A client that
reconnects meanwhile takes its session over as usual.

Silence is not death: a node stalled (SIGSTOP, a long GC pause, a frozen VM)
stops heartbeating but still holds its sessions and its clients' TCP
connections, and would go on as if nothing happened when it resumes. So with a
shared PostgreSQL store each node holds a session-level advisory lock named
after it (NODE_LOCK, crc32 of its id) on a connection of its own, for as long
as its process lives; a node is only taken for dead, and its sessions only
adopted, once that lock is gone: PostgreSQL frees it when the node's session
ends (the process died, or PostgreSQL's keepalive probes went unanswered by a
node cut off: localiot.cluster.locks.SERVER_KEEPALIVE).
A stalled node keeps it, so nothing of its is adopted while it is stalled.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib

from localiot.fabric import subjects

log = logging.getLogger("localiot.fabric")

HEARTBEAT = 1.0
DEAD_AFTER = 3.0
NODE_LOCK = 0x4C494F55  # advisory lock class of the nodes' liveness locks ("LIOU")
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def node_key(node: str) -> int:
    value = zlib.crc32(node.encode())
    return value - (1 << 32) if value >= (1 << 31) else value


class Liveness:
    def __init__(self, fabric):
        self.fabric = fabric
        self.alive: dict[str, float] = {}  # other node -> when last heard (monotonic)
        self.started = time.monotonic()
        self.subject = subjects.CONTROL + "alive"
        self.stalled: set[str] = set()  # silent nodes whose PostgreSQL session lives on
        self._pg = None  # this node's liveness connection (shared PostgreSQL store), holding NODE_LOCK
        fabric.conn.subscribe(self.subject, self._on_alive)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        self._task.cancel()
        if self._pg is not None and not self._pg.closed:
            asyncio.get_running_loop().create_task(self._pg.close())

    async def _connection(self):
        """The liveness connection, holding this node's lock; None without a shared PostgreSQL store."""
        dsn = getattr(self.fabric.runtime.store, "dsn", None)
        if dsn is None:
            return None
        if self._pg is None or self._pg.closed:
            import psycopg

            self._pg = await psycopg.AsyncConnection.connect(
                dsn, autocommit=True, connect_timeout=10, application_name=f"localiot:node:{self.fabric.node_id}"[:63],
                **KEEPALIVE)
            from localiot.cluster.locks import probed_by_server

            await probed_by_server(self._pg)  # (the client's KEEPALIVE alone does not end the server's session)
            await self._pg.execute("SELECT pg_advisory_lock(%s, %s)", (NODE_LOCK, node_key(self.fabric.node_id)))
        return self._pg

    async def _alive_in_store(self) -> set[int] | None:
        """The node keys whose liveness lock some session holds (None: no shared store)."""
        conn = await self._connection()
        if conn is None:
            return None
        rows = await (await conn.execute(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::oid AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (NODE_LOCK,))).fetchall()
        return {(key if key < (1 << 31) else key - (1 << 32)) for key, in rows}

    def _on_alive(self, subject: str, reply, body: bytes) -> None:
        self.alive[body.decode()] = time.monotonic()

    def leader(self) -> bool:
        """The live node with the smallest id: the one that adopts."""
        return self.fabric.node_id == min([self.fabric.node_id, *self.alive])

    async def _run(self) -> None:
        me = self.fabric.node_id.encode()
        orphans_checked = False
        try:
            await self._connection()
        except Exception:
            log.exception("fabric: no liveness lock in PostgreSQL")
        while True:
            self.fabric.conn.publish(self.subject, me)
            await asyncio.sleep(HEARTBEAT)
            try:
                now = time.monotonic()
                silent = {node for node, heard in self.alive.items() if now - heard > DEAD_AFTER}
                locked = await self._alive_in_store() if silent else None
                dead = silent if locked is None else {node for node in silent if node_key(node) not in locked}
                for node in silent - dead:
                    if node not in self.stalled:
                        self.stalled.add(node)
                        log.warning("fabric: node %s is silent but holds its PostgreSQL session: stalled, "
                                    "not dead; nothing of its is adopted", node)
                self.stalled &= silent
                for node in dead:
                    del self.alive[node]
                    if self.fabric.directory is not None:
                        self.fabric.directory.forget_node(node)
                    if self.fabric.confirm is not None:
                        self.fabric.confirm.node_gone(node)
                    log.warning("fabric: node %s is gone (not heard for %gs)", node, DEAD_AFTER)
                sessions = self.fabric.sessions
                if sessions is None or sessions.broker is None or not sessions.shared_store:
                    continue
                if dead and self.leader():
                    await sessions.adopt(lambda node: node in dead)
                if self.fabric.confirm is not None:
                    await self.fabric.confirm.settle_gone()
                if not orphans_checked and now - self.started > DEAD_AFTER:
                    orphans_checked = True
                    if self.leader():
                        mine, locked = self.fabric.node_id, await self._alive_in_store() or set()
                        await sessions.adopt(lambda node: node is not None and node != mine and node not in self.alive
                                       and node_key(node) not in locked)
            except Exception:
                log.exception("fabric: liveness check failed")
