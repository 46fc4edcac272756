"""The jobs MQTT door: the jobs device API's topics and documents, served by
`localiot.services.jobs.data_plane.device_request`, the same functions as
the iot-jobs-data HTTP API.

    $aws/things/{thing}/jobs/get                      GetPendingJobExecutions
    $aws/things/{thing}/jobs/start-next               StartNextPendingJobExecution
    $aws/things/{thing}/jobs/{jobId|$next}/get        DescribeJobExecution
    $aws/things/{thing}/jobs/{jobId}/update           UpdateJobExecution

(and the namespaced forms `jobs/namespace-{ns}/get|start-next`,
`jobs/{jobId}/namespace-{ns}/get|update` used by AWS IoT Greengrass). The
reply goes to the request topic plus `/accepted` or `/rejected`, carries the
request's clientToken and a timestamp. Rejections carry AWS's codes
(InvalidTopic, InvalidJson, InvalidRequest, InvalidStateTransition,
ResourceNotFound, VersionMismatch, TerminalStateReached, InternalError) and,
for InvalidStateTransition and VersionMismatch, the executionState.

The reply goes out first, then the notifications the request caused
(`notify`, `notify-next`, job events), all after the call's transaction
committed.
"""

from __future__ import annotations

import json
import logging
import re

from localiot.broker.reserved import TopicTemplate
from localiot import iotlogs
from localiot.doors import ReservedPublish, door, serve
from localiot.protocol.errors import ServiceError
from localiot.services.jobs import data_plane

log = logging.getLogger("localiot.jobs")

TEMPLATE = "$aws/things/{thing:[a-zA-Z0-9:_-]+}/jobs/{request+}"
_TEMPLATE = TopicTemplate(TEMPLATE)
_NAMESPACE = re.compile(r"namespace-([a-zA-Z0-9_-]+)")
_JOB_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}|\$next")
_OPERATIONS = {
    "get-pending": "GetPendingJobExecutions",
    "start-next": "StartNextPendingJobExecution",
    "describe": "DescribeJobExecution",
    "update": "UpdateJobExecution",
}
ERROR_CODES = {
    "InvalidRequestException": "InvalidRequest",
    "ResourceNotFoundException": "ResourceNotFound",
    "InvalidStateTransitionException": "InvalidStateTransition",
    "VersionConflictException": "VersionMismatch",
    "TerminalStateException": "TerminalStateReached",
    "ThrottlingException": "RequestThrottled",
}


@door(TEMPLATE)
def jobs_request(app, publish: ReservedPublish) -> bool:
    """Serve a jobs request topic; False for the topics devices do not publish to
    (notifications and replies)."""
    route = parse(publish.parts["thing"], publish.parts["request"])
    if route is None:
        return False

    def call(ctx):
        reply_topic, body = answer(ctx, publish.topic, route, publish.payload)
        ctx.events.insert(0, (reply_topic, json.dumps(body, separators=(",", ":")).encode()))

    operation = _OPERATIONS.get(route["operation"], "JobsMqttRequest")
    serve(app, publish, "iot-jobs-data", operation, iotlogs.logged(call, publish, operation))
    return True


# the topics ---------------------------------------------------------------------------
def parse(thing: str, request: str) -> dict | None:
    """The jobs request the levels after `jobs/` name: {thing, operation, jobId, namespace};
    {"operation": "invalid"} for levels that name no request; None for topics that are not
    requests (notifications, replies)."""
    if not request:
        return None
    parts = request.split("/")
    if parts[-1] in ("accepted", "rejected") or (len(parts) == 1 and parts[0].startswith("notify")):
        return None
    namespace = None
    found = [i for i, p in enumerate(parts) if _NAMESPACE.fullmatch(p)]
    if len(found) == 1 and found[0] == len(parts) - 2:
        namespace = _NAMESPACE.fullmatch(parts[found[0]]).group(1)
        parts = parts[:found[0]] + parts[found[0] + 1:]
    route = {"thing": thing, "namespace": namespace, "jobId": None}
    if parts == ["get"]:
        return dict(route, operation="get-pending")
    if parts == ["start-next"]:
        return dict(route, operation="start-next")
    if len(parts) == 2 and _JOB_ID.fullmatch(parts[0]) and parts[1] in ("get", "update"):
        if parts[1] == "update" and parts[0] == data_plane.NEXT:
            return dict(route, operation="invalid")
        return dict(route, operation="describe" if parts[1] == "get" else "update", jobId=parts[0])
    return dict(route, operation="invalid")


def parse_topic(topic: str) -> dict | None:
    """`parse` of a whole topic; None for a topic outside this door's template."""
    parts = _TEMPLATE.match(topic)
    return parse(parts["thing"], parts["request"]) if parts is not None else None


# the documents -------------------------------------------------------------------------
def rejected(code: str, message: str, token, at: float, execution_state: dict | None = None) -> dict:
    body = {"code": code, "message": message, "timestamp": int(at)}
    if token is not None:
        body["clientToken"] = token
    if execution_state is not None:
        body["executionState"] = execution_state
    return body


def _rejection(error: ServiceError, token, at: float) -> dict:
    code = ERROR_CODES.get(error.code, "InternalError")
    state = error.fields.get("executionState") if code in ("InvalidStateTransition", "VersionMismatch") else None
    return rejected(code, error.message, token, at, state)


def answer(ctx, topic: str, route: dict, payload: bytes) -> tuple[str, dict]:
    """Serve a parsed request inside the call's unit of work: (reply topic, reply document).
    A rejected request changes nothing."""
    at = ctx.now()
    if route["operation"] == "invalid":
        return topic + "/rejected", rejected("InvalidTopic", f"The topic {topic} does not map to a jobs API.",
                                             None, at)
    try:
        body = json.loads(payload.decode("utf-8")) if payload and payload.strip() else {}
    except (UnicodeDecodeError, ValueError):
        return topic + "/rejected", rejected("InvalidJson", "The request payload is not valid UTF-8 JSON.", None, at)
    if not isinstance(body, dict):
        return topic + "/rejected", rejected("InvalidJson", "The request payload must be a JSON object.", None, at)
    token = body.get("clientToken")
    try:
        reply = data_plane.device_request(ctx, route["operation"], route["thing"], route["jobId"],
                                          route["namespace"], body)
    except ServiceError as error:
        return topic + "/rejected", _rejection(error, token, at)
    except Exception:  # a bug of ours: answer as AWS does, keep the traceback in the log
        log.exception("jobs MQTT request on %s failed", topic)
        return topic + "/rejected", rejected("InternalError", "An internal error occurred.", token, at)
    reply["timestamp"] = int(at)
    if token is not None:
        reply["clientToken"] = token
    return topic + "/accepted", reply
