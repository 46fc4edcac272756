"""A suite definition's rootGroup: checked against the catalog of AWS's test
cases (localiot.advisor.catalog), given ids, and turned into the groups a run
executes.

The rootGroup is a JSON string, as AWS documents it:

    {"configuration": {...},                       # for every test of the suite
     "tests": [{"name": "group", "configuration": {...},
                "tests": [{"name": "case", "configuration": {...},
                           "test": {"id": "MQTT_Connect", "version": "0.0.0"}}]}]}

Every group and test case is given an "id" (12 hex digits; kept when the caller's rootGroup
already carries one, e.g. one read back from GetSuiteDefinition): GetSuiteRun
reports them as groupId / testCaseDefinitionId, and StartSuiteRun's
selectedTestList names test cases by them. The rootGroup GetSuiteDefinition
answers is the caller's with these ids added.

A qualification suite (intendedForQualification) may have an empty rootGroup:
it then runs AWS's qualification test cases with their default configuration
(QUALIFICATION below: the part of AWS's published list the catalog has).
"""

from __future__ import annotations

import json
import secrets

from localiot.protocol.errors import ServiceError

# AWS's "Device Advisor test cases to qualify for the AWS Device Qualification
# Program" (developer guide), in its order, as far as the catalog knows them.
QUALIFICATION = (
    ("TLS", ("TLS_Connect", "TLS_Incorrect_Subject_Name_Server_Cert", "TLS_Unsecure_Server_Cert",
             "TLS_Support_AWS_IoT_Cipher_Suites", "TLS_Receive_Maximum_Size_Fragments", "TLS_Expired_Server_Cert",
             "TLS_Large_Size_Server_Cert")),
    ("MQTT", ("MQTT_Connect", "MQTT_Subscribe", "MQTT_Publish")),
)


def _invalid(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def _catalog():
    from localiot.advisor import catalog  # the engine's catalog of test cases (it imports nothing of ours)

    return catalog


def qualification_root() -> dict:
    """The rootGroup of an empty qualification suite: AWS's qualification cases, default configuration."""
    return {"configuration": {}, "tests": [
        {"name": f"{category} qualification", "configuration": {},
         "tests": [{"name": test_id, "configuration": {}, "test": {"id": test_id, "version": "0.0.0"}}
                   for test_id in ids]}
        for category, ids in QUALIFICATION]}


def _id_of(node: dict, seen: set[str]) -> str:
    given = node.get("id")
    if isinstance(given, str) and 12 <= len(given) <= 36 and given not in seen:
        found = given
    else:
        found = secrets.token_hex(6)  # 12 characters: the shortest id the model allows (the rootGroup is
        # at most 2048 characters, and a rootGroup read back with its ids must fit when sent again)
    seen.add(found)
    node["id"] = found
    return found


def parse(root_group: str, qualification: bool) -> tuple[str, list[dict], dict]:
    """(the rootGroup to store, the groups a run executes, the suite-level configuration).

    Groups: [{groupId, groupName, tests: [{testCaseDefinitionId, testCaseDefinitionName,
    testId, version, configuration (merged suite < group < case), needsThing}]}].
    Raises ValidationException for what AWS refuses."""
    if root_group.strip() == "":
        if not qualification:
            raise _invalid("rootGroup can be empty only for a suite intended for qualification.")
        root = qualification_root()
        stored = ""
    else:
        try:
            root = json.loads(root_group)
        except ValueError as error:
            raise _invalid(f"rootGroup is not valid JSON: {error}") from None
        stored = None
    catalog = _catalog()
    try:
        planned = catalog.plan(root)
    except catalog.CatalogError as error:
        raise _invalid(str(error)) from None
    seen: set[str] = set()
    groups = []
    for group in root["tests"]:
        groups.append({"groupId": _id_of(group, seen), "groupName": group["name"], "tests": []})
        for test in group["tests"]:
            _id_of(test, seen)
    for case in planned:
        test_node = root["tests"][case.group_index]["tests"][len(groups[case.group_index]["tests"])]
        groups[case.group_index]["tests"].append({
            "testCaseDefinitionId": test_node["id"],
            "testCaseDefinitionName": case.name,
            "testId": case.case.id,
            "version": case.version,
            "configuration": case.configuration,
            "needsThing": bool(getattr(case.case, "needs_thing", False)),
        })
    if stored is None:
        stored = json.dumps(root, separators=(",", ":"))
    return stored, groups, root.get("configuration") or {}


def select(groups: list[dict], selected: list[str] | None) -> list[dict]:
    """The groups with only the selected test cases (all of them when nothing is selected);
    AWS's error names the ids that are not test cases of the suite."""
    if not selected:
        return groups
    known = {t["testCaseDefinitionId"] for g in groups for t in g["tests"]}
    unknown = [s for s in selected if s not in known]
    if unknown:
        raise _invalid(f"Please provide valid test ids. The following test ids are invalid: {', '.join(unknown)}")
    wanted = set(selected)
    chosen = []
    for group in groups:
        tests = [t for t in group["tests"] if t["testCaseDefinitionId"] in wanted]
        if tests:
            chosen.append({**group, "tests": tests})
    return chosen


def of_run(groups: list[dict], suite_configuration: dict) -> dict:
    """The rootGroup a run executes: the selected groups and cases only, in order, with their ids and
    each case's merged configuration (catalog.plan of it gives the run's cases one for one)."""
    return {"configuration": suite_configuration, "tests": [
        {"name": group["groupName"], "id": group["groupId"], "configuration": {}, "tests": [
            {"name": test["testCaseDefinitionName"], "id": test["testCaseDefinitionId"],
             "configuration": test["configuration"], "test": {"id": test["testId"], "version": test["version"]}}
            for test in group["tests"]]}
        for group in groups]}
