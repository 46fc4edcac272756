"""Device Defender detect end to end: paho devices over mutual TLS, the
broker's cloud-side metrics closed in windows on the injectable clock,
violations that start after the consecutive datapoints and clear when the
device calms down, alerts at moto's SNS, device-side reports (JSON and CBOR
with short names) answered on /accepted and /rejected, ListMetricValues."""

from __future__ import annotations

import json
import time
import urllib.request

import boto3
import pytest

from localiot import cbor
from localiot.testing import local_server
from test_mqtt_tls import address, ca_file, device_pool, new_certificate

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/defender"
ALL = f"arn:aws:iot:{REGION}:{ACCOUNT}:all/things"
EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}
KW = dict(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def server(moto_url):
    with local_server(aws_endpoint_url=moto_url, downstream_access_key="testing", downstream_secret_key="testing",
                      background_period=0) as srv:
        yield srv


@pytest.fixture
def iot(server):
    server.reset()
    return boto3.client("iot", endpoint_url=server.endpoint, **KW)


@pytest.fixture
def devices():
    with device_pool() as make:
        yield make


def advance(server, seconds: float) -> float:
    request = urllib.request.Request(server.endpoint + "/_localiot/clock", method="POST",
                                     data=json.dumps({"advance": seconds}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["now"]


def device(iot, server, devices, tmp_path, thing: str):
    iot.create_thing(thingName=thing)
    cert = new_certificate(iot, tmp_path, thing, policy=EVERYTHING)
    iot.attach_thing_principal(thingName=thing, principal=cert.arn)
    _, port = address(iot)
    return devices(port, thing, ca=ca_file(server, tmp_path), cert=cert).connect_ok()


def active(iot, **kw):
    return iot.list_active_violations(**kw)["activeViolations"]


def test_chatty_device_violates_after_two_windows_and_clears(iot, server, devices, tmp_path, moto_url):
    sns = boto3.client("sns", endpoint_url=moto_url, **KW)
    sqs = boto3.client("sqs", endpoint_url=moto_url, **KW)
    topic = sns.create_topic(Name="defender-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    behavior = {"name": "sent", "metric": "aws:num-messages-sent",
                "criteria": {"comparisonOperator": "less-than-equals", "value": {"count": 10}, "durationSeconds": 300,
                             "consecutiveDatapointsToAlarm": 2, "consecutiveDatapointsToClear": 1}}
    iot.create_security_profile(securityProfileName="calm", behaviors=[behavior],
                                alertTargets={"SNS": {"alertTargetArn": topic, "roleArn": ROLE}},
                                additionalMetricsToRetainV2=[{"metric": "aws:num-disconnects"}])
    iot.attach_security_profile(securityProfileName="calm", securityProfileTargetArn=ALL)
    advance(server, 1)  # the first window closes: nothing counted yet
    chatty = device(iot, server, devices, tmp_path, "chatty")
    quiet = device(iot, server, devices, tmp_path, "quiet")
    start = advance(server, 0)

    def burst(n):
        for i in range(n):
            chatty.publish("telemetry/chatty", b"x" * 10, qos=1)
        quiet.publish("telemetry/quiet", b"y", qos=1)

    burst(20)
    advance(server, 300)
    assert active(iot) == []  # one violating datapoint of the two it takes
    burst(20)
    advance(server, 300)
    [violation] = active(iot)
    assert (violation["thingName"], violation["securityProfileName"], violation["behavior"]["name"]) == (
        "chatty", "calm", "sent")
    assert violation["lastViolationValue"] == {"count": 20}
    assert violation["verificationState"] == "UNKNOWN"
    body = _receive(sqs, queue)
    assert (body["thingName"], body["violationEventType"], body["violationId"]) == (
        "chatty", "in-alarm", violation["violationId"])
    iot.put_verification_state_on_violation(violationId=violation["violationId"], verificationState="TRUE_POSITIVE",
                                            verificationStateDescription="confirmed")
    assert active(iot, verificationState="TRUE_POSITIVE")[0]["verificationStateDescription"] == "confirmed"
    assert active(iot, verificationState="FALSE_POSITIVE") == []
    assert active(iot, thingName="quiet") == []
    assert active(iot, behaviorCriteriaType="STATISTICAL") == []
    # it calms down: one normal window clears the violation
    burst(2)
    now = advance(server, 300)
    assert active(iot) == []
    events = iot.list_violation_events(startTime=start, endTime=now + 1)["violationEvents"]
    assert [(e["thingName"], e["violationEventType"]) for e in events] == [("chatty", "in-alarm"),
                                                                          ("chatty", "alarm-cleared")]
    assert events[1]["metricValue"] == {"count": 2}
    assert iot.list_violation_events(startTime=start, endTime=now + 1, thingName="quiet")["violationEvents"] == []
    assert _receive(sqs, queue)["violationEventType"] == "alarm-cleared"
    values = iot.list_metric_values(thingName="chatty", metricName="aws:num-messages-sent", startTime=start,
                                    endTime=now + 1)["metricDatumList"]
    assert [v["value"] for v in values] == [{"count": 20}, {"count": 20}, {"count": 2}]
    # the device goes away: one disconnect, retained for ListMetricValues
    chatty.close()
    assert wait_until(lambda: not server.app.runtime.broker.is_connected(ACCOUNT, REGION, "chatty"))
    now = advance(server, 300)
    disconnects = iot.list_metric_values(thingName="chatty", metricName="aws:num-disconnects", startTime=start,
                                         endTime=now + 1)["metricDatumList"]
    assert [v["value"]["count"] for v in disconnects] == [0, 0, 0, 1]


def wait_until(predicate, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _receive(sqs, queue) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1, MaxNumberOfMessages=1).get("Messages", [])
        if got:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=got[0]["ReceiptHandle"])
            return json.loads(got[0]["Body"])
    raise AssertionError("no SNS alert reached the queue")


REPORT = {"header": {"report_id": 1530304554, "version": "1.0"},
          "metrics": {"listening_tcp_ports": {"ports": [{"interface": "eth0", "port": 443}, {"port": 8883}],
                                              "total": 2},
                      "network_stats": {"bytes_in": 2935, "bytes_out": 2648, "packets_in": 100, "packets_out": 113},
                      "tcp_connections": {"established_connections": {
                          "connections": [{"local_interface": "eth0", "local_port": 443,
                                           "remote_addr": "192.168.0.1:8000"}], "total": 1}}},
          "custom_metrics": {"cpu": [{"number": 42}]}}
SHORT_REPORT = {"hed": {"rid": 7, "v": "1.0"},
                "met": {"tp": {"pts": [{"pt": 22}, {"pt": 443}], "t": 2},
                        "tc": {"ec": {"cs": [{"rad": "10.0.0.9:443"}], "t": 1}}},
                "cmet": {"cpu": [{"number": 97}]}}


def test_device_side_reports_accepted_rejected_and_violations(iot, server, devices, tmp_path):
    iot.create_custom_metric(metricName="cpu", metricType="number", clientRequestToken="c")
    iot.create_security_profile(securityProfileName="ports", behaviors=[
        {"name": "tcp", "metric": "aws:listening-tcp-ports",
         "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [443, 8883]}}},
        {"name": "cpu", "metric": "cpu", "criteria": {"comparisonOperator": "less-than", "value": {"number": 90}}},
        {"name": "peers", "metric": "aws:destination-ip-addresses",
         "criteria": {"comparisonOperator": "in-cidr-set", "value": {"cidrs": ["192.168.0.0/16"]}}}])
    iot.create_thing_group(thingGroupName="fleet")
    dev = device(iot, server, devices, tmp_path, "gateway")
    iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="gateway")
    iot.attach_security_profile(securityProfileName="ports",
                                securityProfileTargetArn=f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/fleet")
    base = "$aws/things/gateway/defender/metrics"
    for fmt in ("json", "cbor"):
        dev.subscribe(f"{base}/{fmt}/accepted")
        dev.subscribe(f"{base}/{fmt}/rejected")
    start = advance(server, 0)
    dev.publish(f"{base}/json", json.dumps(REPORT))
    accepted = json.loads(dev.expect(f"{base}/json/accepted").payload)
    assert (accepted["thingName"], accepted["reportId"], accepted["status"]) == ("gateway", 1530304554, "ACCEPTED")
    assert active(iot) == []
    # CBOR with short names: port 22 is outside the set, 10.0.0.9 outside the CIDR, cpu over 90
    dev.publish(f"{base}/cbor", cbor.dumps(SHORT_REPORT))
    accepted = cbor.loads(dev.expect(f"{base}/cbor/accepted").payload)
    assert (accepted["reportId"], accepted["status"]) == (7, "ACCEPTED")
    found = {v["behavior"]["name"]: v for v in active(iot, thingName="gateway")}
    assert sorted(found) == ["cpu", "peers", "tcp"]
    assert found["tcp"]["lastViolationValue"] == {"ports": [22, 443]}
    assert found["peers"]["lastViolationValue"] == {"cidrs": ["10.0.0.9"]}
    assert found["cpu"]["lastViolationValue"] == {"number": 97.0}
    # malformed and invalid reports are rejected with AWS's codes and change nothing
    rejections = [(b"{not json", "json", "Malformed", None),
                  (json.dumps({"metrics": {}}).encode(), "json", "InvalidPayload", None),
                  (json.dumps({"header": {"report_id": 9, "version": "1.0"},
                               "metrics": {"listening_tcp_ports": {"ports": [{"port": 70000}]}}}).encode(),
                   "json", "InvalidPayload", 9),
                  (cbor.dumps({"hed": {"rid": 10, "v": "1.0"}, "cmet": {"nope": [{"number": 1}]}}), "cbor",
                   "InvalidPayload", 10),
                  (b"\xff\x00", "cbor", "Malformed", None)]
    for payload, fmt, code, rid in rejections:
        dev.publish(f"{base}/{fmt}", payload)
        message = dev.expect(f"{base}/{fmt}/rejected").payload
        body = cbor.loads(message) if fmt == "cbor" else json.loads(message)
        assert (body["status"], body["statusDetails"]["ErrorCode"], body.get("reportId")) == ("REJECTED", code, rid)
    assert len(active(iot, thingName="gateway")) == 3
    # a normal report again clears them
    dev.publish(f"{base}/json", json.dumps(REPORT))
    dev.expect(f"{base}/json/accepted")
    assert active(iot) == []
    now = advance(server, 0)
    values = iot.list_metric_values(thingName="gateway", metricName="aws:listening-tcp-ports", startTime=start,
                                    endTime=now + 1)["metricDatumList"]
    assert [v["value"] for v in values] == [{"ports": [443, 8883]}, {"ports": [22, 443]}, {"ports": [443, 8883]}]


def wait_task(iot, task_id, timeout=10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        summary = iot.describe_detect_mitigation_actions_task(taskId=task_id)["taskSummary"]
        if summary["taskStatus"] != "IN_PROGRESS" or time.monotonic() > deadline:
            return summary
        time.sleep(0.02)


def test_detect_mitigation_moves_the_violating_thing_into_quarantine(iot, server, devices, tmp_path):
    iot.create_security_profile(securityProfileName="ports", behaviors=[
        {"name": "tcp", "metric": "aws:listening-tcp-ports",
         "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [443]}}},
        {"name": "quiet-tcp", "metric": "aws:num-listening-tcp-ports", "suppressAlerts": True,
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 2}}}])
    iot.attach_security_profile(securityProfileName="ports", securityProfileTargetArn=ALL)
    iot.create_thing_group(thingGroupName="quarantine")
    iot.create_mitigation_action(actionName="quarantine", roleArn=ROLE, actionParams={
        "addThingsToThingGroupParams": {"thingGroupNames": ["quarantine"]}})
    iot.create_mitigation_action(actionName="logging", roleArn=ROLE, actionParams={
        "enableIoTLoggingParams": {"roleArnForLogging": ROLE, "logLevel": "INFO"}})
    dev = device(iot, server, devices, tmp_path, "intruded")
    dev.subscribe("$aws/things/intruded/defender/metrics/json/accepted")
    start = advance(server, 0)
    dev.publish("$aws/things/intruded/defender/metrics/json", json.dumps(
        {"header": {"report_id": 1, "version": "1.0"},
         "metrics": {"listening_tcp_ports": {"ports": [{"port": 443}, {"port": 4444}]}}}))
    dev.expect("$aws/things/intruded/defender/metrics/json/accepted")
    assert {v["behavior"]["name"] for v in active(iot, listSuppressedAlerts=False)} == {"tcp"}
    assert {v["behavior"]["name"] for v in active(iot, listSuppressedAlerts=True)} == {"quiet-tcp"}
    with pytest.raises(iot.exceptions.InvalidRequestException):  # not an action for violations
        iot.start_detect_mitigation_actions_task(taskId="t0", target={"securityProfileName": "ports"},
                                                 actions=["logging"], clientRequestToken="a")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.start_detect_mitigation_actions_task(taskId="t0", target={"violationIds": ["nope"]},
                                                 actions=["quarantine"], clientRequestToken="a")
    now = advance(server, 0)
    iot.start_detect_mitigation_actions_task(
        taskId="t1", target={"securityProfileName": "ports"}, actions=["quarantine"], clientRequestToken="b",
        violationEventOccurrenceRange={"startTime": start, "endTime": now + 1}, includeOnlyActiveViolations=True)
    summary = wait_task(iot, "t1")
    assert summary["taskStatus"] == "SUCCESSFUL"
    assert summary["taskStatistics"] == {"actionsExecuted": 1, "actionsSkipped": 0, "actionsFailed": 0}
    assert summary["onlyActiveViolationsIncluded"] is True and summary["suppressedAlertsIncluded"] is False
    assert [t["groupName"] for t in iot.list_thing_groups_for_thing(thingName="intruded")["thingGroups"]] == [
        "quarantine"]
    [execution] = iot.list_detect_mitigation_actions_executions(taskId="t1")["actionsExecutions"]
    assert (execution["thingName"], execution["actionName"], execution["status"]) == (
        "intruded", "quarantine", "SUCCESSFUL")
    # suppressed alerts too, by violation id; the thing is already in the group
    ids = [v["violationId"] for v in active(iot, listSuppressedAlerts=True)]
    iot.start_detect_mitigation_actions_task(taskId="t2", target={"violationIds": ids}, actions=["quarantine"],
                                             clientRequestToken="c", includeSuppressedAlerts=True)
    assert wait_task(iot, "t2")["taskStatistics"]["actionsExecuted"] == 1
    with pytest.raises(iot.exceptions.TaskAlreadyExistsException):
        iot.start_detect_mitigation_actions_task(taskId="t2", target={"violationIds": ids}, actions=["quarantine"],
                                                 clientRequestToken="other")
    listed = iot.list_detect_mitigation_actions_tasks(startTime=start, endTime=advance(server, 0) + 1)["tasks"]
    assert [t["taskId"] for t in listed] == ["t1", "t2"]  # oldest first (issue 11 item 15)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.cancel_detect_mitigation_actions_task(taskId="t1")
    assert iot.list_detect_mitigation_actions_executions(thingName="intruded")["actionsExecutions"][0][
        "thingName"] == "intruded"
