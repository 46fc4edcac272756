"""Bad input never answers 500 (issue 11 item 18): JSON nested past any limit,
lone UTF-16 surrogates and non-UTF-8 bytes are refused once, where requests
are parsed, with the service's validation error, and change nothing; what
aiohttp refuses before localiot's code (a header over 8 KB, a request line
that is not HTTP, a body over the limit) answers in the service's JSON error
format without a traceback in the log. The model-driven fuzz of every
operation is tests/test_fuzz_api.py."""

import base64
import http.client
import json
import logging
import socket

import pytest
from botocore.exceptions import ClientError

from localiot.testing import ACCOUNT, error_of, make_client

DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000
SIGNED = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=00"


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def tracebacks(self):
        return [r.getMessage() for r in self.records if r.exc_info]


@pytest.fixture
def records():
    handler = Records()
    root, protocol = logging.getLogger(), logging.getLogger("localiot.protocol")
    level = protocol.level
    protocol.setLevel(logging.INFO)
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    protocol.setLevel(level)


def request(server, method, path, body=b"", headers=None, signing="iot"):
    host, port = server.endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in {"Authorization": SIGNED.format(signing), **(headers or {})}.items():
        conn.putheader(name, value)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    answer = response.status, response.getheader("x-amzn-ErrorType"), json.loads(response.read() or b"null")
    conn.close()
    return answer


def raw_exchange(server, data: bytes) -> tuple[int, dict, dict]:
    """Bytes no HTTP client would send; (status, headers, JSON body) of the answer."""
    host, port = server.endpoint.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body)


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array-100000", "object-5000"])
@pytest.mark.parametrize("method,path,signing,error", [
    ("POST", "/things/deep", "iot", "InvalidRequestException"),
    ("POST", "/managed-things", "iotmanagedintegrations", "ValidationException"),
    ("POST", "/things/deep/jobs/$next", "iot-jobs-data", "InvalidRequestException"),
])
def test_deeply_nested_bodies_get_the_validation_error(localiot_server, iot, records, body, method, path, signing,
                                                       error):
    status, error_type, document = request(localiot_server, method, path, body, signing=signing)
    assert (status, error_type) == (400, error)
    assert "nests JSON deeper than 100 levels" in (document.get("message") or document.get("Message"))
    assert iot.list_things()["things"] == []
    assert records.tracebacks() == []


def test_nesting_up_to_the_cap_is_fine(localiot_server, iot):
    attributes = {"a": "1"}
    status, _, _ = request(localiot_server, "POST", "/things/t", json.dumps(
        {"attributePayload": {"attributes": attributes}, "x": [[[[[[[[[[1]]]]]]]]]]}).encode())
    assert status == 200
    assert iot.describe_thing(thingName="t")["attributes"] == attributes


def test_lone_surrogates_in_body_strings_are_refused(iot, localiot_server, records):
    with pytest.raises(ClientError) as info:
        iot.create_thing(thingName="t", attributePayload={"attributes": {"a": "\ud800"}})
    assert error_of(info) == ("InvalidRequestException", 400)
    assert iot.list_things()["things"] == []
    assert info.value.response["Error"]["Message"] == (
        "1 validation error detected: Value at 'attributePayload.attributes.a' failed to satisfy constraint: "
        "Member must be valid Unicode text (no lone UTF-16 surrogates)")
    arn = iot.create_thing_group(thingGroupName="g")["thingGroupArn"]
    for tags in ([{"Key": "\udfff", "Value": "v"}], [{"Key": "k", "Value": "x\ud800y"}]):
        with pytest.raises(ClientError) as info:
            iot.tag_resource(resourceArn=arn, tags=tags)
        assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        iot.create_policy(policyName="p", policyDocument='{"Version": "2012-10-17", "Statement": "\ud800"}')
    assert error_of(info) == ("InvalidRequestException", 400)
    # A surrogate pair is one character (an emoji) and is fine.
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "k", "Value": "\U0001f600"}])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "k", "Value": "\U0001f600"}]
    mi = make_client(localiot_server, "iot-managed-integrations")
    with pytest.raises(ClientError) as info:
        mi.create_managed_thing(Role="DEVICE", AuthenticationMaterial="x", AuthenticationMaterialType="ZWAVE_QR_BAR_CODE",
                                MetaData={"k": "\ud800"})
    assert error_of(info) == ("ValidationException", 400)
    assert records.tracebacks() == []


def test_json_in_a_header(localiot_server, records):
    data = make_client(localiot_server, "iot-data")
    with pytest.raises(ClientError) as info:
        data.publish(topic="t/1", payload=b"x", userProperties=[{"k": "\ud800"}])
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "at 'userProperties'" in info.value.response["Error"]["Message"]
    deep = base64.b64encode(b"[" * 2500 + b"]" * 2500).decode()
    status, error_type, document = request(localiot_server, "POST", "/topics/t%2F1", b"x",
                                           {"x-amz-mqtt5-user-properties": deep}, signing="iotdata")
    assert (status, error_type) == (400, "InvalidRequestException")
    assert "at 'userProperties'" in document["message"]
    data.publish(topic="t/1", payload=b"x", userProperties=[{"k": "v"}])
    assert records.tracebacks() == []


