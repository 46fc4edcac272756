"""MQTT over WebSocket on the ALPN port with SigV4-presigned URLs built as the
AWS SDKs build them, and custom authorizers (WebSocket headers or query
parameters, MQTT username/password with ALPN "mqtt", HTTPS publish) whose
Lambda is a small local HTTP server answering the Lambda Invoke API."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from localiot.testing import (ACCOUNT, NOT_AUTHORIZED, REGION, V3, V5, WAIT, alpn_port, ca_file, make_client,
                              move_clock)

OTHER_ACCOUNT = "111122223333"
FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:device-authorizer"
STRICT_KEY, STRICT_SECRET = "AKIDSTRICTEXAMPLE", "strict-secret"


def presigned_path(port: int, access_key: str, secret: str, *, region: str = REGION, token: str | None = None,
                   token_after_signing: bool = False, host: str = "127.0.0.1") -> str:
    """The path and query of a presigned wss:// URL: botocore's SigV4QueryAuth, service
    iotdevicegateway, as the AWS SDKs do. `token_after_signing` appends the session token
    unsigned, as the AWS IoT Device SDK v1 does."""
    request = AWSRequest(method="GET", url=f"wss://{host}:{port}/mqtt")
    signed_token = None if token_after_signing else token
    auth = SigV4QueryAuth(Credentials(access_key, secret, signed_token), "iotdevicegateway", region, expires=300)
    auth.add_auth(request)
    url = request.url
    if token_after_signing and token:
        url += "&X-Amz-Security-Token=" + urllib.parse.quote(token, safe="")
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}"


def ws_device(devices, server, folder, client_id, path="/mqtt", headers=None, version=V5):
    return devices(alpn_port(server), client_id, ca=ca_file(server, folder), transport="websockets",
                   ws_path=path, ws_headers=headers, version=version)


# SigV4 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V3, V5])
def test_presigned_url_connects_and_round_trips(localiot_server, tmp_path, devices, version):
    path = presigned_path(alpn_port(localiot_server), "AKIDEXAMPLE", "any-secret-works-unless-strict")
    device = ws_device(devices, localiot_server, tmp_path, "ws-client", path, version=version).connect_ok()
    assert device.subscribe("ws/+/t") == [1]
    device.publish("ws/a/t", b"over websocket")
    assert device.expect("ws/a/t").payload == b"over websocket"


def test_websocket_without_credentials_is_refused(localiot_server, tmp_path, devices):
    assert ws_device(devices, localiot_server, tmp_path, "anonymous").connect() == NOT_AUTHORIZED


@pytest.fixture
def strict_server(localiot_servers):
    credentials = f"{STRICT_KEY}:{STRICT_SECRET},{OTHER_ACCOUNT}:other-secret"
    return localiot_servers.get(strict_signatures=True, credentials=credentials)


@pytest.mark.parametrize("token,after", [(None, False), ("session-token/with+chars=", False),
                                         ("session-token/with+chars=", True)])
def test_strict_mode_verifies_the_signature(strict_server, tmp_path, devices, token, after):
    port = alpn_port(strict_server)
    good = presigned_path(port, STRICT_KEY, STRICT_SECRET, token=token, token_after_signing=after)
    device = ws_device(devices, strict_server, tmp_path, "strict-ok", good).connect_ok()
    assert device.publish("strict/t", b"x") == 0
    wrong = presigned_path(port, STRICT_KEY, "not-the-secret", token=token, token_after_signing=after)
    assert ws_device(devices, strict_server, tmp_path, "strict-bad", wrong).connect() is None  # HTTP 403
    unknown = presigned_path(port, "AKIDUNKNOWN", STRICT_SECRET)
    assert ws_device(devices, strict_server, tmp_path, "strict-unknown", unknown).connect() is None


def test_strict_mode_refuses_an_expired_url(strict_server, tmp_path, devices):
    path = presigned_path(alpn_port(strict_server), STRICT_KEY, STRICT_SECRET)
    move_clock(strict_server, advance=600)  # past X-Amz-Expires=300
    try:
        assert ws_device(devices, strict_server, tmp_path, "late", path).connect() is None
    finally:
        move_clock(strict_server, reset=True)
    ws_device(devices, strict_server, tmp_path, "in-time", path).connect_ok()


def test_the_access_key_selects_the_account(strict_server, tmp_path, devices):
    port = alpn_port(strict_server)
    default = ws_device(devices, strict_server, tmp_path, "default-account",
                        presigned_path(port, STRICT_KEY, STRICT_SECRET)).connect_ok()
    other = ws_device(devices, strict_server, tmp_path, "other-account",
                      presigned_path(port, OTHER_ACCOUNT, "other-secret")).connect_ok()
    other_too = ws_device(devices, strict_server, tmp_path, "other-account-2",
                          presigned_path(port, OTHER_ACCOUNT, "other-secret")).connect_ok()
    default.subscribe("shared/topic")
    other_too.subscribe("shared/topic")
    other.publish("shared/topic", b"account 111122223333 only")
    assert other_too.expect("shared/topic").payload == b"account 111122223333 only"
    default.expect_none()


# custom authorizers --------------------------------------------------------------------
CUSTOM_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
     "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/custom/*"},
    {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topicfilter/custom/*"},
]}


class FakeLambda(ThreadingHTTPServer):
    """The Lambda Invoke API for one authorizer function: "allow" (token or password) is let in."""

    daemon_threads = True

    def __init__(self):
        self.events: list[dict] = []
        super().__init__(("127.0.0.1", 0), _LambdaHandler)

    def answer(self, event: dict) -> dict:
        password = ((event.get("protocolData") or {}).get("mqtt") or {}).get("password")
        allowed = event.get("token") == "allow" or (password and base64.b64decode(password) == b"allow")
        if not allowed:
            return {"isAuthenticated": False, "principalId": "nobody", "disconnectAfterInSeconds": 300,
                    "refreshAfterInSeconds": 300, "policyDocuments": []}
        return {"isAuthenticated": True, "principalId": "customPrincipal", "disconnectAfterInSeconds": 300,
                "refreshAfterInSeconds": 600, "policyDocuments": [json.dumps(CUSTOM_POLICY)]}


class _LambdaHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        event = json.loads(body)
        self.server.events.append({"path": urllib.parse.unquote(self.path), **event})
        reply = json.dumps(self.server.answer(event)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


AUTHORIZER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def fake_lambda():
    fake = FakeLambda()
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.shutdown()


@pytest.fixture
def authorizer_server(localiot_servers, fake_lambda):
    """A localiot whose Lambda calls reach FakeLambda, with two authorizers: "signed"
    (token signatures checked) and "open" (signing disabled)."""
    server = localiot_servers.get(aws_endpoint_url=f"http://127.0.0.1:{fake_lambda.server_address[1]}")
    public = AUTHORIZER_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    iot = make_client(server)
    iot.create_authorizer(authorizerName="signed", authorizerFunctionArn=FUNCTION, tokenKeyName="token",
                          tokenSigningPublicKeys={"key1": public}, status="ACTIVE")
    iot.create_authorizer(authorizerName="open", authorizerFunctionArn=FUNCTION, status="ACTIVE",
                          signingDisabled=True)
    server.fake = fake_lambda
    server.iot = iot
    server.sign = lambda token: base64.b64encode(
        AUTHORIZER_KEY.sign(token.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    return server


def _last_event(server) -> dict:
    assert server.fake.events, "the authorizer was not invoked"
    return server.fake.events[-1]


def test_custom_authorizer_over_websocket_headers(authorizer_server, tmp_path, devices):
    server = authorizer_server
    headers = {"x-amz-customauthorizer-name": "signed", "x-amz-customauthorizer-signature": server.sign("allow"),
               "token": "allow"}
    device = ws_device(devices, server, tmp_path, "custom-ws", headers=headers).connect_ok()
    event = _last_event(server)
    assert event["path"] == f"/2015-03-31/functions/{FUNCTION}/invocations"
    assert event["token"] == "allow" and event["signatureVerified"] is True
    assert "http" in event["protocols"] and "mqtt" in event["protocols"]
    assert event["protocolData"]["mqtt"]["clientId"] == "custom-ws"
    assert event["protocolData"]["http"]["headers"]["token"] == "allow"
    assert device.subscribe("custom/#") == [1]
    assert device.publish("custom/1", b"x") == 0
    assert device.expect("custom/1").payload == b"x"
    assert device.publish("other/1", b"x") == NOT_AUTHORIZED  # the Lambda's policy applies


def test_custom_authorizer_over_websocket_query_parameters(authorizer_server, tmp_path, devices):
    server = authorizer_server
    query = urllib.parse.urlencode({"x-amz-customauthorizer-name": "signed",
                                    "x-amz-customauthorizer-signature": server.sign("allow"), "token": "allow"})
    device = ws_device(devices, server, tmp_path, "custom-query", f"/mqtt?{query}").connect_ok()
    assert device.publish("custom/q", b"x") == 0


def test_custom_authorizer_refusals(authorizer_server, tmp_path, devices):
    server = authorizer_server
    bad_signature = {"x-amz-customauthorizer-name": "signed", "token": "allow",
                     "x-amz-customauthorizer-signature": server.sign("something else")}
    calls = len(server.fake.events)
    assert ws_device(devices, server, tmp_path, "bad-sig", headers=bad_signature).connect() == NOT_AUTHORIZED
    assert len(server.fake.events) == calls  # refused before the Lambda is called
    denied = {"x-amz-customauthorizer-name": "signed", "token": "deny",
              "x-amz-customauthorizer-signature": server.sign("deny")}
    assert ws_device(devices, server, tmp_path, "denied", headers=denied).connect() == NOT_AUTHORIZED
    missing = {"x-amz-customauthorizer-name": "no-such-authorizer", "token": "allow"}
    assert ws_device(devices, server, tmp_path, "missing", headers=missing).connect() == NOT_AUTHORIZED


@pytest.mark.parametrize("version", [V3, V5])
def test_custom_authorizer_over_mqtt_with_alpn_mqtt(authorizer_server, tmp_path, devices, version):
    server = authorizer_server
    port = alpn_port(server)
    device = devices(port, "custom-mqtt", ca=ca_file(server, tmp_path), alpn=["mqtt"], version=version,
                     host="localhost", username="device-user?x-amz-customauthorizer-name=open", password="allow")
    assert device.connect() == 0
    event = _last_event(server)
    mqtt_data = event["protocolData"]["mqtt"]
    assert mqtt_data["username"] == "device-user?x-amz-customauthorizer-name=open"
    assert base64.b64decode(mqtt_data["password"]) == b"allow" and mqtt_data["clientId"] == "custom-mqtt"
    assert event["protocolData"]["tls"]["serverName"] == "localhost"
    assert event["signatureVerified"] is False
    assert device.publish("custom/mqtt", b"x") == 0
    refused = devices(port, "custom-refused", ca=ca_file(server, tmp_path), alpn=["mqtt"], version=version,
                      username="device-user?x-amz-customauthorizer-name=open", password="wrong")
    assert refused.connect() == NOT_AUTHORIZED


def test_default_authorizer_and_disconnect_after(authorizer_server, tmp_path, devices):
    server = authorizer_server
    server.iot.set_default_authorizer(authorizerName="open")
    try:
        device = devices(alpn_port(server), "by-default", ca=ca_file(server, tmp_path), alpn=["mqtt"],
                         username="plain-user", password="allow").connect_ok()
        assert device.publish("custom/d", b"x") == 0
        move_clock(server, advance=301)  # past disconnectAfterInSeconds
        assert device.wait_closed(WAIT)
        assert device.disconnect_reason == 0xA0  # Maximum connect time
    finally:
        move_clock(server, reset=True)
        server.iot.clear_default_authorizer()


def test_https_publish_with_a_custom_authorizer(authorizer_server, tmp_path, devices):
    import ssl

    server = authorizer_server
    ca = ca_file(server, tmp_path)
    headers = {"x-amz-customauthorizer-name": "signed", "x-amz-customauthorizer-signature": server.sign("allow"),
               "token": "allow"}
    listener = ws_device(devices, server, tmp_path, "https-listener", headers=headers).connect_ok()
    listener.subscribe("custom/#")
    context = ssl.create_default_context(cafile=ca)
    request = urllib.request.Request(f"https://127.0.0.1:{alpn_port(server)}/topics/custom/https?qos=1",
                                     data=b"via https", method="POST", headers=headers)
    with urllib.request.urlopen(request, context=context, timeout=WAIT) as response:
        assert json.load(response)["message"] == "OK"
    assert listener.expect("custom/https").payload == b"via https"
