"""How jobs and job executions live in the store, and the shapes that leave it.

Kinds (all per (account, region)):
- "job": one document per job id. Index entries: status, targetSelection,
  namespace, group / groupId (target thing groups), active ("1" while the
  job needs the timer: scheduled, rolling out, in progress, deleting, or
  with executions still IN_PROGRESS) and concurrent ("1" while it still
  rolls out executions).
- "jobexec": the current execution of a job on a thing, named
  "{jobId}/{thingName}" (neither name can hold "/"). Index entries: job,
  jobstatus ("{jobId}|{status}", so jobProcessDetails are index counts),
  thing, pending ("{namespace}|{thing}" while QUEUED or IN_PROGRESS) and
  deadline (the minute an IN_PROGRESS execution times out, for the timer).
- "jobexec-old": earlier attempts of a retried execution, named
  "{jobId}/{thingName}/{executionNumber:010d}".
Links: "job-release" job -> things not yet rolled out (rollout pacing),
"job-thing" job -> every thing the job has reached or will reach.

Every job-touching call keeps the jobs it loaded in a per-call cache, so the
state machine, notifications and the rollout engine share one copy.
"""

from __future__ import annotations

import functools
import json

from localiot.protocol.errors import ServiceError, not_found
from localiot.services import operation
from localiot.services.jobs import schedule
from localiot.services.jobs.limits import Limits  # noqa: F401  (model.Limits, as the jobs modules read it)

JOB = "job"
EXEC = "jobexec"
OLD = "jobexec-old"
TEMPLATE = "jobtemplate"
RELEASE = "job-release"
TARGETED = "job-thing"
SCOPES = "jobs-scope"  # in the ("global", "global") scope: (account, region) pairs with active jobs
GLOBAL = ("global", "global")

QUEUED, IN_PROGRESS, SUCCEEDED, FAILED = "QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED"
TIMED_OUT, REJECTED, REMOVED, CANCELED = "TIMED_OUT", "REJECTED", "REMOVED", "CANCELED"
EXECUTION_STATUSES = (QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, TIMED_OUT, REJECTED, REMOVED, CANCELED)
PENDING = (QUEUED, IN_PROGRESS)
TERMINAL = (SUCCEEDED, FAILED, TIMED_OUT, REJECTED, REMOVED, CANCELED)

# job statuses
SCHEDULED, COMPLETED, DELETION_IN_PROGRESS = "SCHEDULED", "COMPLETED", "DELETION_IN_PROGRESS"

COUNT_FIELDS = {
    CANCELED: "numberOfCanceledThings",
    SUCCEEDED: "numberOfSucceededThings",
    FAILED: "numberOfFailedThings",
    REJECTED: "numberOfRejectedThings",
    QUEUED: "numberOfQueuedThings",
    IN_PROGRESS: "numberOfInProgressThings",
    REMOVED: "numberOfRemovedThings",
    TIMED_OUT: "numberOfTimedOutThings",
}


# handlers ------------------------------------------------------------------
def handler(service: str):
    """Register a jobs handler; the work it left for its end (the notifications
    it queued: notify.touch asks for notify.flush) runs once it returns."""

    def register(fn):
        @functools.wraps(fn)
        def run(ctx, req):
            output = fn(ctx, req)
            finish(ctx)
            return output

        operation(service, fn.__name__)(run)
        return run

    return register


def state(ctx) -> dict:
    """Per-call scratch space (job cache, touched things) kept on the context."""
    scratch = ctx.__dict__.get("_jobs")
    if scratch is None:
        scratch = ctx.__dict__["_jobs"] = {"jobs": {}, "touched": {}, "stored": {}, "finish": {}}
    return scratch


def at_finish(ctx, fn) -> None:
    """Run fn(ctx) when the current jobs handler returns (once, however often asked)."""
    state(ctx)["finish"][fn] = None


def finish(ctx) -> None:
    steps = state(ctx)["finish"]
    while steps:
        fn = next(iter(steps))
        del steps[fn]
        fn(ctx)


# jobs ------------------------------------------------------------------------
def job_arn(ctx, job_id: str) -> str:
    return ctx.arn(f"job/{job_id}")


def _fingerprint(job: dict) -> str:
    return json.dumps(job, sort_keys=True, separators=(",", ":"))


def load_job(ctx, job_id: str) -> dict | None:
    scratch = state(ctx)
    jobs = scratch["jobs"]
    if job_id not in jobs:
        job = jobs[job_id] = ctx.tx.get(JOB, job_id)
        if job is not None:
            scratch["stored"][job_id] = _fingerprint(job)
    return jobs[job_id]


def get_job(ctx, job_id: str) -> dict:
    job = load_job(ctx, job_id)
    if job is None:
        raise not_found(f"Job {job_id} cannot be found.")
    return job


def forget_job(ctx, job_id: str) -> None:
    scratch = state(ctx)
    scratch["jobs"][job_id] = None
    scratch["stored"].pop(job_id, None)