def test_non_utf8_header_bytes_are_refused(localiot_server, records):
    status, error_type, document = request(localiot_server, "POST", "/topics/t", b"x",
                                           {"x-amz-mqtt5-correlation-data": b"\xff\xfe"}, signing="iotdata")
    assert (status, error_type) == (400, "InvalidRequestException")
    assert "at 'correlationData'" in document["message"]
    # Non-UTF-8 bytes in the credential scope's region: no region at all.
    status, error_type, document = request(localiot_server, "POST", "/things/t", b"{}", {
        "Authorization": b"AWS4-HMAC-SHA256 Credential=testing/20260101/us-\xff/iot/aws4_request, "
                         b"SignedHeaders=host, Signature=00"})
    assert (status, error_type) == (403, "InvalidSignatureException")
    assert document == {"message": "Credential should be scoped to a valid region. "}
    assert records.tracebacks() == []


def test_requests_aiohttp_refuses_answer_in_json_without_a_traceback(localiot_server, iot, records):
    status, headers, document = raw_exchange(
        localiot_server, b"GET /things HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
    assert (status, headers["x-amzn-errortype"], headers["content-type"]) == (
        400, "InvalidRequestException", "application/json")
    assert document["message"].startswith("Malformed HTTP request: ")
    status, headers, document = raw_exchange(localiot_server, b"NOT HTTP AT ALL\r\n\r\n")
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidRequestException")
    assert "x-amzn-requestid" in headers
    big = b"{" + b" " * (1024 * 1024) + b"}"
    status, headers, document = raw_exchange(
        localiot_server, b"POST /things/big HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
        % len(big) + big)
    assert (status, headers["x-amzn-errortype"]) == (413, "RequestEntityTooLargeException")
    assert document == {"message": "The request body exceeds the maximum size of 1048576 bytes"}
    assert iot.list_things()["things"] == []
    assert records.tracebacks() == []
    refused = [r.getMessage() for r in records.records if r.name == "localiot.protocol"]
    assert len(refused) == 3 and all(m.startswith("refused a") for m in refused), refused


def test_a_published_lone_surrogate_does_not_drop_the_message(iot, devices):
    iot.create_topic_rule(ruleName="echo", topicRulePayload={
        "sql": "SELECT *, 'ok' AS seen FROM 'in/text'", "awsIotSqlVersion": "2016-03-23", "ruleDisabled": False,
        "actions": [{"republish": {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/r", "topic": "out/text", "qos": 1}}]})
    client = devices.plain()
    client.subscribe("out/text")
    client.publish("in/text", b'{"name": "a\\ud800b", "\\udc00": 1, "ok": "\\ud83d\\ude00"}')
    message = client.expect(timeout=10)
    assert json.loads(message.payload) == {"name": "a\ufffdb", "\ufffd": 1, "ok": "\U0001f600", "seen": "ok"}


def test_a_deeply_nested_template_body_is_a_validation_error_not_a_500(iot):
    deep = "[" * 5000 + "]" * 5000
    for call in (lambda: iot.register_thing(templateBody=deep),
                 lambda: iot.create_provisioning_template(templateName="deep", templateBody=deep,
                                                          provisioningRoleArn=f"arn:aws:iam::{ACCOUNT}:role/r")):
        with pytest.raises(ClientError) as info:
            call()
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "nested deeper than" in info.value.response["Error"]["Message"]
    assert iot.list_provisioning_templates()["templates"] == []


@pytest.mark.parametrize("authorization, reason", [
    (None, "no Authorization header and no presigned X-Amz-Credential"),
    ("Bearer abc", "its Authorization header is not 'AWS4-HMAC-SHA256 Credential="),
    ("AWS4-HMAC-SHA256 Credential=testing/us-east-1/iot, SignedHeaders=host, Signature=00",
     "its credential scope has 3 parts, not 5"),
])
def test_why_an_unsigned_request_was_accepted_is_logged_at_debug(localiot_server, authorization, reason):
    """Issue 11 item 6: outside strict mode a request without a readable SigV4 scope is
    answered as the default account; at DEBUG the server says why it accepted it."""
    protocol = logging.getLogger("localiot.protocol")
    handler, level = Records(), protocol.level
    protocol.addHandler(handler)
    protocol.setLevel(logging.DEBUG)
    try:
        headers = {"Authorization": authorization} if authorization else {}
        host, port = localiot_server.endpoint.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/things", headers=headers)
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read()) == {"things": []}
        conn.close()
    finally:
        protocol.removeHandler(handler)
        protocol.setLevel(level)
    [line] = [r.getMessage() for r in handler.records if r.levelno == logging.DEBUG and "unsigned" in r.getMessage()]
    assert line.startswith("accepted GET /things unsigned (not --strict-signatures): ") and reason in line, line
    assert f"account {ACCOUNT}" in line
