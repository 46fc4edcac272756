"""Audit tasks: start (on demand or from a schedule), run the checks, record
findings, describe, list, cancel, and notify SNS.

A task is kind "audit-task" (name = taskId, index "status", "type"):
{taskId, taskType, taskStatus, taskStartTime, scheduledAuditName?, checks:
{name: AuditCheckDetails}}. Findings are kind "audit-finding" (name = findingId,
index "task", "check", "resource"). A task is created IN_PROGRESS by the call
that starts it; once that call commits, the run reads what the checks need
from the downstream endpoint (IAM, Cognito) off the loop, then evaluates every
check in one unit of work. A task canceled before that records nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from localiot.protocol.errors import invalid, not_found
from localiot.services import operation
from localiot.services.common import paginate
from localiot.services.defender import catalog, checks_certs as cc, checks_policies as cp, configuration
from localiot.services.defender.suppressions import active_suppressions, resource_key
from localiot.services.unit_of_work import in_unit, read_only, run_off_loop, unit_of_work

log = logging.getLogger("localiot.defender")

TASK, FINDING = "audit-task", "audit-finding"

CHECK_FUNCTIONS = {
    "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK": cp.authenticated_cognito,
    "CA_CERTIFICATE_EXPIRING_CHECK": cc.ca_expiring,
    "CA_CERTIFICATE_KEY_QUALITY_CHECK": cc.ca_key_quality,
    "CONFLICTING_CLIENT_IDS_CHECK": cc.conflicting_client_ids,
    "DEVICE_CERTIFICATE_AGE_CHECK": cc.device_age,
    "DEVICE_CERTIFICATE_EXPIRING_CHECK": cc.device_expiring,
    "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK": cc.device_key_quality,
    "DEVICE_CERTIFICATE_SHARED_CHECK": cc.shared_certificates,
    "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK": cc.intermediate_ca_revoked,
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": cp.overly_permissive,
    "IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK": cp.misconfiguration,
    "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK": cp.role_alias_unused_services,
    "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK": cp.role_alias_overly_permissive,
    "LOGGING_DISABLED_CHECK": cp.logging_disabled,
    "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK": cc.revoked_ca_still_active,
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK": cc.revoked_device_still_active,
    "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK": cp.unauthenticated_cognito,
}
ROLE_CHECKS = {"IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK", "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK"}
COGNITO_CHECKS = {"AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
                  "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK"}


class Audit:
    """What the checks read: the transaction, the time, the parsed certificates, downstream data."""

    def __init__(self, ctx, downstream: dict):
        self.tx, self.now, self.runtime = ctx.tx, ctx.now(), ctx.runtime
        self.downstream = downstream
        self._certs = None

    @property
    def certs(self) -> cc.Certificates:
        if self._certs is None:
            self._certs = cc.Certificates(self.tx)
        return self._certs


# starting -------------------------------------------------------------------------
def start_task(ctx, check_names: list[str], task_type: str, scheduled_name: str | None = None) -> str:
    task_id = uuid.uuid4().hex
    doc = {"taskId": task_id, "taskType": task_type, "taskStatus": "IN_PROGRESS", "taskStartTime": ctx.now(),
           "checks": {name: {"checkRunStatus": "IN_PROGRESS"} for name in sorted(set(check_names))}}
    if scheduled_name:
        doc["scheduledAuditName"] = scheduled_name
    ctx.tx.put(TASK, task_id, doc, {"status": "IN_PROGRESS", "type": task_type})
    runtime, account, region = ctx.runtime, ctx.account, ctx.region
    ctx.after_commit(lambda: schedule_run(runtime, account, region, task_id))
    return task_id


def schedule_run(runtime, account: str, region: str, task_id: str) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        run_task(runtime, account, region, task_id, gather(runtime, account, region, task_id))
        return
    loop.create_task(_run_async(runtime, account, region, task_id))


async def _run_async(runtime, account: str, region: str, task_id: str) -> None:
    try:
        needs = await in_unit(runtime, account, region, "iot", "AuditTask", lambda ctx: _needs(ctx.tx, task_id),
                              write=False)
        downstream = {"role_aliases": [], "unused": {}, "cognito": []}
        if needs:
            downstream = await asyncio.get_running_loop().run_in_executor(
                None, lambda: _downstream(runtime, region, *needs))
        await run_off_loop(runtime, run_task, runtime, account, region, task_id, downstream)
    except Exception:
        log.exception("audit task %s failed", task_id)


def _needs(tx, task_id: str):
    task = tx.get(TASK, task_id)
    if task is None or task["taskStatus"] != "IN_PROGRESS":
        return None
    names = set(task["checks"])
    aliases = [doc for _, doc in tx.scan(cp.ROLE_ALIAS)] if names & ROLE_CHECKS else []
    cognito = bool(names & COGNITO_CHECKS)
    unused = "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK" in names
    return (aliases, cognito, unused) if aliases or cognito else None


def _downstream(runtime, region: str, aliases, cognito: bool, unused: bool) -> dict:
    role_aliases = cp.gather_role_aliases(runtime, aliases, region)
    return {"role_aliases": role_aliases,
            "unused": cp.gather_unused(runtime, region, role_aliases) if unused else {},
            "cognito": cp.gather_cognito(runtime, region) if cognito else []}


def gather(runtime, account: str, region: str, task_id: str) -> dict:
    with read_only(runtime, account, region, "iot", "AuditTask") as ctx:
        needs = _needs(ctx.tx, task_id)
    return _downstream(runtime, region, *needs) if needs else {"role_aliases": [], "unused": {}, "cognito": []}


# running ---------------------------------------------------------------------------
def run_task(runtime, account: str, region: str, task_id: str, downstream: dict) -> None:
    with unit_of_work(runtime, account, region, "iot", "AuditTask") as ctx:
        task = ctx.tx.get(TASK, task_id)
        if task is None or task["taskStatus"] != "IN_PROGRESS":
            return  # canceled (or gone with a reset) before it ran
        audit = Audit(ctx, downstream)
        suppressed = active_suppressions(ctx)
        for name in task["checks"]:
            task["checks"][name] = _run_check(ctx, audit, task, name, suppressed)
        task["taskStatus"] = "COMPLETED"
        ctx.tx.put(TASK, task_id, task, {"status": "COMPLETED", "type": task["taskType"]})
        config = configuration.current(ctx.tx) or {}
        sns = (config.get("targets") or {}).get("SNS") or {}
        if sns.get("enabled") and sns.get("targetArn"):
            message = notification(account, task)
            ctx.after_commit(lambda: _notify(runtime, sns["targetArn"], message))


def _run_check(ctx, audit: Audit, task: dict, name: str, suppressed: set) -> dict:
    try:
        total, found = CHECK_FUNCTIONS[name](audit)
    except Exception as error:  # noqa: BLE001 - a check that cannot run fails alone
        return {"checkRunStatus": "FAILED", "errorCode": "AUDIT_CHECK_FAILED", "message": str(error)[:1000]}
    quiet = 0
    severity = catalog.CHECKS[name].severity
    for item in found:
        resource = item["nonCompliantResource"]
        key = resource_key(resource["resourceIdentifier"])
        is_suppressed = (name, key) in suppressed
        quiet += is_suppressed
        finding_id = str(uuid.uuid4())
        doc = {"findingId": finding_id, "taskId": task["taskId"], "checkName": name,
               "taskStartTime": task["taskStartTime"], "findingTime": ctx.now(), "severity": severity,
               **item, "isSuppressed": is_suppressed}
        ctx.tx.put(FINDING, finding_id, doc, {"task": task["taskId"], "check": name, "resource": key})
    non_compliant = len(found)
    compliant = non_compliant - quiet == 0
    return {"checkRunStatus": "COMPLETED_COMPLIANT" if compliant else "COMPLETED_NON_COMPLIANT",
            "checkCompliant": compliant, "totalResourcesCount": max(total, non_compliant),
            "nonCompliantResourcesCount": non_compliant, "suppressedNonCompliantResourcesCount": quiet}


def statistics(task: dict) -> dict:
    runs = [d["checkRunStatus"] for d in task["checks"].values()]
    return {"totalChecks": len(runs), "inProgressChecks": runs.count("IN_PROGRESS"),
            "waitingForDataCollectionChecks": runs.count("WAITING_FOR_DATA_COLLECTION"),
            "compliantChecks": runs.count("COMPLETED_COMPLIANT"),
            "nonCompliantChecks": runs.count("COMPLETED_NON_COMPLIANT"),
            "failedChecks": runs.count("FAILED"), "canceledChecks": runs.count("CANCELED")}


def notification(account: str, task: dict) -> dict:
    """AWS IoT Device Defender's audit notification (SNS message body)."""
    stats = statistics(task)
    body = {"accountId": account, "taskId": task["taskId"], "taskStatus": task["taskStatus"],
            "taskType": task["taskType"], "failedChecksCount": stats["failedChecks"],
            "canceledChecksCount": stats["canceledChecks"], "nonCompliantChecksCount": stats["nonCompliantChecks"],
            "compliantChecksCount": stats["compliantChecks"], "totalChecksCount": stats["totalChecks"],
            "taskStartTime": int(task["taskStartTime"] * 1000),
            "auditDetails": [{"checkName": name, "checkRunStatus": d["checkRunStatus"],
                              "nonCompliantResourcesCount": d.get("nonCompliantResourcesCount", 0),
                              "totalResourcesCount": d.get("totalResourcesCount", 0),
                              "suppressedNonCompliantResourceCount": d.get("suppressedNonCompliantResourcesCount", 0)}
                             for name, d in task["checks"].items()]}
    if task.get("scheduledAuditName"):
        body["scheduledAuditName"] = task["scheduledAuditName"]
    return body


