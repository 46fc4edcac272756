"""The fields of a connection that most connections never change: a will, topic aliases,
back-pressure bookkeeping, a paused read, a partial packet's progress, how it ended. They live on a
companion object made on the first change, so an idle connection pays one slot for them
instead of one per field (localiot.broker.connection)."""

from __future__ import annotations

NO_OUTPUT = ()  # the output of a connection with nothing to write (a list is made for its next bytes)


class Occasional:
    __slots__ = ("will", "will_delay", "max_out_packet", "reading_paused", "aliases", "waiters", "backlogged",
                 "progress_at", "skip", "have", "need", "disconnect_reason", "client_initiated", "send_will")

    def __init__(self):
        self.will = None  # the CONNECT's will (a Message)
        self.will_delay = 0
        self.max_out_packet: int | None = None  # an MQTT 5 client's Maximum Packet Size
        self.reading_paused = False  # paused by us (a yield, a congested subscriber, an asynchronous step)
        self.aliases: dict[int, bytes] | None = None  # MQTT 5 topic aliases
        self.waiters: list | None = None  # publishers waiting for this connection to drain (localiot.broker.flow)
        self.backlogged = False  # too many QoS 1 messages wait for this subscriber's window
        self.progress_at = 0.0  # broker clock: last sign of life of a congested subscriber
        self.skip = 0  # bytes kept unread start at this offset of the first buffer (a long rest is not copied)
        self.have = 0  # ... so many of them
        self.need = 0  # ... and so many make the next packet whole
        self.disconnect_reason = "CONNECTION_LOST"
        self.client_initiated = False
        self.send_will = True


ORDINARY = Occasional()  # every connection's until it changes one (never written to)


def field(name: str) -> property:
    """conn.<name>, read from its companion; the first change of any makes the connection its own."""
    default = getattr(ORDINARY, name)

    def get(conn):
        return getattr(conn.more, name)

    def put(conn, value) -> None:
        more = conn.more
        if more is ORDINARY:
            if value is default or (value.__class__ is default.__class__ and value == default):
                return
            more = conn.more = Occasional()
        setattr(more, name, value)

    return property(get, put, doc=f"The connection's {name} (localiot.broker.occasional).")


def of(conn) -> Occasional:
    """The connection's own companion, made now if it has none yet."""
    more = conn.more
    if more is ORDINARY:
        more = conn.more = Occasional()
    return more
