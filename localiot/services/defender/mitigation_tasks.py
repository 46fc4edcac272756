"""Audit mitigation actions tasks: apply mitigation actions to audit findings
(all of an audit task's, filtered by check and reason code, or listed by id),
one execution per (finding, action), each applied through `effects.apply`.

Kind "audit-mitigation-task" (name = taskId, index "status", "auditTask",
"finding"); kind "audit-mitigation-execution" (name "<taskId>|<findingId>|<actionName>",
index "task", "finding"). The task and its PENDING executions are stored by
the call that starts it; once it commits the executions run one by one, each
its own unit of work; a canceled task's remaining executions become CANCELED.
"""

from __future__ import annotations


from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import operation
from localiot.services.common import paginate
from localiot.services.defender import catalog, effects
from localiot.services.defender.audits import FINDING, TASK as AUDIT_TASK
from localiot.services.defender.findings import public
from localiot.services.defender.mitigation import ACTION
from localiot.services.unit_of_work import read_only, unit_of_work


TASK, EXECUTION = "audit-mitigation-task", "audit-mitigation-execution"


def _findings(ctx, target: dict) -> list[dict]:
    given = [k for k in ("auditTaskId", "findingIds") if target.get(k)]
    if len(given) != 1:
        raise invalid("The target must name either auditTaskId or findingIds.")
    if target.get("auditCheckToReasonCodeFilter") and not target.get("auditTaskId"):
        raise invalid("auditCheckToReasonCodeFilter applies to the findings of an auditTaskId.")
    if target.get("auditTaskId"):
        if ctx.tx.get(AUDIT_TASK, target["auditTaskId"]) is None:
            raise invalid(f"Audit task {target['auditTaskId']} does not exist.")
        docs = [d for _, d in ctx.tx.find(FINDING, "task", target["auditTaskId"])]
        codes = target.get("auditCheckToReasonCodeFilter")
        if codes:
            docs = [d for d in docs if d["reasonForNonComplianceCode"] in codes.get(d["checkName"], ())]
        return docs
    docs = []
    for finding_id in target["findingIds"]:
        doc = ctx.tx.get(FINDING, finding_id)
        if doc is None:
            raise invalid(f"Audit finding {finding_id} does not exist.")
        docs.append(doc)
    return docs


def _actions(ctx, mapping: dict) -> dict[str, dict]:
    actions = {}
    for check_name, names in mapping.items():
        check = catalog.check(check_name)
        for name in names:
            doc = actions.get(name) or ACTION.find(ctx, name)
            if doc is None:
                raise invalid(f"Mitigation action {name} does not exist.")
            if doc["actionType"] not in check.actions:
                raise invalid(f"Mitigation action {name} of type {doc['actionType']} cannot be applied to findings "
                              f"of {check_name}.")
            actions[name] = doc
    return actions


def _save_task(ctx, task: dict) -> None:
    ctx.tx.put(TASK, task["taskId"], task, {"status": task["taskStatus"],
                                            "auditTask": task["target"].get("auditTaskId"),
                                            "finding": task["findingIds"]})


@operation("iot")
def StartAuditMitigationActionsTask(ctx, req):
    task_id = req["taskId"]
    if ctx.tx.get(TASK, task_id) is not None:
        raise ServiceError("TaskAlreadyExistsException", f"Audit mitigation actions task {task_id} already exists.")
    mapping = req["auditCheckToActionsMapping"]
    actions = _actions(ctx, mapping)
    findings = [f for f in _findings(ctx, req["target"]) if f["checkName"] in mapping]
    task = {"taskId": task_id, "taskStatus": "IN_PROGRESS", "startTime": ctx.now(), "target": req["target"],
            "auditCheckToActionsMapping": mapping, "findingIds": sorted({f["findingId"] for f in findings}),
            "actionsDefinition": [{"name": a["actionName"], "id": a["actionId"], "roleArn": a["roleArn"],
                                   "actionParams": a["actionParams"]} for a in actions.values()],
            "actions": actions}
    _save_task(ctx, task)
    for finding in findings:
        for name in mapping[finding["checkName"]]:
            execution = {"taskId": task_id, "findingId": finding["findingId"], "actionName": name,
                         "actionId": actions[name]["actionId"], "status": "PENDING", "checkName": finding["checkName"]}
            ctx.tx.put(EXECUTION, f"{task_id}|{finding['findingId']}|{name}", execution,
                       {"task": task_id, "finding": finding["findingId"]})
    effects.start_after_commit(ctx, run, task_id, "audit mitigation actions task")
    return {"taskId": task_id}


