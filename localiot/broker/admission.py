"""The one publish admission path: may this identity publish to this topic,
is it reserved and which route serves it, is the message retained.

    decision = broker.admit(identity, topic, retain)

MQTT PUBLISH (the connection caches the decision per topic), wills, HTTPS
publish and iot-data `Publish` all ask here, and the checks run in this
order:

  1. the topic name is valid (length, depth, no wildcards, no U+0000)   INVALID, with the reason
  2. a `$` topic is in the reserved-topic table (built from the doors)  else DENIED
  3. iot:Publish on arn:...:topic/{topic}                                else DENIED
  4. iot:RetainPublish when the message is to be retained               else DENIED; a will is
                                                                        published unretained instead
  5. RESERVED (route and named parts for the door) or OK

An API caller (iot-data `Publish`) is `trusted`: its request was authorized
by the API, so steps 3 and 4 do not apply. What happens next is the
caller's: an OK message is retained if `decision.retain` and routed, a
RESERVED one goes to `Broker.serve_reserved` with its requester.
"""

from __future__ import annotations

from typing import Callable

from localiot.broker import auth
from localiot.broker.reserved import ReservedTopics, Route
from localiot.broker.sessions import Limits
from localiot.topics import TopicError, validate_topic_name

OK, RESERVED, DENIED, INVALID = 0, 1, 2, 3
_DEFAULT_LIMITS = Limits()


class Decision:
    __slots__ = ("status", "topic", "retain", "route", "parts", "reason")

    def __init__(self, status: int, topic: str, retain: bool = False, route: Route | None = None,
                 parts: dict | None = None, reason: str | None = None):
        self.status = status
        self.topic = topic
        self.retain = retain  # retain the message (asked for and allowed)
        self.route = route  # RESERVED: the route serving the topic
        self.parts = parts  # RESERVED: the route template's named parts
        self.reason = reason  # INVALID / DENIED: what is wrong with the topic name, or what was not allowed

    def __repr__(self) -> str:
        status = ("OK", "RESERVED", "DENIED", "INVALID")[self.status]
        return f"Decision({status}, {self.topic!r}, retain={self.retain})"


def admit(identity, topic: str, retain: bool = False, *, reserved: ReservedTopics,
          authorize: Callable[[object, str, str], bool] | None = None, limits: Limits = _DEFAULT_LIMITS,
          will: bool = False) -> Decision:
    """Decide one publish. `authorize` None: a trusted (API) caller."""
    try:
        validate_topic_name(topic, limits.topic_max_bytes, limits.topic_max_slashes)
    except TopicError as error:
        return Decision(INVALID, topic, reason=str(error))
    found = reserved.find(topic) if topic.startswith("$") else None
    if topic.startswith("$") and found is None:
        return Decision(DENIED, topic, reason="The topic is reserved by AWS IoT and not open to devices.")
    if authorize is not None:
        resource = auth.arn(identity, "topic", topic)
        if not authorize(identity, auth.PUBLISH, resource):
            return Decision(DENIED, topic, reason=f"Not authorized to publish (iot:Publish on {resource}).")
        if retain and not authorize(identity, auth.RETAIN_PUBLISH, resource):
            if not will:
                return Decision(DENIED, topic, reason=f"Not authorized to retain (iot:RetainPublish on {resource}).")
            retain = False
    if found is not None:
        return Decision(RESERVED, topic, False, found[0], found[1])
    return Decision(OK, topic, bool(retain))
