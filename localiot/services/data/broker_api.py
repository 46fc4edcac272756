"""The message-broker half of iot-data: Publish, GetRetainedMessage,
ListRetainedMessages and DeleteConnection, on the same broker devices use.

(The botocore model this project pins has no GetConnection or
ListSubscriptions; they are not served.)

- Publish is admitted like a device's publish (`Broker.admit`, without the
  policy checks: the API authorized the caller): the topic's length, depth
  and wildcards (InvalidRequestException), `$` topics other than the ones
  the doors serve are refused (ForbiddenException), 128 KB of
  payload (RequestEntityTooLargeException). The MQTT 5 members become the
  message's properties: `userProperties` (JSON `[{"key": "value"}, ...]`, a
  base64 header), `payloadFormatIndicator`, `contentType`, `responseTopic`,
  `correlationData` (base64) and `messageExpiry`. A retained message is
  stored in the call's own transaction (an empty payload deletes it; a new
  topic past the account's quota is a ThrottlingException, the only limit
  error the operation models), and the message reaches subscribers, the
  rules engine and Defender once the call has committed. A publish on a
  device-reserved topic (shadow, jobs, Basic Ingest ...) goes through the
  same MQTT door a device's would, after the commit; its answer is on the
  reply topics, never in the HTTP response (and a retain flag there is
  ignored, as over MQTT).
- GetRetainedMessage / ListRetainedMessages read the broker's retained
  messages; expired ones (message expiry) are not there.
- DeleteConnection disconnects a connected client (ResourceNotFoundException
  if it is not connected) once the call has committed, optionally ending its
  session (`cleanSession`) and without its will (`preventWillMessage`).
"""

from __future__ import annotations

import base64
import binascii
import json

from localiot.broker import auth
from localiot.broker.admission import DENIED, INVALID, OK, RESERVED, admit
from localiot.broker.message import Message
from localiot.broker.reserved import ReservedTopics
from localiot.broker.retained import KIND as RETAINED, RetainedQuotaExceeded, get_retained, put_retained
from localiot.broker.sessions import Limits
from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import operation
from localiot.services.common import decode_token, encode_token
from localiot.topics import TopicError, validate_topic_name

FORMAT_INDICATORS = {"UNSPECIFIED_BYTES": 0, "UTF8_DATA": 1}
DEFAULT_PAGE_SIZE = 50  # ListRetainedMessages; the model allows 1..200
HTTP_PRINCIPAL = "iot-data"  # the principal of an HTTP publish served by an MQTT door


def _limits(ctx) -> Limits:
    broker = ctx.runtime.broker
    return broker.limits if broker is not None else Limits()


def _after_commit(ctx, fn) -> bool:
    """Run `fn()` once this unit of work committed. False when no broker runs."""
    broker = ctx.runtime.broker
    if broker is None or broker.loop is None:
        return False
    ctx.after_commit(fn)
    return True


def _check_topic(topic: str, limits: Limits, what: str = "topic") -> None:
    try:
        validate_topic_name(topic, limits.topic_max_bytes, limits.topic_max_slashes)
    except TopicError as error:
        raise invalid(f"Invalid {what} {topic!r}: {error}") from None


