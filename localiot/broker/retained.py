"""Retained messages, kept in the store (kind "retained", one document per topic).

They survive restarts; publishing an empty retained payload deletes the
topic's message. The iot-data API reads them through `get_retained` and
`list_retained` inside its own transaction; the broker writes them and
delivers them to new subscriptions through `matching`.
"""

from __future__ import annotations

import base64

from localiot.broker.message import Message, props_from_doc, props_to_doc
from localiot.topics import literal_prefix, matches

KIND = "retained"
DEFAULT_MAX_TOPICS = 500_000  # AWS: retained messages per account


class RetainedQuotaExceeded(Exception):
    """The account already holds the maximum number of retained topics."""


def put_retained(tx, message: Message, now: float, max_topics: int = DEFAULT_MAX_TOPICS) -> bool:
    """Store (or, for an empty payload, delete) a topic's retained message. True if stored."""
    if not message.payload:
        tx.delete(KIND, message.topic)
        return False
    if tx.get(KIND, message.topic) is None and tx.count(KIND) >= max_topics:
        raise RetainedQuotaExceeded(f"The account already has {max_topics} retained messages.")
    doc = {
        "topic": message.topic,
        "payload": base64.b64encode(message.payload).decode(),
        "payloadSize": len(message.payload),
        "qos": message.qos,
        "lastModifiedTime": int(now * 1000),
    }
    if message.props:
        doc["properties"] = props_to_doc(message.props)
    if message.expires_at is not None:
        doc["expiresAt"] = message.expires_at
    tx.put(KIND, message.topic, doc)
    return True


def _live(doc: dict, now: float | None) -> bool:
    expires = doc.get("expiresAt")
    return expires is None or now is None or now < expires


def get_retained(tx, topic: str, now: float | None = None) -> dict | None:
    """{topic, payload (bytes), qos, lastModifiedTime (ms), payloadSize, userProperties, properties} or None."""
    doc = tx.get(KIND, topic)
    if doc is None or not _live(doc, now):
        return None
    props = props_from_doc(doc.get("properties")) or {}
    return {
        "topic": doc["topic"],
        "payload": base64.b64decode(doc["payload"]),
        "qos": doc["qos"],
        "lastModifiedTime": doc["lastModifiedTime"],
        "payloadSize": doc["payloadSize"],
        "userProperties": props.get("user_property", []),
        "properties": props,
    }


def list_retained(tx, after: str | None = None, limit: int | None = None, now: float | None = None) -> list[dict]:
    """Topics in name order after `after`: [{topic, payloadSize, qos, lastModifiedTime}]."""
    out = []
    for name, doc in tx.scan(KIND, after=after, limit=limit):
        if _live(doc, now):
            out.append({"topic": name, "payloadSize": doc["payloadSize"], "qos": doc["qos"],
                        "lastModifiedTime": doc["lastModifiedTime"]})
    return out


def matching(tx, topic_filter: str, now: float) -> list[Message]:
    """Retained messages whose topic matches a (non-shared) filter, ready to deliver."""
    prefix = literal_prefix(topic_filter)
    if prefix == topic_filter:  # no wildcard: one lookup
        doc = tx.get(KIND, topic_filter)
        rows = [(topic_filter, doc)] if doc is not None else []
    else:
        rows = tx.scan(KIND, prefix=prefix) if prefix else tx.scan(KIND)
    out = []
    for name, doc in rows:
        if _live(doc, now) and matches(topic_filter, name):
            out.append(Message(name, base64.b64decode(doc["payload"]), doc["qos"], True,
                               props_from_doc(doc.get("properties")), doc.get("expiresAt")))
    return out
