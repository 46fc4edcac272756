"""Device Advisor's API through boto3's iotdeviceadvisor client: suite
definitions and their versions, validation, listing, tags, suite run records,
one run per device, stopping, the endpoint and the report download."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from localiot.testing import ACCOUNT, REGION, advance, error_message, error_of, make_client, new_certificate

ROLE = f"arn:aws:iam::{ACCOUNT}:role/device-advisor"
ACTIVE = ("PENDING", "RUNNING", "STOPPING")


@pytest.fixture
def da(localiot_server):
    client = make_client(localiot_server, "iotdeviceadvisor")
    yield client
    stop_all(client)


def stop_all(da, wait: float = 30.0) -> None:
    """Stop the runs still in progress and wait until the engine ended them (its tasks run on the
    server's loop and would otherwise go on waiting for a device after the test)."""
    for run in da.list_suite_runs()["suiteRunsList"]:
        if run["status"] in ("PENDING", "RUNNING"):
            try:
                da.stop_suite_run(suiteDefinitionId=run["suiteDefinitionId"], suiteRunId=run["suiteRunId"])
            except da.exceptions.ValidationException:
                pass  # it ended meanwhile
    deadline = time.monotonic() + wait
    while any(r["status"] in ACTIVE for r in da.list_suite_runs()["suiteRunsList"]):
        assert time.monotonic() < deadline, "suite runs did not stop"
        time.sleep(0.05)


def make_device(iot, name: str) -> dict:
    """A thing with a certificate attached: {thingArn, certificateArn}."""
    thing = iot.create_thing(thingName=name)
    cert = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName=name, principal=cert["certificateArn"])
    return {"thingArn": thing["thingArn"], "certificateArn": cert["certificateArn"]}


@pytest.fixture
def device(iot):
    return make_device(iot, "dut-1")


def root(*groups, configuration=None) -> str:
    """rootGroup JSON: groups as (name, [(case name, test id, configuration), ...])."""
    return json.dumps({"configuration": configuration or {}, "tests": [
        {"name": name, "configuration": {}, "tests": [
            {"name": case, "configuration": conf, "test": {"id": test_id, "version": "0.0.0"}}
            for case, test_id, conf in cases]}
        for name, cases in groups]})


BASIC = root(("connect", [("connect happy", "MQTT_Connect", {"EXECUTION_TIMEOUT": "60"}),
                          ("tls connect", "TLS_Connect", {})]),
             ("messaging", [("publish", "MQTT_Publish", {"TOPIC_FOR_PUBLISH_VALIDATION": "dut/out"})]))


def config(name="suite", root_group=BASIC, devices=None, **extra) -> dict:
    return {"suiteDefinitionName": name, "rootGroup": root_group, "devicePermissionRoleArn": ROLE,
            "devices": devices or [], **extra}


def create(da, **kwargs) -> dict:
    tags = kwargs.pop("tags", None)
    return da.create_suite_definition(suiteDefinitionConfiguration=config(**kwargs), **({"tags": tags} if tags else {}))


def start(da, suite_id, device, **run) -> dict:
    return da.start_suite_run(suiteDefinitionId=suite_id, suiteRunConfiguration={"primaryDevice": device, **run})


