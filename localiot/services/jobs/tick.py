"""The jobs timer: all time-driven work, as a function of the store and `now`.

`tick(store, runtime, now)` visits every (account, region) that has active
jobs (listed in the ("global", "global") scope as "jobs-scope" documents),
each in its own transaction, and there:
1. times out IN_PROGRESS executions whose in-progress or step timer ran out
   (deadlines are indexed by minute, so a tick reads only the minutes that
   passed since the previous one) and queues their retries;
2. for each active job: applies its schedule (SCHEDULED <-> IN_PROGRESS at
   startTime and maintenance windows, endBehavior at endTime), follows
   continuous jobs' group membership, releases the executions the rollout
   allows, applies the abort config, completes finished jobs and goes on
   with deletions too large for one call.
Notifications and events reach the bus after each scope's commit. The same
`now` gives the same result, so tests move the clock and call tick.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from localiot.background import periodic
from localiot.services.context import RequestContext
from localiot.services.jobs import executions, lifecycle, model, notify, rollout, targets
from localiot.services.unit_of_work import unit_of_work
from localiot.services.jobs.model import DELETION_IN_PROGRESS, EXEC, GLOBAL, JOB, SCOPES, Limits

log = logging.getLogger("localiot.jobs")
TIMER = "jobs-timer"  # per scope: the last minute whose deadlines were all handled
FULL_SCAN_AFTER = 24 * 60  # minutes skipped at once (clock jumps): read all timers instead


@dataclass
class TickContext(RequestContext):
    """A RequestContext whose clock is the tick's `now`."""

    at: float = 0.0

    def now(self) -> float:
        return self.at


@periodic("jobs")
def tick(store, runtime, now: float | None = None) -> dict:
    """Do all due jobs work; returns counts of what happened (for logs and tests)."""
    at = runtime.clock.now() if now is None else now
    with store.transaction(*GLOBAL, write=False) as tx:
        scopes = [(doc["account"], doc["region"]) for _, doc in tx.scan(SCOPES)]
    totals = {"scopes": len(scopes), "timedOut": 0, "released": 0, "jobs": 0}
    for account, region in scopes:
        try:
            found = _tick_scope(store, runtime, account, region, at)
        except Exception:  # one broken scope must not stop the others
            log.exception("jobs timer failed for %s/%s", account, region)
            continue
        for key, value in found.items():
            totals[key] += value
    return totals


def _tick_scope(store, runtime, account: str, region: str, at: float) -> dict:
    with unit_of_work(runtime, account, region, "iot", "JobsTimer", context=TickContext, at=at) as ctx:
        tx = ctx.tx
        found = {"timedOut": _time_out(ctx, at), "released": 0, "jobs": 0}
        for job_id, _ in tx.find(JOB, "active", "1"):
            job = model.load_job(ctx, job_id)
            if job is None:
                continue
            found["jobs"] += 1
            found["released"] += _tick_job(ctx, job)
        notify.flush(ctx)
        if tx.count(JOB, "active", "1") == 0:
            tx.scope(*GLOBAL).delete(SCOPES, f"{account}|{region}")
    return found


def _tick_job(ctx, job: dict) -> int:
    if job["status"] == DELETION_IN_PROGRESS:
        lifecycle.finish_deletion(ctx, job, Limits.DELETE_PER_TICK)
        return 0
    rollout.apply_schedule(ctx, job)
    targets.reconcile(ctx, job)
    released = rollout.release(ctx, job, Limits.RELEASE_PER_TICK)
    lifecycle.settle(ctx, job)
    return released


def _due(ctx, at: float) -> list[dict]:
    tx = ctx.tx
    minute = int(at // 60)
    timer = tx.get(TIMER, "state")
    last = timer["minute"] if timer else None
    if last is None or minute - last > FULL_SCAN_AFTER:
        rows = tx.find(EXEC, "timer", "1")
    else:
        rows = []
        for m in range(last + 1, minute + 1):
            rows.extend(tx.find(EXEC, "deadline", str(m)))
    tx.put(TIMER, "state", {"minute": minute - 1})
    return [ex for _, ex in rows if (model.deadline(ex) or float("inf")) <= at]


def _time_out(ctx, at: float) -> int:
    timed_out = 0
    touched_jobs: dict[str, dict] = {}
    for ex in _due(ctx, at):
        job = model.load_job(ctx, ex["jobId"])
        if job is None or job["status"] == DELETION_IN_PROGRESS:
            continue
        executions.time_out(ctx, job, ex)
        touched_jobs[job["jobId"]] = job
        timed_out += 1
    for job in touched_jobs.values():
        lifecycle.settle(ctx, job)
    return timed_out


def on_thing_added_to_group(ctx, group, thing) -> None:
    """See targets.on_thing_added_to_group."""
    targets.on_thing_added_to_group(ctx, group, thing)


def run(app, now: float | None = None) -> dict:
    """tick() for a LocalIoT app (its store, runtime and clock); call it on the loop thread."""
    return tick(app.store, app.runtime, now)
