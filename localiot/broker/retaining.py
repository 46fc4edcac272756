"""A device's retained PUBLISH with PostgreSQL: the retained message is stored on
a worker (localiot.broker.persistence, in its account's order), and only then
routed and acknowledged, as on SQLite where the write runs inline: over the
account's retained-topics quota it is neither routed nor stored (MQTT 5: PUBACK
Quota exceeded). Meanwhile the publisher's further packets wait unread (as
behind a congested subscriber, localiot.broker.flow), so its messages keep
their order."""

from __future__ import annotations

from localiot import iotlogs
from localiot.broker import codec
from localiot.broker.states import CONNECTED


class _Storing:
    """What a publisher waits for (its `blocked_by`) while its retained message is stored."""

    __slots__ = ()


STORING = _Storing()


def publish(conn, msg, topic: str, qos: int, pid: int) -> None:
    broker = conn.broker
    identity = conn.identity
    blocked = conn.blocked_by is None
    if blocked:
        conn.blocked_by = STORING
    stored = broker.persistence.retain_off_loop(identity.account, identity.region, msg,
                                                broker.limits.retained_topics_max)

    def done(future) -> None:
        if blocked and conn.blocked_by is STORING:
            conn.blocked_by = None
        if conn.state != CONNECTED:
            return
        ok = not future.cancelled() and future.exception() is None and future.result()
        if not ok:
            if qos:
                conn._puback(pid, codec.QUOTA_EXCEEDED)
        else:
            broker.route(identity.account, identity.region, msg)
            iotlogs.published(conn, topic)
            if qos:
                fabric = broker.fabric  # several nodes: the PUBACK waits until the others made it safe
                if fabric is None or not fabric.confirm.after(conn._confirmed, pid):
                    conn.push(b"\x40\x02" + pid.to_bytes(2, "big"))
            broker.flush_soon()
        if blocked:
            conn.resume()

    stored.add_done_callback(done)