# suite definitions -------------------------------------------------------------------
def test_create_get_and_versions(da, device):
    created = create(da, devices=[device], protocol="MqttV5", isLongDurationTest=False)
    suite_id = created["suiteDefinitionId"]
    assert created["suiteDefinitionArn"] == f"arn:aws:iotdeviceadvisor:{REGION}:{ACCOUNT}:suitedefinition/{suite_id}"
    assert created["suiteDefinitionName"] == "suite"
    got = da.get_suite_definition(suiteDefinitionId=suite_id)
    assert got["suiteDefinitionVersion"] == got["latestVersion"] == "v1"
    conf = got["suiteDefinitionConfiguration"]
    assert conf["devices"] == [device] and conf["protocol"] == "MqttV5" and conf["devicePermissionRoleArn"] == ROLE
    assert conf["intendedForQualification"] is False and conf["isLongDurationTest"] is False
    stored = json.loads(conf["rootGroup"])
    # the caller's rootGroup, every group and test case given an id
    assert [g["name"] for g in stored["tests"]] == ["connect", "messaging"]
    assert stored["tests"][0]["tests"][0]["test"] == {"id": "MQTT_Connect", "version": "0.0.0"}
    assert stored["tests"][0]["tests"][0]["configuration"] == {"EXECUTION_TIMEOUT": "60"}
    ids = [g["id"] for g in stored["tests"]] + [t["id"] for g in stored["tests"] for t in g["tests"]]
    assert len(set(ids)) == 5

    updated = da.update_suite_definition(suiteDefinitionId=suite_id, suiteDefinitionConfiguration=config(
        name="renamed", root_group=conf["rootGroup"]))
    assert updated["suiteDefinitionVersion"] == "v2" and updated["suiteDefinitionName"] == "renamed"
    assert updated["createdAt"] == created["createdAt"]
    latest = da.get_suite_definition(suiteDefinitionId=suite_id)
    assert latest["suiteDefinitionVersion"] == latest["latestVersion"] == "v2"
    assert latest["suiteDefinitionConfiguration"]["suiteDefinitionName"] == "renamed"
    assert "protocol" not in latest["suiteDefinitionConfiguration"]
    # ids read back and sent again are kept
    assert json.loads(latest["suiteDefinitionConfiguration"]["rootGroup"]) == stored
    first = da.get_suite_definition(suiteDefinitionId=suite_id, suiteDefinitionVersion="v1")
    assert first["suiteDefinitionVersion"] == "v1" and first["latestVersion"] == "v2"
    assert first["suiteDefinitionConfiguration"]["suiteDefinitionName"] == "suite"
    assert error_of(da.get_suite_definition, suiteDefinitionId=suite_id, suiteDefinitionVersion="v3") == \
        ("ResourceNotFoundException", 404)


def test_create_with_the_same_client_token_answers_the_same_suite(da):
    first = da.create_suite_definition(suiteDefinitionConfiguration=config(), clientToken="retry-1")
    again = da.create_suite_definition(suiteDefinitionConfiguration=config(), clientToken="retry-1")
    first.pop("ResponseMetadata"), again.pop("ResponseMetadata")
    assert again == first and len(da.list_suite_definitions()[
        "suiteDefinitionInformationList"]) == 1
    other = da.create_suite_definition(suiteDefinitionConfiguration=config())  # boto3 sends a fresh token
    assert other["suiteDefinitionId"] != first["suiteDefinitionId"]


def test_missing_suite_definitions(da, device):
    missing = "00000000-0000-0000-0000-000000000000"
    for call, kwargs in [(da.get_suite_definition, {}), (da.delete_suite_definition, {}),
                         (da.update_suite_definition, {"suiteDefinitionConfiguration": config()}),
                         (da.start_suite_run, {"suiteRunConfiguration": {"primaryDevice": device}})]:
        assert error_of(call, suiteDefinitionId=missing, **kwargs) == ("ResourceNotFoundException", 404)