def count(ctx, job_id: str, status: str) -> int:
    return ctx.tx.count(EXEC, "jobstatus", f"{job_id}|{status}")


def counts(ctx, job_id: str) -> dict[str, int]:
    return {s: count(ctx, job_id, s) for s in EXECUTION_STATUSES}


def has(ctx, job_id: str, status: str) -> bool:
    """Whether any current execution of the job has `status` (one index probe, not a count)."""
    return bool(ctx.tx.find(EXEC, "jobstatus", f"{job_id}|{status}", limit=1))


def unreleased(ctx, job_id: str) -> bool:
    """Whether targets still wait for the rollout."""
    return bool(ctx.tx.linked(RELEASE, job_id, limit=1))


def is_concurrent(ctx, job: dict) -> bool:
    """Rolling out executions still waiting for the rollout (AWS: isConcurrent).
    A SCHEDULED job waits for its start or window and is not rolling out."""
    return job["status"] == IN_PROGRESS and unreleased(ctx, job["jobId"])


def is_active(ctx, job: dict) -> bool:
    if job["status"] in (SCHEDULED, IN_PROGRESS, DELETION_IN_PROGRESS):
        return True
    return has(ctx, job["jobId"], IN_PROGRESS)


def save_job(ctx, job: dict) -> None:
    """Store the job with its index entries; a job that did not change is not rewritten."""
    active = is_active(ctx, job)
    job["indexed"] = {"active": active, "concurrent": is_concurrent(ctx, job)}
    scratch = state(ctx)
    scratch["jobs"][job["jobId"]] = job
    fingerprint = _fingerprint(job)
    if scratch["stored"].get(job["jobId"]) == fingerprint:
        return
    scratch["stored"][job["jobId"]] = fingerprint
    groups = job.get("targetGroups") or []
    ctx.tx.put(JOB, job["jobId"], job, {
        "status": job["status"],
        "targetSelection": job["targetSelection"],
        "namespace": job.get("namespaceId") or "",
        "group": [g["name"] for g in groups],
        "groupId": [g["id"] for g in groups],
        "active": "1" if active else None,
        "concurrent": "1" if job["indexed"]["concurrent"] else None,
    })
    if active:
        mark_scope_active(ctx)


def mark_scope_active(ctx) -> None:
    scratch = state(ctx)
    if scratch.get("scope-marked"):
        return
    key = f"{ctx.account}|{ctx.region}"
    registry = ctx.tx.scope(*GLOBAL)
    if registry.get(SCOPES, key) is None:
        registry.put(SCOPES, key, {"account": ctx.account, "region": ctx.region})
    scratch["scope-marked"] = True


def process_details(ctx, job: dict) -> dict:
    found = counts(ctx, job["jobId"])
    details = {COUNT_FIELDS[s]: n for s, n in found.items()}
    if is_concurrent(ctx, job):
        details["processingTargets"] = list(job["targets"])
    return details


CONFIG_FIELDS = (
    "presignedUrlConfig", "jobExecutionsRolloutConfig", "abortConfig", "timeoutConfig",
    "jobExecutionsRetryConfig", "schedulingConfig",
)


def job_view(ctx, job: dict) -> dict:
    out = {
        "jobArn": job["jobArn"],
        "jobId": job["jobId"],
        "targetSelection": job["targetSelection"],
        "status": job["status"],
        "forceCanceled": job.get("forceCanceled"),
        "reasonCode": job.get("reasonCode"),
        "comment": job.get("comment"),
        "targets": job["targets"],
        "description": job.get("description"),
        "createdAt": job["createdAt"],
        "lastUpdatedAt": job["lastUpdatedAt"],
        "completedAt": job.get("completedAt"),
        "jobProcessDetails": process_details(ctx, job),
        "namespaceId": job.get("namespaceId"),
        "jobTemplateArn": job.get("jobTemplateArn"),
        "documentParameters": job.get("documentParameters"),
        "isConcurrent": is_concurrent(ctx, job),
        "destinationPackageVersions": job.get("destinationPackageVersions"),
    }
    for field in CONFIG_FIELDS:
        if job.get(field):
            out[field] = job[field]
    rollouts = schedule.upcoming_rollouts(job, ctx.now())
    if rollouts:
        out["scheduledJobRollouts"] = rollouts
    return out


def job_summary(ctx, job: dict) -> dict:
    groups = job.get("targetGroups") or []
    return {
        "jobArn": job["jobArn"],
        "jobId": job["jobId"],
        "thingGroupId": groups[0]["id"] if groups else None,
        "targetSelection": job["targetSelection"],
        "status": job["status"],
        "createdAt": job["createdAt"],
        "lastUpdatedAt": job["lastUpdatedAt"],
        "completedAt": job.get("completedAt"),
        "isConcurrent": is_concurrent(ctx, job),
    }


# executions --------------------------------------------------------------------
def exec_name(job_id: str, thing: str) -> str:
    return f"{job_id}/{thing}"


def old_name(job_id: str, thing: str, number: int) -> str:
    return f"{job_id}/{thing}/{number:010d}"


