"""Violations: per (security profile, behavior, thing) the run of violating and
normal datapoints; a violation starts after consecutiveDatapointsToAlarm
violating ones (default 1) and clears after consecutiveDatapointsToClear
normal ones (default 1); a behavior changed or removed, a profile deleted or
detached invalidates it. Active violations, violation events, verification
states, and the SNS alerts of the profile's alert target.

Kinds: "detect-state" (name "<profile>|<behavior>|<thing>", index "profile",
"thing"), "detect-violation" (name = violationId, index "profile", "thing",
"active"), "detect-violation-event" (name "<time>|<violationId>|<type>",
index "profile", "thing", "violation").
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from localiot.protocol.errors import invalid, not_found
from localiot.services import operation
from localiot.services.common import paginate

log = logging.getLogger("localiot.defender")

STATE, VIOLATION, EVENT = "detect-state", "detect-violation", "detect-violation-event"
ACTIVE_FIELDS = ("violationId", "thingName", "securityProfileName", "behavior", "lastViolationValue",
                 "violationEventAdditionalInfo", "verificationState", "verificationStateDescription",
                 "lastViolationTime", "violationStartTime")
EVENT_FIELDS = ("violationId", "thingName", "securityProfileName", "behavior", "metricValue",
                "violationEventAdditionalInfo", "violationEventType", "verificationState",
                "verificationStateDescription", "violationEventTime")


def _save(ctx, doc: dict) -> None:
    ctx.tx.put(VIOLATION, doc["violationId"], doc, {"profile": doc["securityProfileName"], "thing": doc["thingName"],
                                                    "active": "1" if doc.get("active") else "0"})


def _event(ctx, violation: dict, kind: str, value: dict | None) -> dict:
    now = ctx.now()
    event = {"violationId": violation["violationId"], "thingName": violation["thingName"],
             "securityProfileName": violation["securityProfileName"], "behavior": violation["behavior"],
             "violationEventType": kind, "violationEventTime": now, "suppressed": violation["suppressed"]}
    if value is not None:
        event["metricValue"] = value
    for key in ("verificationState", "verificationStateDescription"):
        if violation.get(key):
            event[key] = violation[key]
    ctx.tx.put(EVENT, f"{now:020.6f}|{violation['violationId']}|{kind}", event,
               {"profile": event["securityProfileName"], "thing": event["thingName"],
                "violation": event["violationId"]})
    return event


def datapoint(ctx, profile: dict, behavior: dict, thing: str, violating: bool, value: dict) -> None:
    """One datapoint of `behavior` for `thing`: count it, and start or clear a violation."""
    criteria = behavior.get("criteria") or {}
    name = f"{profile['securityProfileName']}|{behavior['name']}|{thing}"
    state = ctx.tx.get(STATE, name) or {"bad": 0, "good": 0}
    if violating:
        state["bad"], state["good"] = state["bad"] + 1, 0
    else:
        state["good"], state["bad"] = state["good"] + 1, 0
    violation = ctx.tx.get(VIOLATION, state["violationId"]) if state.get("violationId") else None
    if violation is not None and violation.get("active"):
        if violating:
            violation.update(lastViolationValue=value, lastViolationTime=ctx.now())
            _save(ctx, violation)
        elif state["good"] >= (criteria.get("consecutiveDatapointsToClear") or 1):
            violation["active"] = False
            _save(ctx, violation)
            _alert(ctx, profile, _event(ctx, violation, "alarm-cleared", value))
            state.pop("violationId")
    elif violating and state["bad"] >= (criteria.get("consecutiveDatapointsToAlarm") or 1):
        now = ctx.now()
        violation = {"violationId": uuid.uuid4().hex, "thingName": thing,
                     "securityProfileName": profile["securityProfileName"], "behavior": behavior,
                     "lastViolationValue": value, "lastViolationTime": now, "violationStartTime": now,
                     "verificationState": "UNKNOWN", "active": True, "suppressed": bool(behavior.get("suppressAlerts"))}
        _save(ctx, violation)
        state["violationId"] = violation["violationId"]
        _alert(ctx, profile, _event(ctx, violation, "in-alarm", value))
    if state == {"bad": 0, "good": state["good"]} and not state.get("violationId"):
        ctx.tx.delete(STATE, name)  # nothing to remember: a normal run needs no state
    else:
        ctx.tx.put(STATE, name, state, {"profile": profile["securityProfileName"], "thing": thing})


def invalidate(ctx, profile_name: str, which) -> None:
    """alarm-invalidated for the profile's active violations that `which(violation)` selects."""
    for _, v in ctx.tx.find(VIOLATION, "profile", profile_name):
        if v.get("active") and which(v):
            v["active"] = False
            _save(ctx, v)
            _event(ctx, v, "alarm-invalidated", None)
            ctx.tx.delete(STATE, f"{profile_name}|{v['behavior']['name']}|{v['thingName']}")


