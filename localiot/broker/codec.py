"""MQTT 3.1.1 and 5.0 packets: encoding, decoding and incremental framing.

Pure functions and small value classes, no I/O. A decoding problem raises
`MalformedPacket` carrying the MQTT 5 reason code the server should answer
with (0x81 Malformed Packet, 0x82 Protocol Error, ...); the broker closes
the connection, sending a DISCONNECT with that code to v5 clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# packet types ---------------------------------------------------------------
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15
WILL = 0  # pseudo packet type for the will properties inside CONNECT

PACKET_NAMES = {
    CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK", PUBREC: "PUBREC",
    PUBREL: "PUBREL", PUBCOMP: "PUBCOMP", SUBSCRIBE: "SUBSCRIBE", SUBACK: "SUBACK",
    UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBACK: "UNSUBACK", PINGREQ: "PINGREQ", PINGRESP: "PINGRESP",
    DISCONNECT: "DISCONNECT", AUTH: "AUTH",
}

MQTT311, MQTT5 = 4, 5

# MQTT 5 reason codes the broker uses
SUCCESS = 0x00
GRANTED_QOS_1 = 0x01
NO_SUBSCRIPTION_EXISTED = 0x11
DISCONNECT_WITH_WILL = 0x04
UNSPECIFIED_ERROR = 0x80
MALFORMED_PACKET = 0x81
PROTOCOL_ERROR = 0x82
IMPLEMENTATION_SPECIFIC_ERROR = 0x83
UNSUPPORTED_PROTOCOL_VERSION = 0x84
CLIENT_IDENTIFIER_NOT_VALID = 0x85
BAD_USERNAME_OR_PASSWORD = 0x86
NOT_AUTHORIZED = 0x87
SERVER_UNAVAILABLE = 0x88
SERVER_BUSY = 0x89
BANNED = 0x8A
SERVER_SHUTTING_DOWN = 0x8B
BAD_AUTHENTICATION_METHOD = 0x8C
KEEP_ALIVE_TIMEOUT = 0x8D
SESSION_TAKEN_OVER = 0x8E
TOPIC_FILTER_INVALID = 0x8F
TOPIC_NAME_INVALID = 0x90
PACKET_IDENTIFIER_IN_USE = 0x91
PACKET_IDENTIFIER_NOT_FOUND = 0x92
RECEIVE_MAXIMUM_EXCEEDED = 0x93
TOPIC_ALIAS_INVALID = 0x94
PACKET_TOO_LARGE = 0x95
MESSAGE_RATE_TOO_HIGH = 0x96
QUOTA_EXCEEDED = 0x97
ADMINISTRATIVE_ACTION = 0x98
PAYLOAD_FORMAT_INVALID = 0x99
RETAIN_NOT_SUPPORTED = 0x9A
QOS_NOT_SUPPORTED = 0x9B
SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
CONNECTION_RATE_EXCEEDED = 0x9F
SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1
WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2

# MQTT 3.1.1 CONNACK return codes
V3_ACCEPTED, V3_BAD_VERSION, V3_ID_REJECTED, V3_UNAVAILABLE, V3_BAD_CREDENTIALS, V3_NOT_AUTHORIZED = 0, 1, 2, 3, 4, 5
V3_SUBACK_FAILURE = 0x80

MAX_REMAINING_LENGTH = 268_435_455


class MalformedPacket(Exception):
    """The peer sent bytes that are not a valid packet; close the connection."""

    def __init__(self, message: str, reason_code: int = MALFORMED_PACKET):
        super().__init__(message)
        self.reason_code = reason_code


def protocol_error(message: str) -> MalformedPacket:
    return MalformedPacket(message, PROTOCOL_ERROR)


# MQTT 5 properties ----------------------------------------------------------
BYTE, TWO, FOUR, VARINT, UTF8, BINARY, PAIR = range(7)
_ALL = frozenset({CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK,
                  UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH, WILL})
_ACKS = frozenset({CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH})

PROPERTIES: dict[int, tuple[str, int, frozenset]] = {
    0x01: ("payload_format_indicator", BYTE, frozenset({PUBLISH, WILL})),
    0x02: ("message_expiry_interval", FOUR, frozenset({PUBLISH, WILL})),
    0x03: ("content_type", UTF8, frozenset({PUBLISH, WILL})),
    0x08: ("response_topic", UTF8, frozenset({PUBLISH, WILL})),
    0x09: ("correlation_data", BINARY, frozenset({PUBLISH, WILL})),
    0x0B: ("subscription_identifier", VARINT, frozenset({PUBLISH, SUBSCRIBE})),
    0x11: ("session_expiry_interval", FOUR, frozenset({CONNECT, CONNACK, DISCONNECT})),
    0x12: ("assigned_client_identifier", UTF8, frozenset({CONNACK})),
    0x13: ("server_keep_alive", TWO, frozenset({CONNACK})),
    0x15: ("authentication_method", UTF8, frozenset({CONNECT, CONNACK, AUTH})),
    0x16: ("authentication_data", BINARY, frozenset({CONNECT, CONNACK, AUTH})),
    0x17: ("request_problem_information", BYTE, frozenset({CONNECT})),
    0x18: ("will_delay_interval", FOUR, frozenset({WILL})),
    0x19: ("request_response_information", BYTE, frozenset({CONNECT})),
    0x1A: ("response_information", UTF8, frozenset({CONNACK})),
    0x1C: ("server_reference", UTF8, frozenset({CONNACK, DISCONNECT})),
    0x1F: ("reason_string", UTF8, _ACKS),
    0x21: ("receive_maximum", TWO, frozenset({CONNECT, CONNACK})),
    0x22: ("topic_alias_maximum", TWO, frozenset({CONNECT, CONNACK})),
    0x23: ("topic_alias", TWO, frozenset({PUBLISH})),
    0x24: ("maximum_qos", BYTE, frozenset({CONNACK})),
    0x25: ("retain_available", BYTE, frozenset({CONNACK})),
    0x26: ("user_property", PAIR, _ALL),
    0x27: ("maximum_packet_size", FOUR, frozenset({CONNECT, CONNACK})),
    0x28: ("wildcard_subscription_available", BYTE, frozenset({CONNACK})),
    0x29: ("subscription_identifier_available", BYTE, frozenset({CONNACK})),
    0x2A: ("shared_subscription_available", BYTE, frozenset({CONNACK})),
}
PROPERTY_IDS = {name: (pid, kind) for pid, (name, kind, _) in PROPERTIES.items()}
# Properties that may appear more than once; decoded as lists.
REPEATABLE = frozenset({"user_property", "subscription_identifier"})
_BOOLEAN = frozenset({"payload_format_indicator", "request_problem_information", "request_response_information",
                      "maximum_qos", "retain_available", "wildcard_subscription_available",
                      "subscription_identifier_available", "shared_subscription_available"})
_NONZERO = frozenset({"receive_maximum", "maximum_packet_size", "subscription_identifier"})


# value classes --------------------------------------------------------------
class SubOptions(NamedTuple):
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0


@dataclass(slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: dict = field(default_factory=dict)


@dataclass(slots=True)
class Connect:
    client_id: str
    protocol_level: int = MQTT311
    clean_start: bool = True
    keep_alive: int = 60
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: dict = field(default_factory=dict)
    protocol_name: str = "MQTT"
    type = CONNECT


@dataclass(slots=True)
class Connack:
    session_present: bool = False
    reason_code: int = 0
    properties: dict = field(default_factory=dict)
    type = CONNACK


@dataclass(slots=True)
class Publish:
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: dict = field(default_factory=dict)
    type = PUBLISH


@dataclass(slots=True)
class Ack:
    """PUBACK, PUBREC, PUBREL and PUBCOMP share one shape."""

    type: int
    packet_id: int
    reason_code: int = 0
    properties: dict = field(default_factory=dict)


@dataclass(slots=True)
class Subscribe:
    packet_id: int
    subscriptions: list[tuple[str, SubOptions]]
    properties: dict = field(default_factory=dict)
    type = SUBSCRIBE


@dataclass(slots=True)
class Suback:
    packet_id: int
    reason_codes: list[int]
    properties: dict = field(default_factory=dict)
    type = SUBACK


@dataclass(slots=True)
class Unsubscribe:
    packet_id: int
    filters: list[str]
    properties: dict = field(default_factory=dict)
    type = UNSUBSCRIBE


@dataclass(slots=True)
class Unsuback:
    packet_id: int
    reason_codes: list[int] = field(default_factory=list)
    properties: dict = field(default_factory=dict)
    type = UNSUBACK


@dataclass(slots=True)
class Pingreq:
    type = PINGREQ


@dataclass(slots=True)
class Pingresp:
    type = PINGRESP


@dataclass(slots=True)
class Disconnect:
    reason_code: int = 0
    properties: dict = field(default_factory=dict)
    type = DISCONNECT


@dataclass(slots=True)
class Auth:
    reason_code: int = 0
    properties: dict = field(default_factory=dict)
    type = AUTH


# primitives -----------------------------------------------------------------
def encode_varint(n: int) -> bytes:
    if n < 128:
        return bytes((n,))
    if n > MAX_REMAINING_LENGTH:
        raise ValueError("variable byte integer out of range")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(buf, pos: int, end: int) -> tuple[int, int] | None:
    """(value, next position), or None when more bytes are needed."""
    value = shift = 0
    for i in range(4):
        if pos + i >= end:
            return None
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise MalformedPacket("variable byte integer longer than 4 bytes")


def encode_string(s: str) -> bytes:
    raw = s.encode()
    if len(raw) > 65535:
        raise ValueError("string longer than 65535 bytes")
    return len(raw).to_bytes(2, "big") + raw


def encode_binary(b: bytes) -> bytes:
    if len(b) > 65535:
        raise ValueError("binary data longer than 65535 bytes")
    return len(b).to_bytes(2, "big") + bytes(b)


class _Reader:
    """Cursor over one packet body; every read checks the bounds."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf, pos: int = 0, end: int | None = None):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def remaining(self) -> int:
        return self.end - self.pos

    def byte(self) -> int:
        if self.pos >= self.end:
            raise MalformedPacket("packet ends early")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def u16(self) -> int:
        if self.pos + 2 > self.end:
            raise MalformedPacket("packet ends early")
        v = (self.buf[self.pos] << 8) | self.buf[self.pos + 1]
        self.pos += 2
        return v

    def u32(self) -> int:
        if self.pos + 4 > self.end:
            raise MalformedPacket("packet ends early")
        v = int.from_bytes(self.buf[self.pos:self.pos + 4], "big")
        self.pos += 4
        return v

    def varint(self) -> int:
        got = decode_varint(self.buf, self.pos, self.end)
        if got is None:
            raise MalformedPacket("packet ends early")
        value, self.pos = got
        return value

    def binary(self) -> bytes:
        n = self.u16()
        if self.pos + n > self.end:
            raise MalformedPacket("length exceeds the packet")
        b = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return b

    def string(self) -> str:
        return decode_utf8(self.binary())

    def rest(self) -> bytes:
        b = bytes(self.buf[self.pos:self.end])
        self.pos = self.end
        return b


