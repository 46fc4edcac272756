"""What one MQTT message looks like on the fabric (the NATS message body).

    byte 0        version (1)
    byte 1        flags: bit 0 QoS 1, bit 1 retain, bit 2 has properties, bit 3 has expiry
    bytes 2-9     sequence number of the sending node (big-endian), for de-duplication
    byte 10       length of the sending node's id, then the id (ASCII)
    2 bytes       length of the topic (UTF-8), then the topic
    [4 bytes      length of the MQTT 5 properties (JSON), then them]   flag bit 2
    [8 bytes      expiry, absolute on the broker clock (IEEE double)]  flag bit 3
    the rest      the payload, as published

The topic travels whole (the subject is only for NATS's matching); so do
the forwarded MQTT 5 properties (content type, response topic, correlation
data, user properties) and the message expiry.
"""

from __future__ import annotations

import json
import struct

from localiot.broker.message import Message, props_from_doc, props_to_doc

VERSION = 1
_QOS, _RETAIN, _PROPS, _EXPIRY = 1, 2, 4, 8
_HEAD = struct.Struct(">BBQB")
_EXPIRES = struct.Struct(">d")


def encode(msg: Message, node: bytes, seq: int) -> bytes:
    flags = (_QOS if msg.qos else 0) | (_RETAIN if msg.retain else 0)
    parts = [b"", node]
    topic = msg.topic.encode()
    parts.append(len(topic).to_bytes(2, "big") + topic)
    if msg.props:
        flags |= _PROPS
        props = json.dumps(props_to_doc(msg.props), separators=(",", ":")).encode()
        parts.append(len(props).to_bytes(4, "big") + props)
    if msg.expires_at is not None:
        flags |= _EXPIRY
        parts.append(_EXPIRES.pack(msg.expires_at))
    parts[0] = _HEAD.pack(VERSION, flags, seq, len(node))
    parts.append(msg.payload)
    return b"".join(parts)


def decode(body: bytes) -> tuple[str, int, Message]:
    """(sending node, its sequence number, the message)."""
    version, flags, seq, node_len = _HEAD.unpack_from(body, 0)
    if version != VERSION:
        raise ValueError(f"fabric message version {version} is not {VERSION}")
    pos = _HEAD.size
    node = body[pos:pos + node_len].decode()
    pos += node_len
    n = int.from_bytes(body[pos:pos + 2], "big")
    topic = body[pos + 2:pos + 2 + n].decode()
    pos += 2 + n
    props = None
    if flags & _PROPS:
        n = int.from_bytes(body[pos:pos + 4], "big")
        props = props_from_doc(json.loads(body[pos + 4:pos + 4 + n]))
        pos += 4 + n
    expires_at = None
    if flags & _EXPIRY:
        expires_at = _EXPIRES.unpack_from(body, pos)[0]
        pos += _EXPIRES.size
    msg = Message(topic, body[pos:], 1 if flags & _QOS else 0, bool(flags & _RETAIN), props, expires_at)
    return node, seq, msg
