"""Event configurations and the registry events they switch on.

Events are queued on the request context and reach the bus (and later the
broker's `$aws/events/...` topics) only once the call commits.
"""

from __future__ import annotations

from localiot.services import operation
from localiot.services.common import new_id
from localiot.store import kept

EVENT_TYPES = (
    "THING", "THING_GROUP", "THING_TYPE", "THING_GROUP_MEMBERSHIP", "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION", "JOB", "JOB_EXECUTION", "POLICY", "CERTIFICATE", "CA_CERTIFICATE",
)
_KIND = "event-configurations"
kept.keep(_KIND)  # every registry write reads it (is_enabled)


def _load(ctx) -> dict:
    doc = ctx.tx.get(_KIND, "default")
    if doc is None:
        doc = {"enabled": {}, "creationDate": None, "lastModifiedDate": None}
    return doc


def is_enabled(ctx, event_type: str) -> bool:
    doc = ctx.tx.get(_KIND, "default")  # (_load's, without the default document when there is none)
    return doc is not None and bool(doc["enabled"].get(event_type))


def emit(ctx, event_type: str, topic: str, operation_name: str | None, payload: dict) -> None:
    """Publish a registry event with AWS's common fields, if its type is enabled."""
    if is_enabled(ctx, event_type):
        send(ctx, event_type, topic, operation_name, payload)


def send(ctx, event_type: str, topic: str, operation_name: str | None, payload: dict) -> None:
    """Publish a registry event whose type the caller found enabled (`is_enabled`): a caller
    that asks first, to build no payload for a disabled type, does not ask twice."""
    body = {
        "eventType": f"{event_type}_EVENT",
        "eventId": new_id().replace("-", ""),
        "timestamp": int(ctx.now() * 1000),
    }
    if operation_name:
        body["operation"] = operation_name
    body["accountId"] = ctx.account
    body.update(payload)
    ctx.publish(topic, body)


@operation("iot")
def DescribeEventConfigurations(ctx, req):
    doc = _load(ctx)
    out = {"eventConfigurations": {t: {"Enabled": bool(doc["enabled"].get(t))} for t in EVENT_TYPES}}
    if doc["creationDate"] is not None:
        out["creationDate"] = doc["creationDate"]
        out["lastModifiedDate"] = doc["lastModifiedDate"]
    return out


@operation("iot")
def UpdateEventConfigurations(ctx, req):
    doc = _load(ctx)
    now = ctx.now()
    for event_type, conf in (req.get("eventConfigurations") or {}).items():
        if "Enabled" in conf:
            doc["enabled"][event_type] = bool(conf["Enabled"])
    doc["creationDate"] = doc["creationDate"] or now
    doc["lastModifiedDate"] = now
    ctx.tx.put(_KIND, "default", doc)
    return {}
