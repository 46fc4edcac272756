"""Client ids across nodes: takeover, and persistent sessions that move.

A client id is held by one node at a time: the node its client last
connected to (its *home*), which keeps the session in memory while the
client is connected and, for a persistent session, while it is away (it
queues the QoS 1 messages the session's subscriptions match, in the store).

When a client connects to node B (after authentication, before CONNACK),
B tells every node (`liot.c.takeover`): whichever has the client id
connected closes that older connection (DUPLICATE_CLIENTID, MQTT 5 reason
Session taken over). With a store of its own per node (SQLite) that is all:
sessions cannot move.

With a store that nodes share (PostgreSQL) a persistent session moves with
its client. Its home is in the session's ref document (`node`, written by
the broker's persistence with every save). When another node A is home, B
first loads the stored session and subscribes to its filters (so nothing
published meanwhile is missed; a message may then be queued twice, which
QoS 1 allows), then asks A (`liot.n.<A>`, request/reply) to let it go: A
closes the older connection, parks its in-flight messages in the store and
forgets the session without deleting it. B then reloads the stored session
(subscriptions and queued messages as A left them); its next save makes B
home. When A is gone (killed: NATS answers "no responders" at once) or does
not answer within `RELEASE_TIMEOUT`, B goes on with what the store holds.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time

from localiot.broker import auth, codec
from localiot.broker import queued as queued_messages
from localiot.broker.connection import CONNECTED
from localiot.broker.persistence import BROKER_SCOPE, QUEUED_KIND, REF_KIND, SESSION_KIND
from localiot.broker.sessions import Session
from localiot.fabric import subjects
from localiot.fabric.client import NoResponders

log = logging.getLogger("localiot.fabric")

RELEASE_TIMEOUT = 2.0


class SessionMoves:
    def __init__(self, fabric):
        self.fabric = fabric
        self.conn = fabric.conn
        self.broker = None
        self.shared_store = _shared(fabric.runtime.store)
        self.conn.subscribe(subjects.NODE + fabric.node_id, self._on_request)
        self.conn.subscribe(subjects.CONTROL + "takeover", self._on_takeover)
        self.conn.subscribe(subjects.CONTROL + "requeued", self._on_requeued)

    def attach(self, broker) -> None:
        self.broker = broker
        broker.persistence.node = self.fabric.node_id
        authenticate = broker.authenticate

        def authenticate_and_claim(info):
            return self._claim_after(authenticate(info), info)

        broker.authenticate = authenticate_and_claim

    def restorable(self, persistence) -> list[Session]:
        """The stored sessions this node restores as it starts: all of them from a store of its
        own; none from a shared store (each is loaded by the node its client connects to)."""
        return [] if self.shared_store else persistence.restore()

    # the connecting node -----------------------------------------------------------------
    async def _claim_after(self, result, info):
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, auth.Identity):
            return result
        broker = self.broker
        if not broker.authorize(result, auth.CONNECT, auth.arn(result, "client", info.client_id)):
            return result  # refused by the broker next: nobody else's connection goes
        try:
            await self.claim(result.account, result.region, info.client_id)
        except Exception:
            log.exception("fabric: could not claim client id %s", info.client_id)
        return result

    async def claim(self, account: str, region: str, client_id: str) -> None:
        key = (account, region, client_id)
        sessions = self.broker.sessions
        home = None
        if self.shared_store:
            home, doc, queued = await self._read(key)
            if key not in sessions:
                self._load(key, doc, queued)  # subscribed before the old home lets go: nothing missed
        self.conn.publish(subjects.CONTROL + "takeover", json.dumps(key).encode())
        if home is None or home == self.fabric.node_id:
            return
        try:
            await self.conn.request(subjects.NODE + home, json.dumps(["release", *key]).encode(), RELEASE_TIMEOUT)
        except NoResponders:
            pass  # its node is gone: the store has what it acknowledged
        except (asyncio.TimeoutError, ConnectionError):
            log.warning("fabric: node %s did not release client id %s in time", home, client_id)
        self._load(key, *(await self._read(key))[1:])  # as the old home left it
        session = self.broker.sessions.get(key)
        if session is not None:
            session.moved_at = time.time()  # saved with it as the client connects (localiot.fabric.confirm)

    async def _read(self, key) -> tuple[str | None, dict | None, int]:
        """(its home node, its stored document, its queued messages) of a stored session: on a
        worker with PostgreSQL, after this node's store work for it."""
        persistence = self.broker.persistence
        if persistence.workers is None:
            return _read_stored(self.broker.store, key)
        return await persistence.for_session(_Keyed(key), _read_stored, self.broker.store, key)

    def _load(self, key, doc: dict | None, queued: int) -> None:
        """(Re)load a stored session (`doc`, `queued`: as `_read` found them) as this node's,
        disconnected: its subscriptions join the trie (and so NATS), its queued messages are counted."""
        account, region, client_id = key
        broker = self.broker
        session = broker.sessions.get(key)
        if session is not None and session.conn is not None:
            return  # connected here already (a race of two connects): the broker's own takeover
        scope = broker.scope(account, region)
        if doc is None:
            if session is not None:
                _forget(broker, session)
            return
        fresh = Session.from_doc(account, region, doc)
        if session is None:
            session = fresh
            broker.sessions[key] = session
            broker.offline.add(session)
        else:
            for topic_filter in set(session.subscriptions) - set(fresh.subscriptions):
                scope.trie.remove(topic_filter, session)
            session.expiry_interval, session.session_id = fresh.expiry_interval, fresh.session_id
            session.expires_at, session.version, session.stored = fresh.expires_at, fresh.version, True
        session.subscriptions = fresh.subscriptions
        for topic_filter, options in session.subscriptions.items():
            scope.trie.add(topic_filter, session, options)
        scope.cache.clear()
        session.queued = queued

    async def adopt(self, orphaned) -> int:
        """Load as this node's the stored persistent sessions whose holder `orphaned(node)` (a
        dead node): messages for them are queued again. How many were adopted."""
        broker = self.broker
        persistence = broker.persistence
        if persistence.workers is None:
            refs = _refs(broker.store)
        else:
            refs = await persistence.workers.call(_refs, broker.store)
        refs = [ref for ref in refs if orphaned(ref.get("node"))]
        adopted, saving = 0, []
        for ref in refs:
            key = (ref["account"], ref["region"], ref["clientId"])
            if key in broker.sessions:
                continue
            home, doc, queued = await self._read(key)
            if key in broker.sessions or not orphaned(home):
                continue  # its client came back meanwhile, through some node
            self._load(key, doc, queued)
            session = broker.sessions.get(key)
            if session is not None:
                session.moved_at = time.time()
                saved = broker.persistence.save_soon(session)  # home: this node
                if saved is not None:
                    saving.append(saved)
                adopted += 1
        if saving:  # stored before the dead node stops being awaited (confirm.settle_gone reads them)
            await asyncio.wait(saving)
        if refs:
            log.warning("fabric: adopted %d persistent sessions of nodes that are gone", adopted)
        return adopted

    # the node that held it -----------------------------------------------------------------
    def requeued(self, keys: list) -> None:
        """This node queued messages in the store for these sessions: whichever node holds one reads
        its queue again (this one too; its own NATS connection does not hear itself)."""
        self.conn.publish(subjects.CONTROL + "requeued", json.dumps(keys).encode())
        for key in keys:
            self.reread(tuple(key))

    def _on_requeued(self, subject: str, reply, body: bytes) -> None:
        for key in json.loads(body):
            self.reread(tuple(key))

    def reread(self, key) -> None:
        """Messages were queued in the store for a session of this node's: an offline one counts
        them (its client gets them as it connects), a connected one gets them now."""
        broker = self.broker
        session = broker.sessions.get(key) if broker is not None else None
        if session is None:
            return
        conn = session.conn
        if conn is None:
            persistence = broker.persistence
            if persistence.workers is None:
                persistence.commit()
                session.queued = _count_queued(broker.store, session)
                return

            def counted(done) -> None:  # PostgreSQL: counted on a worker
                if not done.cancelled() and done.exception() is None and session.conn is None:
                    session.queued = done.result()

            persistence.for_session(session, _count_queued, broker.store, session).add_done_callback(counted)
            return
        if conn.state != CONNECTED:
            return
        queued_messages.deliver(broker, conn, session, skip_held=True)

    def _on_request(self, subject: str, reply, body: bytes) -> None:
        request = json.loads(body)
        if request[0] == "release":
            key = tuple(request[1:4])
            self.release(key)
            persistence = self.broker.persistence if self.broker is not None else None
            if reply and persistence is not None and persistence.workers is not None:
                # PostgreSQL: answer once what was parked (and buffered) for it is stored
                done = persistence.for_session(_Keyed(key), _nothing)
                done.add_done_callback(lambda _: self.conn.publish(reply, b"ok"))
                return
        if reply:
            self.conn.publish(reply, b"ok")

    def _on_takeover(self, subject: str, reply, body: bytes) -> None:
        self.release(tuple(json.loads(body)))

    def release(self, key) -> None:
        """Another node takes this client id: the older connection goes; a persistent session
        stays in the store (parked with its in-flight messages) and leaves this node's memory."""
        broker = self.broker
        if broker is None:
            return
        session = broker.sessions.get(key)
        if session is not None and session.conn is not None:
            session.conn.drop("DUPLICATE_CLIENTID", codec.SESSION_TAKEN_OVER, "Another connection uses this client id.")
            broker.flush_soon()
        session = broker.sessions.get(key)
        if session is not None and self.shared_store:
            _forget(broker, session)
        if broker.persistence.workers is None:
            broker.persistence.commit()
        elif broker.persistence.pending:
            broker.persistence.start_commit()  # PostgreSQL: on a worker (`_on_request` waits for it)


