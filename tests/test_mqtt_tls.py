"""MQTT over TLS with client certificates from CreateKeysAndCertificate: paho
(MQTT 3.1.1 and 5) and the AWS IoT Device SDK v2 against the real server's
listeners, certificate status and CA rules, revocation, ALPN x-amzn-mqtt-ca,
HTTPS publish, the server certificate, and `localiot serve` on uvloop.

The devices and certificates come from the test kit (localiot/testing)."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
import json
import os
import queue
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from localiot.testing import (ALLOW_ALL, NOT_AUTHORIZED, V3, V5, WAIT, Cert, Device, DevicePool, address, alpn_port,
                              ca_file, local_server, make_client, new_certificate)


@contextmanager
def device_pool():
    """`make(port, client_id, ca=, cert=, ...)` -> Device; every device is closed on exit."""
    pool = DevicePool()
    try:
        yield pool
    finally:
        pool.close()

BIN = Path(sys.executable).parent


# helpers ----------------------------------------------------------------------------
def self_signed(folder: Path, name: str, cn: str = "self-signed device") -> Cert:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return Cert(folder, name, cert.public_bytes(serialization.Encoding.PEM).decode(),
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode())


# tests ----------------------------------------------------------------------------
def test_describe_endpoint_answers_the_tls_listener(localiot_server, iot):
    listeners = localiot_server.app.runtime.listeners
    host, port = address(iot)
    # A host name only, like AWS; the port is the MQTT over TLS listener's.
    assert host == "localhost" and listeners["iot:Data-ATS"] == f"127.0.0.1:{port}"
    assert address(iot, "iot:Data") == (host, port)
    assert "mqtt-alpn" in listeners and listeners["mqtt-alpn"] != listeners["iot:Data-ATS"]


@pytest.mark.parametrize("version", [V3, V5])
def test_publish_and_subscribe_with_a_certificate(localiot_server, iot, tmp_path, devices, version):
    cert = new_certificate(iot, tmp_path, policy=ALLOW_ALL)
    host, port = address(iot)
    ca = ca_file(localiot_server, tmp_path)
    watcher = devices(port, "watcher", ca=ca, cert=cert, version=version).connect_ok()
    assert watcher.subscribe("$aws/events/presence/connected/+") == [1]
    device = devices(port, "device-1", ca=ca, cert=cert, version=version).connect_ok()
    event = json.loads(watcher.expect("$aws/events/presence/connected/device-1").payload)
    assert event["principalIdentifier"] == cert.id and event["clientId"] == "device-1"
    assert device.subscribe("sensors/+/temp") == [1]
    assert device.publish("sensors/a/temp", b"21.5") == 0
    assert device.expect("sensors/a/temp").payload == b"21.5"


def test_mqtt_username_is_ignored_under_mutual_tls(localiot_server, iot, tmp_path, devices):
    # The AWS IoT Device SDKs put a metrics string in the user name.
    cert = new_certificate(iot, tmp_path, policy=ALLOW_ALL)
    _, port = address(iot)
    device = devices(port, "sdk-like", ca=ca_file(localiot_server, tmp_path), cert=cert,
                     username="?SDK=PythonV2&Version=1.31.0", password="not-a-credential")
    assert device.connect() == 0


@pytest.mark.parametrize("version", [V3, V5])
def test_refused_certificates(localiot_server, iot, tmp_path, devices, version):
    _, port = address(iot)
    ca = ca_file(localiot_server, tmp_path)
    inactive = new_certificate(iot, tmp_path, "inactive", active=False, policy=ALLOW_ALL)
    revoked = new_certificate(iot, tmp_path, "revoked", policy=ALLOW_ALL)
    iot.update_certificate(certificateId=revoked.id, newStatus="REVOKED")
    deleted = new_certificate(iot, tmp_path, "deleted")
    iot.update_certificate(certificateId=deleted.id, newStatus="INACTIVE")
    iot.delete_certificate(certificateId=deleted.id)
    refused = NOT_AUTHORIZED
    for cert in (inactive, revoked, deleted):
        assert devices(port, f"c-{cert.cert_file.stem}", ca=ca, cert=cert, version=version).connect() == refused
    # No certificate and no custom authorizer: refused too.
    assert devices(port, "anonymous", ca=ca, version=version).connect() == refused
    # A certificate that chains to nothing registered fails the TLS handshake, as on AWS.
    stranger = self_signed(tmp_path, "stranger")
    assert devices(port, "stranger", ca=ca, cert=stranger, version=version).connect() is None


def test_certificate_whose_ca_is_inactive_is_refused(localiot_server, iot, tmp_path, devices):
    from test_jit_registration import CustomerCA, register_ca

    customer = CustomerCA()
    ca_id = register_ca(iot, customer, setAsActive=True)
    device = customer.issue(tmp_path, "by-ca", "by-ca")
    registered = iot.register_certificate(certificatePem=device.pem, status="ACTIVE")
    iot.create_policy(policyName="all", policyDocument=json.dumps(ALLOW_ALL))
    iot.attach_policy(policyName="all", target=registered["certificateArn"])
    _, port = address(iot)
    ca = ca_file(localiot_server, tmp_path)
    first = devices(port, "by-ca", ca=ca, cert=device).connect_ok()
    # Deactivating the CA disconnects its devices and refuses them from then on.
    iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
    assert first.wait_closed()
    assert devices(port, "by-ca-2", ca=ca, cert=device).connect() == NOT_AUTHORIZED
    iot.update_ca_certificate(certificateId=ca_id, newStatus="ACTIVE")
    assert devices(port, "by-ca-3", ca=ca, cert=device).connect() == 0


@pytest.mark.parametrize("status", ["REVOKED", "INACTIVE"])
def test_revoking_a_certificate_disconnects_its_clients(localiot_server, iot, tmp_path, devices, status):
    cert = new_certificate(iot, tmp_path, policy=ALLOW_ALL)
    other = new_certificate(iot, tmp_path, "other", policy=ALLOW_ALL)
    _, port = address(iot)
    ca = ca_file(localiot_server, tmp_path)
    watcher = devices(port, "watcher", ca=ca, cert=other).connect_ok()
    watcher.subscribe("$aws/events/presence/disconnected/+")
    device = devices(port, "victim", ca=ca, cert=cert, version=V5).connect_ok()
    iot.update_certificate(certificateId=cert.id, newStatus=status)
    assert device.wait_closed()
    assert device.disconnect_reason == NOT_AUTHORIZED
    event = json.loads(watcher.expect("$aws/events/presence/disconnected/victim").payload)
    assert event["disconnectReason"] == "AUTH_ERROR" and event["clientInitiatedDisconnect"] is False
    assert watcher.publish("still/here", b"") == 0  # the other certificate's client stays


def test_self_signed_certificate_registered_without_ca(localiot_server, iot, tmp_path, devices):
    own = self_signed(tmp_path, "own", "my device")
    _, port = address(iot)
    ca = ca_file(localiot_server, tmp_path)
    assert devices(port, "own-1", ca=ca, cert=own).connect() is None  # unknown: the handshake fails
    registered = iot.register_certificate_without_ca(certificatePem=own.pem, status="ACTIVE")
    iot.create_policy(policyName="own", policyDocument=json.dumps(ALLOW_ALL))
    iot.attach_policy(policyName="own", target=registered["certificateArn"])
    device = devices(port, "own-2", ca=ca, cert=own).connect_ok()
    assert device.publish("own/topic", b"x") == 0


@pytest.mark.parametrize("version", [V3, V5])
def test_alpn_x_amzn_mqtt_ca_on_the_alpn_port(localiot_server, iot, tmp_path, devices, version):
    cert = new_certificate(iot, tmp_path, policy=ALLOW_ALL)
    port = alpn_port(localiot_server)
    ca = ca_file(localiot_server, tmp_path)
    device = devices(port, "alpn-device", ca=ca, cert=cert, version=version, alpn=["x-amzn-mqtt-ca"]).connect_ok()
    assert device.client.socket().selected_alpn_protocol() == "x-amzn-mqtt-ca"
    device.subscribe("alpn/t")
    device.publish("alpn/t", b"over 443-style")
    assert device.expect("alpn/t").payload == b"over 443-style"
    # The same port without ALPN still speaks MQTT when the first packet is a CONNECT.
    plain = devices(port, "no-alpn", ca=ca, cert=cert, version=version).connect_ok()
    plain.publish("alpn/t", b"no alpn")
    assert device.expect("alpn/t").payload == b"no alpn"
    inactive = new_certificate(iot, tmp_path, "inactive", active=False, policy=ALLOW_ALL)
    refused = devices(port, "refused", ca=ca, cert=inactive, version=version, alpn=["x-amzn-mqtt-ca"])
    assert refused.connect() == NOT_AUTHORIZED


def _https_publish(port, ca, cert: Cert | None, topic, body, query="qos=1"):
    context = ssl.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    request = urllib.request.Request(f"https://127.0.0.1:{port}/topics/{topic}?{query}", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, context=context, timeout=WAIT) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_https_publish_with_a_client_certificate(localiot_server, iot, tmp_path, devices):
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iot:Connect", "iot:Subscribe", "iot:Receive"], "Resource": "*"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/http/ok/*"},
    ]}
    cert = new_certificate(iot, tmp_path, policy=policy)
    ca = ca_file(localiot_server, tmp_path)
    _, port = address(iot)
    listener = devices(port, "listener", ca=ca, cert=cert).connect_ok()
    listener.subscribe("http/#")
    https = alpn_port(localiot_server)
    status, body = _https_publish(https, ca, cert, "http/ok/1", b'{"temp": 20}')
    assert status == 200 and body["message"] == "OK" and body["traceId"]
    message = listener.expect("http/ok/1")
    assert message.payload == b'{"temp": 20}' and message.qos == 1
    status, body = _https_publish(https, ca, cert, "http/denied", b"x")
    assert status == 403 and body["message"] == "Forbidden"
    status, _ = _https_publish(https, ca, cert, "http/ok/retained", b"r", "qos=1&retain=true")
    assert status == 403  # no iot:RetainPublish
    status, _ = _https_publish(https, ca, cert, "http/ok/q", b"x", "qos=2")
    assert status == 400
    inactive = new_certificate(iot, tmp_path, "inactive", active=False, policy=ALLOW_ALL)
    assert _https_publish(https, ca, inactive, "http/ok/2", b"x")[0] == 403
    listener.expect_none()
    # Reserved topics are served as over MQTT: a shadow update.
    iot.create_thing(thingName="http-thing")
    shadow = json.dumps({"state": {"reported": {"on": True}}}).encode()
    status, _ = _https_publish(https, ca, cert, "$aws/things/http-thing/shadow/update", shadow)
    assert status == 403  # the policy does not allow it
    owner = new_certificate(iot, tmp_path, "owner", policy=ALLOW_ALL)
    assert _https_publish(https, ca, owner, "$aws/things/http-thing/shadow/update", shadow)[0] == 200
    data = make_client(localiot_server, "iot-data")
    document = json.load(data.get_thing_shadow(thingName="http-thing")["payload"])
    assert document["state"]["reported"] == {"on": True}
    # Without a certificate it is the iot-data API (SigV4), on the same port.
    data = boto3.client("iot-data", endpoint_url=f"https://127.0.0.1:{https}", region_name="us-east-1", verify=ca,
                        aws_access_key_id="testing", aws_secret_access_key="testing")
    data.publish(topic="http/ok/sigv4", qos=1, payload=b"signed")
    assert listener.expect("http/ok/sigv4").payload == b"signed"


def test_https_publish_of_a_retained_message_is_stored_then_routed(localiot_server, iot, tmp_path, devices):
    owner = new_certificate(iot, tmp_path, "retainer", policy=ALLOW_ALL)
    ca = ca_file(localiot_server, tmp_path)
    _, port = address(iot)
    listener = devices(port, "retained-listener", ca=ca, cert=owner).connect_ok()
    listener.subscribe("http/kept")
    status, _ = _https_publish(alpn_port(localiot_server), ca, owner, "http/kept", b"on", "qos=1&retain=true")
    assert status == 200
    assert listener.expect("http/kept").payload == b"on"
    data = make_client(localiot_server, "iot-data")
    assert data.get_retained_message(topic="http/kept")["payload"] == b"on"


def test_server_certificate_names_and_cache(tmp_path):
    from localiot.listeners import SERVER_CERT

    data_dir = tmp_path / "data"

    def sans(server):
        pem = (data_dir / SERVER_CERT).read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
        return set(names.get_values_for_type(x509.DNSName)), ips, pem

    with local_server(data_dir=str(data_dir), server_names="iot.example.test,10.1.2.3") as server:
        names, ips, first = sans(server)
        assert {"localhost", "iot.example.test"} <= names and {"127.0.0.1", "10.1.2.3"} <= ips
        _, port = server.listener("iot:Data-ATS")
        context = ssl.create_default_context(cafile=ca_file(server, tmp_path))
        # Any SNI is accepted; the certificate verifies for its names.
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with context.wrap_socket(raw, server_hostname="iot.example.test") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
    with local_server(data_dir=str(data_dir), server_names="iot.example.test,10.1.2.3"):
        assert sans(None)[2] == first  # kept across restarts
    with local_server(data_dir=str(data_dir), server_names="other.example.test"):
        names, ips, again = sans(None)
        assert again != first and "other.example.test" in names and "10.1.2.3" not in ips


def test_localiot_serve_on_uvloop(tmp_path):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    process = subprocess.Popen(
        [str(BIN / "localiot"), "serve", "--port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0",
         "--data-dir", str(tmp_path / "data"), "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        endpoint = None
        for line in process.stdout:
            if line.startswith("localiot ready on "):
                endpoint = line.split()[-1]
                break
        assert endpoint, "server did not start"

        server = SimpleNamespace(endpoint=endpoint)
        iot = make_client(server)
        cert = new_certificate(iot, tmp_path, policy=ALLOW_ALL)
        _, port = address(iot)
        ca = ca_file(server, tmp_path)
        with urllib.request.urlopen(endpoint + "/_localiot/health") as response:
            alpn = int(json.load(response)["listeners"]["mqtt-alpn"].rsplit(":", 1)[1])
        from test_mqtt_websocket import presigned_path

        made = [
            Device(port, "on-uvloop", ca=ca, cert=cert),
            Device(alpn, "uv-alpn", ca=ca, cert=cert, alpn=["x-amzn-mqtt-ca"]),
            Device(alpn, "uv-ws", ca=ca, transport="websockets", ws_path=presigned_path(alpn, "AKID", "secret")),
        ]
        try:
            device, *others = [d.connect_ok() for d in made]
            device.subscribe("uv/t")
            for name, other in zip(("alpn", "websocket"), others):
                other.publish("uv/t", name.encode())
                assert device.expect("uv/t").payload == name.encode()
            assert _https_publish(alpn, ca, cert, "uv/t", b"https")[0] == 200
            assert device.expect("uv/t").payload == b"https"
        finally:
            for d in made:
                d.close()
    finally:
        process.terminate()
        process.wait(10)


# the AWS IoT Device SDK v2 --------------------------------------------------------------
def _server_side_door(server, client_id):
    """The listener (Door) the server's connection for `client_id` came through."""
    doors = server.call(lambda: [str(c.listener) + "/" + str(getattr(c.listener, "alpn", None))
                                 for c in server.app.runtime.broker.connections if c.client_id == client_id])
    return doors[0] if doors else None


