"""Back-pressure: a subscriber slower than its publishers slows them down
instead of losing what they published.

A subscriber connection is *congested* while its transport's write buffer is
over asyncio's high-water mark (`paused_writing`) or while more than
`Limits.pending_high` QoS 1 messages wait for a slot in its in-flight window
(`backlogged`, cleared at `Limits.pending_low`). A publisher whose message
reaches a congested subscriber is registered as its waiter: the publisher's
connection stops handling packets right after that PUBLISH (the rest of what
it sent waits, unread and unacknowledged) and its transport stops reading,
so the publisher's own in-flight window fills and it waits, as MQTT 5's
Receive Maximum intends. When the subscriber drains, its waiters resume.

A subscriber that stays congested for `Limits.stuck_timeout` seconds (broker
clock) without acknowledging anything or draining its buffer is disconnected
(THROTTLED); a persistent session keeps its unacknowledged messages, up to
the queued-messages quota, for the next connection. One that does not even
read its socket is aborted (at once, or after CLOSE_GRACE seconds if it
still has not closed): closing gracefully would wait for its buffers.

Two connections that feed each other cannot wait on each other: a
publisher is not held by a subscriber that is itself held.
"""

from __future__ import annotations

from localiot.broker import codec

STUCK_REASON = "The client did not read the messages sent to it."
CLOSE_GRACE = 2.0  # seconds a stuck client's connection may take to close before it is aborted


def hold(broker, conn, msg) -> None:
    """`conn` (a subscriber) is congested and `msg` is for it: its publisher waits."""
    if conn.waiters is None and not conn.backlogged:
        conn.progress_at = broker.clock.now()
    origin = msg.origin
    pub = origin.conn if origin is not None else None
    if pub is None or pub is conn or pub.blocked_by is not None or conn.blocked_by is not None:
        return
    pub.blocked_by = conn
    if conn.waiters is None:
        conn.waiters = []
    conn.waiters.append(pub)


def backlog(broker, conn, pending: int) -> None:
    """The subscriber's QoS 1 backlog grew to `pending` messages."""
    if pending >= broker.limits.pending_high and not conn.backlogged:
        if conn.waiters is None:
            conn.progress_at = broker.clock.now()
        conn.backlogged = True


def progress(broker, conn, pending: int) -> None:
    """The subscriber acknowledged a message; `pending` still wait for a window slot."""
    more = conn.more  # (read once: an uncongested connection's fields are the shared defaults)
    if more.backlogged or more.waiters:
        conn.progress_at = broker.clock.now()
        if conn.backlogged and pending <= broker.limits.pending_low:
            conn.backlogged = False
        if not conn.backlogged and not conn.paused_writing and conn.waiters:
            release(conn)


def release(conn) -> None:
    """The subscriber drained: every publisher waiting for it reads again."""
    waiters, conn.waiters = conn.waiters, None
    if not waiters:
        return
    for w in waiters:
        if w.blocked_by is conn:
            w.blocked_by = None
            w.resume()


def sweep_stuck(broker, now: float) -> None:
    """Disconnect subscribers congested without progress for longer than the stuck timeout."""
    timeout = broker.limits.stuck_timeout
    for conn in list(broker.connections):
        more = conn.more
        if (more.backlogged or more.waiters) and now - more.progress_at > timeout:
            stalled = conn.paused_writing
            conn.drop("THROTTLED", codec.QUOTA_EXCEEDED, STUCK_REASON)
            if stalled:  # it does not read: a graceful close would wait for its buffers forever
                _abort(conn)
            else:  # ... or for its TLS close_notify
                broker.loop.call_later(CLOSE_GRACE, _abort, conn)


def _abort(conn) -> None:
    if conn.transport is not None:
        conn.transport.abort()