@pytest.mark.parametrize("kwargs, words", [
    ({"root_group": "{not json"}, "rootGroup is not valid JSON"),
    ({"root_group": json.dumps({"tests": []})}, "at least one test group"),
    ({"root_group": json.dumps({"tests": [{"name": "g", "tests": []}]})}, "at least one test case"),
    ({"root_group": root(("g", [("x", "MQTT_Teleport", {})]))}, "unknown test id 'MQTT_Teleport'"),
    ({"root_group": root(("g", [("x", "MQTT_Connect", {"EXECUTION_TIMEOUT": "soon"})]))}, "EXECUTION_TIMEOUT"),
    ({"root_group": ""}, "rootGroup can be empty only for a suite intended for qualification"),
    ({"devicePermissionRoleArn": "arn:aws:iam::123:user/bob"}, "Invalid device permission role ARN"),
    ({"devices": [{"thingArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/ghost"}]}, "does not exist"),
    ({"devices": [{"certificateArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{'ab' * 32}"}]}, "does not exist"),
    ({"devices": [{"thingArn": "arn:aws:s3:::bucket/key"}]}, "Invalid thing ARN"),
    ({"devices": [{"deviceRoleArn": "not-a-role-arn-at-all"}]}, "Invalid device role ARN"),
])
def test_refused_configurations_change_nothing(da, kwargs, words):
    given = config(**{k: v for k, v in kwargs.items() if k in ("root_group", "devices")})
    given.update({k: v for k, v in kwargs.items() if k not in ("root_group", "devices")})
    assert error_of(da.create_suite_definition, suiteDefinitionConfiguration=given) == ("ValidationException", 400)
    assert words in error_message(da.create_suite_definition, suiteDefinitionConfiguration=given)
    assert da.list_suite_definitions()["suiteDefinitionInformationList"] == []
    suite_id = create(da)["suiteDefinitionId"]
    assert error_of(da.update_suite_definition, suiteDefinitionId=suite_id,
                    suiteDefinitionConfiguration=given) == ("ValidationException", 400)
    assert da.get_suite_definition(suiteDefinitionId=suite_id)["latestVersion"] == "v1"


def test_model_constraints_are_validation_exceptions(localiot_server):
    # Sent past botocore's own checks (raw HTTP), the server answers the modelled error.
    body = json.dumps({"suiteDefinitionConfiguration": {**config(), "protocol": "MqttV4"}}).encode()
    request = urllib.request.Request(localiot_server.endpoint + "/suiteDefinitions", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization":
                                              f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/"
                                              "iotdeviceadvisor/aws4_request, SignedHeaders=host, Signature=00"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request)
    assert e.value.code == 400 and e.value.headers["x-amzn-ErrorType"].startswith("ValidationException")


def test_empty_root_group_of_a_qualification_suite_runs_the_qualification_cases(da, device):
    suite_id = create(da, root_group="", intendedForQualification=True)["suiteDefinitionId"]
    got = da.get_suite_definition(suiteDefinitionId=suite_id)["suiteDefinitionConfiguration"]
    assert got["rootGroup"] == "" and got["intendedForQualification"] is True
    run = start(da, suite_id, device)
    groups = da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])["testResult"]["groups"]
    names = [t["testCaseDefinitionName"] for g in groups for t in g["tests"]]
    assert names[0] == "TLS_Connect" and "MQTT_Connect" in names and "TLS_Incorrect_Subject_Name_Server_Cert" in names


def test_list_suite_definitions_pages_in_creation_order(da, device):
    created = [create(da, name=f"s{i}", devices=[device] if i == 0 else None, protocol="MqttV3_1_1")
               for i in range(5)]
    seen, token, pages = [], None, 0
    while True:
        page = da.list_suite_definitions(maxResults=2, **({"nextToken": token} if token else {}))
        pages += 1
        seen += page["suiteDefinitionInformationList"]
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 3
    assert [s["suiteDefinitionId"] for s in seen] == [c["suiteDefinitionId"] for c in created]
    assert seen[0]["defaultDevices"] == [device] and seen[1]["defaultDevices"] == []
    assert seen[0]["suiteDefinitionName"] == "s0" and seen[0]["protocol"] == "MqttV3_1_1"
    assert seen[0]["intendedForQualification"] is False and seen[0]["createdAt"] == created[0]["createdAt"]
    assert error_of(da.list_suite_definitions, nextToken="garbage!") == ("ValidationException", 400)


