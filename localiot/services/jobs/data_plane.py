"""The jobs device API (iot-jobs-data), one implementation for both doors.

`get_pending`, `start_next`, `describe_execution` and `update_execution` are
plain functions of a RequestContext raising ServiceError with the modelled
iot-jobs-data errors; the HTTP handlers below call them, and the MQTT door
calls `handle_mqtt(ctx, topic, payload)`, which routes the reserved request
topics and builds the accepted / rejected documents AWS publishes:

    $aws/things/{thing}/jobs/get                      GetPendingJobExecutions
    $aws/things/{thing}/jobs/start-next               StartNextPendingJobExecution
    $aws/things/{thing}/jobs/{jobId|$next}/get        DescribeJobExecution
    $aws/things/{thing}/jobs/{jobId}/update           UpdateJobExecution

(and the namespaced forms `jobs/namespace-{ns}/get|start-next`,
`jobs/{jobId}/namespace-{ns}/get|update` used by AWS IoT Greengrass). The
reply goes to the request topic plus `/accepted` or `/rejected`, carries the
request's clientToken and a timestamp, and over MQTT the job document is a
JSON object rather than a string. Rejections carry AWS's codes
(InvalidTopic, InvalidJson, InvalidRequest, InvalidStateTransition,
ResourceNotFound, VersionMismatch, TerminalStateReached, InternalError) and,
for InvalidStateTransition and VersionMismatch, the executionState.
"""

from __future__ import annotations

import json
import logging
import re

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services.jobs import documents, executions, lifecycle, model, notify
from localiot.services.jobs.model import (
    COMPLETED, CANCELED, DELETION_IN_PROGRESS, EXECUTION_STATUSES, IN_PROGRESS, QUEUED, TERMINAL, Limits, handler,
)

log = logging.getLogger("localiot.jobs")
NEXT = "$next"


def _missing(job_id: str, thing: str) -> ServiceError:
    return not_found(f"Job execution of job {job_id} on thing {thing} cannot be found.")


def _lookup(ctx, thing: str, job_id: str, number: int | None = None) -> tuple[dict, dict]:
    job = model.load_job(ctx, job_id)
    if job is None or job["status"] == DELETION_IN_PROGRESS:
        raise _missing(job_id, thing)
    ex = model.find_exec(ctx, job_id, thing, number)
    if ex is None:
        raise _missing(job_id, thing)
    return job, ex


