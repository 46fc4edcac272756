"""AWS IoT log entries for real: paho devices over mutual TLS refused by their
policies leave JSON lines on the server log (logger `localiot.iotlogs`) even
with logging never configured; with v2 logging configured the entries follow
the level of the most specific target, and with a role and moto's server as
the downstream endpoint the same entries are read back from CloudWatch Logs
group AWSIotLogsV2."""

from __future__ import annotations

import json
import logging
import time

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from conftest import make_client
from localiot.testing import local_server
from test_mqtt_tls import NOT_AUTHORIZED, V3, V5, address, ca_file, device_pool, new_certificate

TOPIC = "arn:aws:iot:us-east-1:123456789012:topic"
ROLE = "arn:aws:iam::123456789012:role/iot-logging"
TOPIC_NAME_INVALID = 0x90


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record):
        self.lines.append((record.levelno, record.getMessage()))

    def entries(self, **match) -> list[dict]:
        found = [json.loads(text) for _, text in list(self.lines)]
        return [e for e in found if all(e.get(k) == v for k, v in match.items())]

    def wait_for(self, timeout: float = 5.0, **match) -> dict:
        """The first entry matching, waiting for the server thread to write it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.entries(**match)
            if found:
                return found[0]
            time.sleep(0.01)
        raise AssertionError(f"no entry {match} in {self.entries()}")


@pytest.fixture
def server_log():
    logger = logging.getLogger("localiot.iotlogs")
    handler, level = Captured(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def policy(*statements) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


CONNECT_ANY = allow("iot:Connect", "*")


@pytest.fixture
def connect(tmp_path):
    with device_pool() as make:
        def device(server, iot, cert, client_id, version=V5):
            made = make(address(iot)[1], client_id, ca=ca_file(server, tmp_path), cert=cert, version=version)
            return made, made.connect()

        yield device


# logging never configured: refusals only, at INFO, with the reason --------------------------------
@pytest.mark.parametrize("version", [V3, V5])
def test_unconfigured_connect_refused_by_policy_is_on_the_server_log(localiot_server, iot, tmp_path, connect,
                                                                     server_log, version):
    cert = new_certificate(iot, tmp_path, policy=policy(allow("iot:Connect", "arn:aws:iot:*:*:client/ok-*")))
    assert connect(localiot_server, iot, cert, "ok-1", version)[1] == 0
    assert connect(localiot_server, iot, cert, "bad-1", version)[1] == NOT_AUTHORIZED
    entry = server_log.wait_for(eventType="Connect", status="Failure")
    assert entry["clientId"] == "bad-1"
    assert entry["principalId"] == cert.id
    assert entry["reason"] == "AUTHORIZATION_FAILURE"
    assert entry["logLevel"] == "ERROR" and entry["accountId"] == "123456789012" and entry["protocol"] == "MQTT"
    assert entry["sourceIp"] == "127.0.0.1" and isinstance(entry["sourcePort"], int)
    assert set(entry) >= {"timestamp", "traceId", "details"}
    assert {level for level, _ in server_log.lines} == {logging.INFO}
    assert server_log.entries(status="Success") == []  # successes are not logged when unconfigured


def test_unconfigured_unknown_certificate_is_an_authentication_failure(localiot_server, iot, tmp_path, connect,
                                                                        server_log):
    cert = new_certificate(iot, tmp_path, active=False, policy=policy(CONNECT_ANY))
    assert connect(localiot_server, iot, cert, "inactive")[1] == NOT_AUTHORIZED
    entry = server_log.wait_for(eventType="Connect", clientId="inactive")
    assert entry["reason"] == "AUTHENTICATION_FAILURE"
    assert entry["principalId"] == cert.id
    assert "INACTIVE" in entry["details"] or "not active" in entry["details"].lower()


def test_unconfigured_publish_refusals_name_what_was_wrong(localiot_server, iot, tmp_path, connect, server_log):
    cert = new_certificate(iot, tmp_path, policy=policy(CONNECT_ANY, allow("iot:Publish", f"{TOPIC}/ok/*")))
    device, _ = connect(localiot_server, iot, cert, "publisher")
    assert device.publish("ok/1", b"x") == 0
    assert device.publish("no/1", b"x") == NOT_AUTHORIZED
    assert device.publish("ok/2", b"x", retain=True) == NOT_AUTHORIZED
    assert device.publish("ok/a/b/c/d/e/f/g/h", b"x") == TOPIC_NAME_INVALID
    denied = server_log.wait_for(eventType="Publish-In", topicName="no/1")
    assert denied["reason"] == "AUTHORIZATION_FAILURE" and "iot:Publish" in denied["details"]
    assert denied["clientId"] == "publisher" and denied["principalId"] == cert.id
    retained = server_log.wait_for(eventType="Publish-In", topicName="ok/2")
    assert retained["reason"] == "AUTHORIZATION_FAILURE" and "iot:RetainPublish" in retained["details"]
    deep = server_log.wait_for(eventType="Publish-In", topicName="ok/a/b/c/d/e/f/g/h")
    assert deep["reason"] == "CLIENT_ERROR" and deep["details"]
    assert server_log.entries(topicName="ok/1") == []
    device.publish("ok/big", b"x" * (128 * 1024 + 1), qos=0)
    assert device.wait_closed()
    big = server_log.wait_for(eventType="Publish-In", topicName="ok/big")
    assert big["reason"] == "CLIENT_ERROR" and "128 KB" in big["details"]


def test_unconfigured_v3_denied_publish_and_subscribe(localiot_server, iot, tmp_path, connect, server_log):
    cert = new_certificate(iot, tmp_path, policy=policy(
        CONNECT_ANY, allow("iot:Subscribe", "arn:aws:iot:us-east-1:123456789012:topicfilter/ok/#")))
    device, _ = connect(localiot_server, iot, cert, "old-client", V3)
    assert device.subscribe("no/#") == [0x80]
    sub = server_log.wait_for(eventType="Subscribe", topicName="no/#")
    assert sub["status"] == "Failure" and sub["reason"] == "AUTHORIZATION_FAILURE" and sub["clientId"] == "old-client"
    device.publish("anything", b"x", qos=0)  # denied: AWS drops a 3.1.1 client
    assert device.wait_closed()
    pub = server_log.wait_for(eventType="Publish-In", topicName="anything")
    assert pub["reason"] == "AUTHORIZATION_FAILURE" and pub["principalId"] == cert.id


# configured levels ------------------------------------------------------------------------------
def test_error_level_logs_refusals_but_not_successful_publishes(localiot_server, iot, tmp_path, connect,
                                                                 server_log):
    iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="ERROR")
    cert = new_certificate(iot, tmp_path, policy=policy(CONNECT_ANY, allow("iot:Publish", f"{TOPIC}/ok/*")))
    device, _ = connect(localiot_server, iot, cert, "quiet")
    assert device.publish("ok/1", b"x") == 0
    assert device.publish("no/1", b"x") == NOT_AUTHORIZED
    entry = server_log.wait_for(eventType="Publish-In", status="Failure")
    assert entry["logLevel"] == "ERROR" and entry["topicName"] == "no/1"
    assert server_log.entries(status="Success") == []
    assert server_log.lines[0][0] == logging.ERROR


def test_disabled_logs_nothing_and_info_logs_successes(localiot_server, iot, tmp_path, connect, server_log):
    iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="DISABLED")
    cert = new_certificate(iot, tmp_path, policy=policy(CONNECT_ANY, allow("iot:Publish", f"{TOPIC}/ok/*")))
    device, _ = connect(localiot_server, iot, cert, "muted")
    assert device.publish("ok/1", b"x") == 0
    assert device.publish("no/1", b"x") == NOT_AUTHORIZED
    assert connect(localiot_server, iot, new_certificate(iot, tmp_path, "none"), "nobody")[1] == NOT_AUTHORIZED
    assert server_log.lines == []
    # a level for this client id takes effect on the connected client
    iot.set_v2_logging_level(logTarget={"targetType": "CLIENT_ID", "targetName": "muted"}, logLevel="INFO")
    assert device.publish("ok/2", b"x") == 0
    entry = server_log.wait_for(eventType="Publish-In", topicName="ok/2")
    assert entry["status"] == "Success" and entry["logLevel"] == "INFO" and entry["clientId"] == "muted"
    device.close()
    gone = server_log.wait_for(eventType="Disconnect", clientId="muted")
    assert gone["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"


def test_shadow_and_jobs_requests_over_mqtt(localiot_server, iot, tmp_path, connect, server_log):
    iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="DEBUG")
    iot.create_thing(thingName="lamp")
    cert = new_certificate(iot, tmp_path, policy=policy(allow("iot:*", "*")))
    iot.attach_thing_principal(thingName="lamp", principal=cert.arn)
    device, _ = connect(localiot_server, iot, cert, "lamp")
    assert device.publish("$aws/things/lamp/shadow/update", json.dumps({"state": {"reported": {"on": 1}}})) == 0
    assert device.publish("$aws/things/lamp/shadow/update", b"not json") == 0
    ok = server_log.wait_for(eventType="UpdateThingShadow", status="Success")
    assert ok["deviceShadowName"] == "lamp" and ok["topicName"] == "$aws/things/lamp/shadow/update"
    bad = server_log.wait_for(eventType="UpdateThingShadow", status="Failure")
    assert bad["logLevel"] == "ERROR" and bad["reason"] == "400" and bad["details"]
    assert device.publish("$aws/things/lamp/jobs/get", json.dumps({"clientToken": "t-1"})) == 0
    jobs = server_log.wait_for(eventType="GetPendingJobExecution")
    assert jobs["logLevel"] == "DEBUG" and jobs["clientToken"] == "t-1" and jobs["clientId"] == "lamp"
    assert jobs["details"] == "The request status is SUCCESS."


# CloudWatch Logs through moto ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_url():
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    yield f"http://{host}:{port}"
    moto.stop()


@pytest.fixture(scope="module")
def shipping_server(moto_url):
    with local_server(aws_endpoint_url=moto_url, downstream_access_key="testing", downstream_secret_key="testing",
                      background_period=0) as server:
        yield server


@pytest.fixture
def logs(moto_url):
    return boto3.client("logs", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def cloudwatch_entries(server, logs) -> list[dict]:
    requests.post(f"{server.endpoint}/_localiot/clock", json={"advance": 0}, timeout=30).raise_for_status()
    try:
        events = logs.filter_log_events(logGroupName="AWSIotLogsV2")["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [json.loads(e["message"]) for e in events]


def test_thing_group_debug_entries_reach_cloudwatch(shipping_server, logs, tmp_path, connect, server_log):
    shipping_server.reset()
    iot = make_client(shipping_server)
    iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="DISABLED")
    iot.create_thing_group(thingGroupName="fleet")
    iot.create_thing(thingName="sensor-1")
    iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="sensor-1")
    iot.set_v2_logging_level(logTarget={"targetType": "THING_GROUP", "targetName": "fleet"}, logLevel="DEBUG")
    cert = new_certificate(iot, tmp_path, policy=policy(CONNECT_ANY, allow("iot:Publish", f"{TOPIC}/ok/*")))
    iot.attach_thing_principal(thingName="sensor-1", principal=cert.arn)
    device, _ = connect(shipping_server, iot, cert, "sensor-1")
    assert device.publish("ok/1", b"x") == 0
    assert device.publish("no/1", b"x") == NOT_AUTHORIZED
    refused = server_log.wait_for(eventType="Publish-In", status="Failure")
    assert refused["clientId"] == "sensor-1" and refused["principalId"] == cert.id
    shipped = cloudwatch_entries(shipping_server, logs)
    assert refused in shipped
    assert server_log.wait_for(eventType="Publish-In", topicName="ok/1") in shipped
    assert server_log.wait_for(eventType="Connect", clientId="sensor-1") in shipped
    streams = logs.describe_log_streams(logGroupName="AWSIotLogsV2")["logStreams"]
    assert len(streams) == 1
    # a client outside the group: DISABLED, nothing logged or shipped
    other = new_certificate(iot, tmp_path, "other", policy=policy(CONNECT_ANY))
    outsider, _ = connect(shipping_server, iot, other, "outsider")
    assert outsider.publish("no/2", b"x") == NOT_AUTHORIZED
    assert server_log.entries(clientId="outsider") == []
    assert all(e.get("clientId") != "outsider" for e in cloudwatch_entries(shipping_server, logs))


def test_rule_entries_reach_cloudwatch(shipping_server, logs, tmp_path, connect, server_log):
    shipping_server.reset()
    iot = make_client(shipping_server)
    iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="INFO")
    iot.create_topic_rule(ruleName="copy", topicRulePayload={
        "sql": "SELECT * FROM 'telemetry/#'", "ruleDisabled": False,
        "actions": [{"republish": {"topic": "copied/1", "roleArn": ROLE}},
                    {"lambda": {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:missing"}}]})
    cert = new_certificate(iot, tmp_path, policy=policy(allow("iot:*", "*")))
    device, _ = connect(shipping_server, iot, cert, "sensor-2")
    assert device.publish("telemetry/1", json.dumps({"t": 1})) == 0
    match = server_log.wait_for(eventType="RuleMatch", ruleName="copy")
    assert match["topicName"] == "telemetry/1" and match["status"] == "Success"
    done = server_log.wait_for(eventType="RuleExecution", status="Success")
    assert done["ruleAction"] == "RepublishAction" and done["traceId"] == match["traceId"]
    failed = server_log.wait_for(eventType="RuleExecution", status="Failure")
    assert failed["logLevel"] == "ERROR" and failed["ruleAction"] == "LambdaAction" and failed["details"]
    shipped = cloudwatch_entries(shipping_server, logs)
    assert match in shipped and failed in shipped


def test_fleet_provisioning_requests(localiot_server, iot, tmp_path, connect, server_log):
    iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="INFO")
    claim = new_certificate(iot, tmp_path, "claim", policy=policy(allow("iot:*", "*")))
    device, _ = connect(localiot_server, iot, claim, "factory-1")
    assert device.publish("$aws/certificates/create/json", b"{}") == 0
    made = server_log.wait_for(eventType="GetDeviceCredentials", status="Success")
    assert len(made["deviceCertificateId"]) == 64 and made["deviceCertificateId"] != claim.id
    assert device.publish("$aws/certificates/create/cbor", b"\xff\x00") == 0
    bad = server_log.wait_for(eventType="GetDeviceCredentials", status="Failure")
    assert bad["reason"] == "InvalidPayload" and bad["logLevel"] == "ERROR"
    assert device.publish("$aws/provisioning-templates/nope/provision/json", b'{"certificateOwnershipToken": "x"}') == 0
    refused = server_log.wait_for(eventType="ProvisionDevice")
    assert refused["status"] == "Failure" and refused["provisioningTemplateName"] == "nope"
    assert refused["deviceCertificateId"] == claim.id and refused["details"]