def test_delete_suite_definition(da):
    suite = create(da, tags={"team": "fw"})
    da.delete_suite_definition(suiteDefinitionId=suite["suiteDefinitionId"])
    assert error_of(da.get_suite_definition, suiteDefinitionId=suite["suiteDefinitionId"]) == \
        ("ResourceNotFoundException", 404)
    assert error_of(da.list_tags_for_resource, resourceArn=suite["suiteDefinitionArn"]) == \
        ("ResourceNotFoundException", 404)
    assert da.list_suite_definitions()["suiteDefinitionInformationList"] == []


# tags -----------------------------------------------------------------------------------
def test_tags_on_suite_definitions_and_runs(da, device):
    suite = create(da, tags={"team": "fw"})
    arn = suite["suiteDefinitionArn"]
    assert da.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "fw"}
    assert da.get_suite_definition(suiteDefinitionId=suite["suiteDefinitionId"])["tags"] == {"team": "fw"}
    da.tag_resource(resourceArn=arn, tags={"stage": "dev", "team": "firmware"})
    da.untag_resource(resourceArn=arn, tagKeys=["stage"])
    assert da.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "firmware"}
    assert error_of(da.tag_resource, resourceArn=arn, tags={"aws:x": "y"}) == ("ValidationException", 400)
    assert error_of(da.tag_resource, resourceArn=arn, tags={f"k{i}": "v" for i in range(50)}) == \
        ("ValidationException", 400)
    assert da.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "firmware"}

    run = da.start_suite_run(suiteDefinitionId=suite["suiteDefinitionId"], tags={"ci": "1"},
                             suiteRunConfiguration={"primaryDevice": device})
    run_arn = run["suiteRunArn"]
    assert run_arn == (f"arn:aws:iotdeviceadvisor:{REGION}:{ACCOUNT}:suiterun/"
                       f"{suite['suiteDefinitionId']}/{run['suiteRunId']}")
    da.tag_resource(resourceArn=run_arn, tags={"build": "42"})
    assert da.list_tags_for_resource(resourceArn=run_arn)["tags"] == {"ci": "1", "build": "42"}
    got = da.get_suite_run(suiteDefinitionId=suite["suiteDefinitionId"], suiteRunId=run["suiteRunId"])
    assert got["tags"] == {"ci": "1", "build": "42"}

    base = f"arn:aws:iotdeviceadvisor:{REGION}:{ACCOUNT}:"
    for missing in [base + "suitedefinition/00000000-0000-0000-0000-000000000000",
                    base + f"suiterun/00000000-0000-0000-0000-000000000000/{run['suiteRunId']}",
                    f"arn:aws:iotdeviceadvisor:eu-west-1:{ACCOUNT}:suitedefinition/{suite['suiteDefinitionId']}"]:
        assert error_of(da.list_tags_for_resource, resourceArn=missing) == ("ResourceNotFoundException", 404)
    for bad in [f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/dut-1", base + "suitething/abc"]:
        assert error_of(da.tag_resource, resourceArn=bad, tags={"a": "b"}) == ("ValidationException", 400)


# runs --------------------------------------------------------------------------------------
def test_start_suite_run_writes_the_record(da, device, localiot_server):
    suite = create(da)
    suite_id = suite["suiteDefinitionId"]
    run = start(da, suite_id, {"thingArn": device["thingArn"]}, parallelRun=False)
    assert run["endpoint"] == "localhost"
    got = da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])
    assert not [k for k in got if k.startswith("_")]
    assert got["suiteDefinitionVersion"] == "v1" and got["suiteRunArn"] == run["suiteRunArn"]
    assert got["suiteRunConfiguration"] == {"primaryDevice": {"thingArn": device["thingArn"]}, "parallelRun": False}
    assert got["startTime"] == run["createdAt"]
    assert got["status"] in ACTIVE, got.get("errorReason")
    stored = json.loads(da.get_suite_definition(suiteDefinitionId=suite_id)["suiteDefinitionConfiguration"]
                        ["rootGroup"])
    groups = got["testResult"]["groups"]
    assert [(g["groupId"], g["groupName"]) for g in groups] == [(g["id"], g["name"]) for g in stored["tests"]]
    assert [[(t["testCaseDefinitionId"], t["testCaseDefinitionName"]) for t in g["tests"]] for g in groups] == \
        [[(t["id"], t["name"]) for t in g["tests"]] for g in stored["tests"]]
    case_runs = [t["testCaseRunId"] for g in groups for t in g["tests"]]
    assert len(set(case_runs)) == 3
    assert error_of(da.get_suite_run, suiteDefinitionId=suite_id, suiteRunId="00000000-0000-0000-0000-000000000000") \
        == ("ResourceNotFoundException", 404)
    other = create(da, name="other")["suiteDefinitionId"]
    assert error_of(da.get_suite_run, suiteDefinitionId=other, suiteRunId=run["suiteRunId"]) == \
        ("ResourceNotFoundException", 404)


