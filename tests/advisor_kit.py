"""The Device Advisor test kit: the device application under test (paho and
the AWS IoT Device SDK v2), the `da` (iotdeviceadvisor client) and `dut`
(device under test: thing, certificate, least-privilege policy, CA file,
test endpoint port) fixtures, registered for every test module by
tests/conftest.py, and helpers to run a suite and read its results."""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.request

import paho.mqtt.client as mqtt
import pytest

from localiot.testing import ACCOUNT, ca_file, make_client, new_certificate

ROLE = f"arn:aws:iam::{ACCOUNT}:role/device-advisor"
DONE = ("PASS", "FAIL", "ERROR", "STOPPED", "PASS_WITH_WARNINGS")


def device_policy(thing: str) -> dict:
    """What the device application needs, and no more."""
    arn = f"arn:aws:iot:us-east-1:{ACCOUNT}"
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{thing}"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": [f"{arn}:topic/dut/{thing}/*", f"{arn}:topic/$aws/things/{thing}/*"]},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": [f"{arn}:topicfilter/dut/{thing}/*", f"{arn}:topicfilter/$aws/things/{thing}/*"]},
    ]}


# the device application ----------------------------------------------------------------------
class App:
    """What the device under test does, whatever its MQTT client: on every connection it
    subscribes to its command topic, its shadow's delta and its next job, publishes
    telemetry and reports its shadow state; it applies a delta and reports it; it runs a
    job it is notified of to SUCCEEDED."""

    def __init__(self, thing: str):
        self.thing = thing
        self.state = {"led": "off"}
        self.send = None  # fn(topic, payload bytes, qos)

    @property
    def subscriptions(self) -> list[str]:
        t = self.thing
        return [f"dut/{t}/in", f"$aws/things/{t}/shadow/update/delta", f"$aws/things/{t}/jobs/notify-next"]

    def on_connected(self) -> None:
        self.send(f"dut/{self.thing}/telemetry", json.dumps({"temperature": 21}).encode(), 0)
        self.report()

    def report(self) -> None:
        self.send(f"$aws/things/{self.thing}/shadow/update", json.dumps({"state": {"reported": self.state}}).encode(), 1)

    def on_message(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/shadow/update/delta"):
            self.state.update(json.loads(payload)["state"])
            self.report()
        elif topic.endswith("/jobs/notify-next"):
            execution = json.loads(payload).get("execution")
            if execution:
                base = f"$aws/things/{self.thing}/jobs/{execution['jobId']}/update"
                self.send(base, json.dumps({"status": "IN_PROGRESS"}).encode(), 1)
                self.send(base, json.dumps({"status": "SUCCEEDED", "statusDetails": {"done": "yes"}}).encode(), 1)


class PahoDevice:
    """The application on paho (MQTT 3.1.1 unless told), reconnecting immediately whenever it is
    disconnected, or after delays(attempt) seconds (attempt 1, 2 ... since its last accepted CONNECT). With resume_session it keeps a persistent session and
    subscribes only when the CONNACK says none was present. With `websocket` (the path and query of
    a SigV4-presigned wss:// URL) it speaks MQTT over WebSocket, without a client certificate."""

    def __init__(self, host, port, ca, cert, thing, verify=True, *, version=mqtt.MQTTv311, keepalive=30,
                 delays=None, resume_session=False, websocket: str | None = None):
        self.app = App(thing)
        self.stop = threading.Event()
        self.version, self.keepalive, self.delays, self.resume = version, keepalive, delays, resume_session
        kw = {"clean_session": not resume_session} if version == mqtt.MQTTv311 else {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=thing, protocol=version,
                                  reconnect_on_failure=False, transport="websockets" if websocket else "tcp", **kw)
        context = ssl.create_default_context(cafile=ca)
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if websocket:
            self.client.ws_set_options(path=websocket)
        else:
            context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
        self.client.tls_set_context(context)
        self.client.on_connect = lambda c, u, f, rc, p: self._connected(rc, f.session_present)
        self.client.on_message = lambda c, u, m: self.app.on_message(m.topic, m.payload)
        self.app.send = lambda topic, payload, qos: self.client.publish(topic, payload, qos)
        self.host, self.port = host, port
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _connected(self, rc, session_present) -> None:
        if rc == 0:
            self.attempt = 0
            if not (self.resume and session_present):
                self.client.subscribe([(t, 1) for t in self.app.subscriptions])
            self.app.on_connected()

    def _run(self) -> None:
        self.attempt = 0
        kw = {} if self.version == mqtt.MQTTv311 else {"clean_start": not self.resume}
        while not self.stop.is_set():
            try:
                self.client.connect(self.host, self.port, keepalive=self.keepalive, **kw)
                self.client.loop_forever()
            except (OSError, ssl.SSLError):
                pass
            self.attempt += 1
            self.stop.wait(self.delays(self.attempt) if self.delays else 0.02)  # 0.02 s: no backoff

    def start(self) -> PahoDevice:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.client.disconnect()
        self.thread.join(5)


class SdkDevice:
    """The application on the AWS IoT Device SDK v2's MQTT 5 client, default reconnect settings: with its
    certificate, or with `websocket` = (access key, secret, region) over WebSocket, the SDK signing its
    handshake with SigV4 (websockets_with_default_aws_signing)."""

    def __init__(self, host, port, ca, cert, thing, websocket: tuple[str, str, str] | None = None):
        from awscrt import auth, mqtt5
        from awsiot import mqtt5_client_builder

        self.app = App(thing)
        self.mqtt5 = mqtt5
        common = {"endpoint": host, "port": port, "ca_filepath": ca, "client_id": thing,
                  "on_publish_received": self._received, "on_lifecycle_connection_success": self._connected}
        if websocket:
            access_key, secret, region = websocket
            self.client = mqtt5_client_builder.websockets_with_default_aws_signing(
                region=region, credentials_provider=auth.AwsCredentialsProvider.new_static(access_key, secret),
                **common)
        else:
            self.client = mqtt5_client_builder.mtls_from_path(
                cert_filepath=str(cert.cert_file), pri_key_filepath=str(cert.key_file), **common)
        self.app.send = self._send

    def _send(self, topic, payload, qos):
        self.client.publish(self.mqtt5.PublishPacket(topic=topic, payload=payload, qos=self.mqtt5.QoS(qos)))

    def _received(self, data) -> None:
        packet = data.publish_packet
        self.app.on_message(packet.topic, bytes(packet.payload))

    def _connected(self, data) -> None:
        subscriptions = [self.mqtt5.Subscription(topic_filter=t, qos=self.mqtt5.QoS.AT_LEAST_ONCE)
                         for t in self.app.subscriptions]
        future = self.client.subscribe(self.mqtt5.SubscribePacket(subscriptions=subscriptions))
        future.add_done_callback(lambda f: self.app.on_connected())

    def start(self) -> SdkDevice:
        self.client.start()
        return self

    def close(self) -> None:
        self.client.stop()


# the suite ---------------------------------------------------------------------------------------
def root_group(thing: str, backoff: bool = True) -> str:
    def case(name, test_id, **conf):
        return {"name": name, "configuration": conf, "test": {"id": test_id, "version": "0.0.0"}}

    return json.dumps({"configuration": {"EXECUTION_TIMEOUT": "20"}, "tests": [
        {"name": "MQTT", "configuration": {}, "tests": [
            case("connect", "MQTT_Connect"),
            case("publish", "MQTT_Publish", TOPIC_FOR_PUBLISH_VALIDATION=f"dut/{thing}/telemetry"),
            case("subscribe", "MQTT_Subscribe", TOPIC_LIST_FOR_SUBSCRIPTION_VALIDATION_ID=[f"dut/{thing}/in"]),
        ] + ([case("reconnect backoff", "MQTT_Reconnect_Backoff_Retries_On_Server_Disconnect",
                    EXECUTION_TIMEOUT="45", RECONNECTION_ATTEMPTS="5")] if backoff else [])},
        {"name": "Shadow", "configuration": {}, "tests": [
            case("publishes reported", "Shadow_Publish_Reported_State", REPORTED_STATE={"led": "off"}),
            case("follows desired", "Shadow_Update_Reported_State", DESIRED_STATE={"led": "on"}),
        ]},
        {"name": "Jobs", "configuration": {}, "tests": [
            case("job execution", "Job_Execution", JOB_DOCUMENT=json.dumps({"operation": "reboot"})),
        ]},
    ]})


@pytest.fixture
def da(localiot_server):
    return make_client(localiot_server, "iotdeviceadvisor")


@pytest.fixture
def dut(iot, tmp_path, localiot_server):
    """A thing with its certificate and a least-privilege policy; the CA file and the test endpoint."""
    thing = f"dut-{int(time.time() * 1000) % 10**8}"
    iot.create_thing(thingName=thing)
    cert = new_certificate(iot, tmp_path, thing, policy=device_policy(thing))
    iot.attach_thing_principal(thingName=thing, principal=cert.arn)
    _, port = localiot_server.listener("device-advisor")
    return {"thing": thing, "cert": cert, "ca": ca_file(localiot_server, tmp_path), "port": port,
            "thingArn": iot.describe_thing(thingName=thing)["thingArn"]}


def run_suite(da, dut, root: str, device, timeout: float = 120, protocol: str = "MqttV5",
              long_duration: bool = False) -> dict:
    """Start a suite run for the device, then the device application (as AWS's workflow has it:
    the device connects once the run is started); the run once it has ended."""
    suite = da.create_suite_definition(suiteDefinitionConfiguration={
        "suiteDefinitionName": "e2e", "rootGroup": root, "devicePermissionRoleArn": ROLE,
        "devices": [{"thingArn": dut["thingArn"]}], "protocol": protocol,
        "isLongDurationTest": long_duration})["suiteDefinitionId"]
    run = da.start_suite_run(suiteDefinitionId=suite, suiteRunConfiguration={
        "primaryDevice": {"thingArn": dut["thingArn"]}})
    app = device(dut).start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = da.get_suite_run(suiteDefinitionId=suite, suiteRunId=run["suiteRunId"])
            if got["status"] in DONE:
                got["report"] = da.get_suite_run_report(suiteDefinitionId=suite, suiteRunId=run["suiteRunId"])
                return got
            time.sleep(0.2)
    finally:
        app.close()
    raise AssertionError(f"the run did not end: {json.dumps(got, default=str)}")


def paho_device(dut, verify=True, **kw):
    return PahoDevice("localhost", dut["port"], dut["ca"], dut["cert"], dut["thing"], verify=verify, **kw)


def sdk_device(dut):
    return SdkDevice("localhost", dut["port"], dut["ca"], dut["cert"], dut["thing"])


def results(run: dict) -> dict:
    return {t["testCaseDefinitionName"]: t["status"] for g in run["testResult"]["groups"] for t in g["tests"]}


def explain(run: dict) -> str:
    """Every case's status, failure and log: the message of a failed assertion."""
    out = [f"run {run['status']} {run.get('errorReason') or ''}"]
    for group in run["testResult"]["groups"]:
        for test in group["tests"]:
            out.append(f"== {test['testCaseDefinitionName']}: {test['status']} {test.get('failure') or ''}")
            if test.get("logUrl"):
                out.append(log_of(run, test["testCaseDefinitionName"]))
    return "\n".join(out)


def log_of(run: dict, name: str) -> str:
    test = next(t for g in run["testResult"]["groups"] for t in g["tests"] if t["testCaseDefinitionName"] == name)
    with urllib.request.urlopen(test["logUrl"]) as answer:
        return answer.read().decode()
