"""One application message on its way through the broker, and its stored form.

A Message is created once per publish and shared by every subscriber; the
QoS 0 encodings for each protocol version are made once and reused, and a
v3.1.1 QoS 0 publish is forwarded as the very bytes the publisher sent.
"""

from __future__ import annotations

import base64
import math

from localiot.broker.codec import encode_properties, encode_string, encode_varint

# MQTT 5 properties that travel with the message from publisher to subscriber.
FORWARDED = ("payload_format_indicator", "content_type", "response_topic", "correlation_data", "user_property")


class Message:
    __slots__ = ("topic", "payload", "qos", "retain", "props", "expires_at", "origin", "raw3", "raw5", "_head5")

    def __init__(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                 props: dict | None = None, expires_at: float | None = None, origin=None, raw3: bytes | None = None):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.props = props  # forwarded MQTT 5 properties, or None
        self.expires_at = expires_at  # absolute time on the broker clock, or None
        self.origin = origin  # the publishing session (for No Local), or None
        self.raw3 = raw3  # v3.1.1 QoS 0 packet, retain flag clear
        self.raw5 = None
        self._head5 = None

    @classmethod
    def from_properties(cls, topic, payload, qos, retain, properties: dict | None, now: float, origin=None,
                        raw3=None) -> "Message":
        props = None
        expires_at = None
        if properties:
            props = {k: properties[k] for k in FORWARDED if k in properties} or None
            interval = properties.get("message_expiry_interval")
            if interval is not None:
                expires_at = now + interval
        return cls(topic, payload, qos, retain, props, expires_at, origin, raw3)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    # encodings -----------------------------------------------------------
    def v3_qos0(self) -> bytes:
        raw = self.raw3
        if raw is None:
            head = encode_string(self.topic)
            raw = self.raw3 = b"\x30" + encode_varint(len(head) + len(self.payload)) + head + self.payload
        return raw

    def _v5_head(self, now: float) -> tuple[bytes, bytes]:
        """(topic part, properties part) of a v5 PUBLISH."""
        if self.expires_at is None:
            head = self._head5
            if head is None:
                head = self._head5 = (encode_string(self.topic), encode_properties(self.props))
            return head
        props = dict(self.props or ())
        props["message_expiry_interval"] = max(0, math.ceil(self.expires_at - now))
        return encode_string(self.topic), encode_properties(props)

    def v5_qos0(self, now: float) -> bytes:
        raw = self.raw5
        if raw is None:
            topic, props = self._v5_head(now)
            raw = b"\x30" + encode_varint(len(topic) + len(props) + len(self.payload)) + topic + props + self.payload
            if self.expires_at is None:
                self.raw5 = raw
        return raw

    def encode(self, v5: bool, qos: int, packet_id: int | None, retain: bool, dup: bool, now: float) -> bytes:
        """The PUBLISH packet for one delivery."""
        if not qos and not retain:
            return self.v5_qos0(now) if v5 else self.v3_qos0()
        first = 0x30 | (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
        if v5:
            topic, props = self._v5_head(now)
        else:
            topic, props = encode_string(self.topic), b""
        pid = packet_id.to_bytes(2, "big") if qos else b""
        length = len(topic) + len(pid) + len(props) + len(self.payload)
        return bytes((first,)) + encode_varint(length) + topic + pid + props + self.payload

    def size_v5(self) -> int:
        """Packet size for a v5 subscriber's Maximum Packet Size check (approximate upper bound)."""
        return len(self.payload) + len(self.topic.encode()) + 16 + (len(encode_properties(self.props)) if self.props else 1)

    # stored form ---------------------------------------------------------
    def to_doc(self) -> dict:
        doc = {"topic": self.topic, "payload": base64.b64encode(self.payload).decode(), "qos": self.qos}
        if self.retain:
            doc["retain"] = True
        if self.props:
            doc["properties"] = props_to_doc(self.props)
        if self.expires_at is not None:
            doc["expiresAt"] = self.expires_at
        return doc

    @classmethod
    def from_doc(cls, doc: dict) -> "Message":
        return cls(doc["topic"], base64.b64decode(doc["payload"]), doc.get("qos", 0), doc.get("retain", False),
                   props_from_doc(doc.get("properties")), doc.get("expiresAt"))


def props_to_doc(props: dict | None) -> dict:
    out = {}
    for key, value in (props or {}).items():
        if key == "correlation_data":
            out[key] = base64.b64encode(value).decode()
        elif key == "user_property":
            out[key] = [list(pair) for pair in value]
        else:
            out[key] = value
    return out


def props_from_doc(doc: dict | None) -> dict | None:
    if not doc:
        return None
    out = {}
    for key, value in doc.items():
        if key == "correlation_data":
            out[key] = base64.b64decode(value)
        elif key == "user_property":
            out[key] = [tuple(pair) for pair in value]
        else:
            out[key] = value
    return out
