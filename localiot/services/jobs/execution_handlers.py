"""Job executions in the control plane: DescribeJobExecution,
ListJobExecutionsForJob, ListJobExecutionsForThing, CancelJobExecution,
DeleteJobExecution."""

from __future__ import annotations

from localiot.protocol.errors import not_found
from localiot.services.common import page
from localiot.services.jobs import executions, lifecycle, model
from localiot.services.jobs.model import EXEC, TERMINAL, handler
from localiot.services.registry import things


def _missing(job_id: str, thing: str) -> Exception:
    return not_found(f"Job execution of job {job_id} on thing {thing} cannot be found.")


@handler("iot")
def DescribeJobExecution(ctx, req):
    job_id, thing = req["jobId"], req["thingName"]
    ex = model.find_exec(ctx, job_id, thing, req.get("executionNumber"))
    if ex is None:
        raise _missing(job_id, thing)
    return {"execution": model.control_view(ex, ctx.now())}


@handler("iot")
def ListJobExecutionsForJob(ctx, req):
    job_id = req["jobId"]
    model.get_job(ctx, job_id)
    status = req.get("status")
    tx = ctx.tx

    if status:
        def fetch(after, limit):
            return tx.find(EXEC, "jobstatus", f"{job_id}|{status}", after=after, limit=limit)
    else:
        def fetch(after, limit):
            return tx.scan(EXEC, prefix=f"{job_id}/", after=after, limit=limit)

    rows, token = page(fetch, req)
    return {
        "executionSummaries": [{"thingArn": ex["thingArn"], "jobExecutionSummary": model.summary_view(ex)}
                               for _, ex in rows],
        "nextToken": token,
    }


@handler("iot")
def ListJobExecutionsForThing(ctx, req):
    thing = req["thingName"]
    status, job_id, namespace = req.get("status"), req.get("jobId"), req.get("namespaceId")
    tx = ctx.tx
    if job_id:
        ex = model.get_exec(ctx, job_id, thing)
        found = [(model.exec_name(job_id, thing), ex)] if ex is not None else []

        def fetch(after, limit):
            return [row for row in found if after is None or row[0] > after][:limit]
    else:
        def fetch(after, limit):
            return tx.find(EXEC, "thing", thing, after=after, limit=limit)

    def keep(row):
        ex = row[1]
        return (status is None or ex["status"] == status) and (namespace is None or ex.get("namespaceId") == namespace)

    if status or namespace:
        fetch = things.filtered(fetch, keep)
    rows, token = page(fetch, req)
    return {
        "executionSummaries": [{"jobId": ex["jobId"], "jobExecutionSummary": model.summary_view(ex)}
                               for _, ex in rows],
        "nextToken": token,
    }


@handler("iot")
def CancelJobExecution(ctx, req):
    job_id, thing = req["jobId"], req["thingName"]
    job = model.load_job(ctx, job_id)
    ex = model.get_exec(ctx, job_id, thing)
    if job is None or ex is None or job["status"] == model.DELETION_IN_PROGRESS:
        raise _missing(job_id, thing)
    executions.cancel(ctx, job, ex, force=bool(req.get("force")), details=req.get("statusDetails"),
                      expected_version=req.get("expectedVersion"))
    lifecycle.settle(ctx, job)
    return {}


@handler("iot")
def DeleteJobExecution(ctx, req):
    job_id, thing, number = req["jobId"], req["thingName"], req["executionNumber"]
    ex = model.find_exec(ctx, job_id, thing, number)
    job = model.load_job(ctx, job_id)
    if ex is None or job is None:
        raise _missing(job_id, thing)
    if ex["status"] not in TERMINAL and not req.get("force"):
        raise model.invalid_transition(
            f"Cannot delete the job execution of job {job_id} on thing {thing}: it is {ex['status']}; "
            "only executions in a terminal state can be deleted unless force is true.")
    executions.delete(ctx, job, ex)
    if job["status"] != model.DELETION_IN_PROGRESS:
        lifecycle.settle(ctx, job)
    return {}
