"""What devices and monitors hear about jobs: the pending-list notifications and
the job / job execution events.

`$aws/things/{thing}/jobs/notify` carries the thing's pending executions
(IN_PROGRESS before QUEUED, then by queue time) whenever an execution joins
or leaves that list; `.../jobs/notify-next` carries the execution first in
the list (with its document) whenever that first execution changes, and
only a timestamp once the list is empty (AWS developer guide, "Jobs
notifications"). Namespaced jobs use `notify-namespace-{ns}` and
`notify-next-namespace-{ns}`, the topics AWS IoT Greengrass listens on.

Any change to an execution first `touch`es its (thing, namespace) so the
list before the change is known; `flush` (which `touch` asks the jobs
handler wrapper, model.handler, to run when the call returns; the timer
calls it itself) compares and queues the messages, which reach the bus after
commit like every other event.
"""

from __future__ import annotations

import json

from localiot.services.common import new_id
from localiot.services.jobs import documents, model
from localiot.services.registry import events


# pending lists ---------------------------------------------------------------
def _order(ex: dict):
    return (0 if ex["status"] == model.IN_PROGRESS else 1, ex["queuedAt"], ex["jobId"])


def pending(ctx, thing: str, namespace: str | None = None) -> list[dict]:
    """The thing's pending executions, in notification order.

    Executions of a job waiting for its schedule (status SCHEDULED) are not
    pending for the device until the job rolls out (AWS: job limits)."""
    found = ctx.tx.find(model.EXEC, "pending", f"{namespace or ''}|{thing}")
    out = []
    for _, ex in found:
        job = model.load_job(ctx, ex["jobId"])
        if job is None or job["status"] in (model.SCHEDULED, model.DELETION_IN_PROGRESS):
            continue
        out.append(ex)
    out.sort(key=_order)
    return out


def _key(ex: dict) -> tuple:
    return ex["jobId"], ex["executionNumber"]


def touch(ctx, thing: str, namespace: str | None) -> None:
    """Remember the thing's pending list before an execution of it changes."""
    touched = model.state(ctx)["touched"]
    key = (thing, namespace or None)
    if key not in touched:
        touched[key] = [_key(ex) for ex in pending(ctx, thing, namespace)]
        model.at_finish(ctx, flush)


def _topics(thing: str, namespace: str | None) -> tuple[str, str]:
    base = f"$aws/things/{thing}/jobs/"
    if namespace:
        return base + f"notify-namespace-{namespace}", base + f"notify-next-namespace-{namespace}"
    return base + "notify", base + "notify-next"


def device_document(ctx, job: dict):
    """The job document as a device receives it over MQTT: presigned URLs
    resolved and, when it is JSON, as an object."""
    text = documents.for_device(ctx, job)
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def flush(ctx) -> None:
    touched = model.state(ctx)["touched"]
    if not touched:
        return
    stamp = int(ctx.now())
    for (thing, namespace), before in list(touched.items()):
        after = pending(ctx, thing, namespace)
        keys = [_key(ex) for ex in after]
        list_topic, next_topic = _topics(thing, namespace)
        if sorted(keys) != sorted(before):
            listed: dict[str, list] = {}
            for ex in after[:model.Limits.NOTIFY_LIST]:
                listed.setdefault(ex["status"], []).append(model.data_summary(ex))
            ctx.publish(list_topic, {"timestamp": stamp, "jobs": listed})
        if (keys[:1] or [None]) != (before[:1] or [None]):
            if after:
                first = after[0]
                job = model.load_job(ctx, first["jobId"])
                execution = model.data_summary(first)
                execution["status"] = first["status"]
                execution["jobDocument"] = device_document(ctx, job)
                ctx.publish(next_topic, {"timestamp": stamp, "execution": execution})
            else:
                ctx.publish(next_topic, {"timestamp": stamp})
    touched.clear()


# events ------------------------------------------------------------------------
def _millis(value: float | None) -> int | None:
    return None if value is None else int(value * 1000)


def job_event(ctx, job: dict, operation: str, *, details: dict | None = None) -> None:
    """`$aws/events/job/{jobId}/{operation}` when JOB events are enabled."""
    if not events.is_enabled(ctx, "JOB"):
        return
    status = {"deleted": "DELETED", "cancellation_in_progress": "CANCELLATION_IN_PROGRESS"}.get(operation, job["status"])
    body = {
        "eventType": "JOB",
        "eventId": new_id(),
        "timestamp": _millis(ctx.now()),
        "operation": operation,
        "jobId": job["jobId"],
        "status": status,
        "targetSelection": job["targetSelection"],
        "targets": job["targets"],
        "description": job.get("description"),
        "createdAt": _millis(job["createdAt"]),
        "lastUpdatedAt": _millis(job["lastUpdatedAt"]),
    }
    if operation == "completed":
        body["completedAt"] = _millis(job.get("completedAt"))
        body["jobProcessDetails"] = details or {}
    if job.get("comment") and operation != "completed":
        body["comment"] = job["comment"]
    ctx.publish(f"$aws/events/job/{job['jobId']}/{operation}", {k: v for k, v in body.items() if v is not None})


def execution_event(ctx, ex: dict, operation: str | None = None) -> None:
    """`$aws/events/jobExecution/{jobId}/{status}` when JOB_EXECUTION events are enabled."""
    if not events.is_enabled(ctx, "JOB_EXECUTION"):
        return
    operation = operation or ex["status"].lower()
    ctx.publish(f"$aws/events/jobExecution/{ex['jobId']}/{operation}", {
        "eventType": "JOB_EXECUTION",
        "eventId": new_id(),
        "timestamp": _millis(ctx.now()),
        "operation": operation,
        "jobId": ex["jobId"],
        "thingArn": ex["thingArn"],
        "status": ex["status"],
        "statusDetails": ex.get("statusDetails") or {},
    })