def decode_utf8(raw: bytes) -> str:
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket("string is not valid UTF-8") from None
    if "\x00" in s:
        raise MalformedPacket("string contains U+0000")
    return s


# properties -----------------------------------------------------------------
def decode_properties(r: _Reader, packet_type: int) -> dict:
    length = r.varint()
    end = r.pos + length
    if end > r.end:
        raise MalformedPacket("property length exceeds the packet")
    props: dict = {}
    if not length:
        return props
    sub = _Reader(r.buf, r.pos, end)
    while sub.pos < end:
        pid = sub.varint()
        spec = PROPERTIES.get(pid)
        if spec is None:
            raise MalformedPacket(f"unknown property 0x{pid:02X}")
        name, kind, allowed = spec
        if packet_type not in allowed:
            raise protocol_error(f"property {name} is not allowed in {PACKET_NAMES.get(packet_type, 'will')}")
        if kind == BYTE:
            value = sub.byte()
        elif kind == TWO:
            value = sub.u16()
        elif kind == FOUR:
            value = sub.u32()
        elif kind == VARINT:
            value = sub.varint()
        elif kind == UTF8:
            value = sub.string()
        elif kind == BINARY:
            value = sub.binary()
        else:
            value = (sub.string(), sub.string())
        if name in _BOOLEAN and value > 1:
            raise protocol_error(f"property {name} must be 0 or 1")
        if name in _NONZERO and value == 0:
            raise protocol_error(f"property {name} must not be 0")
        if name in REPEATABLE:
            props.setdefault(name, []).append(value)
        elif name in props:
            raise protocol_error(f"property {name} appears twice")
        else:
            props[name] = value
    r.pos = end
    return props


