"""Suite runs: StartSuiteRun, GetSuiteRun, StopSuiteRun, ListSuiteRuns.

StartSuiteRun writes the run's record (localiot.services.deviceadvisor.model:
status PENDING, every selected test case PENDING) and, once the call
committed, hands it to the engine: `localiot.advisor.runner.start_run(runtime,
account, region, suiteRunId)`. The engine moves the record along as the cases
run and ends it. StopSuiteRun marks a PENDING or RUNNING run STOPPING and
calls `runner.stop_run(...)`, which stops its cases and ends it STOPPED.

One run at a time per device: a run holds its device (its thing and its
certificate) while it is PENDING, RUNNING or STOPPING, and a second
StartSuiteRun for that device answers ConflictException.
"""

from __future__ import annotations

from localiot.protocol.errors import ServiceError
from localiot.services import operation
from localiot.services.common import new_id
from localiot.services.deviceadvisor import devices, root_group
from localiot.services.deviceadvisor.endpoint import test_endpoint
from localiot.services.deviceadvisor.tags import put_tags
from localiot.services.deviceadvisor.model import (ACTIVE, DEFAULT_PROTOCOL, ERROR, FAIL, PASS, PASS_WITH_WARNINGS,
                                                   PENDING, RUN, RUN_KIND, RUNNING, SERVICE, STOPPING, get_run,
                                                   device_keys, get_suite, page, public, run_arn,
                                                   run_index)
from localiot.services.deviceadvisor.suites import version_of


WEBSOCKET = "_OverWebSocket"  # the suffix of the suite protocols over WebSocket