def get_exec(ctx, job_id: str, thing: str) -> dict | None:
    return ctx.tx.get(EXEC, exec_name(job_id, thing))


def find_exec(ctx, job_id: str, thing: str, number: int | None = None) -> dict | None:
    """The current execution, or the attempt with `number` (current or archived)."""
    current = get_exec(ctx, job_id, thing)
    if number is None or (current is not None and current["executionNumber"] == number):
        return current
    return ctx.tx.get(OLD, old_name(job_id, thing, number))


def deadline(ex: dict) -> float | None:
    """When an IN_PROGRESS execution times out: the earlier of its two timers."""
    if ex["status"] != IN_PROGRESS:
        return None
    found = [t for t in (ex.get("progressDeadline"), ex.get("stepDeadline")) if t is not None]
    return min(found) if found else None


def save_exec(ctx, ex: dict) -> None:
    job_id, thing, status = ex["jobId"], ex["thingName"], ex["status"]
    due = deadline(ex)
    ctx.tx.put(EXEC, exec_name(job_id, thing), ex, {
        "job": job_id,
        "jobstatus": f"{job_id}|{status}",
        "thing": thing,
        "pending": f"{ex.get('namespaceId') or ''}|{thing}" if status in PENDING else None,
        "deadline": str(int(due // 60)) if due is not None else None,
        "timer": "1" if due is not None else None,
    })


def archive_exec(ctx, ex: dict) -> None:
    ctx.tx.put(OLD, old_name(ex["jobId"], ex["thingName"], ex["executionNumber"]), ex, {
        "job": ex["jobId"], "thing": ex["thingName"],
    })


def delete_exec_records(ctx, job_id: str, thing: str) -> None:
    ctx.tx.delete(EXEC, exec_name(job_id, thing))
    for name, _ in ctx.tx.scan(OLD, prefix=f"{job_id}/{thing}/"):
        ctx.tx.delete(OLD, name)


def seconds_left(ex: dict, at: float) -> int | None:
    due = deadline(ex)
    return None if due is None else max(0, int(due - at))


def control_view(ex: dict, at: float) -> dict:
    """iot JobExecution."""
    return {
        "jobId": ex["jobId"],
        "status": ex["status"],
        "forceCanceled": ex.get("forceCanceled"),
        "statusDetails": {"detailsMap": ex.get("statusDetails") or {}},
        "thingArn": ex["thingArn"],
        "queuedAt": ex["queuedAt"],
        "startedAt": ex.get("startedAt"),
        "lastUpdatedAt": ex["lastUpdatedAt"],
        "executionNumber": ex["executionNumber"],
        "versionNumber": ex["versionNumber"],
        "approximateSecondsBeforeTimedOut": seconds_left(ex, at),
    }


def summary_view(ex: dict) -> dict:
    """iot JobExecutionSummary."""
    return {
        "status": ex["status"],
        "queuedAt": ex["queuedAt"],
        "startedAt": ex.get("startedAt"),
        "lastUpdatedAt": ex["lastUpdatedAt"],
        "executionNumber": ex["executionNumber"],
        "retryAttempt": ex.get("retryAttempt", 0),
    }


def epoch(value: float | None) -> int | None:
    return None if value is None else int(value)


def data_summary(ex: dict) -> dict:
    """iot-jobs-data JobExecutionSummary (epoch seconds, as the device APIs carry them)."""
    out = {
        "jobId": ex["jobId"],
        "queuedAt": epoch(ex["queuedAt"]),
        "startedAt": epoch(ex.get("startedAt")),
        "lastUpdatedAt": epoch(ex["lastUpdatedAt"]),
        "versionNumber": ex["versionNumber"],
        "executionNumber": ex["executionNumber"],
    }
    return {k: v for k, v in out.items() if v is not None}


def data_view(ex: dict, at: float, document=None) -> dict:
    """iot-jobs-data JobExecution; `document` is included when given."""
    out = {
        "jobId": ex["jobId"],
        "thingName": ex["thingName"],
        "status": ex["status"],
        "statusDetails": ex.get("statusDetails") or {},
        "queuedAt": epoch(ex["queuedAt"]),
        "startedAt": epoch(ex.get("startedAt")),
        "lastUpdatedAt": epoch(ex["lastUpdatedAt"]),
        "approximateSecondsBeforeTimedOut": seconds_left(ex, at),
        "versionNumber": ex["versionNumber"],
        "executionNumber": ex["executionNumber"],
        "jobDocument": document,
    }
    return {k: v for k, v in out.items() if v is not None}


def state_view(ex: dict) -> dict:
    """iot-jobs-data JobExecutionState."""
    return {"status": ex["status"], "statusDetails": ex.get("statusDetails") or {}, "versionNumber": ex["versionNumber"]}


def invalid_transition(message: str, ex: dict | None = None) -> ServiceError:
    fields = {"executionState": state_view(ex)} if ex is not None else {}
    return ServiceError("InvalidStateTransitionException", message, **fields)