def encode_properties(props: dict | None) -> bytes:
    if not props:
        return b"\x00"
    out = bytearray()
    for name, value in props.items():
        if value is None:
            continue
        pid, kind = PROPERTY_IDS[name]
        if name == "user_property":
            values = value  # a list of (key, value) pairs
        elif name == "subscription_identifier" and isinstance(value, (list, tuple)):
            values = value
        else:
            values = (value,)
        for v in values:
            out += encode_varint(pid)
            if kind == BYTE:
                out.append(int(v))
            elif kind == TWO:
                out += int(v).to_bytes(2, "big")
            elif kind == FOUR:
                out += int(v).to_bytes(4, "big")
            elif kind == VARINT:
                out += encode_varint(int(v))
            elif kind == UTF8:
                out += encode_string(v)
            elif kind == BINARY:
                out += encode_binary(v)
            else:
                out += encode_string(v[0]) + encode_string(v[1])
    return encode_varint(len(out)) + bytes(out)


# framing --------------------------------------------------------------------
def split_packet(buf, pos: int = 0, max_size: int = MAX_REMAINING_LENGTH) -> tuple[int, int, int] | None:
    """Find the packet starting at `pos`: (first byte, body start, body end).

    None when the buffer does not yet hold the whole packet. Raises
    MalformedPacket for a bad length and PACKET_TOO_LARGE past `max_size`
    (checked as soon as the length is known, before the body arrives).
    """
    n = len(buf)
    if n - pos < 2:
        return None
    got = decode_varint(buf, pos + 1, n)
    if got is None:
        return None
    length, start = got
    if length > max_size:
        raise MalformedPacket("packet too large", PACKET_TOO_LARGE)
    end = start + length
    if end > n:
        return None
    return buf[pos], start, end


