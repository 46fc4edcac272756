"""One node's end of the fabric: its broker's messages to and from NATS.

- Every message the broker routes (`Broker.route`: device publishes, wills,
  HTTP/iot-data Publish, rule republishes, service events such as shadow
  deltas and job notifications, lifecycle events) is delivered to this
  node's subscribers at once and sent on NATS (`forward`) to the nodes that
  subscribed to its subject. The in-process bus, and so the rules engine,
  Defender and the connectivity log, hears it on this node only: each
  message is offered to the rules engine once.
- A node subscribes on NATS to the subjects of the filters its sessions
  hold (`interest`, kept by a watching subscription trie per scope). A
  message that reaches a node through several of its subscriptions is
  delivered once (per sending node, sequence numbers only grow).
- Shared subscriptions (`$share/g/f`) are NATS queue subscriptions on a
  second connection: NATS hands each message to one node with a member,
  which picks one of its members (an online one first). The publishing node
  does not pick locally: one delivery per group across all nodes.

Client-id takeover, session moves and commit events are `sessions`' and
`events`'.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket

from localiot.broker.connection import CONNECTED
from localiot.broker.subscriptions import Scope
from localiot.fabric import subjects, wire
from localiot.fabric.client import NatsConnection
from localiot.topics import SubscriptionTrie, matches, parse_shared

log = logging.getLogger("localiot.fabric")


class Fabric:
    kind = "nats"

    def __init__(self, runtime, url: str, node_id: str | None = None):
        self.runtime = runtime
        self.url = url
        self.node_id = node_id or _new_node_id()
        self._node = self.node_id.encode()
        # messages, plain subscriptions and control; no echo: a node never hears itself
        self.conn = NatsConnection(url, name=f"localiot-{self.node_id}", echo=False)
        # queue subscriptions of shared groups (a member on this node gets this node's messages too)
        self.queues = NatsConnection(url, name=f"localiot-{self.node_id}-shared", echo=True)
        self.broker = None
        self._seq = 0
        self._last_seen: dict[str, int] = {}
        self._interest: dict[tuple, list] = {}  # (account, region, group, filter) -> [count, sids, shared]
        self._unconfirmed: set = set()  # connections with SUBs the NATS server may not have processed yet
        self.sessions = None  # localiot.fabric.sessions.SessionMoves
        self.events = None  # localiot.fabric.events.CommitEvents
        self.directory = None  # localiot.fabric.directory.Directory
        self.liveness = None  # localiot.fabric.liveness.Liveness
        self.confirm = None  # localiot.fabric.confirm.Confirmations
        self.forwarded = 0
        self.received = 0

    @property
    def connected(self) -> bool:
        return self.conn.connected and self.queues.connected

    async def start(self) -> "Fabric":
        from localiot.fabric.confirm import Confirmations
        from localiot.fabric.directory import Directory
        from localiot.fabric.events import CommitEvents
        from localiot.fabric.liveness import Liveness
        from localiot.fabric.sessions import SessionMoves

        await self.conn.connect()
        await self.queues.connect()
        self.sessions = SessionMoves(self)
        self.events = CommitEvents(self)
        self.directory = Directory(self)
        self.confirm = Confirmations(self)
        self.liveness = Liveness(self)
        self.events.start()
        log.info("fabric: node %s on %s", self.node_id, self.url)
        return self

    def attach(self, broker) -> None:
        """Called by the broker as it starts (on the loop)."""
        self.broker = broker
        self.sessions.attach(broker)

    async def stop(self) -> None:
        if self.events is not None:
            self.events.stop()
        if self.liveness is not None:
            self.liveness.stop()
        if self.confirm is not None:
            self.confirm.stop()
        await self.conn.close()
        await self.queues.close()

    # outgoing --------------------------------------------------------------------------
    def forward(self, account: str, region: str, msg) -> None:
        """A message this node routed: to the other nodes that subscribed to its subject."""
        self._seq += 1
        self.forwarded += 1
        self.conn.publish(subjects.topic_subject(account, region, msg.topic), wire.encode(msg, self._node, self._seq))
        if msg.qos:
            self.confirm.note(account, region, msg, self._seq)

    # incoming ----------------------------------------------------------------------------
    def _on_message(self, subject: str, reply, body: bytes) -> None:
        node, seq, msg = wire.decode(body)
        if seq <= self._last_seen.get(node, 0):
            return  # another of our subscriptions matched it too: delivered already
        self._last_seen[node] = seq
        self.received += 1
        broker = self.broker
        account, region = _scope_of(subject)
        scope = broker.scopes.get((account, region))
        if scope is None:
            return
        hit = scope.cache.get(msg.topic)
        if hit is None:
            hit = scope.lookup(msg.topic)
        for session, opts in hit[0]:
            broker.deliver_to(session, opts, msg)
        broker.flush_soon()

    def _on_shared(self, key: tuple, subject: str, reply, body: bytes) -> None:
        account, region, group, topic_filter = key
        _, _, msg = wire.decode(body)
        if not matches(topic_filter, msg.topic):
            return  # a '+'/'#' first level and a '$' topic: the subject matched, MQTT does not
        broker = self.broker
        scope = broker.scopes.get((account, region))
        entry = scope.trie.filters.get(topic_filter) if scope is not None else None
        shared = entry.shared.get(group) if entry is not None else None
        if shared is None:
            return
        picked = shared.pick(_online) or shared.pick()
        if picked is not None:
            broker.deliver_to(picked[0], picked[1], msg)
            broker.flush_soon()

    # interest: NATS subscriptions follow the filters of this node's sessions -------------
    def scope(self, account: str, region: str) -> Scope:
        """A broker scope whose trie tells the fabric which filters this node holds."""
        scope = Scope()
        scope.trie = _WatchedTrie(self, account, region)
        return scope

    def interest_up(self, account: str, region: str, topic_filter: str) -> None:
        group, inner = parse_shared(topic_filter)
        key = (account, region, group, inner)
        entry = self._interest.get(key)
        if entry is not None:
            entry[0] += 1
            return
        names = subjects.filter_subjects(account, region, inner)
        if group is None:
            sids = [self.conn.subscribe(name, self._on_message) for name in names]
            self._unconfirmed.add(self.conn)
        else:
            queue = subjects.queue_group(account, region, group, inner)
            callback = lambda subject, reply, body: self._on_shared(key, subject, reply, body)  # noqa: E731
            sids = [self.queues.subscribe(name, callback, queue) for name in names]
            self._unconfirmed.add(self.queues)
        self._interest[key] = [1, sids, group is not None]

    def awaiting_interest(self) -> bool:
        """Did new NATS subscriptions go out that the NATS server may not have processed yet?"""
        return bool(self._unconfirmed)

    def when_subscribed(self, fn) -> None:
        """`fn()` once the NATS server has processed the new subscriptions (a PING's PONG):
        a SUBACK then means that a message published on any node reaches the subscriber."""
        conns, self._unconfirmed = self._unconfirmed, set()

        async def confirmed():
            try:
                await asyncio.gather(*(conn.flush(2.0) for conn in conns))
            except (ConnectionError, asyncio.TimeoutError):
                log.warning("fabric: NATS did not confirm new subscriptions in time")
            fn()
            self.broker.flush_soon()

        asyncio.get_running_loop().create_task(confirmed())

    def interest_down(self, account: str, region: str, topic_filter: str) -> None:
        group, inner = parse_shared(topic_filter)
        key = (account, region, group, inner)
        entry = self._interest.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] > 0:
            return
        del self._interest[key]
        conn = self.queues if entry[2] else self.conn
        for sid in entry[1]:
            conn.unsubscribe(sid)

    def forget(self) -> None:
        """The broker forgot every session (the store was reset): no more interest."""
        for key in list(self._interest):
            entry = self._interest.pop(key)
            conn = self.queues if entry[2] else self.conn
            for sid in entry[1]:
                conn.unsubscribe(sid)


class _WatchedTrie(SubscriptionTrie):
    def __init__(self, fabric: Fabric, account: str, region: str):
        super().__init__()
        self.fabric, self.account, self.region = fabric, account, region

    def add(self, topic_filter: str, subscriber, options) -> bool:
        new = super().add(topic_filter, subscriber, options)
        if new:
            self.fabric.interest_up(self.account, self.region, topic_filter)
        return new

    def remove(self, topic_filter: str, subscriber) -> bool:
        gone = super().remove(topic_filter, subscriber)
        if gone:
            self.fabric.interest_down(self.account, self.region, topic_filter)
        return gone


def _new_node_id() -> str:
    """The node's name (LOCALIOT_NODE_ID, or the host name) and a part new with each process:
    a restarted node is a new sender (its sequence numbers start again) and home."""
    name = subjects.token(os.environ.get("LOCALIOT_NODE_ID") or socket.gethostname())[:40]
    return f"{name}-{secrets.token_hex(4)}"


def _scope_of(subject: str) -> tuple[str, str]:
    tokens = subject.split(".", 4)
    return subjects.untoken(tokens[2]), subjects.untoken(tokens[3])


def _online(session) -> bool:
    conn = session.conn
    return conn is not None and conn.state == CONNECTED
