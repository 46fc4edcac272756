"""Cloud-side Device Defender metrics, counted by the broker per thing.

The broker holds one `ThingMeter` per connection whose client is bound to a
thing (`connected` returns it, None otherwise) and calls it on the hot path
with plain integer work only:

    conn.meter = metering.connected(runtime, identity, client_id, remote)  # CONNECT accepted
    conn.meter.sent(topic, size)          # a PUBLISH from the device
    conn.meter.received(topic)            # a message delivered to the device
    conn.meter.denied()                   # an unauthorized publish / subscribe
    metering.refused(runtime, identity)   # a CONNECT refused as not authorized
    metering.ended(conn)                  # the connection is gone

Device Defender (localiot.services.defender.detect_eval) closes a window with
`take(runtime, account, region)`: the counts of every metered thing since the
last window, and the counters start again. A leaf module: it imports nothing
of localiot, so the broker and the services both may use it.
"""

from __future__ import annotations

import weakref

_TOPICS_MAX = 256  # distinct topics counted per thing and window (dimensions); the rest only in the totals


class ThingMeter:
    __slots__ = ("thing", "n_sent", "n_received", "max_size", "min_size", "auth_failures", "attempts",
                 "disconnects", "disconnected_at", "ips", "topics_sent", "topics_received", "connections")

    def __init__(self, thing: str):
        self.thing = thing
        self.connections = 0  # live connections of the thing
        self.disconnected_at: float | None = None
        self.reset()

    def reset(self) -> None:
        self.n_sent = self.n_received = self.auth_failures = self.attempts = self.disconnects = 0
        self.max_size = 0
        self.min_size = None
        self.ips: set[str] = set()
        self.topics_sent: dict[str, list] = {}  # topic -> [count, max size, min size]
        self.topics_received: dict[str, int] = {}

    # hot path ----------------------------------------------------------------
    def sent(self, topic: str, size: int) -> None:
        self.n_sent += 1
        if size > self.max_size:
            self.max_size = size
        if self.min_size is None or size < self.min_size:
            self.min_size = size
        t = self.topics_sent.get(topic)
        if t is None:
            if len(self.topics_sent) < _TOPICS_MAX:
                self.topics_sent[topic] = [1, size, size]
            return
        t[0] += 1
        if size > t[1]:
            t[1] = size
        if size < t[2]:
            t[2] = size

    def received(self, topic: str) -> None:
        self.n_received += 1
        counts = self.topics_received
        if topic in counts:
            counts[topic] += 1
        elif len(counts) < _TOPICS_MAX:
            counts[topic] = 1

    def denied(self) -> None:
        self.auth_failures += 1

    # windows -------------------------------------------------------------------
    def snapshot(self, now: float) -> dict:
        """This window's values (and reset the counters)."""
        away = 0.0
        if self.connections == 0 and self.disconnected_at is not None:
            away = max(0.0, now - self.disconnected_at) / 60.0  # AWS: minutes
        out = {"aws:num-messages-sent": self.n_sent, "aws:num-messages-received": self.n_received,
               "aws:message-byte-size": (self.max_size, self.min_size if self.min_size is not None else 0)
               if self.n_sent else None,
               "aws:num-authorization-failures": self.auth_failures,
               "aws:num-connection-attempts": self.attempts, "aws:num-disconnects": self.disconnects,
               "aws:disconnect-duration": away, "aws:source-ip-address": sorted(self.ips),
               "topics_sent": self.topics_sent, "topics_received": self.topics_received}
        self.reset()
        return out


class Meters:
    def __init__(self):
        self.scopes: dict[tuple[str, str], dict[str, ThingMeter]] = {}

    def meter(self, account: str, region: str, thing: str) -> ThingMeter:
        things = self.scopes.setdefault((account, region), {})
        m = things.get(thing)
        if m is None:
            m = things[thing] = ThingMeter(thing)
        return m


_METERS: "weakref.WeakKeyDictionary[object, Meters]" = weakref.WeakKeyDictionary()


def meters(runtime) -> Meters:
    m = _METERS.get(runtime)
    if m is None:
        m = _METERS[runtime] = Meters()
    return m


def connected(runtime, identity, client_id: str, remote: str | None) -> ThingMeter | None:
    """A CONNECT was accepted: the thing's meter, or None when the client is bound to no thing."""
    thing = identity.thing_name
    if not thing:
        return None
    m = meters(runtime).meter(identity.account, identity.region, thing)
    m.attempts += 1
    m.connections += 1
    m.disconnected_at = None
    if remote:
        m.ips.add(remote)
    return m


def refused(runtime, identity) -> None:
    """A CONNECT refused after authentication (not authorized for its client id)."""
    if identity is not None and identity.thing_name:
        m = meters(runtime).meter(identity.account, identity.region, identity.thing_name)
        m.attempts += 1
        m.auth_failures += 1


def ended(conn) -> None:
    m = getattr(conn, "meter", None)
    if m is None:
        return
    conn.meter = None
    m.disconnects += 1
    m.connections = max(0, m.connections - 1)
    if m.connections == 0:
        m.disconnected_at = conn.broker.clock.now()


def take(runtime, account: str, region: str, now: float) -> dict[str, dict]:
    """{thing: this window's values} for every thing metered in the scope; counters restart."""
    things = meters(runtime).scopes.get((account, region)) or {}
    out = {}
    for name, m in list(things.items()):
        out[name] = m.snapshot(now)
        if m.connections == 0 and m.disconnected_at is None:
            del things[name]
    return out