class Parser:
    """Incremental decoder: feed bytes as they arrive, get whole packets back.

    Handles packets split across reads and several packets in one read. The
    protocol version is learnt from CONNECT (server side) or set up front.
    """

    def __init__(self, version: int | None = None, max_size: int = MAX_REMAINING_LENGTH):
        self.version = version
        self.max_size = max_size
        self._buf = bytearray()

    def feed(self, data: bytes) -> list:
        self._buf += data
        packets = []
        pos = 0
        buf = self._buf
        while True:
            framed = split_packet(buf, pos, self.max_size)
            if framed is None:
                break
            first, start, end = framed
            packet = decode(first, bytes(buf[start:end]), self.version)
            if packet.type == CONNECT:
                self.version = packet.protocol_level
            packets.append(packet)
            pos = end
        del buf[:pos]
        return packets

    @property
    def buffered(self) -> int:
        return len(self._buf)


# decoding -------------------------------------------------------------------
_FIXED_FLAGS = {CONNECT: 0, CONNACK: 0, PUBACK: 0, PUBREC: 0, PUBREL: 2, PUBCOMP: 0, SUBSCRIBE: 2, SUBACK: 0,
                UNSUBSCRIBE: 2, UNSUBACK: 0, PINGREQ: 0, PINGRESP: 0, DISCONNECT: 0, AUTH: 0}


def decode(first: int, body: bytes, version: int | None = MQTT311):
    """Decode one packet from its first byte and its body (after the length)."""
    ptype, flags = first >> 4, first & 0x0F
    if ptype == 0 or (ptype == AUTH and version != MQTT5):
        raise MalformedPacket(f"reserved packet type {ptype}")
    if ptype != PUBLISH and flags != _FIXED_FLAGS[ptype]:
        raise MalformedPacket(f"bad fixed header flags for {PACKET_NAMES[ptype]}")
    v5 = version == MQTT5
    r = _Reader(body)
    if ptype == PUBLISH:
        return _decode_publish(flags, r, v5)
    if ptype == CONNECT:
        return decode_connect(r)
    if ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        pid = r.u16()
        if not pid:
            raise protocol_error("packet identifier 0")
        code, props = 0, {}
        if v5 and r.remaining():
            code = r.byte()
            if r.remaining():
                props = decode_properties(r, ptype)
        _done(r)
        return Ack(ptype, pid, code, props)
    if ptype == SUBSCRIBE:
        return _decode_subscribe(r, v5)
    if ptype == UNSUBSCRIBE:
        pid = r.u16()
        if not pid:
            raise protocol_error("packet identifier 0")
        props = decode_properties(r, UNSUBSCRIBE) if v5 else {}
        filters = []
        while r.remaining():
            filters.append(r.string())
        if not filters:
            raise protocol_error("UNSUBSCRIBE with no topic filter")
        return Unsubscribe(pid, filters, props)
    if ptype in (PINGREQ, PINGRESP):
        _done(r)
        return Pingreq() if ptype == PINGREQ else Pingresp()
    if ptype in (DISCONNECT, AUTH):
        code, props = 0, {}
        if v5 and r.remaining():
            code = r.byte()
            if r.remaining():
                props = decode_properties(r, ptype)
        _done(r)
        return Disconnect(code, props) if ptype == DISCONNECT else Auth(code, props)
    if ptype == CONNACK:
        ack_flags = r.byte()
        if ack_flags & 0xFE:
            raise MalformedPacket("reserved CONNACK flags set")
        code = r.byte()
        props = decode_properties(r, CONNACK) if v5 else {}
        _done(r)
        return Connack(bool(ack_flags & 1), code, props)
    if ptype == SUBACK:
        pid = r.u16()
        props = decode_properties(r, SUBACK) if v5 else {}
        return Suback(pid, list(r.rest()), props)
    if ptype == UNSUBACK:
        pid = r.u16()
        props = decode_properties(r, UNSUBACK) if v5 and r.remaining() else {}
        return Unsuback(pid, list(r.rest()) if v5 else [], props)
    raise MalformedPacket(f"unknown packet type {ptype}")  # pragma: no cover