# Publish -------------------------------------------------------------------------------
def user_properties(value) -> list[tuple[str, str]]:
    """`[{"deviceName": "alpha"}, {"deviceCnt": "45"}]` (or its JSON text) as MQTT 5 pairs."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise invalid("userProperties must be a JSON array of objects.") from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise invalid("userProperties must be a JSON array of objects.")
    pairs = []
    for item in value:
        for key, val in item.items():
            pairs.append((key, val if isinstance(val, str) else json.dumps(val)))
    return pairs


def mqtt5_properties(req: dict, limits: Limits) -> dict | None:
    props: dict = {}
    if req.get("payloadFormatIndicator") is not None:
        props["payload_format_indicator"] = FORMAT_INDICATORS[req["payloadFormatIndicator"]]
    if req.get("contentType") is not None:
        props["content_type"] = req["contentType"]
    if req.get("responseTopic") is not None:
        _check_topic(req["responseTopic"], limits, "responseTopic")
        props["response_topic"] = req["responseTopic"]
    if req.get("correlationData") is not None:
        try:
            props["correlation_data"] = base64.b64decode(req["correlationData"], validate=True)
        except (binascii.Error, ValueError):
            raise invalid("correlationData must be base64-encoded.") from None
    if req.get("messageExpiry") is not None:
        if req["messageExpiry"] < 0:
            raise invalid("messageExpiry must be a number of seconds, 0 or more.")
        props["message_expiry_interval"] = req["messageExpiry"]
    if req.get("userProperties") is not None:
        pairs = user_properties(req["userProperties"])
        if pairs:
            props["user_property"] = pairs
    return props or None


# Topics (not `$` ones) an API caller was admitted to, with the limits they were checked
# against: for a trusted caller such a topic's admission is OK whatever else (the topic
# name's checks are all there is to it), so a topic published to again skips them.
_ADMITTED: set[tuple[str, int, int]] = set()
_ADMITTED_AT_MOST = 10_000
_PLAIN_MEMBERS = frozenset({"topic", "payload", "qos", "retain"})  # a request with no MQTT 5 member


def _admit(ctx, broker, topic: str, retain: bool, limits: Limits, key: tuple):
    """(status, retained, decision): the trusted admission of an API publish to a topic
    not admitted before (`key`: its entry in _ADMITTED)."""
    identity = auth.Identity(ctx.account, ctx.region, principal=HTTP_PRINCIPAL)
    if broker is not None:  # the API authorized the caller: no IoT policy applies
        decision = broker.admit(identity, topic, retain, trusted=True)
    else:  # no broker, so no doors: no reserved topic can be served
        decision = admit(identity, topic, retain, reserved=ReservedTopics(), limits=limits)
    if decision.status == OK and topic[:1] != "$":
        if len(_ADMITTED) >= _ADMITTED_AT_MOST:
            _ADMITTED.clear()
        _ADMITTED.add(key)
    return decision.status, decision.retain, decision


@operation("iot-data")
def Publish(ctx, req):
    topic, broker = req["topic"], ctx.runtime.broker
    limits = broker.limits if broker is not None else Limits()
    payload = bytes(req.get("payload") or b"")
    qos, retain = req.get("qos") or 0, bool(req.get("retain"))
    key = (topic, limits.topic_max_bytes, limits.topic_max_slashes)
    if key in _ADMITTED:  # (a topic published to before: nothing more to check)
        status, decision = OK, None
    else:
        status, retain, decision = _admit(ctx, broker, topic, retain, limits, key)
    if status == INVALID:
        raise invalid(f"Invalid topic {topic!r}: {decision.reason}")
    if status == DENIED:
        raise ServiceError("ForbiddenException", f"Publishing to the reserved topic {topic} is not allowed.")
    if len(payload) > limits.payload_max:
        raise ServiceError("RequestEntityTooLargeException",
                           f"The payload exceeds the maximum size of {limits.payload_max} bytes.", status=413)
    props = None if _PLAIN_MEMBERS.issuperset(req) else mqtt5_properties(req, limits)
    if status == RESERVED:
        identity = auth.Identity(ctx.account, ctx.region, principal=HTTP_PRINCIPAL)
        if not _after_commit(ctx, lambda: broker.serve_reserved(identity, decision, payload, props or {}, qos)):
            raise ServiceError("ServiceUnavailableException", "The message broker is not running.", status=503)
        return {}
    if props is None and not retain:  # (the usual publish: nothing that needs the time)
        msg = Message(topic, payload, qos)
    else:
        now = ctx.now()
        msg = Message.from_properties(topic, payload, qos, retain, props, now)
    if retain:
        try:
            put_retained(ctx.tx, msg, now, limits.retained_topics_max)
        except RetainedQuotaExceeded as error:
            raise ServiceError("ThrottlingException", str(error)) from None

    account, region = ctx.account, ctx.region

    def deliver():  # (not a closure over ctx, which holds it: see unit_of_work._let_go)
        broker.route(account, region, msg)
        broker.flush_soon()

    if broker is not None and broker.loop is not None:  # (_after_commit, written out: every Publish)
        ctx.after_commit(deliver)
    else:
        ctx.events.append((topic, payload))  # no broker: the rules engine still hears it
    return {}


# retained messages ---------------------------------------------------------------------
@operation("iot-data")
def GetRetainedMessage(ctx, req):
    topic = req["topic"]
    _check_topic(topic, _limits(ctx))
    found = get_retained(ctx.tx, topic, ctx.now())
    if found is None:
        raise not_found(f"No retained message exists for topic {topic}.")
    out = {"topic": found["topic"], "payload": found["payload"], "qos": found["qos"],
           "lastModifiedTime": found["lastModifiedTime"]}
    if found["userProperties"]:
        pairs = [{key: value} for key, value in found["userProperties"]]
        out["userProperties"] = json.dumps(pairs, separators=(",", ":")).encode()
    return out


@operation("iot-data")
def ListRetainedMessages(ctx, req):
    size = req.get("maxResults") or DEFAULT_PAGE_SIZE
    cursor, now = decode_token(req.get("nextToken")), ctx.now()
    if cursor is not None and not isinstance(cursor, str):
        raise invalid("The specified nextToken is not valid.")
    found: list[dict] = []
    while len(found) <= size:  # expired messages are skipped, so read on until the page is full
        rows = ctx.tx.scan(RETAINED, after=cursor, limit=size + 1)
        for name, doc in rows:
            expires = doc.get("expiresAt")
            if expires is None or now < expires:
                found.append({"topic": name, "payloadSize": doc["payloadSize"], "qos": doc["qos"],
                              "lastModifiedTime": doc["lastModifiedTime"]})
        if len(rows) <= size:
            break
        cursor = rows[-1][0]
    out = {"retainedTopics": found[:size]}
    if len(found) > size:
        out["nextToken"] = encode_token(found[size - 1]["topic"])
    return out


# connections ---------------------------------------------------------------------------
@operation("iot-data")
def DeleteConnection(ctx, req):
    client_id = req["clientId"]
    broker = ctx.runtime.broker
    if broker is None or not broker.is_connected(ctx.account, ctx.region, client_id):
        raise not_found(f"No connection with client ID {client_id} exists.")
    clean, no_will = bool(req.get("cleanSession")), bool(req.get("preventWillMessage"))
    _after_commit(ctx, lambda: broker.disconnect_client(ctx.account, ctx.region, client_id, clean, no_will))
    return {}
