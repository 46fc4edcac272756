"""The job execution state machine, shared by the control plane, the device
APIs (HTTP and MQTT) and the timer.

    QUEUED ──device──> IN_PROGRESS ──device──> SUCCEEDED | FAILED | REJECTED
      │  └──device──> SUCCEEDED | FAILED | REJECTED         │
      │                                  timer ──> TIMED_OUT ┘
      ├── CancelJob / CancelJobExecution / abort ──> CANCELED (IN_PROGRESS only with force)
      └── the thing leaves a continuous job's groups ──> REMOVED

Devices may report IN_PROGRESS (again, to refresh statusDetails or the step
timer), SUCCEEDED, FAILED and REJECTED; every accepted change bumps
versionNumber. A FAILED or TIMED_OUT attempt is retried, when the job's
retry config allows, as a new QUEUED execution with the next
executionNumber and retryAttempt; the failed attempt is kept, readable by
its execution number.
"""

from __future__ import annotations

import re

from localiot.protocol.errors import ServiceError, invalid
from localiot.services import hooks
from localiot.services.jobs import model, notify
from localiot.services.jobs.model import (
    CANCELED, FAILED, IN_PROGRESS, QUEUED, REJECTED, REMOVED, SUCCEEDED, TERMINAL, TIMED_OUT, Limits,
)