def _done(r: _Reader) -> None:
    if r.remaining():
        raise MalformedPacket("unexpected bytes at the end of the packet")


def _decode_publish(flags: int, r: _Reader, v5: bool) -> Publish:
    qos = (flags >> 1) & 3
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    dup = bool(flags & 8)
    if dup and qos == 0:
        raise MalformedPacket("PUBLISH with DUP set at QoS 0")
    topic = r.string()
    pid = None
    if qos:
        pid = r.u16()
        if not pid:
            raise protocol_error("packet identifier 0")
    props = decode_properties(r, PUBLISH) if v5 else {}
    if "+" in topic or "#" in topic:
        raise MalformedPacket("wildcard in a topic name", TOPIC_NAME_INVALID)
    return Publish(topic, r.rest(), qos, bool(flags & 1), dup, pid, props)


def _decode_subscribe(r: _Reader, v5: bool) -> Subscribe:
    pid = r.u16()
    if not pid:
        raise protocol_error("packet identifier 0")
    props = decode_properties(r, SUBSCRIBE) if v5 else {}
    subs = []
    while r.remaining():
        topic_filter = r.string()
        opts = r.byte()
        qos = opts & 3
        if qos == 3:
            raise MalformedPacket("subscription with QoS 3")
        if v5:
            if opts & 0xC0:
                raise MalformedPacket("reserved subscription option bits set")
            rh = (opts >> 4) & 3
            if rh == 3:
                raise protocol_error("retain handling 3")
            subs.append((topic_filter, SubOptions(qos, bool(opts & 4), bool(opts & 8), rh)))
        else:
            if opts & 0xFC:
                raise MalformedPacket("reserved subscription option bits set")
            subs.append((topic_filter, SubOptions(qos)))
    if not subs:
        raise protocol_error("SUBSCRIBE with no topic filter")
    return Subscribe(pid, subs, props)


def decode_connect(r: _Reader) -> Connect:
    name = r.string()
    level = r.byte()
    if name not in ("MQTT", "MQIsdp"):
        raise MalformedPacket(f"unknown protocol name {name!r}", UNSUPPORTED_PROTOCOL_VERSION)
    if level not in (MQTT311, MQTT5):
        # Refused with an "unacceptable protocol version" CONNACK by the broker.
        return Connect(client_id="", protocol_level=level, protocol_name=name)
    v5 = level == MQTT5
    flags = r.byte()
    if flags & 1:
        raise MalformedPacket("reserved CONNECT flag set")
    keep_alive = r.u16()
    props = decode_properties(r, CONNECT) if v5 else {}
    client_id = r.string()
    will = None
    will_qos = (flags >> 3) & 3
    if flags & 4:
        if will_qos == 3:
            raise MalformedPacket("will QoS 3")
        will_props = decode_properties(r, WILL) if v5 else {}
        will_topic = r.string()
        if "+" in will_topic or "#" in will_topic:
            raise MalformedPacket("wildcard in the will topic", TOPIC_NAME_INVALID)
        will = Will(will_topic, r.binary(), will_qos, bool(flags & 0x20), will_props)
    elif will_qos or flags & 0x20:
        raise MalformedPacket("will QoS or retain set without a will")
    username = r.string() if flags & 0x80 else None
    if flags & 0x40:
        if username is None and not v5:
            raise MalformedPacket("password without a user name")
        password = r.binary()
    else:
        password = None
    _done(r)
    return Connect(client_id, level, bool(flags & 2), keep_alive, username, password, will, props, name)