def run(runtime, account: str, region: str, task_id: str) -> None:
    with read_only(runtime, account, region, "iot", "AuditMitigationTask") as ctx:
        names = [n for n, d in ctx.tx.find(EXECUTION, "task", task_id) if d["status"] == "PENDING"]
    for name in names:
        with read_only(runtime, account, region, "iot", "AuditMitigationTask") as ctx:
            task = ctx.tx.get(TASK, task_id)
            execution = ctx.tx.get(EXECUTION, name)
            finding = ctx.tx.get(FINDING, execution["findingId"]) if execution else None
        if task is None or task["taskStatus"] != "IN_PROGRESS":
            return
        start = runtime.clock.now()
        if finding is None:
            status, code, message = "FAILED", "ResourceNotFoundException", "The finding no longer exists."
        else:
            status, code, message = effects.apply(runtime, account, region, task["actions"][execution["actionName"]],
                                                  public(finding))
        with unit_of_work(runtime, account, region, "iot", "AuditMitigationTask") as ctx:
            execution = ctx.tx.get(EXECUTION, name)
            execution.update(status=status, startTime=start, endTime=ctx.now())
            if code:
                execution["errorCode"] = code
            if message:
                execution["message"] = message
            ctx.tx.put(EXECUTION, name, execution, {"task": task_id, "finding": execution["findingId"]})
    with unit_of_work(runtime, account, region, "iot", "AuditMitigationTask") as ctx:
        task = ctx.tx.get(TASK, task_id)
        if task is not None and task["taskStatus"] == "IN_PROGRESS":
            task.update(taskStatus="COMPLETED", endTime=ctx.now())
            _save_task(ctx, task)


def _get(ctx, task_id: str) -> dict:
    task = ctx.tx.get(TASK, task_id)
    if task is None:
        raise not_found(f"Audit mitigation actions task {task_id} does not exist.")
    return task


def _statistics(ctx, task: dict) -> dict:
    stats: dict[str, dict] = {}
    for _, e in ctx.tx.find(EXECUTION, "task", task["taskId"]):
        s = stats.setdefault(e["checkName"], {"totalFindingsCount": 0, "failedFindingsCount": 0,
                                              "succeededFindingsCount": 0, "skippedFindingsCount": 0,
                                              "canceledFindingsCount": 0})
        s["totalFindingsCount"] += 1
        key = {"FAILED": "failedFindingsCount", "COMPLETED": "succeededFindingsCount",
               "SKIPPED": "skippedFindingsCount", "CANCELED": "canceledFindingsCount"}.get(e["status"])
        if key:
            s[key] += 1
    return stats


@operation("iot")
def DescribeAuditMitigationActionsTask(ctx, req):
    task = _get(ctx, req["taskId"])
    out = {k: task[k] for k in ("taskStatus", "startTime", "endTime", "target", "auditCheckToActionsMapping",
                                "actionsDefinition") if task.get(k) is not None}
    out["taskStatistics"] = _statistics(ctx, task)
    return out


@operation("iot")
def CancelAuditMitigationActionsTask(ctx, req):
    task = _get(ctx, req["taskId"])
    if task["taskStatus"] != "IN_PROGRESS":
        raise invalid(f"Audit mitigation actions task {req['taskId']} is {task['taskStatus']}; "
                      "only a task in progress can be canceled.")
    task.update(taskStatus="CANCELED", endTime=ctx.now())
    _save_task(ctx, task)
    for name, e in ctx.tx.find(EXECUTION, "task", task["taskId"]):
        if e["status"] == "PENDING":
            e["status"] = "CANCELED"
            ctx.tx.put(EXECUTION, name, e, {"task": e["taskId"], "finding": e["findingId"]})
    return {}


@operation("iot")
def ListAuditMitigationActionsTasks(ctx, req):
    start, end = req["startTime"], req["endTime"]
    if req.get("auditTaskId"):
        rows = ctx.tx.find(TASK, "auditTask", req["auditTaskId"])
    elif req.get("findingId"):
        rows = ctx.tx.find(TASK, "finding", req["findingId"])
    else:
        rows = ctx.tx.scan(TASK)
    tasks = sorted((d for _, d in rows if start <= d["startTime"] <= end
                    and (not req.get("taskStatus") or d["taskStatus"] == req["taskStatus"])),
                   key=lambda d: (d["startTime"], d["taskId"]))  # oldest first: the one list order (issue 11 item 15)
    found, extra = paginate(ctx, req, tasks, key=lambda d: (d["startTime"], d["taskId"]))
    return {"tasks": [{"taskId": d["taskId"], "startTime": d["startTime"], "taskStatus": d["taskStatus"]}
                      for d in found], **extra}


@operation("iot")
def ListAuditMitigationActionsExecutions(ctx, req):
    rows = ctx.tx.find(EXECUTION, "task", req["taskId"])
    docs = [d for _, d in rows if d["findingId"] == req["findingId"]
            and (not req.get("actionStatus") or d["status"] == req["actionStatus"])]
    docs.sort(key=lambda d: (d["findingId"], d["actionName"]))
    found, extra = paginate(ctx, req, docs, key=lambda d: (d["findingId"], d["actionName"]))
    fields = ("taskId", "findingId", "actionName", "actionId", "status", "startTime", "endTime", "errorCode", "message")
    return {"actionsExecutions": [{k: d[k] for k in fields if d.get(k) is not None} for d in found], **extra}
