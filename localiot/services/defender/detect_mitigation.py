"""Detect mitigation actions tasks: apply the audit's mitigation actions
(localiot.services.defender.mitigation) to the things of violations, listed by
id or picked by security profile (and behavior) and time range, active only or
not, suppressed alerts included or not. One execution per (violation, action),
each applied through the ordinary operations in its own unit of work:
ADD_THINGS_TO_THING_GROUP (AddThingToThingGroup), UPDATE_DEVICE_CERTIFICATE
(UpdateCertificate of each certificate attached to the thing) and
PUBLISH_FINDING_TO_SNS (the violation, to the action's topic).

Kinds "detect-mitigation-task" (name = taskId, index "status") and
"detect-mitigation-execution" (name "<taskId>|<violationId>|<action>", index
"task", "violation", "thing").
"""

from __future__ import annotations

import json

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import operation
from localiot.services.common import paginate
from localiot.services.defender import effects
from localiot.services.defender.mitigation import ACTION
from localiot.services.defender.violations import ACTIVE_FIELDS, VIOLATION
from localiot.services.registry.things import PRINCIPALS
from localiot.services.unit_of_work import read_only, unit_of_work


TASK, EXECUTION = "detect-mitigation-task", "detect-mitigation-execution"
DETECT_ACTIONS = ("ADD_THINGS_TO_THING_GROUP", "UPDATE_DEVICE_CERTIFICATE", "PUBLISH_FINDING_TO_SNS")


def _violations(ctx, req: dict) -> list[dict]:
    target = req["target"]
    by_id, by_profile = target.get("violationIds"), target.get("securityProfileName")
    if bool(by_id) == bool(by_profile):
        raise invalid("The target must name either violationIds or securityProfileName.")
    if target.get("behaviorName") and not by_profile:
        raise invalid("behaviorName applies to the violations of a securityProfileName.")
    if by_id:
        docs = []
        for violation_id in by_id:
            doc = ctx.tx.get(VIOLATION, violation_id)
            if doc is None:
                raise invalid(f"Violation {violation_id} does not exist.")
            docs.append(doc)
    else:
        if ctx.tx.get("security-profile", by_profile) is None:
            raise ServiceError("ResourceNotFoundException", f"Security profile {by_profile} does not exist.")
        docs = [d for _, d in ctx.tx.find(VIOLATION, "profile", by_profile)
                if not target.get("behaviorName") or d["behavior"]["name"] == target["behaviorName"]]
    span = req.get("violationEventOccurrenceRange")
    if span:
        if span["startTime"] > span["endTime"]:
            raise invalid("violationEventOccurrenceRange.startTime must not be after its endTime.")
        docs = [d for d in docs if d["violationStartTime"] <= span["endTime"]
                and d["lastViolationTime"] >= span["startTime"]]
    if req.get("includeOnlyActiveViolations"):
        docs = [d for d in docs if d.get("active")]
    if not req.get("includeSuppressedAlerts"):
        docs = [d for d in docs if not d["suppressed"]]
    return docs


def _save(ctx, task: dict) -> None:
    ctx.tx.put(TASK, task["taskId"], task, {"status": task["taskStatus"]})