# encoding -------------------------------------------------------------------
def frame(first: int, body: bytes) -> bytes:
    return bytes((first,)) + encode_varint(len(body)) + body


def encode(packet, version: int = MQTT311) -> bytes:
    """Encode any packet for a peer speaking `version` (v3 drops v5-only fields)."""
    v5 = version == MQTT5
    t = packet.type
    if t == PUBLISH:
        return encode_publish(packet.topic, packet.payload, packet.qos, packet.retain, packet.dup,
                              packet.packet_id, packet.properties if v5 else None, v5)
    if t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        body = packet.packet_id.to_bytes(2, "big")
        if v5 and (packet.reason_code or packet.properties):
            body += bytes((packet.reason_code,))
            if packet.properties:
                body += encode_properties(packet.properties)
        return frame((t << 4) | _FIXED_FLAGS[t], body)
    if t == CONNACK:
        body = bytes((1 if packet.session_present else 0, packet.reason_code))
        if v5:
            body += encode_properties(packet.properties)
        return frame(CONNACK << 4, body)
    if t == SUBSCRIBE:
        body = bytearray(packet.packet_id.to_bytes(2, "big"))
        if v5:
            body += encode_properties(packet.properties)
        for topic_filter, o in packet.subscriptions:
            o = o if isinstance(o, SubOptions) else SubOptions(o)
            body += encode_string(topic_filter)
            opts = o.qos
            if v5:
                opts |= (4 if o.no_local else 0) | (8 if o.retain_as_published else 0) | (o.retain_handling << 4)
            body.append(opts)
        return frame(0x82, bytes(body))
    if t == SUBACK:
        body = packet.packet_id.to_bytes(2, "big")
        if v5:
            body += encode_properties(packet.properties)
        return frame(SUBACK << 4, body + bytes(packet.reason_codes))
    if t == UNSUBSCRIBE:
        body = bytearray(packet.packet_id.to_bytes(2, "big"))
        if v5:
            body += encode_properties(packet.properties)
        for topic_filter in packet.filters:
            body += encode_string(topic_filter)
        return frame(0xA2, bytes(body))
    if t == UNSUBACK:
        body = packet.packet_id.to_bytes(2, "big")
        if v5:
            body += encode_properties(packet.properties) + bytes(packet.reason_codes)
        return frame(UNSUBACK << 4, body)
    if t == PINGREQ:
        return b"\xc0\x00"
    if t == PINGRESP:
        return b"\xd0\x00"
    if t in (DISCONNECT, AUTH):
        if not v5:
            if t == AUTH:
                raise ValueError("AUTH exists only in MQTT 5")
            return b"\xe0\x00"
        if not packet.reason_code and not packet.properties:
            return bytes((t << 4, 0))
        body = bytes((packet.reason_code,))
        if packet.properties:
            body += encode_properties(packet.properties)
        return frame(t << 4, body)
    if t == CONNECT:
        return encode_connect(packet)
    raise ValueError(f"cannot encode {packet!r}")


def encode_publish(topic: str, payload: bytes, qos: int = 0, retain: bool = False, dup: bool = False,
                   packet_id: int | None = None, properties: dict | None = None, v5: bool = False) -> bytes:
    head = encode_string(topic)
    if qos:
        head += packet_id.to_bytes(2, "big")
    if v5:
        head += encode_properties(properties)
    first = 0x30 | (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    return bytes((first,)) + encode_varint(len(head) + len(payload)) + head + payload


def encode_connect(c: Connect) -> bytes:
    v5 = c.protocol_level == MQTT5
    flags = 2 if c.clean_start else 0
    if c.will is not None:
        flags |= 4 | (c.will.qos << 3) | (0x20 if c.will.retain else 0)
    if c.username is not None:
        flags |= 0x80
    if c.password is not None:
        flags |= 0x40
    body = bytearray(encode_string(c.protocol_name))
    body += bytes((c.protocol_level, flags)) + c.keep_alive.to_bytes(2, "big")
    if v5:
        body += encode_properties(c.properties)
    body += encode_string(c.client_id)
    if c.will is not None:
        if v5:
            body += encode_properties(c.will.properties)
        body += encode_string(c.will.topic) + encode_binary(c.will.payload)
    if c.username is not None:
        body += encode_string(c.username)
    if c.password is not None:
        body += encode_binary(c.password)
    return frame(CONNECT << 4, bytes(body))
