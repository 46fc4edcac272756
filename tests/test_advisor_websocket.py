"""Device Advisor over WebSocket (suite protocols MqttV5_OverWebSocket and
MqttV3_1_1_OverWebSocket): the device under test is the kit's paho
application speaking MQTT over WebSocket to the test endpoint's port
(`GET /mqtt`, subprotocol mqtt) with a URL presigned by botocore's
SigV4QueryAuth, as the AWS SDKs sign wss:// URLs, at the host GetEndpoint
answers for SignatureVersion4. The server verifies signatures
(--strict-signatures): the access key "testing" is the default account's,
111122223333 another account's."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt
import pytest
from advisor_kit import ROLE, PahoDevice, SdkDevice, explain, log_of, results, root_group, run_suite
from test_mqtt_websocket import presigned_path

from localiot.testing import ACCOUNT, REGION

OTHER_ACCOUNT = "111122223333"
WEBSOCKET_PROTOCOLS = [("MqttV5_OverWebSocket", mqtt.MQTTv5), ("MqttV3_1_1_OverWebSocket", mqtt.MQTTv311)]


@pytest.fixture(scope="module")
def localiot_settings():
    return {"strict_signatures": True, "credentials": f"testing:testing,{OTHER_ACCOUNT}:other-secret"}


def sigv4_endpoint(da, dut) -> str:
    return da.get_endpoint(thingArn=dut["thingArn"], deviceRoleArn=ROLE,
                           authenticationMethod="SignatureVersion4")["endpoint"]


def websocket_device(host: str, version=mqtt.MQTTv5, access_key: str = "testing", secret: str = "testing",
                     region: str = REGION, **kw):
    """The kit's device application over WebSocket, its URL presigned for `host` and the test endpoint's port."""
    def make(dut):
        path = presigned_path(dut["port"], access_key, secret, host=host, region=region)
        return PahoDevice(host, dut["port"], dut["ca"], None, dut["thing"], version=version, websocket=path, **kw)
    return make


def one_group(*cases) -> str:
    return json.dumps({"configuration": {"EXECUTION_TIMEOUT": "20"}, "tests": [{"name": "g", "tests": [
        {"name": name, "configuration": conf, "test": {"id": test_id, "version": "0.0.0"}}
        for name, test_id, conf in cases]}]})


@pytest.mark.parametrize("protocol, version", WEBSOCKET_PROTOCOLS)
def test_a_paho_device_over_websocket_passes_mqtt_shadow_and_job_cases(da, dut, protocol, version):
    host = sigv4_endpoint(da, dut)
    assert host == "localhost"  # DescribeEndpoint's host, as for certificates; the port is the test endpoint's
    run = run_suite(da, dut, root_group(dut["thing"], backoff=False), websocket_device(host, version),
                    protocol=protocol)
    assert results(run) == {"connect": "PASS", "publish": "PASS", "subscribe": "PASS", "publishes reported": "PASS",
                            "follows desired": "PASS", "job execution": "PASS"}, explain(run)
    assert run["status"] == "PASS"
    level = 5 if version == mqtt.MQTTv5 else 4
    assert f"CONNECT from client id {dut['thing']!r} (MQTT level {level}" in log_of(run, "connect")
    assert "reported {'led': 'on'}" in log_of(run, "follows desired")
    assert "stored status is SUCCEEDED" in log_of(run, "job execution")


def test_an_sdk_v2_device_over_websocket_passes_mqtt_shadow_and_job_cases(da, dut):
    """The AWS IoT Device SDK v2's MQTT 5 client signing its own WebSocket handshake (awscrt's SigV4)."""
    host = sigv4_endpoint(da, dut)
    run = run_suite(da, dut, root_group(dut["thing"], backoff=False),
                    lambda d: SdkDevice(host, d["port"], d["ca"], None, d["thing"], websocket=("testing", "testing",
                                                                                             REGION)),
                    protocol="MqttV5_OverWebSocket")
    assert set(results(run).values()) == {"PASS"} and len(results(run)) == 6, explain(run)
    assert "(MQTT level 5" in log_of(run, "connect")


def test_scripted_cases_work_on_the_mqtt_bytes_of_the_websocket(da, dut):
    """The interposer holds back a PINGRESP, hangs up, drops CONNECTs and delivers over WebSocket as over TLS."""
    topic = f"dut/{dut['thing']}/in"
    device = websocket_device(sigv4_endpoint(da, dut), mqtt.MQTTv311, resume_session=True, keepalive=1,
                              delays=lambda n: 0.1)
    run = run_suite(da, dut, one_group(
        ("puback", "MQTT_Client_Puback_QoS1", {"TRIGGER_TOPIC": topic, "PAYLOAD_SIZE": "100"}),
        ("persistent", "MQTT_Persistent_Session_Happy_Case", {"TRIGGER_TOPIC": topic, "PAYLOAD": "stored"}),
        ("no pingresp", "MQTT_No_Ack_PingResp", {}),
    ), device, protocol="MqttV3_1_1_OverWebSocket")
    assert results(run) == {"puback": "PASS", "persistent": "PASS", "no pingresp": "PASS"}, explain(run)
    assert "without subscribing again" in log_of(run, "persistent")


def test_reconnection_delays_are_measured_over_websocket(da, dut):
    device = websocket_device(sigv4_endpoint(da, dut), delays=lambda n: 0.2 * 2 ** (n - 1))
    run = run_suite(da, dut, one_group(("exponential", "MQTT_Connect_Exponential_Backoff_Retries", {})), device,
                    protocol="MqttV5_OverWebSocket")
    assert results(run) == {"exponential": "PASS"}, explain(run)
    measured = [float(line.split(" after ")[1].split(" s")[0]) for line in log_of(run, "exponential").splitlines()
                if "CONNECT attempt" in line and " after " in line]
    # each interval: the device's delay, then TLS and the WebSocket upgrade before its CONNECT
    assert len(measured) == 5 and all(0.2 * 2 ** i <= m < 0.2 * 2 ** i + 1.0 for i, m in enumerate(measured)), measured


def test_tls_and_policy_cases_end_error_in_a_websocket_suite(da, dut):
    root = one_group(("tls connect", "TLS_Connect", {}), ("policies", "Security_Device_Policies", {}),
                     ("connect", "MQTT_Connect", {}))
    run = run_suite(da, dut, root, websocket_device(sigv4_endpoint(da, dut)), protocol="MqttV5_OverWebSocket")
    assert results(run) == {"tls connect": "ERROR", "policies": "ERROR", "connect": "PASS"}, explain(run)
    assert run["status"] == "ERROR"
    failures = {t["testCaseDefinitionName"]: t.get("failure", "") for t in run["testResult"]["groups"][0]["tests"]}
    assert "TLS_Connect is a TLS test case" in failures["tls connect"]
    assert "this suite's protocol is MqttV5_OverWebSocket" in failures["policies"]


@pytest.mark.parametrize("access_key, secret, region, why", [
    (OTHER_ACCOUNT, "other-secret", REGION, f"The presigned URL is signed with credentials of the account "
                                            f"{OTHER_ACCOUNT} (access key {OTHER_ACCOUNT}); the device under test "
                                            f"is in the account {ACCOUNT}."),
    ("testing", "testing", "eu-west-1", f"The presigned URL is signed for the region eu-west-1; the suite run is "
                                        f"in the region {REGION}."),
])
def test_credentials_of_another_account_or_region_are_refused_and_the_log_says_why(da, dut, access_key, secret,
                                                                                    region, why):
    root = one_group(("connect", "MQTT_Connect", {"EXECUTION_TIMEOUT": "4"}))
    device = websocket_device(sigv4_endpoint(da, dut), access_key=access_key, secret=secret, region=region)
    run = run_suite(da, dut, root, device, protocol="MqttV5_OverWebSocket")
    case = run["testResult"]["groups"][0]["tests"][0]
    assert (case["status"], run["status"]) == ("FAIL", "FAIL"), explain(run)
    assert case["failure"].endswith(f"; the last: {why}"), case
    assert f"The endpoint refused a connection: {why}" in log_of(run, "connect")


def test_a_badly_signed_url_is_refused_and_the_log_says_why(da, dut):
    root = one_group(("connect", "MQTT_Connect", {"EXECUTION_TIMEOUT": "4"}))
    device = websocket_device(sigv4_endpoint(da, dut), secret="not-the-secret")
    run = run_suite(da, dut, root, device, protocol="MqttV3_1_1_OverWebSocket")
    case = run["testResult"]["groups"][0]["tests"][0]
    assert (case["status"], run["status"]) == ("FAIL", "FAIL"), explain(run)
    assert "A WebSocket upgrade was refused with HTTP 403: The request signature we calculated does not match" \
        in case["failure"]
    assert "The endpoint refused a connection: A WebSocket upgrade was refused with HTTP 403" in log_of(run, "connect")


def test_a_certificate_device_is_not_the_device_of_a_websocket_run(da, dut):
    """Over TLS with its certificate the same device does not join a run over WebSocket (nor counts)."""
    from advisor_kit import paho_device

    root = one_group(("connect", "MQTT_Connect", {"EXECUTION_TIMEOUT": "3"}))
    run = run_suite(da, dut, root, paho_device, protocol="MqttV5_OverWebSocket")
    assert results(run) == {"connect": "FAIL"}, explain(run)


def test_other_http_requests_on_the_test_endpoint_are_not_found(dut):
    context = ssl.create_default_context(cafile=dut["ca"])
    for path in ("/", "/mqtt"):  # /mqtt without a WebSocket upgrade
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"https://localhost:{dut['port']}{path}", context=context, timeout=10)
        assert refused.value.code == 404
        assert "MQTT over WebSocket at GET /mqtt" in json.load(refused.value)["message"]
