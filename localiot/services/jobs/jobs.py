"""Jobs control plane: CreateJob, DescribeJob, GetJobDocument, ListJobs,
UpdateJob, CancelJob, DeleteJob, AssociateTargetsWithJob."""

from __future__ import annotations

from localiot.protocol.errors import ServiceError, invalid
from localiot.services import hooks
from localiot.services.common import apply_tags, page_list, tags_to_dict
from localiot.services.jobs import lifecycle, model, rollout, schedule, targets, templates, validation
from localiot.services.jobs.model import (
    CANCELED, COMPLETED, DELETION_IN_PROGRESS, IN_PROGRESS, JOB, SCHEDULED, Limits, handler,
)
from localiot.services.tagging import taggable

taggable("job", lambda tx, name: tx.get(JOB, name) is not None)


def _reply(job: dict) -> dict:
    return {"jobArn": job["jobArn"], "jobId": job["jobId"], "description": job.get("description")}


@handler("iot")
def CreateJob(ctx, req):
    job_id = req["jobId"]
    arn = model.job_arn(ctx, job_id)
    if ctx.tx.get(JOB, job_id) is not None:
        raise ServiceError("ResourceAlreadyExistsException", f"Job {job_id} already exists.",
                           resourceId=job_id, resourceArn=arn)
    at = ctx.now()
    spec = templates.for_job(ctx, req)
    validation.configs(spec, at)
    hooks.fire(hooks.JOB_CREATING, ctx, spec)  # the package catalog checks destinationPackageVersions
    things, groups = targets.parse(ctx, req["targets"])
    if ctx.tx.count(JOB, "concurrent", "1") >= Limits.CONCURRENT_JOBS:
        raise ServiceError("LimitExceededException",
                           f"The maximum number of concurrent jobs ({Limits.CONCURRENT_JOBS}) has been reached.")
    job = {
        "jobId": job_id,
        "jobArn": arn,
        "targetSelection": req.get("targetSelection") or "SNAPSHOT",
        "status": IN_PROGRESS,
        "targets": list(req["targets"]),
        "targetThings": things,
        "targetGroups": groups,
        "description": req.get("description"),
        "namespaceId": req.get("namespaceId"),
        "createdAt": at,
        "lastUpdatedAt": at,
        "notified": 0,
        "failures": {},
        "rollout": {},
        **{k: v for k, v in spec.items() if v is not None},
    }
    if job.get("schedulingConfig"):
        if schedule.rolling(job, at):
            job["started"] = True
        else:
            job["status"] = SCHEDULED
    else:
        job["started"] = True
    rollout.add_targets(ctx, job, sorted(targets.resolve(ctx, job)))
    rollout.release(ctx, job, Limits.RELEASE_PER_CALL)
    apply_tags(ctx, arn, tags_to_dict(req.get("tags")))
    lifecycle.settle(ctx, job)
    return _reply(job)


@handler("iot")
def DescribeJob(ctx, req):
    job = model.get_job(ctx, req["jobId"])
    return {"documentSource": job.get("documentSource"), "job": model.job_view(ctx, job)}


@handler("iot")
def GetJobDocument(ctx, req):
    job = model.get_job(ctx, req["jobId"])
    if req.get("beforeSubstitution") and job.get("documentBeforeSubstitution") is not None:
        return {"document": job["documentBeforeSubstitution"]}
    return {"document": job.get("document")}


@handler("iot")
def ListJobs(ctx, req):
    tx = ctx.tx
    if req.get("thingGroupName"):
        rows = tx.find(JOB, "group", req["thingGroupName"])
    elif req.get("thingGroupId"):
        rows = tx.find(JOB, "groupId", req["thingGroupId"])
    elif req.get("status"):
        rows = tx.find(JOB, "status", req["status"])
    else:
        rows = tx.scan(JOB)
    jobs = [doc for _, doc in rows]
    for key in ("status", "targetSelection", "namespaceId"):
        if req.get(key):
            jobs = [j for j in jobs if j.get(key) == req[key]]
    if req.get("thingGroupId"):
        jobs = [j for j in jobs if any(g["id"] == req["thingGroupId"] for g in j.get("targetGroups") or [])]
    jobs.sort(key=lambda j: j["jobId"])  # AWS documents no order: the one list order, ascending by name
    items, token = page_list(jobs, req, key=lambda j: j["jobId"])
    return {"jobs": [model.job_summary(ctx, j) for j in items], "nextToken": token}


