"""Job-level state changes: abort, cancel, completion and deletion.

A SNAPSHOT job is COMPLETED once every execution it rolled out is terminal
and nothing is left to roll out; a CONTINUOUS job only after its scheduled
endTime has passed. CancelJob, an end behaviour or the abort config cancel
the job: QUEUED executions are canceled, IN_PROGRESS ones only with force
(the abort config never forces: AWS lets running executions finish).
"""

from __future__ import annotations

from localiot.services.jobs import executions, model, notify
from localiot.services.jobs.model import (
    CANCELED, COMPLETED, DELETION_IN_PROGRESS, IN_PROGRESS, QUEUED, TIMED_OUT, FAILED, REJECTED, Limits,
)

ABORT_REASON = "ABORTED"


def settle(ctx, job: dict) -> None:
    """After executions changed: apply the abort config, complete the job, save it."""
    if job["status"] == IN_PROGRESS and check_abort(ctx, job):
        return
    check_complete(ctx, job)
    model.save_job(ctx, job)


def failures_of(job: dict, failure_type: str) -> int:
    failures = job.get("failures") or {}
    if failure_type == "ALL":
        return sum(failures.get(s, 0) for s in (FAILED, REJECTED, TIMED_OUT))
    return failures.get(failure_type, 0)


def check_abort(ctx, job: dict) -> bool:
    """Cancel the job when a criterion is met: at least minNumberOfExecutedThings
    things were notified and failures of the type reached thresholdPercentage of them."""
    criteria = (job.get("abortConfig") or {}).get("criteriaList") or []
    notified = job.get("notified", 0)
    for criterion in criteria:
        if notified < criterion["minNumberOfExecutedThings"] or notified == 0:
            continue
        failed = failures_of(job, criterion["failureType"])
        if failed * 100.0 / notified >= criterion["thresholdPercentage"]:
            comment = (f"Job aborted: {failed} of {notified} notified things reported "
                       f"{criterion['failureType']} (threshold {criterion['thresholdPercentage']}%).")
            cancel(ctx, job, force=False, reason_code=ABORT_REASON, comment=comment)
            return True
    return False


def check_complete(ctx, job: dict) -> bool:
    if job["status"] != IN_PROGRESS:
        return False
    if job["targetSelection"] == "CONTINUOUS" and not job.get("ended"):
        return False
    job_id = job["jobId"]
    if model.unreleased(ctx, job_id) or model.has(ctx, job_id, QUEUED) or model.has(ctx, job_id, IN_PROGRESS):
        return False
    at = ctx.now()
    job.update(status=COMPLETED, completedAt=at, lastUpdatedAt=at)
    model.save_job(ctx, job)
    notify.job_event(ctx, job, "completed", details=model.process_details(ctx, job))
    return True


def _current(ctx, job_id: str, status: str) -> list[dict]:
    return [ex for _, ex in ctx.tx.find(model.EXEC, "jobstatus", f"{job_id}|{status}")]


def cancel(ctx, job: dict, *, force: bool, reason_code: str | None = None, comment: str | None = None) -> None:
    at = ctx.now()
    first = job["status"] != CANCELED
    job_id = job["jobId"]
    if first:
        job["status"] = CANCELED
        if comment is not None:
            job["comment"] = comment
        if reason_code is not None:
            job["reasonCode"] = reason_code
        notify.job_event(ctx, job, "cancellation_in_progress")
    job["forceCanceled"] = bool(force) or bool(job.get("forceCanceled"))
    job["lastUpdatedAt"] = at
    ctx.tx.unlink_all(model.RELEASE, src=job_id)
    for ex in _current(ctx, job_id, QUEUED):
        executions.cancel(ctx, job, ex, force=force)
    if force:
        for ex in _current(ctx, job_id, IN_PROGRESS):
            executions.cancel(ctx, job, ex, force=True)
    model.save_job(ctx, job)
    if first or force:
        notify.job_event(ctx, job, "canceled")


def begin_deletion(ctx, job: dict) -> None:
    job_id = job["jobId"]
    for status in (QUEUED, IN_PROGRESS):
        for ex in _current(ctx, job_id, status):
            notify.touch(ctx, ex["thingName"], ex.get("namespaceId"))
    job["status"] = DELETION_IN_PROGRESS
    job["lastUpdatedAt"] = ctx.now()
    model.save_job(ctx, job)
    notify.job_event(ctx, job, "deletion_in_progress")
    finish_deletion(ctx, job, Limits.DELETE_PER_CALL)


def finish_deletion(ctx, job: dict, budget: int) -> bool:
    """Delete up to `budget` execution records; the job goes once none is left."""
    job_id = job["jobId"]
    for kind in (model.EXEC, model.OLD):
        for name, _ in ctx.tx.scan(kind, prefix=f"{job_id}/", limit=budget):
            ctx.tx.delete(kind, name)
            budget -= 1
        if budget <= 0:
            return False
    ctx.tx.unlink_all(model.RELEASE, src=job_id)
    ctx.tx.unlink_all(model.TARGETED, src=job_id)
    ctx.tx.drop_tags(job["jobArn"])
    ctx.tx.delete(model.JOB, job_id)
    model.forget_job(ctx, job_id)
    notify.job_event(ctx, job, "deleted")
    return True