@operation("iot")
def StartDetectMitigationActionsTask(ctx, req):
    task_id = req["taskId"]
    existing = ctx.tx.get(TASK, task_id)
    if existing is not None:
        if existing.get("clientRequestToken") == req.get("clientRequestToken"):
            return {"taskId": task_id}  # the same request again
        raise ServiceError("TaskAlreadyExistsException", f"Detect mitigation actions task {task_id} already exists.")
    actions = {}
    for name in req["actions"]:
        doc = ACTION.find(ctx, name)
        if doc is None:
            raise invalid(f"Mitigation action {name} does not exist.")
        if doc["actionType"] not in DETECT_ACTIONS:
            raise invalid(f"Mitigation action {name} of type {doc['actionType']} cannot be applied to violations.")
        actions[name] = doc
    found = _violations(ctx, req)
    task = {"taskId": task_id, "taskStatus": "IN_PROGRESS", "taskStartTime": ctx.now(), "target": req["target"],
            "onlyActiveViolationsIncluded": bool(req.get("includeOnlyActiveViolations")),
            "suppressedAlertsIncluded": bool(req.get("includeSuppressedAlerts")),
            "actionsDefinition": [{"name": a["actionName"], "id": a["actionId"], "roleArn": a["roleArn"],
                                   "actionParams": a["actionParams"]} for a in actions.values()],
            "actions": actions, "clientRequestToken": req.get("clientRequestToken")}
    if req.get("violationEventOccurrenceRange"):
        task["violationEventOccurrenceRange"] = req["violationEventOccurrenceRange"]
    _save(ctx, task)
    for violation in found:
        for name in actions:
            execution = {"taskId": task_id, "violationId": violation["violationId"], "actionName": name,
                         "thingName": violation["thingName"], "status": "IN_PROGRESS",
                         "executionStartDate": ctx.now()}
            ctx.tx.put(EXECUTION, f"{task_id}|{violation['violationId']}|{name}", execution,
                       {"task": task_id, "violation": violation["violationId"], "thing": violation["thingName"]})
    effects.start_after_commit(ctx, run, task_id, "detect mitigation actions task")
    return {"taskId": task_id}


def _apply(runtime, account: str, region: str, action: dict, violation: dict) -> tuple[str, str | None, str | None]:
    from localiot.services.registry import thing_groups

    params = next(v for v in action["actionParams"].values() if v is not None)
    thing = violation["thingName"]
    kind = action["actionType"]
    try:
        if kind == "ADD_THINGS_TO_THING_GROUP":
            for group in params["thingGroupNames"]:
                with unit_of_work(runtime, account, region, "iot", "AddThingToThingGroup") as ctx:
                    thing_groups.AddThingToThingGroup(ctx, {
                        "thingGroupName": group, "thingName": thing,
                        "overrideDynamicGroups": bool(params.get("overrideDynamicGroups"))})
        elif kind == "UPDATE_DEVICE_CERTIFICATE":
            with read_only(runtime, account, region, "iot", "ListThingPrincipals") as ctx:
                certs = [arn.rsplit("/", 1)[1] for arn in ctx.tx.linked(PRINCIPALS, thing) if ":cert/" in arn]
            if not certs:
                return "SKIPPED", None, "No certificate is attached to the thing."
            for cert_id in certs:
                finding = {"nonCompliantResource": {"resourceIdentifier": {"deviceCertificateId": cert_id}}}
                status, code, message = effects.apply(runtime, account, region, action, finding)
                if status != "COMPLETED":
                    return status, code, message
        else:  # PUBLISH_FINDING_TO_SNS
            body = {k: violation[k] for k in ACTIVE_FIELDS if violation.get(k) is not None}
            runtime.aws_client("sns", params["topicArn"].split(":")[3]).publish(
                TopicArn=params["topicArn"], Message=json.dumps(body, default=str))
        return "SUCCESSFUL", None, None
    except ServiceError as error:
        return "FAILED", error.code, error.message
    except Exception as error:  # noqa: BLE001 - a downstream failure is the execution's failure
        return "FAILED", type(error).__name__, str(error)[:1000]


def run(runtime, account: str, region: str, task_id: str) -> None:
    with read_only(runtime, account, region, "iot", "DetectMitigationTask") as ctx:
        names = [n for n, d in ctx.tx.find(EXECUTION, "task", task_id) if d["status"] == "IN_PROGRESS"]
    failed = False
    for name in names:
        with read_only(runtime, account, region, "iot", "DetectMitigationTask") as ctx:
            task = ctx.tx.get(TASK, task_id)
            execution = ctx.tx.get(EXECUTION, name)
            violation = ctx.tx.get(VIOLATION, execution["violationId"]) if execution else None
        if task is None or task["taskStatus"] != "IN_PROGRESS":
            return
        if violation is None:
            status, code, message = "FAILED", "ResourceNotFoundException", "The violation no longer exists."
        else:
            status, code, message = _apply(runtime, account, region, task["actions"][execution["actionName"]],
                                           violation)
        failed = failed or status == "FAILED"
        with unit_of_work(runtime, account, region, "iot", "DetectMitigationTask") as ctx:
            execution = ctx.tx.get(EXECUTION, name)
            execution.update(status=status, executionEndDate=ctx.now())
            if code:
                execution["errorCode"] = code
            if message:
                execution["message"] = message
            ctx.tx.put(EXECUTION, name, execution, {"task": task_id, "violation": execution["violationId"],
                                                    "thing": execution["thingName"]})
    with unit_of_work(runtime, account, region, "iot", "DetectMitigationTask") as ctx:
        task = ctx.tx.get(TASK, task_id)
        if task is not None and task["taskStatus"] == "IN_PROGRESS":
            task.update(taskStatus="FAILED" if failed else "SUCCESSFUL", taskEndTime=ctx.now())
            _save(ctx, task)


