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


class Shared(Occasional):
    """A companion many connections share (never written to): a change of one of its fields
    gives the connection a copy of its own first."""

    __slots__ = ()

    def __init__(self, **fields):
        super().__init__()
        for name, value in fields.items():
            setattr(self, name, value)


ORDINARY = Shared()  # every connection's until it changes one
# A client's DISCONNECT, the usual end of a connection that changed nothing else: shared rather than
# a companion of its own per connection (a third of the DISCONNECT's Python work was making one)
CLIENT_GONE = Shared(disconnect_reason="CLIENT_INITIATED_DISCONNECT", client_initiated=True, send_will=False)


def _own(shared: Occasional) -> Occasional:
    more = Occasional()
    if shared is not ORDINARY:
        for name in Occasional.__slots__:
            setattr(more, name, getattr(shared, name))
    return more


def field(name: str) -> property:
    """conn.<name>, read from its companion; the first change of any makes the connection its own."""

    def get(conn):
        return getattr(conn.more, name)

    def put(conn, value) -> None:
        more = conn.more
        if more.__class__ is Shared:
            current = getattr(more, name)
            if value is current or (value.__class__ is current.__class__ and value == current):
                return
            more = conn.more = _own(more)
        setattr(more, name, value)

    return property(get, put, doc=f"The connection's {name} (localiot.broker.occasional).")


def of(conn) -> Occasional:
    """The connection's own companion, made now if it has none yet."""
    more = conn.more
    if more.__class__ is Shared:
        more = conn.more = _own(more)
    return more