def test_selected_tests_and_refused_starts(da, device, iot):
    suite_id = create(da)["suiteDefinitionId"]
    stored = json.loads(da.get_suite_definition(suiteDefinitionId=suite_id)["suiteDefinitionConfiguration"]
                        ["rootGroup"])
    publish_id = stored["tests"][1]["tests"][0]["id"]
    wrong = "ffffffff-0000-0000-0000-000000000000"
    assert error_of(start, da, suite_id, device, selectedTestList=[publish_id, wrong]) == ("ValidationException", 400)
    assert error_message(start, da, suite_id, device, selectedTestList=[wrong]) == \
        f"Please provide valid test ids. The following test ids are invalid: {wrong}"
    assert error_of(start, da, suite_id, {"deviceRoleArn": ROLE}) == ("ValidationException", 400)
    assert error_of(start, da, suite_id, {"thingArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/ghost"}) == \
        ("ValidationException", 400)
    assert error_of(da.start_suite_run, suiteDefinitionId=suite_id, suiteDefinitionVersion="v7",
                    suiteRunConfiguration={"primaryDevice": device}) == ("ResourceNotFoundException", 404)
    assert da.list_suite_runs()["suiteRunsList"] == []
    run = start(da, suite_id, device, selectedTestList=[publish_id])
    groups = da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])["testResult"]["groups"]
    assert [(g["groupName"], [t["testCaseDefinitionName"] for t in g["tests"]]) for g in groups] == \
        [("messaging", ["publish"])]


@pytest.mark.parametrize("protocol", ["MqttV3_1_1_OverWebSocket", "MqttV5_OverWebSocket"])
def test_a_suite_over_websocket_starts_for_a_thing_only(da, device, iot, tmp_path, protocol):
    suite_id = create(da, protocol=protocol)["suiteDefinitionId"]
    lonely = new_certificate(iot, tmp_path, "lonely")  # attached to no thing: no client id to know it by
    assert "needs a thing" in error_message(start, da, suite_id, {"certificateArn": lonely.arn})
    assert da.list_suite_runs()["suiteRunsList"] == []
    run = start(da, suite_id, {"thingArn": device["thingArn"]})
    assert da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])["status"] in \
        ("PENDING", "RUNNING")
    da.stop_suite_run(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])


def test_shadow_cases_need_a_thing(da, iot):
    cert = iot.create_keys_and_certificate(setAsActive=True)
    suite_id = create(da, root_group=root(("shadow", [("reported", "Shadow_Publish_Reported_State", {})])))[
        "suiteDefinitionId"]
    assert "need a thing" in error_message(start, da, suite_id, {"certificateArn": cert["certificateArn"]})


