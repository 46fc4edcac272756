"""Fleet provisioning by claim over MQTT, end to end: a paho device asks for a
certificate (keys made by the service, or from its CSR), proves it owns it and
registers itself through a FLEET_PROVISIONING template, in JSON and in CBOR;
the control plane then shows the thing, the active certificate and its policy.
The pre-provisioning hook is answered by a small Lambda Invoke endpoint the
test runs (the server's downstream endpoint)."""

from __future__ import annotations

import datetime
import importlib
import json
import queue
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import make_client
from localiot import cbor
from localiot.provisioning.parameters import certificate_parameters
from localiot.testing import local_server

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/provisioning"
HOOK = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:pre-provision"
WAIT = 5
DEVICE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]})
TEMPLATE = json.dumps({
    "Parameters": {
        "SerialNumber": {"Type": "String"},
        "AWS::IoT::Certificate::Id": {"Type": "String"},
    },
    "Resources": {
        "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
            "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"}},
        "policy": {"Type": "AWS::IoT::Policy", "Properties": {
            "PolicyName": "DevicePolicy", "PolicyDocument": DEVICE_POLICY}},
        "thing": {"Type": "AWS::IoT::Thing", "Properties": {
            "ThingName": {"Fn::Join": ["", ["device-", {"Ref": "SerialNumber"}]]},
            "AttributePayload": {"serial": {"Ref": "SerialNumber"}}}},
    },
    "DeviceConfiguration": {"FallbackUrl": "https://updates.example.com", "Serial": {"Ref": "SerialNumber"}},
})


class LambdaEndpoint:
    """Answers Lambda's Invoke API (POST /2015-03-31/functions/{name}/invocations)."""

    def __init__(self):
        self.answer: dict = {"allowProvisioning": True}
        self.calls: list[tuple[str, dict]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                name = unquote(self.path.split("/functions/", 1)[1].split("/invocations", 1)[0])
                endpoint.calls.append((name, json.loads(body)))
                reply = json.dumps(endpoint.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self._thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="module")
def hook():
    endpoint = LambdaEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="module")
def server(hook):
    with local_server(mqtt_plain=True, background_period=0, aws_endpoint_url=hook.url) as running:
        yield running


@pytest.fixture
def fresh(server, hook):
    server.reset()
    hook.calls.clear()
    hook.answer = {"allowProvisioning": True}
    return server


@pytest.fixture
def iot(fresh):
    client = make_client(fresh)
    client.create_provisioning_template(templateName="FleetTemplate", templateBody=TEMPLATE,
                                        provisioningRoleArn=ROLE, enabled=True)
    return client


class Device:
    """A paho device speaking JSON or CBOR on the provisioning topics."""

    def __init__(self, server, fmt="json", username="claim"):
        host, port = server.app.runtime.listeners["mqtt-plain"].rsplit(":", 1)
        self.fmt = fmt
        self.client_id = f"claim-{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  reconnect_on_failure=False)
        self.client.username_pw_set(username)  # the plain listener's principal
        self.messages: queue.Queue = queue.Queue()
        self.connected = threading.Event()
        self.acks: dict[int, threading.Event] = {}
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_connect = lambda *args: self.connected.set()
        self.client.on_subscribe = lambda c, u, mid, *rest: self.acks.setdefault(mid, threading.Event()).set()
        self.client.on_publish = lambda c, u, mid, *rest: self.acks.setdefault(mid, threading.Event()).set()
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert self.connected.wait(WAIT)

    def subscribe(self, *topics):
        for topic in topics:
            _, mid = self.client.subscribe(topic, 1)
            assert self.acks.setdefault(mid, threading.Event()).wait(WAIT)

    def encode(self, body) -> bytes:
        return cbor.dumps(body) if self.fmt == "cbor" else json.dumps(body).encode()

    def call(self, topic: str, body=None, raw: bytes | None = None) -> tuple[str, dict]:
        """Publish a request on `topic`; the (accepted|rejected, answer) that comes back."""
        self.subscribe(f"{topic}/accepted", f"{topic}/rejected")
        info = self.client.publish(topic, raw if raw is not None else self.encode(body or {}), 1)
        assert self.acks.setdefault(info.mid, threading.Event()).wait(WAIT)
        while True:
            message = self.messages.get(timeout=WAIT)
            if message.topic in (f"{topic}/accepted", f"{topic}/rejected"):
                decoded = cbor.loads(message.payload) if self.fmt == "cbor" else json.loads(message.payload)
                return message.topic.rsplit("/", 1)[1], decoded

    def create_keys(self) -> dict:
        outcome, answer = self.call(f"$aws/certificates/create/{self.fmt}")
        assert outcome == "accepted", answer
        return answer

    def provision(self, template: str, token, parameters=None) -> tuple[str, dict]:
        body = {"certificateOwnershipToken": token}
        if parameters is not None:
            body["parameters"] = parameters
        return self.call(f"$aws/provisioning-templates/{template}/provision/{self.fmt}", body)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def devices(fresh):
    made = []

    def make(**kw):
        device = Device(fresh, **kw)
        made.append(device)
        return device

    yield make
    for device in made:
        device.close()