def _summary(ctx, task: dict) -> dict:
    runs = [e["status"] for _, e in ctx.tx.find(EXECUTION, "task", task["taskId"])]
    out = {k: task[k] for k in ("taskId", "taskStatus", "taskStartTime", "taskEndTime", "target",
                                "violationEventOccurrenceRange", "onlyActiveViolationsIncluded",
                                "suppressedAlertsIncluded", "actionsDefinition") if task.get(k) is not None}
    out["taskStatistics"] = {"actionsExecuted": runs.count("SUCCESSFUL"), "actionsSkipped": runs.count("SKIPPED"),
                             "actionsFailed": runs.count("FAILED")}
    return out


def _get(ctx, task_id: str) -> dict:
    task = ctx.tx.get(TASK, task_id)
    if task is None:
        raise not_found(f"Detect mitigation actions task {task_id} does not exist.")
    return task


@operation("iot")
def DescribeDetectMitigationActionsTask(ctx, req):
    return {"taskSummary": _summary(ctx, _get(ctx, req["taskId"]))}


@operation("iot")
def CancelDetectMitigationActionsTask(ctx, req):
    task = _get(ctx, req["taskId"])
    if task["taskStatus"] != "IN_PROGRESS":
        raise invalid(f"Detect mitigation actions task {req['taskId']} is {task['taskStatus']}; "
                      "only a task in progress can be canceled.")
    task.update(taskStatus="CANCELLED", taskEndTime=ctx.now())
    _save(ctx, task)
    for name, e in ctx.tx.find(EXECUTION, "task", task["taskId"]):
        if e["status"] == "IN_PROGRESS":
            e.update(status="SKIPPED", message="The task was canceled.")
            ctx.tx.put(EXECUTION, name, e, {"task": e["taskId"], "violation": e["violationId"],
                                            "thing": e["thingName"]})
    return {}


@operation("iot")
def ListDetectMitigationActionsTasks(ctx, req):
    start, end = req["startTime"], req["endTime"]
    tasks = sorted((d for _, d in ctx.tx.scan(TASK) if start <= d["taskStartTime"] <= end),
                   key=lambda d: (d["taskStartTime"], d["taskId"]))  # oldest first: the one list order (issue 11 item 15)
    found, extra = paginate(ctx, req, tasks, key=lambda d: (d["taskStartTime"], d["taskId"]))
    return {"tasks": [_summary(ctx, d) for d in found], **extra}


@operation("iot")
def ListDetectMitigationActionsExecutions(ctx, req):
    if req.get("taskId"):
        rows = ctx.tx.find(EXECUTION, "task", req["taskId"])
    elif req.get("violationId"):
        rows = ctx.tx.find(EXECUTION, "violation", req["violationId"])
    elif req.get("thingName"):
        rows = ctx.tx.find(EXECUTION, "thing", req["thingName"])
    else:
        rows = ctx.tx.scan(EXECUTION)
    start, end = req.get("startTime"), req.get("endTime")
    docs = [(n, d) for n, d in rows
            if all(not req.get(k) or d[k] == req[k] for k in ("taskId", "violationId", "thingName"))
            and (start is None or d["executionStartDate"] >= start) and (end is None or d["executionStartDate"] <= end)]
    found, extra = paginate(ctx, req, sorted(docs, key=lambda row: row[0]), key=lambda row: row[0])
    fields = ("taskId", "violationId", "actionName", "thingName", "executionStartDate", "executionEndDate", "status",
              "errorCode", "message")
    return {"actionsExecutions": [{k: d[k] for k in fields if d.get(k) is not None} for _, d in found], **extra}
