"""The broker's persistence: every store transaction of the broker, in one place.

A persistent session (MQTT 3.1.1 clean session 0, or MQTT 5 Session Expiry
Interval > 0) is a "mqtt-session" document named by client id in its
account/region, plus up to `queued_max` "mqtt-queued" documents holding the
QoS 1 messages it has not received yet. A small "mqtt-session-ref" index in
the broker's own scope lets a restarted broker find every session again.
Retained messages are localiot.broker.retained's documents.

`BrokerStore` is what the broker calls: sessions saved, deleted and parked
with their in-flight messages when the client goes, queued messages taken
when it comes back, retained messages stored and read for new
subscriptions. QoS 1 messages queued for offline sessions, and those on
their way to connected persistent sessions (stored until acknowledged, so a
SIGKILL loses none), are buffered and written in one transaction per loop
iteration (`commit`, from the broker's flush), before any PUBACK of that
iteration leaves; every other write commits before the call returns, after
the buffered ones.

With PostgreSQL (the node has worker threads, localiot.cluster.workers) none
of this runs on the event loop. The group commit runs on a worker, one after
the other (`commit_off_loop`); the broker holds the output written before it
started (PUBACKs among it) until it ends (localiot.broker.durable). A
session's own work (save, park, delete, reading its queue) runs on a worker
in that session's lane, in the order the loop asked for it, each after the
group commit that holds the session's earlier buffered messages
(`for_session`). Retained messages are read on a worker (`retained_off_loop`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from localiot.broker.message import Message
from localiot.broker.retained import RetainedQuotaExceeded, matching, put_retained
from localiot.broker.sessions import Session

log = logging.getLogger("localiot.broker")

SESSION_KIND = "mqtt-session"
QUEUED_KIND = "mqtt-queued"
REF_KIND = "mqtt-session-ref"
BROKER_SCOPE = ("", "")  # the broker's own bookkeeping, outside every account


class BrokerStore:
    def __init__(self, store, clock, runtime=None):
        self.store = store
        self.clock = clock
        self.runtime = runtime  # its `workers` (PostgreSQL) take the store work off the loop
        self._queued: list = []  # buffered writes: fn(tx) queueing one message for an offline session
        self.node: str | None = None  # with a fabric: this node's id, kept in each session's ref (its home)
        self.unfinished = 0  # group commits running on a worker
        self._last: asyncio.Future | None = None  # the latest of them
        self._lanes: dict = {}  # session key -> its latest store work on a worker
        # The broker's: start a group commit now, holding the output written so far until it ends.
        self.start_commit = self.commit_off_loop

    @property
    def workers(self):
        return getattr(self.runtime, "workers", None)

    # off the loop (PostgreSQL) ----------------------------------------------------
    def commit_off_loop(self) -> asyncio.Future:
        """The buffered writes in one transaction on a worker, after the group commits before it;
        the future's result says whether they were written."""
        ops, self._queued = self._queued, []
        workers, previous = self.workers, self._last if self.unfinished else None
        self.unfinished += 1
        if previous is None:  # the usual case: none running, straight to a worker
            task = workers.call(self._write, ops)
        else:
            async def after_previous():
                await asyncio.wait([previous])
                return await workers.call(self._write, ops)

            task = workers.loop.create_task(after_previous())
        self._last = task
        task.add_done_callback(self._committed)
        return task

    def _committed(self, _task) -> None:
        self.unfinished -= 1

    def durable_now(self) -> bool:
        """May output go to the sockets now (every PUBACK in it follows its messages' commit)?
        Without workers the buffered writes are committed here first."""
        if self.workers is None:
            if self._queued:
                self.commit()
            return True
        return not self._queued and not self.unfinished

    def after_durable(self, fn, *args) -> None:
        """`fn(ok, *args)` once every message buffered so far is committed (`ok`: the last
        commit succeeded): now without workers or when nothing is pending, else on the loop later."""
        if self.workers is None:
            fn(self.commit() if self._queued else True, *args)
            return
        if self._queued:
            self.start_commit()
        last = self._last
        if not self.unfinished or last is None:
            fn(True, *args)
            return
        last.add_done_callback(lambda done: fn(not done.cancelled() and done.exception() is None
                                               and bool(done.result()), *args))

    def for_session(self, session: Session, fn, *args) -> asyncio.Future:
        """`fn(*args)` on a worker in `session`'s lane: after its earlier store work and after
        the group commit holding what was buffered for it so far."""
        if self._queued:
            self.start_commit()
        waits = [f for f in (self._lanes.get(session.key), self._last if self.unfinished else None)
                 if f is not None]
        workers = self.workers

        async def run():
            if waits:
                await asyncio.wait(waits)
            return await workers.call(fn, *args)

        task = workers.loop.create_task(run())
        key = session.key
        self._lanes[key] = task

        def forget(done):
            if self._lanes.get(key) is done:
                del self._lanes[key]
            if not done.cancelled() and done.exception() is not None:
                log.error("store work of MQTT session %s failed: %r", session.client_id, done.exception())

        task.add_done_callback(forget)
        return task

    def after_commits(self, fn, *args) -> asyncio.Future:
        """`fn(*args)` on a worker once the group commits asked for so far (and what is
        buffered now) are done; not in any session's lane."""
        if self._queued:
            self.start_commit()
        last = self._last if self.unfinished else None
        workers = self.workers

        async def run():
            if last is not None:
                await asyncio.wait([last])
            return await workers.call(fn, *args)

        return workers.loop.create_task(run())

    def save_soon(self, session: Session) -> asyncio.Future | None:
        """`save` now (None), or on a worker in the session's lane (its future)."""
        if self.workers is None:
            self.save(session)
            return None
        doc = session.to_doc(self.clock.now()) if session.persistent else None
        return self.for_session(session, self.save, session, doc)

    def take_queued_off_loop(self, session: Session) -> asyncio.Future:
        """What `take_queued` returns, read on a worker after what was buffered for the session."""
        session.queued = 0
        return self.for_session(session, self._read_queued, session)

    def _read_queued(self, session: Session) -> list:
        with self.store.transaction(*BROKER_SCOPE, write=False) as tx:
            return list_queued(tx, session)

    def retained_off_loop(self, account: str, region: str, filters) -> asyncio.Future:
        """`retained_for` on a worker, after the retained writes of the scope asked for so far."""
        return self.workers.in_order(("mqtt-retained", account, region), self.retained_for, account, region,
                                     filters)

    def retain_off_loop(self, account: str, region: str, msg: Message, max_topics: int) -> asyncio.Future:
        """`retain` on a worker, in the scope's order: True if done, False over the quota."""
        return self.workers.in_order(("mqtt-retained", account, region), self._retain_quietly, account, region,
                                     msg, max_topics)

    def _retain_quietly(self, account: str, region: str, msg: Message, max_topics: int) -> bool:
        try:
            self.retain(account, region, msg, max_topics)
        except RetainedQuotaExceeded:
            return False
        return True

    async def drain(self) -> None:
        """Until the buffered writes and the session work asked for so far are done, and the
        presence records heard so far are written (localiot.services.presence holds them for a
        window: a reset wipes the store right after this, and none may land after the wipe)."""
        workers = self.workers
        presence = getattr(self.runtime, "presence", None)
        if workers is None:
            self.commit()
            if presence is not None:
                presence.flush(everything=True)
            return
        if self._queued:
            self.commit_off_loop()
        pending = [f for f in (self._last, *self._lanes.values()) if f is not None and not f.done()]
        if pending:
            await asyncio.wait(pending)
        if presence is not None:
            await workers.call(presence.flush, True)

    # sessions -------------------------------------------------------------------
    def restore(self) -> list[Session]:
        """Stored sessions still alive (expired ones are deleted), as disconnected sessions."""
        with self.store.transaction(*BROKER_SCOPE, write=False) as tx:
            stored = load_sessions(tx)
        now = self.clock.now()
        expired = [s for s in stored if s.expires_at is not None and s.expires_at <= now]
        if expired:
            with self.store.transaction(*BROKER_SCOPE) as tx:
                for s in expired:
                    delete_session(tx, s)
        if stored:
            log.info("restored %d MQTT sessions (%d expired)", len(stored) - len(expired), len(expired))
        return [s for s in stored if s not in expired]

    def save(self, session: Session, doc: dict | None = None) -> None:
        """Store a persistent session (its subscriptions, expiry); forget one that no longer is."""
        now = self.clock.now()
        with self.store.transaction(*BROKER_SCOPE) as tx:
            if session.persistent:
                save_session(tx, session, now, self.node, doc)
                session.stored = True
            elif session.stored:
                delete_session(tx, session)
                session.stored = False
                session.queued = 0

    def delete(self, session: Session) -> None:
        if not session.stored:
            return
        session.stored = False
        if self.workers is not None:
            self.for_session(session, self._delete, session)
            return
        self.commit()
        self._delete(session)

    def _delete(self, session: Session) -> None:
        with self.store.transaction(*BROKER_SCOPE) as tx:
            delete_session(tx, session)

    def park(self, session: Session, inflight: list, pending: list, dropped: list) -> None:
        """A persistent session whose client went: its unacknowledged (`inflight`: packet id,
        message, retain, stored name) and waiting (`pending`: message, retain, stored name)
        QoS 1 messages stay queued, the in-flight ones with their packet ids for a DUP resend;
        the stored names in `dropped` (past the queued-messages quota) go."""
        session.queued += len(inflight) + len(pending)
        session.stored = True
        if self.workers is not None:
            doc = session.to_doc(self.clock.now())
            self.for_session(session, self._park, session, inflight, pending, dropped, doc)
            return
        self.commit()
        self._park(session, inflight, pending, dropped)

    def _park(self, session: Session, inflight: list, pending: list, dropped: list, doc=None) -> None:
        now = self.clock.now()
        with self.store.transaction(*BROKER_SCOPE) as tx:
            for pid, msg, retain, name in inflight:
                queue_message(tx, session, msg, 1, retain, pid, name)
            for msg, retain, name in pending:
                if name is None:
                    queue_message(tx, session, msg, 1, retain)
            for name in dropped:
                tx.scope(session.account, session.region).delete(QUEUED_KIND, name)
            save_session(tx, session, now, self.node, doc)

    def take_queued(self, session: Session) -> list[tuple[Message, int | None, str]]:
        """The messages queued for a session that is back: [(message, packet id if resent, stored
        name)]. They stay stored until acknowledged (`release`)."""
        self.commit()
        with self.store.transaction(*BROKER_SCOPE, write=False) as tx:
            queued = list_queued(tx, session)
        session.queued = 0
        return queued

    # queued messages -----------------------------------------------------------
    def queue(self, session: Session, msg: Message, retain: bool) -> None:
        """Queue a QoS 1 message for an offline session; written at the next `commit`."""
        session.queued += 1
        self._queued.append(lambda tx: queue_message(tx, session, msg, 1, retain))

    def hold(self, session: Session, msg: Message, retain: bool) -> str:
        """Store a QoS 1 message on its way to a connected persistent session, at the next
        `commit` (before the publisher's PUBACK leaves): a killed server still has it. Its name."""
        name = _queued_name(session)
        self._queued.append(lambda tx: queue_message(tx, session, msg, 1, retain, None, name))
        return name

    def release(self, session: Session, name: str) -> None:
        """The session acknowledged a held message: forget it at the next `commit`."""
        self._queued.append(lambda tx: tx.scope(session.account, session.region).delete(QUEUED_KIND, name))

    @property
    def pending(self) -> bool:
        return bool(self._queued)

    def commit(self) -> bool:
        """Write the buffered message writes in one transaction (group commit, once per loop
        iteration). False if they could not be written."""
        ops, self._queued = self._queued, []
        return self._write(ops)

    def _write(self, ops: list) -> bool:
        if not ops:
            return True
        retryable = getattr(self.store, "retryable", None)
        for attempt in range(1, 4):
            try:
                with self.store.transaction(*BROKER_SCOPE) as tx:
                    for op in ops:
                        op(tx)
                return True
            except Exception as error:
                # PostgreSQL may end it as a deadlock with a session's own work (40P01): run it again
                if retryable is not None and attempt < 3 and retryable(error):
                    continue
                log.exception("could not store %d queued MQTT messages", len(ops))
                return False
        return False

    def forget(self) -> None:
        """Drop the buffered writes (the store was wiped)."""
        self._queued.clear()

    # retained messages ---------------------------------------------------------
    def retain(self, account: str, region: str, msg: Message, max_topics: int) -> None:
        """Store or delete a topic's retained message; raises RetainedQuotaExceeded."""
        with self.store.transaction(account, region) as tx:
            put_retained(tx, msg, self.clock.now(), max_topics)

    def retained_for(self, account: str, region: str, filters) -> list[tuple[object, Message]]:
        """[(subscription options, retained message)] for each (filter, options) of a new subscription."""
        now = self.clock.now()
        with self.store.transaction(account, region, write=False) as tx:
            return [(opts, msg) for topic_filter, opts in filters for msg in matching(tx, topic_filter, now)]