def _sdk_round_trip(connection, server=None, client_id=None, door=None):
    from awscrt import mqtt as crt_mqtt

    result = connection.connect().result(WAIT)
    assert result["session_present"] is False
    if door is not None:
        assert _server_side_door(server, client_id) == door
    received = queue.Queue()
    subscribed, _ = connection.subscribe(
        topic="sdk/topic", qos=crt_mqtt.QoS.AT_LEAST_ONCE,
        callback=lambda topic, payload, **kw: received.put((topic, payload)),
    )
    assert subscribed.result(WAIT)["qos"] == crt_mqtt.QoS.AT_LEAST_ONCE
    published, _ = connection.publish(topic="sdk/topic", payload=b"from the SDK", qos=crt_mqtt.QoS.AT_LEAST_ONCE)
    published.result(WAIT)
    assert received.get(timeout=WAIT) == ("sdk/topic", b"from the SDK")
    connection.disconnect().result(WAIT)


@pytest.mark.parametrize("listener", ["tls", "alpn"])
def test_aws_iot_device_sdk_v2(localiot_server, iot, tmp_path, listener):
    builder = pytest.importorskip("awsiot.mqtt_connection_builder", reason="awsiotsdk is not installed")
    cert = new_certificate(iot, tmp_path, policy=ALLOW_ALL)
    host, port = address(iot)
    if listener == "alpn":
        port = alpn_port(localiot_server)  # the SDK offers ALPN on 443 only: this is the sniffed path
    # The SDK's defaults: a persistent session and a 1200 s keep-alive.
    connection = builder.mtls_from_path(
        endpoint=host, port=port, cert_filepath=str(cert.cert_file), pri_key_filepath=str(cert.key_file),
        ca_filepath=ca_file(localiot_server, tmp_path), client_id=f"sdk-{listener}", clean_session=False,
        keep_alive_secs=1200,
    )
    _sdk_round_trip(connection, localiot_server, f"sdk-{listener}", "tls/None" if listener == "tls" else "alpn/None")


def test_aws_crt_with_alpn_x_amzn_mqtt_ca(localiot_server, iot, tmp_path):
    """What the SDK does on port 443: ALPN x-amzn-mqtt-ca, here on the ALPN listener."""
    io = pytest.importorskip("awscrt.io", reason="awsiotsdk is not installed")
    from awscrt import mqtt as crt_mqtt

    if not io.is_alpn_available():
        pytest.skip("ALPN is not available in this build of aws-crt")
    cert = new_certificate(iot, tmp_path, policy=ALLOW_ALL)
    options = io.TlsContextOptions.create_client_with_mtls_from_path(str(cert.cert_file), str(cert.key_file))
    options.override_default_trust_store_from_path(None, ca_file(localiot_server, tmp_path))
    options.alpn_list = ["x-amzn-mqtt-ca"]
    client = crt_mqtt.Client(None, io.ClientTlsContext(options))
    connection = crt_mqtt.Connection(client=client, host_name="127.0.0.1", port=alpn_port(localiot_server),
                                     client_id="crt-alpn", clean_session=True, keep_alive_secs=60)
    _sdk_round_trip(connection, localiot_server, "crt-alpn", "alpn-mqtt-ca/x-amzn-mqtt-ca")