def forget_profile(ctx, profile_name: str) -> None:
    for name, _ in ctx.tx.find(STATE, "profile", profile_name):
        ctx.tx.delete(STATE, name)


def active_for(ctx, profile_name: str, thing: str) -> list[dict]:
    return [v for _, v in ctx.tx.find(VIOLATION, "thing", thing)
            if v.get("active") and v["securityProfileName"] == profile_name]


# alerts --------------------------------------------------------------------------------
def _alert(ctx, profile: dict, event: dict) -> None:
    target = (profile.get("alertTargets") or {}).get("SNS")
    if event["suppressed"] or not target:
        return
    body = {"violationEventTime": int(event["violationEventTime"] * 1000), "thingName": event["thingName"],
            "behavior": event["behavior"], "violationEventType": event["violationEventType"],
            "securityProfileName": event["securityProfileName"], "violationId": event["violationId"]}
    if event.get("metricValue") is not None:
        body["metricValue"] = event["metricValue"]
    runtime, topic = ctx.runtime, target["alertTargetArn"]
    ctx.after_commit(lambda: _send(runtime, topic, body))


def _send(runtime, topic_arn: str, body: dict) -> None:
    def send():
        try:
            runtime.aws_client("sns", topic_arn.split(":")[3]).publish(TopicArn=topic_arn, Message=json.dumps(body))
        except Exception:
            log.exception("Device Defender alert to %s failed", topic_arn)

    try:
        asyncio.get_running_loop().run_in_executor(None, send)
    except RuntimeError:
        send()


# API -----------------------------------------------------------------------------------
def _criteria_type(behavior: dict) -> str:
    criteria = behavior.get("criteria") or {}
    if criteria.get("mlDetectionConfig"):
        return "MACHINE_LEARNING"
    return "STATISTICAL" if criteria.get("statisticalThreshold") else "STATIC"


def _keep(req: dict, doc: dict) -> bool:
    return ((not req.get("thingName") or doc["thingName"] == req["thingName"])
            and (not req.get("securityProfileName") or doc["securityProfileName"] == req["securityProfileName"])
            and (not req.get("behaviorCriteriaType") or _criteria_type(doc["behavior"]) == req["behaviorCriteriaType"])
            and (not req.get("verificationState") or doc.get("verificationState") == req["verificationState"])
            and (req.get("listSuppressedAlerts") is None or doc["suppressed"] == req["listSuppressedAlerts"]))


@operation("iot")
def ListActiveViolations(ctx, req):
    if req.get("thingName"):
        rows = ctx.tx.find(VIOLATION, "thing", req["thingName"])
    elif req.get("securityProfileName"):
        rows = ctx.tx.find(VIOLATION, "profile", req["securityProfileName"])
    else:
        rows = ctx.tx.find(VIOLATION, "active", "1")
    docs = sorted((d for _, d in rows if d.get("active") and _keep(req, d)),
                  key=lambda d: (d["violationStartTime"], d["violationId"]))
    found, extra = paginate(ctx, req, docs, key=lambda d: (d["violationStartTime"], d["violationId"]))
    return {"activeViolations": [{k: d[k] for k in ACTIVE_FIELDS if d.get(k) is not None} for d in found], **extra}


@operation("iot")
def ListViolationEvents(ctx, req):
    start, end = req["startTime"], req["endTime"]
    if start > end:
        raise invalid("startTime must not be after endTime.")
    rows = ctx.tx.scan(EVENT, after=f"{start:020.6f}")
    docs = [(n, d) for n, d in rows if start <= d["violationEventTime"] <= end and _keep(req, d)]
    found, extra = paginate(ctx, req, docs, key=lambda row: row[0])
    return {"violationEvents": [{k: d[k] for k in EVENT_FIELDS if d.get(k) is not None} for _, d in found], **extra}


@operation("iot")
def PutVerificationStateOnViolation(ctx, req):
    doc = ctx.tx.get(VIOLATION, req["violationId"])
    if doc is None:
        raise not_found(f"Violation {req['violationId']} does not exist.")
    doc["verificationState"] = req["verificationState"]
    if req.get("verificationStateDescription") is not None:
        doc["verificationStateDescription"] = req["verificationStateDescription"]
    _save(ctx, doc)
    return {}