@handler("iot")
def UpdateJob(ctx, req):
    job = model.get_job(ctx, req["jobId"])
    if job["status"] == DELETION_IN_PROGRESS:
        raise invalid(f"Job {job['jobId']} is being deleted and cannot be updated.")
    changes = {k: req[k] for k in ("description", "presignedUrlConfig", "jobExecutionsRolloutConfig",
                                   "abortConfig", "timeoutConfig", "jobExecutionsRetryConfig") if k in req}
    validation.configs(dict(changes), ctx.now())
    job.update(changes)
    if "jobExecutionsRolloutConfig" in changes:
        job.setdefault("rollout", {})["rate"] = None  # the new pace applies at once
    job["lastUpdatedAt"] = ctx.now()
    lifecycle.settle(ctx, job)
    return {}


@handler("iot")
def CancelJob(ctx, req):
    job = model.get_job(ctx, req["jobId"])
    force = bool(req.get("force"))
    if job["status"] == DELETION_IN_PROGRESS:
        raise invalid(f"Job {job['jobId']} is being deleted and cannot be canceled.")
    if job["status"] == COMPLETED:
        raise invalid(f"Job {job['jobId']} is COMPLETED and cannot be canceled.")
    if job["status"] == CANCELED:
        if not force:
            return _reply(job)
    elif req.get("comment") is not None or req.get("reasonCode") is not None:
        job["comment"] = req.get("comment")
        job["reasonCode"] = req.get("reasonCode")
    lifecycle.cancel(ctx, job, force=force)
    lifecycle.settle(ctx, job)
    return _reply(job)


@handler("iot")
def DeleteJob(ctx, req):
    job = model.get_job(ctx, req["jobId"])
    status = job["status"]
    if status == DELETION_IN_PROGRESS:
        raise model.invalid_transition(f"Job {job['jobId']} is already being deleted.")
    if status in (IN_PROGRESS, SCHEDULED) and not req.get("force"):
        raise model.invalid_transition(
            f"Cannot delete job {job['jobId']} in status {status} unless force is true.")
    if ctx.tx.count(JOB, "status", DELETION_IN_PROGRESS) >= Limits.DELETING_JOBS:
        raise ServiceError("LimitExceededException",
                           f"Only {Limits.DELETING_JOBS} jobs can be in DELETION_IN_PROGRESS at a time.")
    lifecycle.begin_deletion(ctx, job)
    return {}


@handler("iot")
def AssociateTargetsWithJob(ctx, req):
    job = model.get_job(ctx, req["jobId"])
    if job["targetSelection"] != "CONTINUOUS":
        raise invalid(f"Targets can only be associated with a CONTINUOUS job; job {job['jobId']} is a SNAPSHOT job.")
    if job["status"] != IN_PROGRESS:
        raise invalid(f"Targets can only be associated with an IN_PROGRESS job; job {job['jobId']} "
                      f"is {job['status']}.")
    added = [t for t in dict.fromkeys(req["targets"]) if t not in job["targets"]]
    if len(job["targets"]) + len(added) > Limits.TARGETS_PER_JOB:
        raise ServiceError("LimitExceededException",
                           f"A job can have at most {Limits.TARGETS_PER_JOB} targets.")
    things, groups = targets.parse(ctx, added)
    job["targets"] = list(job["targets"]) + added
    job["targetThings"] = list(job.get("targetThings") or []) + [t for t in things if t not in job.get("targetThings", [])]
    known = {g["name"] for g in job.get("targetGroups") or []}
    job["targetGroups"] = list(job.get("targetGroups") or []) + [g for g in groups if g["name"] not in known]
    job["lastUpdatedAt"] = ctx.now()
    if req.get("comment") is not None:
        job["comment"] = req["comment"]
    targets.reconcile(ctx, job)
    lifecycle.settle(ctx, job)
    return _reply(job)
