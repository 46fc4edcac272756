"""Device Advisor's two resources and the records they keep.

"advisor-suite" (name: suiteDefinitionId) is a suite definition with every
version it had:

    {suiteDefinitionId, suiteDefinitionArn, createdAt, lastModifiedAt, latestVersion,
     versions: {"v1": {suiteDefinitionConfiguration, createdAt, groups: [...]}, ...}}

`groups` is the rootGroup as parsed by root_group.parse (ids, test case ids
from the catalog, merged configuration), so a run need not parse it again.

"advisor-run" (name: suiteRunId) is one suite run. Its public fields are
exactly GetSuiteRun's output (suiteDefinitionId, suiteDefinitionVersion,
suiteRunId, suiteRunArn, suiteRunConfiguration, testResult, startTime,
endTime, status, errorReason, tags); fields starting with "_" are private
and never returned:

    _createdAt   when StartSuiteRun accepted it
    _device      the device under test: {thingName, thingArn, certificateId,
                 certificateArn, deviceRoleArn, protocol} (resolved from the registry)
    _suite       {suiteDefinitionName, devicePermissionRoleArn, intendedForQualification,
                  isLongDurationTest, protocol, configuration (the suite-level one),
                  rootGroup (a dict: the selected groups and cases only, in testResult's
                  order, so catalog.plan(rootGroup) matches testResult's cases one for one)}
    _cases       testCaseRunId -> {testId, version, name, groupId, groupName,
                  testCaseDefinitionId, configuration (suite < group < case merged)}
    _order       testCaseRunIds in the order the suite runs them

The run is indexed by "suite" (its suiteDefinitionId), "suiteVersion"
("<id>/<version>") and "device" ("thing:<name>", "cert:<id>"); a run holds its
device while its status is ACTIVE (one run at a time per device). The engine
(localiot.advisor.runner) updates the document as cases run with
`tx.put(KIND, id, doc)` (no index argument: the entries stay).
"""

from __future__ import annotations

from localiot.protocol.errors import ServiceError, not_found
from localiot.services.common import Resource, paginate

SERVICE = "iotdeviceadvisor"

SUITE = Resource(
    "advisor-suite", "suitedefinition/{name}",
    not_found="Suite definition {name} not found.",
    id_field="suiteDefinitionId", arn_field="suiteDefinitionArn",
    arn_service=SERVICE,  # tagged by Device Advisor's own TagResource (tags.py)
)
RUN = Resource(
    "advisor-run", "suiterun/{name}",  # name: "<suiteDefinitionId>/<suiteRunId>" for the ARN
    not_found="Suite run {name} not found.",
    arn_service=SERVICE,
)
SUITE_KIND, RUN_KIND = SUITE.kind, RUN.kind

PENDING, RUNNING, STOPPING, STOPPED = "PENDING", "RUNNING", "STOPPING", "STOPPED"
PASS, FAIL, PASS_WITH_WARNINGS, ERROR, CANCELED = "PASS", "FAIL", "PASS_WITH_WARNINGS", "ERROR", "CANCELED"
ACTIVE = (PENDING, RUNNING, STOPPING)  # a run in one of these holds its device
PROTOCOLS = ("MqttV3_1_1", "MqttV5", "MqttV3_1_1_OverWebSocket", "MqttV5_OverWebSocket")
DEFAULT_PROTOCOL = "MqttV3_1_1"


def version_name(number: int) -> str:
    return f"v{number}"


def version_number(name: str) -> int:
    return int(name[1:])


def suite_arn(ctx, suite_id: str) -> str:
    return SUITE.arn(ctx, suite_id)


def run_arn(ctx, suite_id: str, run_id: str) -> str:
    return RUN.arn(ctx, f"{suite_id}/{run_id}")


def get_suite(ctx, suite_id: str) -> dict:
    return SUITE.get(ctx, suite_id)


def get_run(ctx, suite_id: str, run_id: str) -> dict:
    """The run of that suite definition, or ResourceNotFoundException."""
    doc = ctx.tx.get(RUN_KIND, run_id)
    if doc is None or doc["suiteDefinitionId"] != suite_id:
        raise not_found(RUN.not_found.format(name=run_id))
    return doc


def public(doc: dict) -> dict:
    """A stored document without its private ("_") fields."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def device_keys(device: dict) -> list[str]:
    """The "device" index entries of a run: its thing and its certificate."""
    keys = []
    if device.get("thingName"):
        keys.append(f"thing:{device['thingName']}")
    if device.get("certificateId"):
        keys.append(f"cert:{device['certificateId']}")
    return keys


def run_index(doc: dict) -> dict:
    return {
        "suite": doc["suiteDefinitionId"],
        "suiteVersion": f"{doc['suiteDefinitionId']}/{doc['suiteDefinitionVersion']}",
        "device": device_keys(doc["_device"]),
    }


def page(ctx, req: dict, items: list, key, *, descending: bool = False) -> tuple[list, dict]:
    """common.paginate with Device Advisor's error type for a bad nextToken (ValidationException)."""
    try:
        return paginate(ctx, req, items, key, descending=descending)
    except ServiceError as error:
        if error.code != "InvalidRequestException":
            raise
        raise ServiceError("ValidationException", error.message) from None