def assert_provisioned(iot, thing_name: str, certificate_id: str, serial: str):
    thing = iot.describe_thing(thingName=thing_name)
    assert thing["attributes"] == {"serial": serial}
    certificate = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
    assert certificate["status"] == "ACTIVE"
    assert iot.list_thing_principals(thingName=thing_name)["principals"] == [certificate["certificateArn"]]
    policies = iot.list_attached_policies(target=certificate["certificateArn"])["policies"]
    assert [p["policyName"] for p in policies] == ["DevicePolicy"]


# the flows -------------------------------------------------------------------------------
def test_create_keys_and_register_thing_in_json(iot, devices):
    device = devices()
    snooper = devices()
    snooper.subscribe("$aws/certificates/create/json/accepted")
    created = device.create_keys()
    assert set(created) == {"certificateId", "certificatePem", "privateKey", "certificateOwnershipToken"}
    described = iot.describe_certificate(certificateId=created["certificateId"])["certificateDescription"]
    assert described["status"] == "PENDING_ACTIVATION"
    assert described["certificatePem"] == created["certificatePem"]
    key = serialization.load_pem_private_key(created["privateKey"].encode(), None)
    certificate = x509.load_pem_x509_certificate(created["certificatePem"].encode())
    assert key.public_key().public_numbers() == certificate.public_key().public_numbers()

    outcome, answer = device.provision("FleetTemplate", created["certificateOwnershipToken"],
                                       {"SerialNumber": "0042"})
    assert outcome == "accepted"
    assert answer == {"deviceConfiguration": {"FallbackUrl": "https://updates.example.com", "Serial": "0042"},
                      "thingName": "device-0042"}
    assert_provisioned(iot, "device-0042", created["certificateId"], "0042")
    with pytest.raises(queue.Empty):  # the answers with keys travel to the asking connection only
        snooper.messages.get(timeout=0.3)


def test_create_from_csr_and_register_thing_in_cbor(iot, devices):
    device = devices(fmt="cbor")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-7")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    outcome, created = device.call("$aws/certificates/create-from-csr/cbor", {"certificateSigningRequest": csr})
    assert outcome == "accepted"
    assert set(created) == {"certificateOwnershipToken", "certificateId", "certificatePem"}
    issued = x509.load_pem_x509_certificate(created["certificatePem"].encode())
    assert issued.public_key().public_numbers() == key.public_key().public_numbers()

    outcome, answer = device.provision("FleetTemplate", created["certificateOwnershipToken"], {"SerialNumber": "77"})
    assert outcome == "accepted" and answer["thingName"] == "device-77"
    assert_provisioned(iot, "device-77", created["certificateId"], "77")

    outcome, error = device.call("$aws/certificates/create-from-csr/cbor", {"certificateSigningRequest": "nope"})
    assert outcome == "rejected" and error["statusCode"] == 400
    outcome, error = device.call("$aws/certificates/create/cbor", raw=b"\xff\x00")
    assert (outcome, error["errorCode"]) == ("rejected", "InvalidPayload")


