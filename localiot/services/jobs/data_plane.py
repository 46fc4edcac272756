"""The jobs device API (iot-jobs-data), one implementation for both doors.

`get_pending`, `start_next`, `describe_execution` and `update_execution` are
plain functions of a RequestContext raising ServiceError with the modelled
iot-jobs-data errors; the HTTP handlers below call them, and so does
`device_request`, which the MQTT door (localiot.doors.jobs: the topics, the
payload, the accepted / rejected documents) calls with plain arguments. Over
MQTT the job document is a JSON object rather than a string.
"""

from __future__ import annotations

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services.jobs import documents, executions, lifecycle, model, notify
from localiot.services.jobs.model import (
    COMPLETED, CANCELED, DELETION_IN_PROGRESS, EXECUTION_STATUSES, IN_PROGRESS, QUEUED, TERMINAL, Limits, handler,
)

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
def device_request(ctx, operation: str, thing: str, job_id: str | None, namespace: str | None, body: dict) -> dict:
    """One jobs request of a device over MQTT (the door, localiot.doors.jobs, parsed its
    topic and payload): `operation` is get-pending, start-next, describe or update; `body`
    the request document. Returns the accepted document (the job document as a JSON
    object); raises ServiceError with the iot-jobs-data error for a rejected one."""
    if operation == "get-pending":
        reply = get_pending(ctx, thing, namespace)
    elif operation == "start-next":
        ex = start_next(ctx, thing, body.get("statusDetails"), body.get("stepTimeoutInMinutes"), namespace,
                        document_as_object=True)
        reply = {"execution": ex} if ex is not None else {}
    elif operation == "describe":
        include = body.get("includeJobDocument")
        ex = describe_execution(ctx, thing, job_id, body.get("executionNumber"),
                                True if include is None else bool(include), namespace, document_as_object=True)
        reply = {"execution": ex} if ex is not None else {}
    else:
        request = {k: body.get(k) for k in ("status", "statusDetails", "expectedVersion", "executionNumber",
                                            "includeJobExecutionState", "includeJobDocument",
                                            "stepTimeoutInMinutes")}
        reply = update_execution(ctx, thing, job_id, request, document_as_object=True)
    notify.flush(ctx)
    return reply
