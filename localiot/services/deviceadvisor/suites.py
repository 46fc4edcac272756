"""Suite definitions: CreateSuiteDefinition, GetSuiteDefinition (any version),
UpdateSuiteDefinition (a new version each time), DeleteSuiteDefinition,
ListSuiteDefinitions.

Versions are named "v1", "v2" ...; every version is kept with its own
configuration and parsed groups, and a run names the version it ran.
A suite definition with a run in progress cannot be deleted.
"""

from __future__ import annotations

from localiot.protocol.errors import ServiceError
from localiot.services import operation
from localiot.services.common import new_id
from localiot.services.deviceadvisor import devices, root_group
from localiot.services.deviceadvisor.tags import put_tags
from localiot.services.deviceadvisor.model import (ACTIVE, RUN_KIND, SERVICE, SUITE, SUITE_KIND, get_suite, page,
                                                   suite_arn, version_name)


def _configuration(ctx, given: dict) -> tuple[dict, list[dict], dict]:
    """The configuration to store (rootGroup with ids), the parsed groups and the
    suite-level test configuration; ValidationException for what AWS refuses."""
    qualification = bool(given.get("intendedForQualification"))
    for device in given.get("devices") or []:
        devices.resolve(ctx, device, need_identity=False)
    devices.check_role(given["devicePermissionRoleArn"], "device permission role")
    stored_root, groups, suite_conf = root_group.parse(given["rootGroup"], qualification)
    _check_long_duration(bool(given.get("isLongDurationTest")), groups)
    configuration = {
        "suiteDefinitionName": given["suiteDefinitionName"],
        "devices": [devices.as_given(d) for d in given.get("devices") or []],
        "intendedForQualification": qualification,
        "isLongDurationTest": bool(given.get("isLongDurationTest")),
        "rootGroup": stored_root,
        "devicePermissionRoleArn": given["devicePermissionRoleArn"],
    }
    if given.get("protocol"):
        configuration["protocol"] = given["protocol"]
    return configuration, groups, suite_conf


LONG_DURATION = "MQTT_Long_Duration"


def _check_long_duration(long_duration: bool, groups: list[dict]) -> None:
    """AWS's long duration suites hold the MQTT long duration test case, and it runs only in them."""
    ids = {test["testId"] for group in groups for test in group["tests"]}
    if LONG_DURATION in ids and not long_duration:
        raise ServiceError("ValidationException", f"The test case {LONG_DURATION} runs only in a long duration "
                                                  "test suite: set isLongDurationTest to true.")
    if long_duration and ids != {LONG_DURATION}:
        raise ServiceError("ValidationException", f"A long duration test suite (isLongDurationTest) holds only the "
                                                  f"{LONG_DURATION} test case.")


def _version(configuration: dict, groups: list[dict], suite_conf: dict, now: float) -> dict:
    return {"suiteDefinitionConfiguration": configuration, "groups": groups, "configuration": suite_conf,
            "createdAt": now}


def _created(doc: dict) -> dict:
    first = doc["versions"]["v1"]["suiteDefinitionConfiguration"]
    return {"suiteDefinitionId": doc["suiteDefinitionId"], "suiteDefinitionArn": doc["suiteDefinitionArn"],
            "suiteDefinitionName": first["suiteDefinitionName"], "createdAt": doc["createdAt"]}


@operation(SERVICE)
def CreateSuiteDefinition(ctx, req):
    token = req.get("clientToken")
    if token:  # a retry of a create that succeeded answers the suite it created
        for _, earlier in ctx.tx.find(SUITE_KIND, "clientToken", token):
            return _created(earlier)
    configuration, groups, suite_conf = _configuration(ctx, req["suiteDefinitionConfiguration"])
    suite_id, now = new_id(), ctx.now()
    doc = {
        "suiteDefinitionId": suite_id,
        "suiteDefinitionArn": suite_arn(ctx, suite_id),
        "createdAt": now,
        "lastModifiedAt": now,
        "latestVersion": version_name(1),
        "versions": {version_name(1): _version(configuration, groups, suite_conf, now)},
    }
    SUITE.create(ctx, suite_id, doc, index={"clientToken": token})
    if req.get("tags"):
        put_tags(ctx, doc["suiteDefinitionArn"], req["tags"])
    return _created(doc)