def _forget(broker, session: Session) -> None:
    """Drop a session from this node's memory only (the store keeps it)."""
    scope = broker.scopes.get((session.account, session.region))
    if scope is not None:
        for topic_filter in session.subscriptions:
            scope.trie.remove(topic_filter, session)
        scope.cache.clear()
    if broker.sessions.get(session.key) is session:
        del broker.sessions[session.key]
    broker.offline.discard(session)


class _Keyed:
    """A session's key where persistence.for_session wants a session (a lane per key)."""

    def __init__(self, key):
        self.key, self.client_id = key, key[2]


def _nothing() -> None:
    return None


def _read_stored(store, key) -> tuple[str | None, dict | None, int]:
    account, region, client_id = key
    with store.transaction(*BROKER_SCOPE, write=False) as tx:
        ref = tx.get(REF_KIND, "/".join(key))
        scoped = tx.scope(account, region)
        doc = scoped.get(SESSION_KIND, client_id)
        queued = scoped.count(QUEUED_KIND, "client", client_id) if doc else 0
    return (ref.get("node") if ref else None), doc, queued


def _refs(store) -> list[dict]:
    with store.transaction(*BROKER_SCOPE, write=False) as tx:
        return [ref for _, ref in tx.scan(REF_KIND)]


def _count_queued(store, session: Session) -> int:
    with store.transaction(*BROKER_SCOPE, write=False) as tx:
        return tx.scope(session.account, session.region).count(QUEUED_KIND, "client", session.client_id)


def _shared(store) -> bool:
    """Is the store one that several nodes share (not a SQLite file of this node's)?"""
    from localiot.store.sqlite import SQLiteStore

    return not isinstance(store, SQLiteStore)