# documents -----------------------------------------------------------------------
def _ref_name(account: str, region: str, client_id: str) -> str:
    return f"{account}/{region}/{client_id}"


_last_seq = 0


def _next_seq() -> int:
    """Monotonic across restarts: nanoseconds since the epoch, strictly increasing."""
    global _last_seq
    _last_seq = max(time.time_ns(), _last_seq + 1)
    return _last_seq


def save_session(tx, session: Session, now: float, node: str | None = None, doc: dict | None = None) -> None:
    """`doc`: the session's document taken on the loop (the session may change meanwhile)."""
    tx.scope(session.account, session.region).put(SESSION_KIND, session.client_id, doc or session.to_doc(now))
    ref = {"account": session.account, "region": session.region, "clientId": session.client_id}
    if node is not None:
        ref["node"] = node  # the node holding the session (localiot.fabric.sessions)
        if session.moved_at is not None:
            ref["movedAt"] = session.moved_at  # when it came from another node (localiot.fabric.confirm)
    tx.scope(*BROKER_SCOPE).put(REF_KIND, _ref_name(*session.key), ref)


def delete_session(tx, session: Session) -> None:
    scoped = tx.scope(session.account, session.region)
    scoped.delete(SESSION_KIND, session.client_id)
    for name, _ in scoped.find(QUEUED_KIND, "client", session.client_id):
        scoped.delete(QUEUED_KIND, name)
    tx.scope(*BROKER_SCOPE).delete(REF_KIND, _ref_name(*session.key))