def _notify(runtime, topic_arn: str, message: dict) -> None:
    region = topic_arn.split(":")[3]

    def send():
        try:
            runtime.aws_client("sns", region).publish(TopicArn=topic_arn, Message=json.dumps(message))
        except Exception:
            log.exception("audit notification to %s failed", topic_arn)

    try:
        asyncio.get_running_loop().run_in_executor(None, send)
    except RuntimeError:
        send()


# API -------------------------------------------------------------------------------
@operation("iot")
def StartOnDemandAuditTask(ctx, req):
    names = req["targetCheckNames"]
    if not names:
        raise invalid("targetCheckNames must name at least one check.")
    configuration.require_enabled(ctx.tx, names)
    return {"taskId": start_task(ctx, names, "ON_DEMAND_AUDIT_TASK")}


def get_task(ctx, task_id: str) -> dict:
    doc = ctx.tx.get(TASK, task_id)
    if doc is None:
        raise not_found(f"Audit task {task_id} does not exist.")
    return doc


@operation("iot")
def DescribeAuditTask(ctx, req):
    task = get_task(ctx, req["taskId"])
    out = {"taskStatus": task["taskStatus"], "taskType": task["taskType"], "taskStartTime": task["taskStartTime"],
           "taskStatistics": statistics(task), "auditDetails": task["checks"]}
    if task.get("scheduledAuditName"):
        out["scheduledAuditName"] = task["scheduledAuditName"]
    return out


