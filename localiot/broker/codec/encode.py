"""Encoding: every packet type for a peer speaking MQTT 3.1.1 or 5."""

from __future__ import annotations

from localiot.broker.codec.constants import (
    AUTH, CONNACK, CONNECT, DISCONNECT, FIXED_FLAGS, MQTT311, MQTT5, PINGREQ, PINGRESP, PUBACK, PUBCOMP, PUBLISH,
    PUBREC, PUBREL, SUBACK, SUBSCRIBE, UNSUBACK, UNSUBSCRIBE,
)
from localiot.broker.codec.packets import Connect, SubOptions
from localiot.broker.codec.wire import encode_binary, encode_properties, encode_string, encode_varint


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
        return frame((t << 4) | FIXED_FLAGS[t], body)
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