def test_one_run_at_a_time_per_device(da, device, iot):
    suite_a, suite_b = create(da, name="a")["suiteDefinitionId"], create(da, name="b")["suiteDefinitionId"]
    first = start(da, suite_a, {"thingArn": device["thingArn"]})
    # the same device, named by its thing or by its certificate, in any suite
    for dut in [{"thingArn": device["thingArn"]}, {"certificateArn": device["certificateArn"]}, device]:
        for suite_id in (suite_a, suite_b):
            assert error_of(start, da, suite_id, dut) == ("ConflictException", 400)
    assert first["suiteRunId"] in error_message(start, da, suite_b, device)
    assert len(da.list_suite_runs()["suiteRunsList"]) == 1
    other = make_device(iot, "dut-2")
    second = start(da, suite_a, other)
    assert second["suiteRunId"] != first["suiteRunId"]
    # a run in progress keeps its suite definition
    assert error_of(da.delete_suite_definition, suiteDefinitionId=suite_a) == ("ValidationException", 400)


def wait_for_end(da, suite_id: str, run_id: str, wait: float = 30.0) -> dict:
    """The run once the engine ended it (its cases run on the server's loop)."""
    deadline = time.monotonic() + wait
    while True:
        got = da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run_id)
        if got["status"] not in ACTIVE:
            return got
        assert time.monotonic() < deadline, f"suite run still {got['status']}"
        time.sleep(0.05)


