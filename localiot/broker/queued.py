"""Handing a session that is back (or whose store queue grew) the QoS 1 messages
queued for it in the store (localiot.broker.persistence).

Without worker threads (SQLite) the queue is read on the loop and sent at once.
With them (PostgreSQL) it is read on a worker, after the group commit holding
what was buffered for the session; what is routed to the session meanwhile is
sent (and held in the store) as usual, so a message the read also returns is
skipped by its stored name. If the client went again before the read ended,
the messages stay queued in the store and counted for its next connection."""

from __future__ import annotations

from localiot.broker.states import CONNECTED


def deliver(broker, conn, session, skip_held: bool = False) -> None:
    """Send `session` (connected through `conn`) the messages queued for it in the store."""
    persistence = broker.persistence
    if persistence.workers is None:
        _send(broker, conn, session, persistence.take_queued(session), skip_held)
        return
    reading = persistence.take_queued_off_loop(session)

    def read(done) -> None:
        if done.cancelled() or done.exception() is not None:
            session.queued += 1  # unknown how many: read again at the next connection
            return
        queued = done.result()
        if session.conn is not conn or conn.state != CONNECTED:
            session.queued += len(queued)  # gone again: still stored, for its next connection
            return
        _send(broker, conn, session, queued, True)

    reading.add_done_callback(read)


def _send(broker, conn, session, queued: list, skip_held: bool) -> None:
    held = set()
    if skip_held:
        held = {entry[2] for entry in session.inflight.values()} | {entry[2] for entry in session.pending}
    now = broker.clock.now()
    for msg, packet_id, name in queued:
        if name in held:
            continue
        if msg.expired(now) or not broker.can_receive(session, msg.topic):
            broker.persistence.release(session, name)
            continue
        broker.send_qos1(session, conn, msg, msg.retain, packet_id, name)
    broker.flush_soon()