DEVICE_STATUSES = (IN_PROGRESS, SUCCEEDED, FAILED, REJECTED)
_KEY = re.compile(r"[a-zA-Z0-9:_-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# validation ----------------------------------------------------------------------
def check_details(details) -> dict | None:
    """statusDetails as AWS accepts them: at most 10 string pairs."""
    if details is None:
        return None
    if not isinstance(details, dict):
        raise invalid("statusDetails must be a map of strings to strings.")
    if len(details) > Limits.STATUS_DETAILS:
        raise invalid(f"statusDetails can have at most {Limits.STATUS_DETAILS} entries.")
    for key, value in details.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or not _KEY.fullmatch(key):
            raise invalid(f"Invalid statusDetails key {key!r}: keys are 1 to 128 characters of [a-zA-Z0-9:_-].")
        if not isinstance(value, str) or not value or _CONTROL.search(value):
            raise invalid(f"Invalid statusDetails value for key {key}: values are non-empty strings "
                          "without control characters.")
        if len(value) > Limits.STATUS_DETAIL_VALUE:
            raise invalid(f"The statusDetails value for key {key} is longer than "
                          f"{Limits.STATUS_DETAIL_VALUE} characters.")
    return dict(details)


def check_step(minutes, allow_cancel: bool) -> int | None:
    if minutes is None:
        return None
    low, high = Limits.TIMEOUT_MINUTES
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not (
            low <= minutes <= high or (allow_cancel and minutes == -1)):
        raise invalid(f"stepTimeoutInMinutes must be between {low} and {high}"
                      + (" or -1." if allow_cancel else "."))
    return minutes


# creation ------------------------------------------------------------------------
def create(ctx, job: dict, thing: dict, *, previous: dict | None = None) -> dict:
    """Queue an execution of `job` on `thing`; `previous` is the attempt it retries or replaces."""
    at = ctx.now()
    namespace = job.get("namespaceId")
    notify.touch(ctx, thing["thingName"], namespace)
    if previous is None:
        previous = model.get_exec(ctx, job["jobId"], thing["thingName"])
        retry_of = None
    else:
        retry_of = previous
    if previous is not None:
        model.archive_exec(ctx, previous)
    ex = {
        "jobId": job["jobId"],
        "thingName": thing["thingName"],
        "thingArn": thing["thingArn"],
        "namespaceId": namespace,
        "status": QUEUED,
        "statusDetails": {},
        "queuedAt": at,
        "startedAt": None,
        "lastUpdatedAt": at,
        "executionNumber": previous["executionNumber"] + 1 if previous else 1,
        "versionNumber": 1,
        "retryAttempt": retry_of.get("retryAttempt", 0) + 1 if retry_of else 0,
        "retries": dict(retry_of.get("retries") or {}) if retry_of else {},
        "forceCanceled": None,
        "progressDeadline": None,
        "stepDeadline": None,
    }
    model.save_exec(ctx, ex)
    ctx.tx.link(model.TARGETED, job["jobId"], thing["thingName"])
    return ex


# transitions -----------------------------------------------------------------------
def _change(ctx, job: dict, ex: dict, status: str, *, details: dict | None = None,
            step: int | None = None, force: bool | None = None) -> dict:
    at = ctx.now()
    notify.touch(ctx, ex["thingName"], ex.get("namespaceId"))
    previous = ex["status"]
    ex["status"] = status
    if details is not None:
        ex["statusDetails"] = details
    ex["versionNumber"] += 1
    ex["lastUpdatedAt"] = at
    if status == IN_PROGRESS:
        if previous == QUEUED:
            ex["startedAt"] = at
            minutes = (job.get("timeoutConfig") or {}).get("inProgressTimeoutInMinutes")
            ex["progressDeadline"] = at + minutes * 60 if minutes else None
        if step is not None:
            ex["stepDeadline"] = None if step == -1 else at + step * 60
    if status in TERMINAL:
        ex["progressDeadline"] = ex["stepDeadline"] = None
    if status == CANCELED:
        ex["forceCanceled"] = bool(force)
    model.save_exec(ctx, ex)
    if status in TERMINAL:
        notify.execution_event(ctx, ex)
        if status == SUCCEEDED:
            hooks.fire(hooks.JOB_EXECUTION_SUCCEEDED, ctx, job, ex)  # the package catalog's $package shadow
        if status in (FAILED, REJECTED, TIMED_OUT):
            failures = job.setdefault("failures", {})
            failures[status] = failures.get(status, 0) + 1
        if status in (FAILED, TIMED_OUT):
            _maybe_retry(ctx, job, ex)
    return ex


def _retry_allowed(job: dict, ex: dict) -> bool:
    if job["status"] not in (IN_PROGRESS, model.SCHEDULED):
        return False
    criteria = (job.get("jobExecutionsRetryConfig") or {}).get("criteriaList") or []
    retries = ex.get("retries") or {}
    specific = next((c for c in criteria if c["failureType"] == ex["status"]), None)
    if specific is not None:
        return retries.get(ex["status"], 0) < specific["numberOfRetries"]
    general = next((c for c in criteria if c["failureType"] == "ALL"), None)
    return general is not None and sum(retries.values()) < general["numberOfRetries"]


def _maybe_retry(ctx, job: dict, ex: dict) -> dict | None:
    """Queue the next attempt of a FAILED or TIMED_OUT execution if the retry config allows."""
    if not _retry_allowed(job, ex):
        return None
    retry = dict(ex)
    retry["retries"] = dict(ex.get("retries") or {})
    retry["retries"][ex["status"]] = retry["retries"].get(ex["status"], 0) + 1
    thing = {"thingName": ex["thingName"], "thingArn": ex["thingArn"]}
    return create(ctx, job, thing, previous=retry)


def device_update(ctx, job: dict, ex: dict, status: str, *, details=None, step=None, expected_version=None) -> dict:
    """An update a device reports (UpdateJobExecution); returns the updated execution
    (a retry, if one is queued, is the thing's current execution afterwards)."""
    if expected_version is not None and expected_version != ex["versionNumber"]:
        raise ServiceError(
            "VersionConflictException",
            f"The expected version {expected_version} does not match the current version "
            f"{ex['versionNumber']} of the job execution.",
            executionState=model.state_view(ex),
        )
    if status not in DEVICE_STATUSES:
        raise invalid(f"Invalid status {status}: a device can set IN_PROGRESS, SUCCEEDED, FAILED or REJECTED.")
    if ex["status"] in TERMINAL:
        raise model.invalid_transition(
            f"Job execution of job {ex['jobId']} on thing {ex['thingName']} is in terminal state "
            f"{ex['status']} and cannot be updated to {status}.", ex)
    details = check_details(details)
    step = check_step(step, allow_cancel=True)
    return _change(ctx, job, ex, status, details=details, step=step if status == IN_PROGRESS else None)


def start(ctx, job: dict, ex: dict, *, details=None, step=None) -> dict:
    """StartNextPendingJobExecution: QUEUED -> IN_PROGRESS with an optional step timer."""
    details = check_details(details)
    step = check_step(step, allow_cancel=False)
    return _change(ctx, job, ex, IN_PROGRESS, details=details, step=step)


def time_out(ctx, job: dict, ex: dict) -> dict:
    return _change(ctx, job, ex, TIMED_OUT)


def remove(ctx, job: dict, ex: dict) -> dict:
    return _change(ctx, job, ex, REMOVED)


def cancel(ctx, job: dict, ex: dict, *, force: bool, details=None, expected_version=None) -> dict:
    if expected_version is not None and expected_version != ex["versionNumber"]:
        raise ServiceError(
            "VersionConflictException",
            f"The expected version {expected_version} does not match the current version "
            f"{ex['versionNumber']} of the job execution.",
        )
    if ex["status"] in TERMINAL:
        raise model.invalid_transition(
            f"Cannot cancel the job execution of job {ex['jobId']} on thing {ex['thingName']}: "
            f"it is in terminal state {ex['status']}.")
    if ex["status"] == IN_PROGRESS and not force:
        raise model.invalid_transition(
            f"Cannot cancel the job execution of job {ex['jobId']} on thing {ex['thingName']}: it is "
            "IN_PROGRESS; set force to true to cancel it.")
    return _change(ctx, job, ex, CANCELED, details=check_details(details), force=force)


def delete(ctx, job: dict | None, ex: dict) -> None:
    """Remove one execution record (DeleteJobExecution, DeleteJob)."""
    notify.touch(ctx, ex["thingName"], ex.get("namespaceId"))
    current = model.get_exec(ctx, ex["jobId"], ex["thingName"])
    if current is not None and current["executionNumber"] == ex["executionNumber"]:
        ctx.tx.delete(model.EXEC, model.exec_name(ex["jobId"], ex["thingName"]))
    else:
        ctx.tx.delete(model.OLD, model.old_name(ex["jobId"], ex["thingName"], ex["executionNumber"]))
    notify.execution_event(ctx, ex, "deleted")