def test_stop_suite_run(da, device):
    suite_id = create(da)["suiteDefinitionId"]
    run = start(da, suite_id, device)
    da.stop_suite_run(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])
    got = da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])
    assert got["status"] in ("STOPPING", "STOPPED")
    if got["status"] == "STOPPING":
        try:  # stopping a run that is being stopped is fine ...
            da.stop_suite_run(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])
        except da.exceptions.ValidationException:  # ... unless the engine ended it meanwhile
            assert da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])["status"] == "STOPPED"
    got = wait_for_end(da, suite_id, run["suiteRunId"])
    assert got["status"] == "STOPPED" and got["endTime"] >= got["startTime"]
    assert {t["status"] for g in got["testResult"]["groups"] for t in g["tests"]} <= {"STOPPED", "PENDING"}
    assert error_of(da.stop_suite_run, suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"]) == \
        ("ValidationException", 400)
    # the device is free again, and the suite definition can go
    again = start(da, suite_id, device)
    da.stop_suite_run(suiteDefinitionId=suite_id, suiteRunId=again["suiteRunId"])
    wait_for_end(da, suite_id, again["suiteRunId"])
    da.delete_suite_definition(suiteDefinitionId=suite_id)
    assert len(da.list_suite_runs()["suiteRunsList"]) == 2  # the runs' records stay
    assert error_of(da.stop_suite_run, suiteDefinitionId=suite_id,
                    suiteRunId="00000000-0000-0000-0000-000000000000") == ("ResourceNotFoundException", 404)


def test_list_suite_runs_filters_and_pages(da, iot):
    suite_id = create(da)["suiteDefinitionId"]
    other_id = create(da, name="other")["suiteDefinitionId"]
    da.update_suite_definition(suiteDefinitionId=suite_id, suiteDefinitionConfiguration=config(name="v2"))
    runs = [da.start_suite_run(suiteDefinitionId=suite_id, suiteDefinitionVersion="v1" if i < 2 else "v2",
                               suiteRunConfiguration={"primaryDevice": make_device(iot, f"d{i}")})
            for i in range(4)]
    advance_run = start(da, other_id, make_device(iot, "d-other"))
    listed = da.list_suite_runs()["suiteRunsList"]
    assert [r["suiteRunId"] for r in listed][0] == advance_run["suiteRunId"]  # newest first
    assert len(listed) == 5
    mine = da.list_suite_runs(suiteDefinitionId=suite_id)["suiteRunsList"]
    assert {r["suiteRunId"] for r in mine} == {r["suiteRunId"] for r in runs}
    v1 = da.list_suite_runs(suiteDefinitionId=suite_id, suiteDefinitionVersion="v1")["suiteRunsList"]
    assert {r["suiteRunId"] for r in v1} == {r["suiteRunId"] for r in runs[:2]}
    assert {r["suiteDefinitionName"] for r in v1} == {"suite"}
    info = v1[0]
    assert info["suiteDefinitionId"] == suite_id and info["suiteDefinitionVersion"] == "v1"
    assert info["status"] in ACTIVE and info["passed"] == 0 and info["failed"] == 0 and "createdAt" in info
    assert error_of(da.list_suite_runs, suiteDefinitionVersion="v1") == ("ValidationException", 400)
    seen, token = [], None
    while True:
        page = da.list_suite_runs(suiteDefinitionId=suite_id, maxResults=3, **({"nextToken": token} if token else {}))
        seen += [r["suiteRunId"] for r in page["suiteRunsList"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == [r["suiteRunId"] for r in mine]


# endpoint ----------------------------------------------------------------------------------
def test_get_endpoint(da, device):
    assert da.get_endpoint()["endpoint"] == "localhost"
    assert da.get_endpoint(thingArn=device["thingArn"])["endpoint"] == "localhost"
    assert da.get_endpoint(certificateArn=device["certificateArn"],
                           authenticationMethod="X509ClientCertificate")["endpoint"] == "localhost"
    assert da.get_endpoint(thingArn=device["thingArn"], deviceRoleArn=ROLE,
                           authenticationMethod="SignatureVersion4")["endpoint"] == "localhost"
    assert error_of(da.get_endpoint, thingArn=f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/ghost") == \
        ("ResourceNotFoundException", 404)
    assert error_of(da.get_endpoint, thingArn=device["thingArn"], authenticationMethod="SignatureVersion4") == \
        ("ValidationException", 400)


# report ------------------------------------------------------------------------------------
def _download(url: str) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.load(error)


def test_report_download_lists_every_case_and_expires(da, device, localiot_server):
    suite_id = create(da)["suiteDefinitionId"]
    run = start(da, suite_id, device)
    url = da.get_suite_run_report(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])[
        "qualificationReportDownloadUrl"]
    assert url.startswith(localiot_server.endpoint + "/deviceadvisor/reports/")
    status, headers, report = _download(url)
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    got = da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])
    expected = [(g["groupName"], t["testCaseDefinitionName"], t["testCaseRunId"])
                for g in got["testResult"]["groups"] for t in g["tests"]]
    assert [(c["group"], c["name"], c["testCaseRunId"]) for c in report["testCases"]] == expected
    assert [c["testId"] for c in report["testCases"]] == ["MQTT_Connect", "TLS_Connect", "MQTT_Publish"]
    assert all(c["status"] for c in report["testCases"])
    assert report["suiteRunId"] == run["suiteRunId"] and report["suiteDefinitionName"] == "suite"
    assert report["summary"]["total"] == 3 and report["device"]["thingArn"] == device["thingArn"]
    assert error_of(da.get_suite_run_report, suiteDefinitionId=suite_id,
                    suiteRunId="00000000-0000-0000-0000-000000000000") == ("ResourceNotFoundException", 404)
    advance(localiot_server, 3601)
    status, _, body = _download(url)
    assert status == 403 and "expired" in body["message"]
    fresh = da.get_suite_run_report(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])[
        "qualificationReportDownloadUrl"]
    assert fresh != url and _download(fresh)[0] == 200
    assert _download(localiot_server.endpoint + "/deviceadvisor/reports/nope")[0] == 404


def test_report_url_names_the_configured_endpoint_host(localiot_servers):
    server = localiot_servers.get(endpoint_host="localhost")
    da, iot = make_client(server, "iotdeviceadvisor"), make_client(server)
    try:
        suite_id = create(da)["suiteDefinitionId"]
        run = start(da, suite_id, make_device(iot, "dut-host"))
        url = da.get_suite_run_report(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])[
            "qualificationReportDownloadUrl"]
        assert url.startswith(f"http://localhost:{server.listener('api')[1]}/deviceadvisor/reports/")
        assert _download(url)[0] == 200
    finally:
        stop_all(da)