def _number(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise invalid(f"{name} must be a number.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"{name} must be a number.") from None


# the four operations ------------------------------------------------------------------
def get_pending(ctx, thing: str, namespace: str | None = None) -> dict:
    found = notify.pending(ctx, thing, namespace)[:Limits.PENDING_LIST]
    return {
        "inProgressJobs": [model.data_summary(ex) for ex in found if ex["status"] == IN_PROGRESS],
        "queuedJobs": [model.data_summary(ex) for ex in found if ex["status"] == QUEUED],
    }


def start_next(ctx, thing: str, status_details=None, step_timeout=None, namespace: str | None = None,
               *, document_as_object: bool = False) -> dict | None:
    """Start the thing's next pending execution (an IN_PROGRESS one is returned as it is)."""
    status_details = executions.check_details(status_details)
    executions.check_step(_number(step_timeout, "stepTimeoutInMinutes"), allow_cancel=False)
    found = notify.pending(ctx, thing, namespace)
    if not found:
        return None
    ex = found[0]
    job = model.load_job(ctx, ex["jobId"])
    if ex["status"] == QUEUED:
        ex = executions.start(ctx, job, ex, details=status_details, step=_number(step_timeout, "stepTimeoutInMinutes"))
        lifecycle.settle(ctx, job)
    return model.data_view(ex, ctx.now(), _document(ctx, job, document_as_object))


def describe_execution(ctx, thing: str, job_id: str, execution_number=None, include_document: bool = True,
                       namespace: str | None = None, *, document_as_object: bool = False) -> dict | None:
    """One execution; `$next` is the next pending one (None when there is none)."""
    number = _number(execution_number, "executionNumber")
    if job_id == NEXT:
        found = notify.pending(ctx, thing, namespace)
        if not found:
            return None
        ex = found[0]
        job = model.load_job(ctx, ex["jobId"])
    else:
        job, ex = _lookup(ctx, thing, job_id, number)
        if ex["status"] in TERMINAL and job["status"] in (COMPLETED, CANCELED):
            raise ServiceError("TerminalStateException",
                               f"Job {job_id} is {job['status']} and its execution on thing {thing} is "
                               f"in terminal state {ex['status']}.")
    document = _document(ctx, job, document_as_object) if include_document else None
    return model.data_view(ex, ctx.now(), document)


def update_execution(ctx, thing: str, job_id: str, request: dict, *, document_as_object: bool = False) -> dict:
    """UpdateJobExecution; `request` holds the operation's members (status,
    statusDetails, expectedVersion, executionNumber, includeJobExecutionState,
    includeJobDocument, stepTimeoutInMinutes)."""
    status = request.get("status")
    if status not in EXECUTION_STATUSES:
        raise invalid(f"Invalid status {status!r}: a device can set IN_PROGRESS, SUCCEEDED, FAILED or REJECTED.")
    job, ex = _lookup(ctx, thing, job_id, _number(request.get("executionNumber"), "executionNumber"))
    ex = executions.device_update(
        ctx, job, ex, status,
        details=request.get("statusDetails"),
        step=_number(request.get("stepTimeoutInMinutes"), "stepTimeoutInMinutes"),
        expected_version=_number(request.get("expectedVersion"), "expectedVersion"),
    )
    lifecycle.settle(ctx, job)
    out: dict = {}
    if request.get("includeJobExecutionState"):
        out["executionState"] = model.state_view(ex)
    if request.get("includeJobDocument"):
        out["jobDocument"] = _document(ctx, job, document_as_object)
    return out


def _document(ctx, job: dict, as_object: bool):
    return notify.device_document(ctx, job) if as_object else documents.for_device(ctx, job)


# HTTP door ----------------------------------------------------------------------------
@handler("iot-jobs-data")
def GetPendingJobExecutions(ctx, req):
    return get_pending(ctx, req["thingName"], req.get("namespaceId"))


@handler("iot-jobs-data")
def StartNextPendingJobExecution(ctx, req):
    ex = start_next(ctx, req["thingName"], req.get("statusDetails"), req.get("stepTimeoutInMinutes"),
                    req.get("namespaceId"))
    return {"execution": ex} if ex is not None else {}


@handler("iot-jobs-data")
def DescribeJobExecution(ctx, req):
    include = req.get("includeJobDocument")
    ex = describe_execution(ctx, req["thingName"], req["jobId"], req.get("executionNumber"),
                            True if include is None else include, req.get("namespaceId"))
    return {"execution": ex} if ex is not None else {}


@handler("iot-jobs-data")
def UpdateJobExecution(ctx, req):
    return update_execution(ctx, req["thingName"], req["jobId"], req)


# MQTT door ----------------------------------------------------------------------------
_TOPIC = re.compile(r"^\$aws/things/(?P<thing>[a-zA-Z0-9:_-]+)/jobs/(?P<rest>.+)$")
_NAMESPACE = re.compile(r"namespace-([a-zA-Z0-9_-]+)")
_JOB_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}|\$next")
ERROR_CODES = {
    "InvalidRequestException": "InvalidRequest",
    "ResourceNotFoundException": "ResourceNotFound",
    "InvalidStateTransitionException": "InvalidStateTransition",
    "VersionConflictException": "VersionMismatch",
    "TerminalStateException": "TerminalStateReached",
    "ThrottlingException": "RequestThrottled",
}


def parse_topic(topic: str) -> dict | None:
    """The jobs request a topic names: {thing, operation, jobId, namespace};
    {"operation": "invalid"} for another topic under `jobs/`; None for topics
    that are not requests (notifications, replies, other families)."""
    match = _TOPIC.match(topic)
    if match is None:
        return None
    thing, parts = match.group("thing"), match.group("rest").split("/")
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
        if parts[1] == "update" and parts[0] == NEXT:
            return dict(route, operation="invalid")
        return dict(route, operation="describe" if parts[1] == "get" else "update", jobId=parts[0])
    return dict(route, operation="invalid")


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


def handle_mqtt(ctx, topic: str, payload: bytes) -> tuple[str, dict] | None:
    """Serve a device's publish on a jobs request topic.

    Returns (reply topic, reply document) for the door to publish, or None
    when the topic is not a jobs request. Run it inside the call's
    transaction; a rejected request changes nothing."""
    route = parse_topic(topic)
    if route is None:
        return None
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
        reply = _serve(ctx, route, body)
    except ServiceError as error:
        return topic + "/rejected", _rejection(error, token, at)
    except Exception:  # a bug of ours: answer as AWS does, keep the traceback in the log
        log.exception("jobs MQTT request on %s failed", topic)
        return topic + "/rejected", rejected("InternalError", "An internal error occurred.", token, at)
    notify.flush(ctx)
    reply["timestamp"] = int(at)
    if token is not None:
        reply["clientToken"] = token
    return topic + "/accepted", reply


def _serve(ctx, route: dict, body: dict) -> dict:
    thing, namespace, operation = route["thing"], route["namespace"], route["operation"]
    if operation == "get-pending":
        return get_pending(ctx, thing, namespace)
    if operation == "start-next":
        ex = start_next(ctx, thing, body.get("statusDetails"), body.get("stepTimeoutInMinutes"), namespace,
                        document_as_object=True)
        return {"execution": ex} if ex is not None else {}
    if operation == "describe":
        include = body.get("includeJobDocument")
        ex = describe_execution(ctx, thing, route["jobId"], body.get("executionNumber"),
                                True if include is None else bool(include), namespace, document_as_object=True)
        return {"execution": ex} if ex is not None else {}
    request = {k: body.get(k) for k in ("status", "statusDetails", "expectedVersion", "executionNumber",
                                        "includeJobExecutionState", "includeJobDocument", "stepTimeoutInMinutes")}
    return update_execution(ctx, thing, route["jobId"], request, document_as_object=True)