@operation("iot")
def ListAuditTasks(ctx, req):
    start, end = req["startTime"], req["endTime"]
    if start > end:
        raise invalid("startTime must not be after endTime.")
    tasks = [doc for _, doc in ctx.tx.scan(TASK)
             if start <= doc["taskStartTime"] <= end
             and (not req.get("taskType") or doc["taskType"] == req["taskType"])
             and (not req.get("taskStatus") or doc["taskStatus"] == req["taskStatus"])]
    tasks.sort(key=lambda d: (d["taskStartTime"], d["taskId"]))  # oldest first: the one list order (issue 11 item 15)
    found, extra = paginate(ctx, req, tasks, key=lambda d: (d["taskStartTime"], d["taskId"]))
    return {"tasks": [{"taskId": d["taskId"], "taskStatus": d["taskStatus"], "taskType": d["taskType"]}
                      for d in found], **extra}


@operation("iot")
def CancelAuditTask(ctx, req):
    task = get_task(ctx, req["taskId"])
    if task["taskStatus"] != "IN_PROGRESS":
        raise invalid(f"Audit task {req['taskId']} is {task['taskStatus']}; only a task in progress can be canceled.")
    task["taskStatus"] = "CANCELED"
    for details in task["checks"].values():
        if details["checkRunStatus"] in ("IN_PROGRESS", "WAITING_FOR_DATA_COLLECTION"):
            details["checkRunStatus"] = "CANCELED"
    ctx.tx.put(TASK, task["taskId"], task, {"status": "CANCELED", "type": task["taskType"]})
    return {}