def _invalid(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def _holder(ctx, device: dict) -> tuple[str, dict] | None:
    """The run in progress that holds this device (by its thing or its certificate), if any."""
    for key in device_keys(device):
        for run_id, run in ctx.tx.find(RUN_KIND, "device", key):
            if run["status"] in ACTIVE:
                return run_id, run
    return None


def _hand_over(ctx, function: str, run_id: str, *extra) -> None:
    """After the commit, tell the engine (localiot.advisor.runner, which imports nothing of this family)."""
    runtime, account, region = ctx.runtime, ctx.account, ctx.region

    def call():
        from localiot.advisor import runner

        getattr(runner, function)(runtime, account, region, run_id, *extra)

    ctx.after_commit(call)


@operation(SERVICE)
def StartSuiteRun(ctx, req):
    suite = get_suite(ctx, req["suiteDefinitionId"])
    version_name, version = version_of(suite, req.get("suiteDefinitionVersion"))
    config = req["suiteRunConfiguration"]
    device = devices.resolve(ctx, config["primaryDevice"])
    groups = root_group.select(version["groups"], config.get("selectedTestList"))
    if not device["thingName"]:
        needing = [t["testCaseDefinitionName"] for g in groups for t in g["tests"] if t["needsThing"]]
        if needing:
            raise _invalid(f"Test cases {', '.join(needing)} need a thing as the device under test; "
                           f"{device['certificateArn']} is attached to no thing.")
    suite_configuration = version["suiteDefinitionConfiguration"]
    device["protocol"] = suite_configuration.get("protocol") or DEFAULT_PROTOCOL
    if device["protocol"].endswith(WEBSOCKET) and not device["thingName"]:
        raise _invalid(f"A suite over WebSocket ({device['protocol']}) needs a thing as the device under test: "
                       f"the device signs its connection with SigV4, without a certificate, and connects with "
                       f"the thing's name as its client id; {device['certificateArn']} is attached to no thing.")
    held = _holder(ctx, device)
    if held is not None:
        arn = config["primaryDevice"].get("thingArn") or config["primaryDevice"].get("certificateArn")
        raise ServiceError("ConflictException",
                           f"The device {arn} is already under test in suite run {held[0]} ({held[1]['status']}).")
    run_id, now = new_id(), ctx.now()
    result_groups, cases, order = _test_cases(groups)
    doc = {
        "suiteDefinitionId": suite["suiteDefinitionId"],
        "suiteDefinitionVersion": version_name,
        "suiteRunId": run_id,
        "suiteRunArn": run_arn(ctx, suite["suiteDefinitionId"], run_id),
        "suiteRunConfiguration": _run_configuration(config),
        "testResult": {"groups": result_groups},
        "startTime": now,
        "status": PENDING,
        "tags": dict(req.get("tags") or {}),
        "_createdAt": now,
        "_device": device,
        "_suite": {
            "suiteDefinitionName": suite_configuration["suiteDefinitionName"],
            "devicePermissionRoleArn": suite_configuration["devicePermissionRoleArn"],
            "intendedForQualification": suite_configuration["intendedForQualification"],
            "isLongDurationTest": suite_configuration["isLongDurationTest"],
            "protocol": device["protocol"],
            "configuration": version["configuration"],
            "rootGroup": root_group.of_run(groups, version["configuration"]),
        },
        "_cases": cases,
        "_order": order,
    }
    RUN.put(ctx, run_id, doc, run_index(doc))
    if doc["tags"]:
        put_tags(ctx, doc["suiteRunArn"], doc["tags"])
    _hand_over(ctx, "start_run", run_id, doc.get("_device") or {})  # the endpoint needs no read
    return {"suiteRunId": run_id, "suiteRunArn": doc["suiteRunArn"], "createdAt": now,
            "endpoint": test_endpoint(ctx)}


def _test_cases(groups: list[dict]) -> tuple[list[dict], dict, list[str]]:
    """testResult's groups (every case PENDING), the private "_cases" and "_order" of a new run."""
    cases, order, result_groups = {}, [], []
    for group in groups:
        tests = []
        for test in group["tests"]:
            case_run_id = new_id()
            order.append(case_run_id)
            cases[case_run_id] = {
                "testId": test["testId"], "version": test["version"], "name": test["testCaseDefinitionName"],
                "groupId": group["groupId"], "groupName": group["groupName"],
                "testCaseDefinitionId": test["testCaseDefinitionId"], "configuration": test["configuration"],
            }
            tests.append({"testCaseRunId": case_run_id, "testCaseDefinitionId": test["testCaseDefinitionId"],
                          "testCaseDefinitionName": test["testCaseDefinitionName"], "status": PENDING})
        result_groups.append({"groupId": group["groupId"], "groupName": group["groupName"], "tests": tests})
    return result_groups, cases, order


def _run_configuration(config: dict) -> dict:
    out = {"primaryDevice": devices.as_given(config["primaryDevice"])}
    if config.get("selectedTestList"):
        out["selectedTestList"] = list(config["selectedTestList"])
    if "parallelRun" in config:
        out["parallelRun"] = config["parallelRun"]
    return out


@operation(SERVICE)
def GetSuiteRun(ctx, req):
    doc = get_run(ctx, req["suiteDefinitionId"], req["suiteRunId"])
    return {**public(doc), "tags": ctx.tx.get_tags(doc["suiteRunArn"])}


@operation(SERVICE)
def StopSuiteRun(ctx, req):
    doc = get_run(ctx, req["suiteDefinitionId"], req["suiteRunId"])
    if doc["status"] == STOPPING:
        return {}  # already being stopped
    if doc["status"] not in (PENDING, RUNNING):
        raise _invalid(f"Suite run {doc['suiteRunId']} is not running: it ended with status {doc['status']}.")
    doc["status"] = STOPPING
    RUN.put(ctx, doc["suiteRunId"], doc)
    _hand_over(ctx, "stop_run", doc["suiteRunId"])
    return {}


@operation(SERVICE)
def ListSuiteRuns(ctx, req):
    suite_id, version = req.get("suiteDefinitionId"), req.get("suiteDefinitionVersion")
    if version and not suite_id:
        raise _invalid("suiteDefinitionVersion must be passed along with suiteDefinitionId.")
    if suite_id and version:
        rows = ctx.tx.find(RUN_KIND, "suiteVersion", f"{suite_id}/{version}")
    elif suite_id:
        rows = ctx.tx.find(RUN_KIND, "suite", suite_id)
    else:
        rows = ctx.tx.scan(RUN_KIND)

    def key(doc):
        return doc["_createdAt"], doc["suiteRunId"]

    runs = sorted((doc for _, doc in rows), key=key, reverse=True)  # newest first
    found, extra = page(ctx, req, runs, key=key, descending=True)
    return {"suiteRunsList": [_information(doc) for doc in found], **extra}


def _information(doc: dict) -> dict:
    statuses = [t["status"] for g in doc["testResult"]["groups"] for t in g["tests"]]
    return {
        "suiteDefinitionId": doc["suiteDefinitionId"],
        "suiteDefinitionVersion": doc["suiteDefinitionVersion"],
        "suiteDefinitionName": doc["_suite"]["suiteDefinitionName"],
        "suiteRunId": doc["suiteRunId"],
        "createdAt": doc["_createdAt"],
        "startedAt": doc.get("startTime"),
        "endAt": doc.get("endTime"),
        "status": doc["status"],
        "passed": sum(s in (PASS, PASS_WITH_WARNINGS) for s in statuses),
        "failed": sum(s in (FAIL, ERROR) for s in statuses),
    }
