"""Job targets: thing and thing group ARNs, and the things they stand for.

A thing group target reaches the members of the group and of all its
descendant groups. A SNAPSHOT job takes the members once, at creation; a
CONTINUOUS job follows membership: things that join later get an execution
(in near real time, past the rollout pacing), and a thing that leaves before
starting has its QUEUED execution REMOVED (it gets a new one if it comes back).
"""

from __future__ import annotations

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services.jobs import executions, lifecycle, model, notify, rollout
from localiot.services.jobs.model import IN_PROGRESS, QUEUED, REMOVED, SCHEDULED, Limits
from localiot.services.registry.things import MEMBER_OF

GROUP = "thinggroup"


def parse(ctx, arns: list[str]) -> tuple[list[str], list[dict]]:
    """(thing names, [{name, id, arn}] of thing groups) named by target ARNs; all must exist."""
    if len(arns) > Limits.TARGETS_PER_JOB:
        raise ServiceError("LimitExceededException",
                           f"A job can have at most {Limits.TARGETS_PER_JOB} targets; {len(arns)} were given.")
    things: list[str] = []
    groups: list[dict] = []
    for arn in arns:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iot":
            raise invalid(f"Invalid target ARN: {arn}")
        region, account, resource = parts[3], parts[4], parts[5]
        kind, _, name = resource.partition("/")
        if kind not in ("thing", GROUP) or not name:
            raise invalid(f"Invalid target {arn}: a job target is a thing or thing group ARN.")
        if account != ctx.account or region != ctx.region:
            raise invalid(f"Invalid target {arn}: targets must be in account {ctx.account} and region {ctx.region}.")
        doc = ctx.tx.get(kind, name)
        if doc is None:
            label = "Thing" if kind == "thing" else "Thing Group"
            raise not_found(f"{label} {name} cannot be found.")
        if kind == "thing":
            if name not in things:
                things.append(name)
        elif all(g["name"] != name for g in groups):
            groups.append({"name": name, "id": doc["thingGroupId"], "arn": doc["thingGroupArn"]})
    return things, groups


def members(ctx, group: str) -> set[str]:
    """Things in the group or any group below it."""
    names = [group] + [n for n, _ in ctx.tx.find(GROUP, "ancestor", group)]
    found: set[str] = set()
    for name in names:
        found.update(ctx.tx.linked(MEMBER_OF, name))
    return found


def resolve(ctx, job: dict) -> set[str]:
    found = set(job.get("targetThings") or [])
    for group in job.get("targetGroups") or []:
        found |= members(ctx, group["name"])
    return found


def reconcile(ctx, job: dict) -> None:
    """Bring a continuous job's targets in line with current group membership."""
    if job["targetSelection"] != "CONTINUOUS" or job["status"] not in (IN_PROGRESS, SCHEDULED) or job.get("ended"):
        return
    job_id = job["jobId"]
    wanted = resolve(ctx, job)
    targeted = set(ctx.tx.linked(model.TARGETED, job_id))
    joined = sorted(wanted - targeted)
    if joined:
        rollout.add_targets(ctx, job, joined, immediate=True)
    for name in sorted(targeted - wanted):
        ex = model.get_exec(ctx, job_id, name)
        if ex is not None and ex["status"] == QUEUED:
            ex = executions.remove(ctx, job, ex)
        if ex is None or ex["status"] == REMOVED:
            ctx.tx.unlink(model.TARGETED, job_id, name)
            ctx.tx.unlink(model.RELEASE, job_id, name)


def on_thing_added_to_group(ctx, group, thing) -> None:
    """Give a thing that just joined `group` the continuous jobs targeting the
    group or one of its ancestors. Call it in the membership call's transaction."""
    group_doc = ctx.tx.get(GROUP, group) if isinstance(group, str) else group
    thing_doc = ctx.tx.get("thing", thing) if isinstance(thing, str) else thing
    if group_doc is None or thing_doc is None:
        return
    names = [group_doc["thingGroupName"]] + [a["groupName"] for a in group_doc.get("ancestors") or []]
    seen: set[str] = set()
    for name in names:
        for job_id, _ in ctx.tx.find(model.JOB, "group", name):
            if job_id in seen:
                continue
            seen.add(job_id)
            job = model.load_job(ctx, job_id)
            if job is None or job["targetSelection"] != "CONTINUOUS" or job.get("ended"):
                continue
            if job["status"] not in (IN_PROGRESS, SCHEDULED):
                continue
            if rollout.add_targets(ctx, job, [thing_doc["thingName"]], immediate=True):
                job["lastUpdatedAt"] = ctx.now()
                model.save_job(ctx, job)
    notify.flush(ctx)


def on_thing_deleted(ctx, thing) -> None:
    """A deleted thing no longer executes jobs: its pending executions become
    REMOVED (AWS counts them in numberOfRemovedThings) and it leaves the
    rollouts it was waiting in. Call it in the DeleteThing transaction."""
    name = thing if isinstance(thing, str) else thing["thingName"]
    settled: dict[str, dict] = {}
    for _, ex in ctx.tx.find(model.EXEC, "thing", name):
        job = model.load_job(ctx, ex["jobId"])
        if job is None or job["status"] == model.DELETION_IN_PROGRESS:
            continue
        if ex["status"] in model.PENDING:
            executions.remove(ctx, job, ex)
            settled[job["jobId"]] = job
    for job_id in ctx.tx.linked_to(model.RELEASE, name):
        ctx.tx.unlink(model.RELEASE, job_id, name)
        job = model.load_job(ctx, job_id)
        if job is not None:
            settled[job_id] = job
    for job in settled.values():
        lifecycle.settle(ctx, job)
    notify.flush(ctx)
