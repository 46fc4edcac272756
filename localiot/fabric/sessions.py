"""Client ids across nodes: takeover, and persistent sessions that move.

A client id is held by one node at a time: the node its client last
connected to (its *home*), which keeps the session in memory while the
client is connected and, for a persistent session, while it is away (it
queues the QoS 1 messages the session's subscriptions match, in the store).

When a client connects to node B (after authentication, before CONNACK):

- with a store that nodes share (PostgreSQL), B reads the client id's home
  (a `fabric-home` document in the broker's own scope). If another node A
  is home, B first loads the stored session and subscribes to its filters
  (so nothing published meanwhile is missed; a message may then be queued
  twice, which QoS 1 allows), then asks A (`liot.n.<A>`, request/reply) to
  let it go: A closes the older connection (DUPLICATE_CLIENTID, MQTT 5
  reason Session taken over), parks its in-flight messages in the store and
  forgets the session without deleting it. B then reloads the stored
  session (subscriptions and queued messages as A left them) and becomes
  home. When A is gone (killed: NATS answers "no responders" at once) or
  does not answer within `RELEASE_TIMEOUT`, B goes on with what the store
  holds.
- with a store of its own per node (SQLite), sessions cannot move: B tells
  every node (`liot.c.takeover`) and whichever holds the client id closes
  the older connection.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging

from localiot.broker import auth, codec
from localiot.broker.persistence import BROKER_SCOPE, QUEUED_KIND, SESSION_KIND
from localiot.broker.sessions import Session
from localiot.fabric import subjects
from localiot.fabric.client import NoResponders

log = logging.getLogger("localiot.fabric")

HOME_KIND = "fabric-home"
RELEASE_TIMEOUT = 2.0


class SessionMoves:
    def __init__(self, fabric):
        self.fabric = fabric
        self.conn = fabric.conn
        self.broker = None
        self.shared_store = _shared(fabric.runtime.store)
        self.conn.subscribe(subjects.NODE + fabric.node_id, self._on_request)
        self.conn.subscribe(subjects.CONTROL + "takeover", self._on_takeover)

    def attach(self, broker) -> None:
        self.broker = broker
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
        if not self.shared_store:
            self.conn.publish(subjects.CONTROL + "takeover", json.dumps(key).encode())
            return
        home = self._home(key)
        if home is not None and home != self.fabric.node_id:
            if key not in self.broker.sessions:
                self._load(key)
            try:
                await self.conn.request(subjects.NODE + home, json.dumps(["release", *key]).encode(),
                                        RELEASE_TIMEOUT)
            except NoResponders:
                pass  # its node is gone: the store has what it acknowledged
            except (asyncio.TimeoutError, ConnectionError):
                log.warning("fabric: node %s did not release client id %s in time", home, client_id)
            self._load(key)
        elif key not in self.broker.sessions:
            self._load(key)
        if home != self.fabric.node_id:
            with self.broker.store.transaction(*BROKER_SCOPE) as tx:
                tx.put(HOME_KIND, _name(key), {"node": self.fabric.node_id})

    def _home(self, key) -> str | None:
        with self.broker.store.transaction(*BROKER_SCOPE, write=False) as tx:
            doc = tx.get(HOME_KIND, _name(key))
        return doc["node"] if doc else None

    def _load(self, key) -> None:
        """(Re)load a stored session as this node's, disconnected: its subscriptions join the
        trie (and so NATS), its queued messages are counted."""
        account, region, client_id = key
        broker = self.broker
        with broker.store.transaction(*BROKER_SCOPE, write=False) as tx:
            scoped = tx.scope(account, region)
            doc = scoped.get(SESSION_KIND, client_id)
            queued = scoped.count(QUEUED_KIND, "client", client_id) if doc else 0
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

    # the node that held it -----------------------------------------------------------------
    def _on_request(self, subject: str, reply, body: bytes) -> None:
        request = json.loads(body)
        if request[0] == "release":
            self.release(tuple(request[1:4]))
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
        broker.persistence.commit()


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


def _name(key) -> str:
    return "/".join(key)


def _shared(store) -> bool:
    """Is the store one that several nodes share (not a SQLite file of this node's)?"""
    from localiot.store.sqlite import SQLiteStore

    return not isinstance(store, SQLiteStore)
