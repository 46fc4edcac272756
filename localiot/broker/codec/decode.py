"""Decoding: framing (a packet's extent in a byte stream), the incremental
Parser, and one decoder per packet type. `decode_publish` is the one PUBLISH
decoder; it works in place on the receive buffer so the broker's hot path
builds no packet object."""

from __future__ import annotations

from localiot.broker.codec.constants import (
    AUTH, CONNACK, CONNECT, DISCONNECT, FIXED_FLAGS, MAX_REMAINING_LENGTH, MQTT311, MQTT5, PACKET_NAMES,
    PACKET_TOO_LARGE, PINGREQ, PINGRESP, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBACK, SUBSCRIBE,
    TOPIC_NAME_INVALID, UNSUBACK, UNSUBSCRIBE, UNSUPPORTED_PROTOCOL_VERSION, WILL, MalformedPacket, protocol_error,
)
from localiot.broker.codec.packets import (
    Ack, Auth, Connack, Connect, Disconnect, Pingreq, Pingresp, Publish, Suback, Subscribe, SubOptions,
    Unsuback, Unsubscribe, Will,
)
from localiot.broker.codec.wire import _Reader, decode_properties, decode_utf8, decode_varint


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
def decode(first: int, body: bytes, version: int | None = MQTT311):
    """Decode one packet from its first byte and its body (after the length)."""
    ptype, flags = first >> 4, first & 0x0F
    if ptype == 0 or (ptype == AUTH and version != MQTT5):
        raise MalformedPacket(f"reserved packet type {ptype}")
    if ptype != PUBLISH and flags != FIXED_FLAGS[ptype]:
        raise MalformedPacket(f"bad fixed header flags for {PACKET_NAMES[ptype]}")
    v5 = version == MQTT5
    r = _Reader(body)
    if ptype == PUBLISH:
        return _decode_publish(first, body, v5)
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


def decode_publish(first: int, buf, start: int, end: int, v5: bool) -> tuple[bytes, int, dict | None, int]:
    """The one PUBLISH decoder, in place on `buf` (the body is buf[start:end]):
    (topic bytes, packet identifier or 0 at QoS 0, properties or None when there
    are none, where the payload starts). The topic stays bytes: the broker
    caches its checks by them and decodes it once per distinct topic."""
    qos = (first >> 1) & 3
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    if not qos and first & 8:
        raise MalformedPacket("PUBLISH with DUP set at QoS 0")
    if start + 2 > end:
        raise MalformedPacket("packet ends early")
    p = start + 2 + ((buf[start] << 8) | buf[start + 1])
    if p > end:
        raise MalformedPacket("length exceeds the packet")
    topic = buf[start + 2:p]
    pid = 0
    if qos:
        if p + 2 > end:
            raise MalformedPacket("packet ends early")
        pid = (buf[p] << 8) | buf[p + 1]
        if not pid:
            raise protocol_error("packet identifier 0")
        p += 2
    props = None
    if v5:
        if p < end and buf[p] == 0:  # the usual case: no properties
            p += 1
        else:
            r = _Reader(buf, p, end)
            props = decode_properties(r, PUBLISH)
            p = r.pos
    return topic, pid, props, p


def _decode_publish(first: int, body: bytes, v5: bool) -> Publish:
    topic, pid, props, p = decode_publish(first, body, 0, len(body), v5)
    topic = decode_utf8(bytes(topic))
    if "+" in topic or "#" in topic:
        raise MalformedPacket("wildcard in a topic name", TOPIC_NAME_INVALID)
    qos = (first >> 1) & 3
    return Publish(topic, bytes(body[p:]), qos, bool(first & 1), bool(first & 8), pid or None, props or {})


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


_PLAIN_CONNECT = b"\x00\x04MQTT\x04"  # protocol name and level 4 (MQTT 3.1.1)


def decode_connect_plain(body: bytes) -> Connect | None:
    """A 3.1.1 CONNECT of a client id alone (no will, user name or password), what most devices
    send, decoded without a reader: what `decode_connect` makes of it; None for any other
    CONNECT (decode_connect takes it, and its errors)."""
    n = len(body)
    if n < 12 or body[7] & 0xFD or not body.startswith(_PLAIN_CONNECT) or 12 + (body[10] << 8 | body[11]) != n:
        return None
    return Connect(decode_utf8(body[12:]), MQTT311, body[7] == 2, body[8] << 8 | body[9])
