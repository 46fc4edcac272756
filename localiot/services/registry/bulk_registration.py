"""Bulk registration: StartThingRegistrationTask, DescribeThingRegistrationTask,
ListThingRegistrationTasks, StopThingRegistrationTask, ListThingRegistrationTaskReports.

The API calls only record and read tasks; the registering itself runs outside
any API call, in `run_pending_tasks(store, runtime)` (blocking, for tests and
worker threads that own the store) or `run_pending_tasks_async(store, runtime)`
(a coroutine for the server's loop: S3 calls go to a worker thread, store work
stays on the loop, and the loop is yielded between lines).

What a task does, as the AWS IoT Developer Guide's "Bulk registration" describes it:

- The input file `s3://inputFileBucket/inputFileKey` (read with the downstream
  S3 client, `runtime.aws_client("s3", region)`) is newline-delimited JSON, one
  object of template parameters per line; blank lines are skipped and not
  counted. Each line is provisioned like RegisterThing with the task's template
  (`localiot.provisioning`: evaluate + apply_plan), in its own store
  transaction: a line that fails rolls back only its own resources and becomes
  an error report line.
- `successCount`, `failureCount` and `percentageProgress` (lines done / lines in
  the file) move as lines are done. The status is InProgress until every line is
  done and the reports are written, then Completed. A file that cannot be read
  (missing bucket or key, not UTF-8 text) or reports that cannot be written make
  the task Failed with a `message` saying why.
- StopThingRegistrationTask turns an InProgress task into Cancelling; the runner
  stops before the next line, writes the reports of the lines done so far and
  makes it Cancelled. A task that has not started any line goes straight to
  Cancelled. Stopping a Cancelling task again is accepted; stopping a finished
  task is an InvalidRequestException.
- Tasks run one at a time, oldest first (the guide: one bulk registration task
  runs at a time per account); StartThingRegistrationTask queues rather than
  refuses.

Report objects (localiot's layout; AWS keeps them in a bucket of its own): in
the input file's bucket under

    ThingRegistration/{taskId}/results-00001.json, results-00002.json, ...
    ThingRegistration/{taskId}/errors-00001.json, ...

each holding up to REPORT_LINES_PER_OBJECT newline-delimited JSON lines, in
input order. `referenceId` is the 0-based offset of the input line, as a string:

    {"referenceId": "0", "response": {"CertificatePem": "...", "ResourceArns": {"thing": "arn:..."}}}
    {"referenceId": "3", "errorCode": "InvalidRequestException", "errorMessage": "..."}

(`response` is RegisterThing's answer; `CertificatePem` only when the template
provisions a certificate.) A report type with no lines has no object.
ListThingRegistrationTaskReports returns presigned GET URLs of those objects at
the downstream endpoint (plain URLs when no credentials are around to sign
with), paged over the objects.

Storage: a task is a "thing-registration-task" document named by its taskId;
finished lines wait as "thing-registration-report" documents named
"{taskId}/{offset:09d}" until the reports are written, so a runner that stops
(a line budget, a restart) resumes at `nextLine` without losing report lines.
Unfinished tasks are queued as links in the cross-account scope ("global",
"global"): rel "thing-registration-queue", src "queue", dst
"{creationDate}/{account}/{region}/{taskId}". A runner leases a task
(`lease`, `leaseUntil`) so two runners never work the same task.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

from localiot.background import periodic
from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.provisioning import TemplateError, evaluate, validate_template
from localiot.provisioning.apply import apply_plan
from localiot.services import operation
from localiot.services.common import new_id, page_list
from localiot.services.iam import is_role_arn
from localiot.services.unit_of_work import unit_of_work

log = logging.getLogger("localiot.bulk_registration")

KIND = "thing-registration-task"
REPORT_KIND = "thing-registration-report"
GLOBAL = ("global", "global")  # the cross-account scope (as certificates and commands use it)
QUEUE_REL, QUEUE_SRC = "thing-registration-queue", "queue"

IN_PROGRESS, COMPLETED, FAILED, CANCELLED, CANCELLING = "InProgress", "Completed", "Failed", "Cancelled", "Cancelling"
FINISHED = (COMPLETED, FAILED, CANCELLED)
RESULTS, ERRORS = "RESULTS", "ERRORS"
REPORT_FILES = {RESULTS: "results", ERRORS: "errors"}
REPORT_PREFIX = "ThingRegistration"
REPORT_LINES_PER_OBJECT = 1000
LINK_EXPIRY_SECONDS = 3600
LEASE_SECONDS = 120.0
# Leases name the process that took them: the store belongs to one process, so
# a lease of another process is a leftover of a stopped one and free to take.
PROCESS_ID = uuid.uuid4().hex
DEFAULT_PAGE_SIZE = 50
MESSAGE_MAX = 2048


# tasks in the store ------------------------------------------------------------
def _get(ctx, task_id: str) -> dict:
    doc = ctx.tx.get(KIND, task_id)
    if doc is None:
        raise not_found(f"The thing registration task {task_id} does not exist.")
    return doc


def _queue_entry(account: str, region: str, task_id: str, created: float) -> str:
    return f"{created:020.6f}/{account}/{region}/{task_id}"


def _unqueue(tx, doc_or_entry) -> None:
    entry = doc_or_entry if isinstance(doc_or_entry, str) else doc_or_entry.get("queueEntry")
    if entry:
        tx.scope(*GLOBAL).unlink(QUEUE_REL, QUEUE_SRC, entry)


def _drop_report_rows(tx, task_id: str) -> None:
    for name, _ in tx.scan(REPORT_KIND, prefix=f"{task_id}/"):
        tx.delete(REPORT_KIND, name)


def _message(text: str) -> str:
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 3] + "..."


# API -----------------------------------------------------------------------------
@operation("iot")
def StartThingRegistrationTask(ctx, req):
    try:
        validate_template(req["templateBody"])
    except TemplateError as e:
        raise invalid(str(e)) from None
    if not is_role_arn(req["roleArn"]):
        raise invalid(f"roleArn {req['roleArn']} is not an IAM role ARN.")
    task_id = new_id()
    now = ctx.now()
    entry = _queue_entry(ctx.account, ctx.region, task_id, now)
    doc = {
        "taskId": task_id,
        "creationDate": now,
        "lastModifiedDate": now,
        "templateBody": req["templateBody"],
        "inputFileBucket": req["inputFileBucket"],
        "inputFileKey": req["inputFileKey"],
        "roleArn": req["roleArn"],
        "status": IN_PROGRESS,
        "message": None,
        "successCount": 0,
        "failureCount": 0,
        "percentageProgress": 0,
        # runner state
        "totalLines": None,
        "doneLines": 0,
        "nextLine": 0,
        "reports": {RESULTS: [], ERRORS: []},
        "queueEntry": entry,
        "lease": None,
        "leaseUntil": 0.0,
    }
    ctx.tx.put(KIND, task_id, doc)
    ctx.tx.scope(*GLOBAL).link(QUEUE_REL, QUEUE_SRC, entry)
    return {"taskId": task_id}


@operation("iot")
def DescribeThingRegistrationTask(ctx, req):
    doc = _get(ctx, req["taskId"])
    return {
        "taskId": doc["taskId"],
        "creationDate": doc["creationDate"],
        "lastModifiedDate": doc["lastModifiedDate"],
        "templateBody": doc["templateBody"],
        "inputFileBucket": doc["inputFileBucket"],
        "inputFileKey": doc["inputFileKey"],
        "roleArn": doc["roleArn"],
        "status": doc["status"],
        "message": doc.get("message"),
        "successCount": doc["successCount"],
        "failureCount": doc["failureCount"],
        "percentageProgress": doc["percentageProgress"],
    }


@operation("iot")
def ListThingRegistrationTasks(ctx, req):
    """Ascending by task id (AWS documents no order: the one list order); `status` filters."""
    status = req.get("status")
    tasks = [doc for _, doc in ctx.tx.scan(KIND) if status is None or doc["status"] == status]
    tasks.sort(key=lambda d: d["taskId"])
    rows, token = page_list(tasks, req, lambda d: d["taskId"], default_size=DEFAULT_PAGE_SIZE)
    return {"taskIds": [d["taskId"] for d in rows], "nextToken": token}


@operation("iot")
def StopThingRegistrationTask(ctx, req):
    doc = _get(ctx, req["taskId"])
    if doc["status"] in FINISHED:
        raise invalid(f"The thing registration task {doc['taskId']} is {doc['status']} and cannot be stopped.")
    if doc["status"] == IN_PROGRESS:
        if doc["doneLines"] == 0 and not doc.get("lease"):
            # Nothing done yet and no runner on it: there is nothing to wind down.
            doc["status"] = CANCELLED
            _unqueue(ctx.tx, doc)
        else:
            doc["status"] = CANCELLING
        doc["lastModifiedDate"] = ctx.now()
        ctx.tx.put(KIND, doc["taskId"], doc)
    return {}


@operation("iot")
def ListThingRegistrationTaskReports(ctx, req):
    doc = _get(ctx, req["taskId"])
    report_type = req["reportType"]
    if report_type not in REPORT_FILES:
        raise invalid(f"reportType must be one of {', '.join(REPORT_FILES)}.")
    keys = list(doc.get("reports", {}).get(report_type) or [])
    rows, token = page_list(keys, req, default_size=DEFAULT_PAGE_SIZE)
    bucket = doc["inputFileBucket"]
    return {
        "resourceLinks": [report_link(ctx.runtime, ctx.region, bucket, key) for key in rows],
        "reportType": report_type,
        "nextToken": token,
    }


def report_key(task_id: str, report_type: str, part: int) -> str:
    return f"{REPORT_PREFIX}/{task_id}/{REPORT_FILES[report_type]}-{part:05d}.json"


def report_link(runtime, region: str, bucket: str, key: str) -> str:
    """A presigned GET URL of a report object (signing is local, no request is made)."""
    from urllib.parse import quote

    s3 = runtime.aws_client("s3", region)
    try:
        return s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=LINK_EXPIRY_SECONDS
        )
    except Exception:  # no credentials to sign with: an unsigned URL still names the object
        endpoint = (runtime.config.aws_endpoint_url or f"https://s3.{region}.amazonaws.com").rstrip("/")
        return f"{endpoint}/{bucket}/{quote(key)}"


# the runner ------------------------------------------------------------------------
# The work of one task is a generator ("sans I/O"): it does its store
# transactions itself and yields every blocking S3 call as a callable, which
# the driver runs (inline, or in a worker thread) and sends the result back
# (or throws its exception in). It never yields inside a transaction. _PAUSE
# marks the points between lines where an async driver gives the loop back.
_PAUSE = object()


class _Stop(Exception):
    """The task is no longer ours to work on (stopped, leased elsewhere, gone)."""


def pending_tasks(store) -> list[tuple[str, str, str]]:
    """(account, region, taskId) of every unfinished task, oldest first."""
    with store.transaction(*GLOBAL, write=False) as tx:
        entries = tx.linked(QUEUE_REL, QUEUE_SRC)
    return [tuple(entry.split("/", 3)[1:]) for entry in entries]


def _queue(store) -> list[str]:
    with store.transaction(*GLOBAL, write=False) as tx:
        return tx.linked(QUEUE_REL, QUEUE_SRC)


def run_pending_tasks(store, runtime, *, max_lines: int | None = None) -> int:
    """Work the queued tasks to the end (or `max_lines` input lines), blocking.

    Call it from the thread that owns the store (the server loop's thread); the
    S3 calls block that thread. Returns the number of input lines provisioned
    or refused."""
    done = 0
    for entry in _queue(store):
        budget = None if max_lines is None else max_lines - done
        if budget is not None and budget <= 0:
            break
        try:
            done += _drive(_task_steps(store, runtime, entry, budget))
        except Exception:  # keep the other tasks going; this one's lease runs out and it is retried
            log.exception("bulk registration: working %s failed", entry)
    return done


@periodic("bulk-registration")
async def run_pending_tasks_async(store, runtime, *, max_lines: int | None = None) -> int:
    """As run_pending_tasks, on the server's event loop: the S3 calls run in a
    worker thread and the loop is given back between lines, so API calls (a
    StopThingRegistrationTask) go on while a task runs. With PostgreSQL the whole run
    (store and S3 work) goes to a worker thread instead: the loop never waits on the store."""
    if runtime.workers is not None:
        return await runtime.workers.call(lambda: run_pending_tasks(store, runtime, max_lines=max_lines))
    done = 0
    for entry in _queue(store):
        budget = None if max_lines is None else max_lines - done
        if budget is not None and budget <= 0:
            break
        try:
            done += await _drive_async(_task_steps(store, runtime, entry, budget))
        except Exception:
            log.exception("bulk registration: working %s failed", entry)
    return done


def _drive(steps) -> int:
    try:
        step = next(steps)
        while True:
            if step is _PAUSE:
                step = steps.send(None)
                continue
            try:
                result = step()
            except Exception as e:
                step = steps.throw(e)
            else:
                step = steps.send(result)
    except StopIteration as stop:
        return stop.value or 0


async def _drive_async(steps) -> int:
    try:
        step = next(steps)
        while True:
            if step is _PAUSE:
                await asyncio.sleep(0)
                step = steps.send(None)
                continue
            try:
                result = await asyncio.to_thread(step)
            except Exception as e:
                step = steps.throw(e)
            else:
                step = steps.send(result)
    except StopIteration as stop:
        return stop.value or 0


def _task_steps(store, runtime, entry: str, budget: int | None):
    """Work one queued task; returns the number of lines done in this run."""
    _, account, region, task_id = entry.split("/", 3)
    lease = f"{PROCESS_ID}:{uuid.uuid4().hex}"

    # claim the task
    with store.transaction(account, region) as tx:
        doc = tx.get(KIND, task_id)
        if doc is None or doc["status"] in FINISHED:
            _unqueue(tx, entry)
            return 0
        held = doc.get("lease")
        if held and held.split(":", 1)[0] == PROCESS_ID and doc.get("leaseUntil", 0) > time.time():
            return 0  # another runner of this process is on it
        doc["lease"], doc["leaseUntil"] = lease, time.time() + LEASE_SECONDS
        tx.put(KIND, task_id, doc)
    bucket, key = doc["inputFileBucket"], doc["inputFileKey"]

    def s3():
        return runtime.aws_client("s3", region)

    done = 0
    if doc["status"] == IN_PROGRESS:
        try:
            template = validate_template(doc["templateBody"])
        except TemplateError as e:
            _fail(store, runtime, account, region, task_id, lease, f"The template is not valid: {e}")
            return 0
        try:
            body = yield lambda: s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as e:
            _fail(store, runtime, account, region, task_id, lease,
                  f"Could not read the input file s3://{bucket}/{key}: {_s3_error(e)}")
            return 0
        try:
            lines = body.decode("utf-8").split("\n")
        except UnicodeDecodeError as e:
            _fail(store, runtime, account, region, task_id, lease,
                  f"The input file s3://{bucket}/{key} is not UTF-8 text: {e}")
            return 0
        total = sum(1 for line in lines if line.strip())
        with store.transaction(account, region) as tx:
            try:
                doc = _own(tx, task_id, lease)
            except _Stop:
                doc = None
            else:
                doc["totalLines"] = total
                if total == 0:
                    doc["percentageProgress"] = 100
                tx.put(KIND, task_id, doc)
        try:
            if doc is None:
                raise _Stop()
            for offset in range(doc["nextLine"], len(lines)):
                raw = lines[offset].strip()
                if not raw:
                    continue
                if budget is not None and done >= budget:
                    _release(store, account, region, task_id, lease)
                    return done
                _do_line(store, runtime, account, region, task_id, lease, template, offset, raw, total)
                done += 1
                yield _PAUSE
        except _Stop:
            pass

    # write the reports, then finish
    with store.transaction(account, region, write=False) as tx:
        doc = tx.get(KIND, task_id)
        rows = [row for _, row in tx.scan(REPORT_KIND, prefix=f"{task_id}/")]
    if doc is None or doc.get("lease") != lease:
        return done  # deleted meanwhile, or the lease ran out and another runner took it
    if doc["status"] == IN_PROGRESS and doc["totalLines"] is not None and doc["doneLines"] < doc["totalLines"]:
        _release(store, account, region, task_id, lease)  # stopped early by something else; resume later
        return done
    objects = _report_objects(task_id, rows)
    for report_type, parts in objects.items():
        for object_key, data in parts:
            try:
                yield (lambda k=object_key, d=data: s3().put_object(
                    Bucket=bucket, Key=k, Body=d, ContentType="application/json"))
            except Exception as e:
                _fail(store, runtime, account, region, task_id, lease,
                      f"Could not write the {report_type} report to s3://{bucket}/{object_key}: {_s3_error(e)}")
                return done
    with store.transaction(account, region) as tx:
        doc = tx.get(KIND, task_id)
        if doc is None:
            _unqueue(tx, entry)
            return done
        if doc.get("lease") != lease:
            return done
        finished = doc["totalLines"] is not None and doc["doneLines"] >= doc["totalLines"]
        doc["status"] = COMPLETED if finished else CANCELLED
        if finished:
            doc["percentageProgress"] = 100
        doc["reports"] = {t: [k for k, _ in objects.get(t, [])] for t in REPORT_FILES}
        doc["lastModifiedDate"] = runtime.clock.now()
        doc["lease"], doc["leaseUntil"] = None, 0.0
        tx.put(KIND, task_id, doc)
        _drop_report_rows(tx, task_id)
        _unqueue(tx, doc)
    return done


def _do_line(store, runtime, account, region, task_id, lease, template, offset, raw, total) -> None:
    """Provision one input line in its own transaction, or record why it failed."""
    error = None
    try:
        params = json.loads(raw)
    except ValueError as e:
        params, error = None, ("InvalidRequestException", f"The line is not valid JSON: {e}")
    if error is None and not isinstance(params, dict):
        error = ("InvalidRequestException", "The line is not a JSON object of template parameters")
    if error is None:
        try:
            with unit_of_work(runtime, account, region, "iot", "RegisterThing") as ctx:
                tx = ctx.tx
                doc = _own(tx, task_id, lease)
                try:
                    plan = evaluate(template, params, region=region, account=account)
                except TemplateError as e:
                    raise invalid(str(e)) from None
                response = apply_plan(ctx, plan).register_thing_response()
                answer = {"ResourceArns": response["resourceArns"]}
                if response.get("certificatePem"):
                    answer["CertificatePem"] = response["certificatePem"]
                _record(tx, runtime, doc, offset, total, RESULTS, {"referenceId": str(offset), "response": answer})
        except _Stop:
            raise
        except ServiceError as e:
            error = (e.code, e.message)
        except Exception as e:  # a bug must not stop the task: the line fails, the rest goes on
            log.exception("bulk registration task %s: line %d failed", task_id, offset)
            error = ("InternalFailureException", f"{type(e).__name__}: {e}")
        else:
            return
    with store.transaction(account, region) as tx:
        doc = _own(tx, task_id, lease)
        _record(tx, runtime, doc, offset, total, ERRORS,
                {"referenceId": str(offset), "errorCode": error[0], "errorMessage": error[1]})


def _own(tx, task_id: str, lease: str) -> dict:
    """The task, if this runner still holds it and it should go on."""
    doc = tx.get(KIND, task_id)
    if doc is None or doc.get("lease") != lease or doc["status"] != IN_PROGRESS:
        raise _Stop()
    return doc


def _record(tx, runtime, doc: dict, offset: int, total: int, report_type: str, line: dict) -> None:
    task_id = doc["taskId"]
    tx.put(REPORT_KIND, f"{task_id}/{offset:09d}", {"type": report_type, "line": line})
    doc["successCount" if report_type == RESULTS else "failureCount"] += 1
    doc["doneLines"] += 1
    doc["totalLines"] = total
    doc["nextLine"] = offset + 1
    doc["percentageProgress"] = min(100, doc["doneLines"] * 100 // total) if total else 100
    doc["lastModifiedDate"] = runtime.clock.now()
    doc["leaseUntil"] = time.time() + LEASE_SECONDS
    tx.put(KIND, task_id, doc)


def _report_objects(task_id: str, rows: list[dict]) -> dict[str, list[tuple[str, bytes]]]:
    objects: dict[str, list[tuple[str, bytes]]] = {}
    for report_type in REPORT_FILES:
        lines = [json.dumps(r["line"], separators=(",", ":")) for r in rows if r["type"] == report_type]
        size = max(1, int(REPORT_LINES_PER_OBJECT))
        objects[report_type] = [
            (report_key(task_id, report_type, i // size + 1), ("\n".join(lines[i:i + size]) + "\n").encode())
            for i in range(0, len(lines), size)
        ]
    return objects


def _fail(store, runtime, account, region, task_id, lease, message: str) -> None:
    with store.transaction(account, region) as tx:
        doc = tx.get(KIND, task_id)
        if doc is None or doc.get("lease") != lease:
            return
        doc["status"] = FAILED
        doc["message"] = _message(message)
        doc["lastModifiedDate"] = runtime.clock.now()
        doc["lease"], doc["leaseUntil"] = None, 0.0
        tx.put(KIND, task_id, doc)
        _drop_report_rows(tx, task_id)
        _unqueue(tx, doc)


def _release(store, account, region, task_id, lease) -> None:
    with store.transaction(account, region) as tx:
        doc = tx.get(KIND, task_id)
        if doc is not None and doc.get("lease") == lease:
            doc["lease"], doc["leaseUntil"] = None, 0.0
            tx.put(KIND, task_id, doc)


def _s3_error(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        return f"{err.get('Code')}: {err.get('Message') or ''}".rstrip(": ")
    return f"{type(error).__name__}: {error}"