def version_of(doc: dict, version: str | None) -> tuple[str, dict]:
    """(name, version document) of `version`, the latest when None; not found otherwise."""
    name = version or doc["latestVersion"]
    found = doc["versions"].get(name)
    if found is None:
        raise ServiceError("ResourceNotFoundException",
                           f"Suite definition version {name} of suite definition {doc['suiteDefinitionId']} not found.")
    return name, found


@operation(SERVICE)
def GetSuiteDefinition(ctx, req):
    doc = get_suite(ctx, req["suiteDefinitionId"])
    name, version = version_of(doc, req.get("suiteDefinitionVersion"))
    return {
        "suiteDefinitionId": doc["suiteDefinitionId"],
        "suiteDefinitionArn": doc["suiteDefinitionArn"],
        "suiteDefinitionVersion": name,
        "latestVersion": doc["latestVersion"],
        "suiteDefinitionConfiguration": version["suiteDefinitionConfiguration"],
        "createdAt": doc["createdAt"],
        "lastModifiedAt": doc["lastModifiedAt"],
        "tags": ctx.tx.get_tags(doc["suiteDefinitionArn"]),
    }


@operation(SERVICE)
def UpdateSuiteDefinition(ctx, req):
    doc = get_suite(ctx, req["suiteDefinitionId"])
    configuration, groups, suite_conf = _configuration(ctx, req["suiteDefinitionConfiguration"])
    now = ctx.now()
    name = version_name(max(int(v[1:]) for v in doc["versions"]) + 1)
    doc["versions"][name] = _version(configuration, groups, suite_conf, now)
    doc.update(latestVersion=name, lastModifiedAt=now)
    SUITE.put(ctx, doc["suiteDefinitionId"], doc)
    return {
        "suiteDefinitionId": doc["suiteDefinitionId"],
        "suiteDefinitionArn": doc["suiteDefinitionArn"],
        "suiteDefinitionName": configuration["suiteDefinitionName"],
        "suiteDefinitionVersion": name,
        "createdAt": doc["createdAt"],
        "lastUpdatedAt": now,
    }


@operation(SERVICE)
def DeleteSuiteDefinition(ctx, req):
    suite_id = req["suiteDefinitionId"]
    get_suite(ctx, suite_id)
    for run_id, run in ctx.tx.find(RUN_KIND, "suite", suite_id):
        if run["status"] in ACTIVE:
            raise ServiceError("ValidationException",
                               f"Suite definition {suite_id} has a suite run in progress ({run_id}); "
                               "stop it before deleting the suite definition.")
    SUITE.delete(ctx, suite_id)
    return {}


@operation(SERVICE)
def ListSuiteDefinitions(ctx, req):
    def key(doc):
        return doc["createdAt"], doc["suiteDefinitionId"]

    suites = sorted((doc for _, doc in ctx.tx.scan(SUITE_KIND)), key=key)
    found, extra = page(ctx, req, suites, key=key)
    return {"suiteDefinitionInformationList": [_information(d) for d in found], **extra}


def _information(doc: dict) -> dict:
    configuration = doc["versions"][doc["latestVersion"]]["suiteDefinitionConfiguration"]
    out = {
        "suiteDefinitionId": doc["suiteDefinitionId"],
        "suiteDefinitionName": configuration["suiteDefinitionName"],
        "defaultDevices": configuration["devices"],
        "intendedForQualification": configuration["intendedForQualification"],
        "isLongDurationTest": configuration["isLongDurationTest"],
        "createdAt": doc["createdAt"],
    }
    if configuration.get("protocol"):
        out["protocol"] = configuration["protocol"]
    return out