def _queued_name(session: Session) -> str:
    return f"{_next_seq():020d}:{session.client_id}"


def queue_message(tx, session: Session, message: Message, qos: int, retain: bool = False,
                  packet_id: int | None = None, name: str | None = None) -> None:
    """Store a message for a disconnected session; `packet_id` marks one already sent (resent with DUP)."""
    doc = message.to_doc()
    doc["qos"] = qos
    doc["retain"] = retain
    if packet_id:
        doc["packetId"] = packet_id
    name = name or _queued_name(session)
    tx.scope(session.account, session.region).put(QUEUED_KIND, name, doc, index={"client": session.client_id})


def list_queued(tx, session: Session) -> list[tuple[Message, int | None, str]]:
    """The session's stored messages in order: [(message, packet id if resent, name)]."""
    scoped = tx.scope(session.account, session.region)
    return [(Message.from_doc(doc), doc.get("packetId"), name)
            for name, doc in scoped.find(QUEUED_KIND, "client", session.client_id)]


def count_queued(tx, session: Session) -> int:
    return tx.scope(session.account, session.region).count(QUEUED_KIND, "client", session.client_id)


def load_sessions(tx) -> list[Session]:
    """Every stored session, as disconnected sessions (the broker is just starting)."""
    out = []
    for _, ref in tx.scope(*BROKER_SCOPE).scan(REF_KIND):
        scoped = tx.scope(ref["account"], ref["region"])
        doc = scoped.get(SESSION_KIND, ref["clientId"])
        if doc is None:
            continue
        session = Session.from_doc(ref["account"], ref["region"], doc)
        session.queued = scoped.count(QUEUED_KIND, "client", session.client_id)
        out.append(session)
    return out
