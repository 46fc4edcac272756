"""A suite run end to end through the API: boto3 starts it, a real paho device
connects over TLS to the Device Advisor test endpoint with its certificate and
does what the cases ask, the run ends on its own, and the records, counts,
logs and report say what happened."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from test_deviceadvisor_api import ROLE, root, wait_for_end

from localiot.testing import ALLOW_ALL, V3, Device, ca_file, make_client, new_certificate


@pytest.fixture
def da(localiot_server):
    return make_client(localiot_server, "iotdeviceadvisor")


def _wait_running(da, suite_id: str, run_id: str, wait: float = 30.0) -> None:
    deadline = time.monotonic() + wait
    while da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run_id)["status"] == "PENDING":
        assert time.monotonic() < deadline, "the engine did not take the run"
        time.sleep(0.05)


def test_a_device_passes_a_suite_and_the_records_say_so(da, iot, localiot_server, tmp_path: Path):
    thing = iot.create_thing(thingName="e2e-dut")
    cert = new_certificate(iot, tmp_path, "e2e-dut", policy=ALLOW_ALL)
    iot.attach_thing_principal(thingName="e2e-dut", principal=cert.arn)
    suite = da.create_suite_definition(suiteDefinitionConfiguration={
        "suiteDefinitionName": "e2e", "devicePermissionRoleArn": ROLE, "protocol": "MqttV3_1_1",
        "devices": [{"thingArn": thing["thingArn"]}],
        "rootGroup": root(("connect", [("connect", "MQTT_Connect", {"EXECUTION_TIMEOUT": "30"})]),
                          ("messaging", [("publish", "MQTT_Publish", {"EXECUTION_TIMEOUT": "30",
                                                                       "TOPIC_FOR_PUBLISH_VALIDATION": "e2e/out"})]))})
    suite_id = suite["suiteDefinitionId"]
    run = da.start_suite_run(suiteDefinitionId=suite_id, suiteRunConfiguration={
        "primaryDevice": {"thingArn": thing["thingArn"]}})
    _wait_running(da, suite_id, run["suiteRunId"])

    _, port = localiot_server.listener("device-advisor")
    device = Device(port, "e2e-dut", host=run["endpoint"], ca=ca_file(localiot_server, tmp_path), cert=cert,
                    version=V3)
    try:
        device.connect_ok()
        device.publish("e2e/out", b'{"ok": true}')
        got = wait_for_end(da, suite_id, run["suiteRunId"], wait=30)
    finally:
        device.close()

    assert got["status"] == "PASS", got
    assert not [k for k in got if k.startswith("_")]  # the engine's updates keep the record private parts private
    assert got["endTime"] >= got["startTime"]
    cases = [t for g in got["testResult"]["groups"] for t in g["tests"]]
    assert [(t["testCaseDefinitionName"], t["status"]) for t in cases] == [("connect", "PASS"), ("publish", "PASS")]
    for case in cases:
        assert case["startTime"] <= case["endTime"] and "failure" not in case
        with urllib.request.urlopen(case["logUrl"]) as answer:  # the engine's log of the case
            assert answer.status == 200 and answer.read()
    listed = da.list_suite_runs(suiteDefinitionId=suite_id)["suiteRunsList"]
    assert [(r["status"], r["passed"], r["failed"]) for r in listed] == [("PASS", 2, 0)]
    assert listed[0]["endAt"] == got["endTime"]

    url = da.get_suite_run_report(suiteDefinitionId=suite_id, suiteRunId=run["suiteRunId"])[
        "qualificationReportDownloadUrl"]
    with urllib.request.urlopen(url) as answer:
        report = json.load(answer)
    assert report["status"] == "PASS" and report["summary"] == {"total": 2, "byStatus": {"PASS": 2}}
    assert [(c["name"], c["testId"], c["status"]) for c in report["testCases"]] == [
        ("connect", "MQTT_Connect", "PASS"), ("publish", "MQTT_Publish", "PASS")]
    assert all(c["startTime"] and c["endTime"] for c in report["testCases"])

    # the device is free again: a second run of it is accepted
    again = da.start_suite_run(suiteDefinitionId=suite_id, suiteRunConfiguration={
        "primaryDevice": {"certificateArn": cert.arn}})
    da.stop_suite_run(suiteDefinitionId=suite_id, suiteRunId=again["suiteRunId"])
    assert wait_for_end(da, suite_id, again["suiteRunId"])["status"] == "STOPPED"
