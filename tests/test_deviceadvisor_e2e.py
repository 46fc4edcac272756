"""Device Advisor end to end (issue 18, "Done means"): a suite run started
through boto3's iotdeviceadvisor client, the device under test a real
device application connected to the test endpoint over TLS with its
certificate, the result read back with GetSuiteRun, each case's log at its
logUrl and the report downloaded.

- A device built on the AWS IoT Device SDK v2 (awsiotsdk's MQTT 5 client,
  its default reconnect settings: exponential backoff with full jitter)
  passes MQTT connect, publish, subscribe, reconnect backoff, shadow and job
  execution.
- The same application on paho, reconnecting at once without backoff,
  fails the backoff case and only that case.
- The TLS wrong-subject case fails for a client that does not verify the
  server certificate and passes for one that does.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from advisor_kit import (
    explain,
    log_of,
    paho_device,
    results,
    root_group,
    run_suite,
    sdk_device,
)


def test_paho_device_without_backoff_fails_only_the_backoff_case(da, dut):
    run = run_suite(da, dut, root_group(dut["thing"]), paho_device)
    assert results(run) == {"connect": "PASS", "publish": "PASS", "subscribe": "PASS", "reconnect backoff": "FAIL",
                            "publishes reported": "PASS", "follows desired": "PASS", "job execution": "PASS"}, explain(run)
    assert run["status"] == "FAIL"
    backoff = next(t for g in run["testResult"]["groups"] for t in g["tests"]
                   if t["testCaseDefinitionName"] == "reconnect backoff")
    # Either reason is "no backoff": on a loaded machine one of paho's immediate reconnections can take
    # longer than NO_BACKOFF (0.5 s), and the intervals then fail for not growing.
    assert ("without backoff" in backoff["failure"] or "do not grow: no backoff" in backoff["failure"]), backoff
    assert "Disconnect 5 of 5" in log_of(run, "reconnect backoff")


def test_sdk_v2_device_passes_the_suite(da, dut):
    run = run_suite(da, dut, root_group(dut["thing"]), sdk_device)
    assert set(results(run).values()) == {"PASS"}, explain(run)
    assert run["status"] == "PASS" and run["endTime"] >= run["startTime"]
    backoff = log_of(run, "reconnect backoff")
    assert "Backoff with jitter" in backoff and "Disconnect 5 of 5" in backoff
    assert "reported {'led': 'on'}" in log_of(run, "follows desired")
    assert "stored status is SUCCEEDED" in log_of(run, "job execution")
    with urllib.request.urlopen(run["report"]["qualificationReportDownloadUrl"]) as answer:
        report = json.load(answer)
    assert report["status"] == "PASS"
    assert {row["name"]: row["status"] for row in report["testCases"]} == results(run)


WRONG_SUBJECT = json.dumps({"tests": [{"name": "TLS", "tests": [
    {"name": "wrong subject", "configuration": {"EXECUTION_TIMEOUT": "15"},
     "test": {"id": "TLS_Incorrect_Subject_Name_Server_Cert", "version": "0.0.0"}}]}]})


@pytest.mark.parametrize("verify, outcome", [(False, "FAIL"), (True, "PASS")])
def test_wrong_subject_server_certificate(da, dut, verify, outcome):
    run = run_suite(da, dut, WRONG_SUBJECT, lambda d: paho_device(d, verify=verify))
    case = run["testResult"]["groups"][0]["tests"][0]
    assert (case["status"], run["status"]) == (outcome, outcome), case
    log = log_of(run, "wrong subject")
    if verify:
        assert "The device refused the handshake" in log
    else:
        assert "completed the TLS handshake with a trusted server certificate issued for" in case["failure"]
