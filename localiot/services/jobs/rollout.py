"""Rollout pacing and the schedule: when the things a job targets get their execution.

Targets waiting for the rollout are "job-release" links; `release` turns up
to the current allowance of them into QUEUED executions. Pacing follows
JobExecutionsRolloutConfig per minute of the injectable clock:
- maximumPerMinute: at most that many executions per minute;
- exponentialRate: baseRatePerMinute, multiplied by incrementFactor each
  time another numberOfNotifiedThings things were notified or another
  numberOfSucceededThings executions succeeded (AWS: 50/min, then 100/min
  after 1000 notified, 200/min after 2000 ...);
- no config: everything, in batches of Limits.RELEASE_PER_CALL within a
  call and Limits.RELEASE_PER_TICK per timer tick.
The minute is a window starting when rollout starts; the rate is decided
when a window opens and a tick in a later window opens a new allowance. The schedule (`apply_schedule`) moves a job
between SCHEDULED and IN_PROGRESS at its startTime and maintenance windows
and applies endBehavior at its endTime.
"""

from __future__ import annotations

import math

from localiot.services.jobs import executions, lifecycle, model, notify, schedule
from localiot.services.jobs.model import IN_PROGRESS, QUEUED, SCHEDULED, SUCCEEDED, Limits

MAX_RATE = 1_000_000


def current_rate(ctx, job: dict) -> int | None:
    config = job.get("jobExecutionsRolloutConfig") or {}
    exponential = config.get("exponentialRate")
    maximum = config.get("maximumPerMinute")
    if not exponential:
        return maximum
    pace = job.setdefault("rollout", {})
    criteria = exponential.get("rateIncreaseCriteria") or {}
    notified_step = criteria.get("numberOfNotifiedThings")
    succeeded_step = criteria.get("numberOfSucceededThings")
    succeeded = model.count(ctx, job["jobId"], SUCCEEDED) if succeeded_step else 0
    notified = job.get("notified", 0)
    increments = pace.get("increments", 0)
    while increments < 64:
        step = increments + 1
        if (notified_step and notified >= notified_step * step) or (succeeded_step and succeeded >= succeeded_step * step):
            increments = step
        else:
            break
    pace["increments"] = increments
    rate = exponential["baseRatePerMinute"] * exponential["incrementFactor"] ** increments
    rate = min(MAX_RATE, int(math.floor(rate + 1e-9)))
    if maximum:
        rate = min(rate, maximum)
    return max(1, rate)


def allowance(ctx, job: dict, at: float) -> int | None:
    """How many executions may still be released in the current minute (None: no pacing).

    The rate is fixed when a minute opens, so what a minute releases does not
    depend on how often the timer runs within it."""
    if not job.get("jobExecutionsRolloutConfig"):
        return None
    pace = job.setdefault("rollout", {})
    start = pace.get("windowStart")
    if start is None or at >= start + 60 or pace.get("rate") is None:
        if start is None or at >= start + 60:
            pace["windowStart"] = at if start is None else start + 60 * math.floor((at - start) / 60)
            pace["inWindow"] = 0
        pace["rate"] = current_rate(ctx, job)
    return max(0, pace["rate"] - pace.get("inWindow", 0))


def release(ctx, job: dict, budget: int) -> int:
    """Create executions for up to `budget` waiting targets, within the rollout allowance."""
    if job["status"] != IN_PROGRESS:
        return 0
    job_id = job["jobId"]
    if not model.unreleased(ctx, job_id):
        return 0
    room = allowance(ctx, job, ctx.now())
    limit = budget if room is None else min(budget, room)
    released = 0
    while limit > 0:
        names = ctx.tx.linked(model.RELEASE, job_id, limit=limit)
        if not names:
            break
        for name in names:
            ctx.tx.unlink(model.RELEASE, job_id, name)
            thing = ctx.tx.get("thing", name)
            if thing is None:  # deleted while it waited
                ctx.tx.unlink(model.TARGETED, job_id, name)
                continue
            executions.create(ctx, job, thing)
            released += 1
            limit -= 1
    if released:
        job["notified"] = job.get("notified", 0) + released
        pace = job.setdefault("rollout", {})
        pace["inWindow"] = pace.get("inWindow", 0) + released
        job["lastUpdatedAt"] = ctx.now()
    return released


def add_targets(ctx, job: dict, names, *, immediate: bool = False) -> int:
    """Target more things. `immediate` queues them now, past the rollout pacing
    (AWS: continuous jobs reach things joining a target group in near real time)."""
    job_id = job["jobId"]
    added = 0
    for name in names:
        if ctx.tx.is_linked(model.TARGETED, job_id, name):
            continue
        ctx.tx.link(model.TARGETED, job_id, name)
        added += 1
        if immediate and job["status"] == IN_PROGRESS:
            thing = ctx.tx.get("thing", name)
            if thing is None:
                ctx.tx.unlink(model.TARGETED, job_id, name)
                added -= 1
                continue
            executions.create(ctx, job, thing)
            job["notified"] = job.get("notified", 0) + 1
        else:
            ctx.tx.link(model.RELEASE, job_id, name)
    return added


def _touch_queued(ctx, job: dict) -> None:
    """The job's QUEUED executions appear or disappear from pending lists."""
    for status in (QUEUED, IN_PROGRESS):
        for _, ex in ctx.tx.find(model.EXEC, "jobstatus", f"{job['jobId']}|{status}"):
            notify.touch(ctx, ex["thingName"], ex.get("namespaceId"))


def apply_schedule(ctx, job: dict) -> None:
    """Start, pause, resume or end the rollout as the SchedulingConfig says."""
    if job["status"] not in (SCHEDULED, IN_PROGRESS) or not job.get("schedulingConfig"):
        return
    at = ctx.now()
    if job.get("ended"):
        return
    if schedule.ended(job, at):
        job["ended"] = True
        ctx.tx.unlink_all(model.RELEASE, src=job["jobId"])
        behavior = job["schedulingConfig"].get("endBehavior") or "STOP_ROLLOUT"
        if behavior in ("CANCEL", "FORCE_CANCEL"):
            if job["status"] == SCHEDULED:
                _touch_queued(ctx, job)
            lifecycle.cancel(ctx, job, force=behavior == "FORCE_CANCEL",
                             comment=f"Job reached its scheduled endTime ({behavior}).")
            return
        if job["status"] == SCHEDULED:
            _touch_queued(ctx, job)
            job["status"] = IN_PROGRESS
        job["lastUpdatedAt"] = at
        return
    wanted = IN_PROGRESS if schedule.rolling(job, at) else SCHEDULED
    if wanted == job["status"]:
        return
    if wanted == IN_PROGRESS and not job.get("started"):
        job["started"] = True
        busy = [j for j, _ in ctx.tx.find(model.JOB, "concurrent", "1") if j != job["jobId"]]
        if len(busy) >= Limits.CONCURRENT_JOBS:
            lifecycle.cancel(ctx, job, force=False,
                             comment="The job reached its startTime at the job concurrency limit.")
            return
    _touch_queued(ctx, job)
    job["status"] = wanted
    job["lastUpdatedAt"] = at
