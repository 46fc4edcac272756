"""QoS 1 across nodes: a PUBACK leaves only once every node that may hold a
matching subscriber has made the message safe.

The receiving side. Every node listens on `liot.c.sync` with both of its
NATS connections (plain subscriptions, and shared groups' queue
subscriptions). A sync from node A carries A's sequence number S; NATS keeps
the order of what one connection publishes to one connection, so when it
arrives every message A forwarded up to S has been delivered into this
node's sessions (queued for an offline persistent session, held for a
connected one: `BrokerStore.queue`/`hold`). The node commits those buffered
writes (the broker's group commit; one per loop iteration, whatever number
of syncs came in it) and only then replies `<node> <m|q> <S>` to A. A
failed commit sends no reply.

The publishing side. Each loop iteration in which this node forwarded QoS 1
messages ends with one sync (a batch), expecting a reply from both
connections of every other node it knows alive (`liveness`: heard within
DEAD_AFTER, or silent but still holding its PostgreSQL lock) and from its
own queue connection (a shared group's member on this node gets this node's
messages through NATS too). The PUBACKs of the batch's messages wait until
every expected reply names S or more, in batch order (so a connection's
PUBACKs keep their order). QoS 0 has no batches and waits for nothing.

A node that does not confirm within CONFIRM_TIMEOUT (killed, stalled,
partitioned) is treated as the liveness code treats a dead node, for the
batch's messages: with a store the nodes share, this node queues them in
the store itself for the persistent sessions that the silent node holds
(their refs name it) or that moved between nodes recently (adopted from a
dead node, or taken over by a reconnecting client: `movedAt`), whose
subscriptions match, up to the queued-messages quota; it tells every node
(`liot.c.requeued`) that those sessions' queues grew, so whichever holds
one in memory, connected or away, reads it again; only then do the PUBACKs
go (if the write fails, none does: the publishers' connections are closed
and their clients send the messages again). A session that got a message
as well receives it twice, which QoS 1 allows. The sessions of a dead node
are adopted as before (`liveness`), and a node declared dead stays expected
(so its batches keep being resolved this way) until no stored session names
it any more. With a store of each node's own (SQLite) there is nothing to
write into: after the timeout the PUBACKs go, as before.

A shared subscription's message (`$share/group/filter`) went, through NATS, to
one node of the group's, perhaps the silent one: on a timeout it is queued for
one persistent session of the group that a silent node holds (or that moved),
at most once per group and message; a duplicate if another node delivered it
too, which QoS 1 allows.

Left out: a node that joins is expected from
its first heartbeat, sent as its fabric starts, before its broker listens.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque

from localiot.broker.persistence import BROKER_SCOPE, QUEUED_KIND, REF_KIND, SESSION_KIND, queue_message
from localiot.broker.sessions import Session
from localiot.fabric import subjects
from localiot.topics import matches, parse_shared

log = logging.getLogger("localiot.fabric")

CONFIRM_TIMEOUT = 5.0  # seconds a batch waits for a node's confirmation (LOCALIOT_FABRIC_CONFIRM_TIMEOUT)
LINGER_MAX = 60.0  # seconds a dead node's confirmations stay awaited while stored sessions name it
SYNC = subjects.CONTROL + "sync"
REPLY = "liot.r."


class _Batch:
    __slots__ = ("seq", "expected", "sent_at", "deadline", "messages", "then")

    def __init__(self):
        self.seq = 0
        self.expected: frozenset = frozenset()
        self.sent_at = 0.0
        self.deadline = 0.0
        self.messages: list = []  # (account, region, message) forwarded as QoS 1
        self.then: list = []  # (fn, arg): the PUBACKs


class Confirmations:
    def __init__(self, fabric):
        self.fabric = fabric
        self.node = fabric.node_id
        self.loop = asyncio.get_running_loop()
        self.timeout = _timeout_from_env()
        self.open: _Batch | None = None  # this iteration's batch, until its sync goes out
        self.waiting: deque[_Batch] = deque()
        self.confirmed: dict[tuple[str, str], int] = {}  # (node, connection) -> highest seq confirmed
        self.lingering: dict[str, float] = {}  # dead node -> since when (its sessions may still name it)
        self._replies: list = []  # (reply subject, connection kind, seq) waiting for this iteration's commit
        self._commit_scheduled = False
        self._timer = None
        self._requeueing = False  # a timed-out batch's store write runs on a worker (PostgreSQL)
        self.batches = 0
        self.timeouts = 0
        self.requeued = 0
        fabric.conn.subscribe(SYNC, lambda s, r, b: self._on_sync("m", r, b))
        fabric.queues.subscribe(SYNC, lambda s, r, b: self._on_sync("q", r, b))
        fabric.conn.subscribe(REPLY + subjects.token(self.node), self._on_reply)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # publishing side ---------------------------------------------------------------
    def note(self, account: str, region: str, msg, seq: int) -> None:
        """A QoS 1 message just forwarded (sequence number `seq`): in this iteration's batch."""
        batch = self.open
        if batch is None:
            batch = self.open = _Batch()
            self.loop.call_soon(self._send)
        batch.seq = seq
        batch.messages.append((account, region, msg))

    def after(self, fn, arg) -> bool:
        """`fn(arg)` once the QoS 1 message just noted is safe on every node (`fn(arg, False)` if
        it could not be made safe); False when nothing was noted (the caller goes on at once)."""
        batch = self.open
        if batch is None:
            return False
        batch.then.append((fn, arg))
        return True

    def _send(self) -> None:
        batch, self.open = self.open, None
        if batch is None or not batch.then:
            return  # nothing waits for it (HTTP Publish, services' events)
        self.batches += 1
        liveness = self.fabric.liveness
        others = set(liveness.alive) if liveness is not None else set()
        others.update(self.lingering)
        batch.expected = frozenset([(n, "m") for n in others] + [(n, "q") for n in others] + [(self.node, "q")])
        batch.sent_at = time.time()
        batch.deadline = time.monotonic() + self.timeout
        self.waiting.append(batch)
        reply = REPLY + subjects.token(self.node)
        if not self.fabric.conn.publish(SYNC, f"{self.node} {batch.seq}".encode(), reply):
            batch.deadline = time.monotonic()  # NATS is down: nobody will answer
        self._arm()

    def _on_reply(self, subject: str, reply, body: bytes) -> None:
        node, kind, seq = body.decode().split(" ")
        self._confirmed((node, kind), int(seq))
        self._settle()

    def _confirmed(self, key: tuple[str, str], seq: int) -> None:
        if seq > self.confirmed.get(key, 0):
            self.confirmed[key] = seq

    def _settle(self) -> None:
        if self._requeueing:
            return  # the PUBACKs keep their order: the batch being requeued goes first
        waiting, confirmed = self.waiting, self.confirmed
        done = False
        while waiting:
            batch = waiting[0]
            seq = batch.seq
            if not all(confirmed.get(key, 0) >= seq for key in batch.expected):
                break
            waiting.popleft()
            _run(batch)
            done = True
        if done:
            self.fabric.broker.flush_soon()

    def _arm(self) -> None:
        if self._timer is None and self.waiting:
            delay = max(0.0, self.waiting[0].deadline - time.monotonic())
            self._timer = self.loop.call_later(delay + 0.01, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if self._requeueing:
            return  # resumed as the requeue ends
        now = time.monotonic()
        while self.waiting and self.waiting[0].deadline <= now:
            batch = self.waiting.popleft()
            silent = {node for node, kind in batch.expected
                      if kind == "m" and self.confirmed.get((node, kind), 0) < batch.seq}
            self.timeouts += 1
            if silent:
                log.warning("fabric: nodes %s did not confirm %d QoS 1 messages within %gs",
                            sorted(silent), len(batch.messages), self.timeout)
                persistence = self.fabric.broker.persistence
                if self._requeue_needed() and persistence.workers is not None:
                    self._requeueing = True  # PostgreSQL: on a worker, then the rest in order
                    persistence.after_commits(self._requeue, batch, silent).add_done_callback(
                        lambda done, batch=batch: self._requeued(batch, done))
                    return
                try:
                    if self._requeue_needed():
                        persistence.commit()
                        self._requeue_told(self._requeue(batch, silent))
                except Exception:  # not safe: no PUBACK (its publisher sends it again as it reconnects)
                    log.exception("fabric: could not queue unconfirmed QoS 1 messages in the store")
                    _run(batch, False)
                    continue
            _run(batch)
            self.fabric.broker.flush_soon()
        self._settle()
        self._arm()

    def _requeued(self, batch: _Batch, done) -> None:
        self._requeueing = False
        if done.cancelled() or done.exception() is not None:
            log.error("fabric: could not queue unconfirmed QoS 1 messages in the store: %r",
                      None if done.cancelled() else done.exception())
            _run(batch, False)
        else:
            self._requeue_told(done.result())
            _run(batch)
        self.fabric.broker.flush_soon()
        self._expire()  # the next timed-out batches, then the confirmed ones, then the timer

    def _requeue_needed(self) -> bool:
        sessions = self.fabric.sessions
        return sessions is not None and sessions.shared_store

    def _requeue_told(self, told: list) -> None:
        if told:
            self.fabric.sessions.requeued(told)

    def node_gone(self, node: str) -> None:
        """Liveness declared `node` dead: expected until no stored session names it."""
        if self.fabric.sessions is not None and self.fabric.sessions.shared_store:
            self.lingering[node] = time.monotonic()

    async def settle_gone(self) -> None:
        """Drop the dead nodes that no stored session names any more (called by liveness), or
        that still do LINGER_MAX seconds after their death (their adoption failed: logged)."""
        if not self.lingering:
            return
        broker = self.fabric.broker
        workers = broker.persistence.workers
        holders = _holders(broker.store) if workers is None else await workers.call(_holders, broker.store)
        now = time.monotonic()
        for node, since in list(self.lingering.items()):
            if node not in holders:
                del self.lingering[node]
            elif now - since > LINGER_MAX:
                del self.lingering[node]
                log.warning("fabric: sessions of dead node %s were not adopted in %gs; its QoS 1 "
                            "confirmations are no longer awaited", node, LINGER_MAX)

    def _requeue(self, batch: _Batch, silent: set) -> list:
        """The batch's messages, into the store for the sessions the silent nodes hold or that moved
        (on a worker with PostgreSQL): the keys of the sessions that got some."""
        sessions = self.fabric.sessions
        if sessions is None or not sessions.shared_store:
            return []
        broker = self.fabric.broker
        since = batch.sent_at - 2 * self.timeout
        by_scope: dict[tuple[str, str], list] = {}
        for account, region, msg in batch.messages:
            by_scope.setdefault((account, region), []).append(msg)
        told: set = set()
        given: set = set()  # (account, region, group, message): one member of a shared group gets it
        with broker.store.transaction(*BROKER_SCOPE) as tx:
            for _, ref in tx.scan(REF_KIND):
                holder = ref.get("node")
                if holder not in silent and (ref.get("movedAt") or 0) < since:
                    continue
                msgs = by_scope.get((ref["account"], ref["region"]))
                if not msgs:
                    continue
                scoped = tx.scope(ref["account"], ref["region"])
                doc = scoped.get(SESSION_KIND, ref["clientId"])
                if doc is None:
                    continue
                session = Session.from_doc(ref["account"], ref["region"], doc)
                room = broker.limits.queued_max - scoped.count(QUEUED_KIND, "client", session.client_id)
                n = 0
                for msg in msgs:
                    opts = _matching(session, msg.topic)
                    if opts is None:  # a shared group's member: NATS may have handed it to the silent node
                        opts = _shared_matching(session, msg.topic, given, ref["account"], ref["region"], id(msg))
                    if opts is None or n >= room:
                        continue
                    queue_message(tx, session, msg, 1, msg.retain and opts[2])
                    n += 1
                if n:
                    self.requeued += n
                    told.add(session.key)
        return sorted(told)

    # receiving side ------------------------------------------------------------------
    def _on_sync(self, kind: str, reply, body: bytes) -> None:
        if not reply:
            return
        sender, seq = body.decode().split(" ")
        if kind == "m" and sender == self.node:
            return
        self._replies.append((sender, reply, kind, seq))
        if not self._commit_scheduled:
            self._commit_scheduled = True
            self.loop.call_soon(self._confirm)

    def _confirm(self) -> None:
        self._commit_scheduled = False
        replies, self._replies = self._replies, []
        broker = self.fabric.broker
        if broker is None:
            self._answer(True, replies)
        else:  # PostgreSQL: the group commit runs on a worker, the replies go once it ended
            broker.persistence.after_durable(self._answer, replies)

    def _answer(self, committed: bool, replies: list) -> None:
        if not committed:
            return  # not safe: no confirmation (the senders time out and queue it themselves)
        publish = self.fabric.conn.publish
        mine = False
        for sender, reply, kind, seq in replies:
            if sender == self.node:  # our own queue connection (the other one does not hear itself)
                self._confirmed((self.node, kind), int(seq))
                mine = True
            else:
                publish(reply, f"{self.node} {kind} {seq}".encode())
        if mine:
            self._settle()

    def state(self) -> dict:
        return {"waiting": len(self.waiting), "batches": self.batches, "timeouts": self.timeouts,
                "requeued": self.requeued}


def _holders(store) -> set:
    """The nodes stored sessions name as their holder."""
    with store.transaction(*BROKER_SCOPE, write=False) as tx:
        return {ref.get("node") for _, ref in tx.scan(REF_KIND)}


def _timeout_from_env() -> float:
    try:
        return max(0.1, float(os.environ.get("LOCALIOT_FABRIC_CONFIRM_TIMEOUT", CONFIRM_TIMEOUT)))
    except ValueError:
        return CONFIRM_TIMEOUT


def _run(batch: _Batch, safe: bool = True) -> None:
    for fn, arg in batch.then:
        try:
            fn(arg) if safe else fn(arg, False)
        except Exception:
            log.exception("fabric: a confirmed QoS 1 callback failed")


def _shared_matching(session: Session, topic: str, given: set, account: str, region: str, msg_id: int):
    """The options of the session's first `$share/` QoS 1 subscription matching `topic` whose
    group did not get the message yet (then it has), or None."""
    for topic_filter, opts in session.subscriptions.items():
        group, inner = parse_shared(topic_filter)
        if group is None or opts[0] < 1 or not matches(inner, topic):
            continue
        key = (account, region, group, inner, msg_id)
        if key in given:
            continue
        given.add(key)
        return opts
    return None


def _matching(session: Session, topic: str):
    """The options of the session's first non-shared QoS 1 subscription matching `topic`, or None."""
    for topic_filter, opts in session.subscriptions.items():
        group, inner = parse_shared(topic_filter)
        if group is None and opts[0] >= 1 and matches(inner, topic):
            return opts
    return None
