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
"""

from __future__ import annotations

import asyncio
import logging
import time

from localiot.fabric import subjects

log = logging.getLogger("localiot.fabric")

HEARTBEAT = 1.0
DEAD_AFTER = 3.0


class Liveness:
    def __init__(self, fabric):
        self.fabric = fabric
        self.alive: dict[str, float] = {}  # other node -> when last heard (monotonic)
        self.started = time.monotonic()
        self.subject = subjects.CONTROL + "alive"
        fabric.conn.subscribe(self.subject, self._on_alive)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        self._task.cancel()

    def _on_alive(self, subject: str, reply, body: bytes) -> None:
        self.alive[body.decode()] = time.monotonic()

    def leader(self) -> bool:
        """The live node with the smallest id: the one that adopts."""
        return self.fabric.node_id == min([self.fabric.node_id, *self.alive])

    async def _run(self) -> None:
        me = self.fabric.node_id.encode()
        orphans_checked = False
        while True:
            self.fabric.conn.publish(self.subject, me)
            await asyncio.sleep(HEARTBEAT)
            try:
                now = time.monotonic()
                dead = {node for node, heard in self.alive.items() if now - heard > DEAD_AFTER}
                for node in dead:
                    del self.alive[node]
                    if self.fabric.directory is not None:
                        self.fabric.directory.forget_node(node)
                    log.warning("fabric: node %s is gone (not heard for %gs)", node, DEAD_AFTER)
                sessions = self.fabric.sessions
                if sessions is None or sessions.broker is None or not sessions.shared_store:
                    continue
                if dead and self.leader():
                    sessions.adopt(lambda node: node in dead)
                if not orphans_checked and now - self.started > DEAD_AFTER:
                    orphans_checked = True
                    if self.leader():
                        mine = self.fabric.node_id
                        sessions.adopt(lambda node: node is not None and node != mine and node not in self.alive)
            except Exception:
                log.exception("fabric: liveness check failed")