def test_certificate_parameters_reach_the_template(devices, fresh):
    iot = make_client(fresh)
    iot.create_provisioning_template(templateName="ByCert", provisioningRoleArn=ROLE, enabled=True,
                                     templateBody=json.dumps({
                                         "Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {
                                             "ThingName": {"Fn::Join": ["-", ["cn", {
                                                 "Ref": "AWS::IoT::Certificate::CommonName"}]]}}}}}))
    device = devices()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit9")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    _, created = device.call("$aws/certificates/create-from-csr/json", {"certificateSigningRequest": csr})
    outcome, answer = device.provision("ByCert", created["certificateOwnershipToken"])
    assert (outcome, answer) == ("accepted", {"deviceConfiguration": {}, "thingName": "cn-unit9"})
    principals = iot.list_thing_principals(thingName="cn-unit9")["principals"]
    assert principals == [f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{created['certificateId']}"]


def test_certificate_parameters_include_the_subject_alternative_name():
    """One function gives JITP and fleet provisioning the certificate's parameters."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit10"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, "SN-10")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(10).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("sensor-10.example.com")]), critical=False)
            .sign(key, hashes.SHA256()))
    assert certificate_parameters(cert, "c" * 64) == {
        "AWS::IoT::Certificate::Id": "c" * 64,
        "AWS::IoT::Certificate::CommonName": "unit10",
        "AWS::IoT::Certificate::Organization": "Acme",
        "AWS::IoT::Certificate::SerialNumber": "SN-10",
        "AWS::IoT::Certificate::SubjectAlternativeName": "sensor-10.example.com",
    }


def test_answers_go_only_to_the_connection_that_asked(iot, devices, fresh):
    """The door gets the publishing connection from the broker: another device subscribed
    to the same reply topics hears nothing, and a publish with no connection behind it
    (iot-data Publish) is refused."""
    asking, listening = devices(), devices()
    listening.subscribe("$aws/certificates/create/json/accepted", "$aws/certificates/create/json/rejected")
    created = asking.create_keys()
    assert created["certificateId"] and created["privateKey"]
    with pytest.raises(queue.Empty):
        listening.messages.get(timeout=0.3)
    data = make_client(fresh, "iot-data")
    data.publish(topic="$aws/certificates/create/json", payload=b"{}")  # accepted by the API, refused by the door
    with pytest.raises(queue.Empty):
        listening.messages.get(timeout=0.3)
    certificates = iot.list_certificates()["certificates"]
    assert [c["certificateId"] for c in certificates] == [created["certificateId"]]


# rejections ------------------------------------------------------------------------------
def test_rejected_requests(iot, devices, fresh):
    device = devices()
    token = device.create_keys()["certificateOwnershipToken"]

    outcome, error = device.provision("NoSuchTemplate", token, {"SerialNumber": "1"})
    assert (outcome, error["statusCode"], error["errorCode"]) == ("rejected", 404, "ResourceNotFound")

    outcome, error = device.provision("FleetTemplate", "not-a-token", {"SerialNumber": "1"})
    assert (outcome, error["statusCode"], error["errorCode"]) == ("rejected", 400, "InvalidCertificateOwnershipToken")
    outcome, error = device.provision("FleetTemplate", "")
    assert error == {"statusCode": 400, "errorCode": "InvalidCertificateOwnershipToken",
                     "errorMessage": "Certificate ownership token cannot be empty."}

    other = devices(username="another-claim")  # the token was issued to another principal
    outcome, error = other.provision("FleetTemplate", token, {"SerialNumber": "1"})
    assert (outcome, error["errorCode"]) == ("rejected", "InvalidCertificateOwnershipToken")

    outcome, error = device.provision("FleetTemplate", token, {})  # SerialNumber missing
    assert (outcome, error["statusCode"], error["errorCode"]) == ("rejected", 400, "InvalidParameters")
    outcome, error = device.provision("FleetTemplate", token, ["not", "a", "map"])
    assert (outcome, error["errorCode"]) == ("rejected", "InvalidPayload")

    iot.update_provisioning_template(templateName="FleetTemplate", enabled=False)
    outcome, error = device.provision("FleetTemplate", token, {"SerialNumber": "1"})
    assert (outcome, error["statusCode"], error["errorCode"]) == ("rejected", 403, "AccessDenied")
    assert iot.list_things()["things"] == []  # nothing was provisioned by the refused requests

    iot.update_provisioning_template(templateName="FleetTemplate", enabled=True)
    fresh.clock.advance(3601)  # the token lives one hour
    outcome, error = device.provision("FleetTemplate", token, {"SerialNumber": "1"})
    assert (outcome, error["errorCode"]) == ("rejected", "InvalidCertificateOwnershipToken")


def test_a_jitp_template_cannot_provision_by_claim(iot, devices, fresh):
    iot.create_provisioning_template(templateName="Jitp", templateBody=TEMPLATE, provisioningRoleArn=ROLE,
                                     enabled=True, type="JITP")
    device = devices()
    token = device.create_keys()["certificateOwnershipToken"]
    outcome, error = device.provision("Jitp", token, {"SerialNumber": "1"})
    assert (outcome, error["statusCode"]) == ("rejected", 400)


# the pre-provisioning hook --------------------------------------------------------------------
def test_the_hook_allows_and_overrides_parameters(iot, devices, hook):
    iot.update_provisioning_template(templateName="FleetTemplate",
                                     preProvisioningHook={"targetArn": HOOK, "payloadVersion": "2020-04-01"})
    hook.answer = {"allowProvisioning": True, "parameterOverrides": {"SerialNumber": "from-hook"}}
    device = devices()
    created = device.create_keys()
    outcome, answer = device.provision("FleetTemplate", created["certificateOwnershipToken"],
                                       {"SerialNumber": "from-device"})
    assert outcome == "accepted" and answer["thingName"] == "device-from-hook"
    assert_provisioned(iot, "device-from-hook", created["certificateId"], "from-hook")
    (name, event), = hook.calls
    assert name == HOOK
    assert event["parameters"] == {"SerialNumber": "from-device"}
    assert event["certificateId"] == created["certificateId"]
    assert event["certificatePem"] == created["certificatePem"]
    assert event["clientId"] == device.client_id
    assert event["templateArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:provisioningtemplate/FleetTemplate"


def test_the_hook_can_refuse(iot, devices, hook):
    iot.update_provisioning_template(templateName="FleetTemplate", preProvisioningHook={"targetArn": HOOK})
    hook.answer = {"allowProvisioning": False}
    device = devices(fmt="cbor")
    created = device.create_keys()
    outcome, error = device.provision("FleetTemplate", created["certificateOwnershipToken"], {"SerialNumber": "5"})
    assert (outcome, error["statusCode"], error["errorCode"]) == ("rejected", 403, "AccessDenied")
    assert iot.list_things()["things"] == []
    certificate = iot.describe_certificate(certificateId=created["certificateId"])["certificateDescription"]
    assert certificate["status"] == "PENDING_ACTIVATION"


# the AWS IoT Device SDK v2 -----------------------------------------------------------------------
def test_device_sdk_identity_client(iot, fresh):
    awscrt_mqtt = importlib.import_module("awscrt.mqtt")
    iotidentity = importlib.import_module("awsiot.iotidentity")
    host, port = fresh.app.runtime.listeners["mqtt-plain"].rsplit(":", 1)
    connection = awscrt_mqtt.Connection(client=awscrt_mqtt.Client(None, None), host_name=host, port=int(port),
                                        client_id=f"sdk-{uuid.uuid4().hex[:8]}", clean_session=True,
                                        keep_alive_secs=30)
    connection.connect().result(WAIT)
    try:
        identity = iotidentity.IotIdentityClient(connection)
        qos = awscrt_mqtt.QoS.AT_LEAST_ONCE
        got = {name: queue.Queue() for name in ("keys", "registered", "rejected")}
        for future in (
            identity.subscribe_to_create_keys_and_certificate_accepted(
                iotidentity.CreateKeysAndCertificateSubscriptionRequest(), qos, got["keys"].put)[0],
            identity.subscribe_to_create_keys_and_certificate_rejected(
                iotidentity.CreateKeysAndCertificateSubscriptionRequest(), qos, got["rejected"].put)[0],
            identity.subscribe_to_register_thing_accepted(
                iotidentity.RegisterThingSubscriptionRequest(template_name="FleetTemplate"), qos,
                got["registered"].put)[0],
            identity.subscribe_to_register_thing_rejected(
                iotidentity.RegisterThingSubscriptionRequest(template_name="FleetTemplate"), qos,
                got["rejected"].put)[0],
        ):
            future.result(WAIT)
        identity.publish_create_keys_and_certificate(iotidentity.CreateKeysAndCertificateRequest(), qos).result(WAIT)
        keys = got["keys"].get(timeout=WAIT)
        assert keys.certificate_id and keys.private_key.startswith("-----BEGIN")
        identity.publish_register_thing(iotidentity.RegisterThingRequest(
            template_name="FleetTemplate", certificate_ownership_token=keys.certificate_ownership_token,
            parameters={"SerialNumber": "sdk"}), qos).result(WAIT)
        registered = got["registered"].get(timeout=WAIT)
        assert registered.thing_name == "device-sdk"
        assert registered.device_configuration == {"FallbackUrl": "https://updates.example.com", "Serial": "sdk"}
        assert got["rejected"].empty()
        assert_provisioned(iot, "device-sdk", keys.certificate_id, "sdk")
    finally:
        connection.disconnect().result(WAIT)
