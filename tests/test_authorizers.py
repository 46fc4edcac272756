"""Custom authorizers: CRUD, default authorizer, and TestInvokeAuthorizer against a
stand-in for the Lambda Invoke API on a local port."""

import base64
import json
import re
import threading
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from localiot.services.security import authorizers
from localiot.testing import ACCOUNT, advance, error_of, make_client

FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:auth"
OTHER_FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:auth2"


def _public_pem(private) -> str:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = _public_pem(KEY)
OTHER_PEM = _public_pem(OTHER_KEY)
SMALL_PEM = _public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
EC_PEM = _public_pem(ec.generate_private_key(ec.SECP256R1()))


def sign(token: str, key=KEY) -> str:
    return base64.b64encode(key.sign(token.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def create(iot, name="auth", **kw):
    kw.setdefault("authorizerFunctionArn", FUNCTION)
    if not kw.get("signingDisabled"):
        kw.setdefault("tokenKeyName", "token")
        kw.setdefault("tokenSigningPublicKeys", {"main": PEM})
    return iot.create_authorizer(authorizerName=name, **kw)


# CRUD ----------------------------------------------------------------------------
def test_create_and_describe(iot):
    out = create(iot, "auth", tags=[{"Key": "team", "Value": "a"}], enableCachingForHttp=True)
    assert out["authorizerName"] == "auth"
    assert out["authorizerArn"] == f"arn:aws:iot:us-east-1:{ACCOUNT}:authorizer/auth"
    desc = iot.describe_authorizer(authorizerName="auth")["authorizerDescription"]
    assert desc["authorizerName"] == "auth"
    assert desc["authorizerArn"] == out["authorizerArn"]
    assert desc["authorizerFunctionArn"] == FUNCTION
    assert desc["tokenKeyName"] == "token"
    assert desc["tokenSigningPublicKeys"] == {"main": PEM}
    assert desc["status"] == "ACTIVE"
    assert desc["signingDisabled"] is False
    assert desc["enableCachingForHttp"] is True
    assert desc["creationDate"] == desc["lastModifiedDate"]
    assert desc["creationDate"].year >= 2024
    assert iot.list_tags_for_resource(resourceArn=out["authorizerArn"])["tags"] == [{"Key": "team", "Value": "a"}]


def test_create_without_signing_needs_no_keys(iot):
    create(iot, "plain", signingDisabled=True, status="INACTIVE")
    desc = iot.describe_authorizer(authorizerName="plain")["authorizerDescription"]
    assert desc["signingDisabled"] is True
    assert desc["status"] == "INACTIVE"
    assert desc["enableCachingForHttp"] is False
    assert "tokenSigningPublicKeys" not in desc
    assert "tokenKeyName" not in desc


def test_create_duplicate(iot):
    out = create(iot, "auth")
    with pytest.raises(ClientError) as info:
        create(iot, "auth")
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)
    assert info.value.response["resourceArn"] == out["authorizerArn"]


@pytest.mark.parametrize("keys,fragment", [
    ({"k": "not a key"}, "not a valid PEM-encoded public key"),
    ({"k": SMALL_PEM}, "minimum is 2048 bits"),
    ({"k": EC_PEM}, "not an RSA public key"),
    ({"good": PEM, "bad": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}, "bad"),
])
def test_create_rejects_bad_public_keys(iot, keys, fragment):
    with pytest.raises(ClientError) as info:
        create(iot, "auth", tokenSigningPublicKeys=keys)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert fragment in info.value.response["Error"]["Message"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_authorizer(authorizerName="auth")


def test_pkcs1_public_key_is_accepted(iot):
    pkcs1 = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    create(iot, "auth", tokenSigningPublicKeys={"k": pkcs1})
    assert iot.describe_authorizer(authorizerName="auth")["authorizerDescription"]["tokenSigningPublicKeys"] == {"k": pkcs1}


@pytest.mark.parametrize("missing", ["tokenKeyName", "tokenSigningPublicKeys"])
def test_signing_enabled_requires_key_name_and_keys(iot, missing):
    kw = {"authorizerFunctionArn": FUNCTION, "tokenKeyName": "token", "tokenSigningPublicKeys": {"k": PEM}}
    del kw[missing]
    with pytest.raises(ClientError) as info:
        iot.create_authorizer(authorizerName="auth", **kw)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert missing in info.value.response["Error"]["Message"]


def test_function_arn_must_be_a_lambda_arn(iot):
    with pytest.raises(ClientError) as info:
        create(iot, "auth", authorizerFunctionArn="arn:aws:sqs:us-east-1:123456789012:queue")
    assert error_of(info) == ("InvalidRequestException", 400)


def test_name_validation(iot):
    with pytest.raises(ClientError) as info:
        create(iot, "bad name")
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "[\\w=,@-]+" in info.value.response["Error"]["Message"]


def test_describe_missing(iot):
    with pytest.raises(ClientError) as info:
        iot.describe_authorizer(authorizerName="ghost")
    assert error_of(info) == ("ResourceNotFoundException", 404)


def test_update(localiot_server, iot):
    create(iot, "auth")
    created = iot.describe_authorizer(authorizerName="auth")["authorizerDescription"]
    advance(localiot_server, 60)
    out = iot.update_authorizer(authorizerName="auth", authorizerFunctionArn=OTHER_FUNCTION, status="INACTIVE",
                                tokenKeyName="other", tokenSigningPublicKeys={"a": PEM, "b": OTHER_PEM},
                                enableCachingForHttp=True)
    assert out == {**out, "authorizerName": "auth", "authorizerArn": created["authorizerArn"]}
    desc = iot.describe_authorizer(authorizerName="auth")["authorizerDescription"]
    assert desc["authorizerFunctionArn"] == OTHER_FUNCTION
    assert desc["status"] == "INACTIVE"
    assert desc["tokenKeyName"] == "other"
    assert desc["tokenSigningPublicKeys"] == {"a": PEM, "b": OTHER_PEM}
    assert desc["enableCachingForHttp"] is True
    assert desc["creationDate"] == created["creationDate"]
    assert (desc["lastModifiedDate"] - created["lastModifiedDate"]).total_seconds() >= 59
    # Fields left out stay as they are.
    iot.update_authorizer(authorizerName="auth", status="ACTIVE")
    desc = iot.describe_authorizer(authorizerName="auth")["authorizerDescription"]
    assert desc["status"] == "ACTIVE"
    assert desc["authorizerFunctionArn"] == OTHER_FUNCTION
    assert desc["tokenSigningPublicKeys"] == {"a": PEM, "b": OTHER_PEM}


def test_update_errors(iot):
    with pytest.raises(ClientError) as info:
        iot.update_authorizer(authorizerName="ghost", status="INACTIVE")
    assert error_of(info) == ("ResourceNotFoundException", 404)
    create(iot, "auth")
    with pytest.raises(ClientError) as info:
        iot.update_authorizer(authorizerName="auth", tokenSigningPublicKeys={"k": SMALL_PEM})
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        iot.update_authorizer(authorizerName="auth", tokenSigningPublicKeys={})
    assert error_of(info) == ("InvalidRequestException", 400)
    assert iot.describe_authorizer(authorizerName="auth")["authorizerDescription"]["tokenSigningPublicKeys"] == {"main": PEM}


def test_delete_rules(iot):
    out = create(iot, "auth")
    with pytest.raises(ClientError) as info:
        iot.delete_authorizer(authorizerName="auth")
    assert error_of(info) == ("DeleteConflictException", 409)
    assert "ACTIVE" in info.value.response["Error"]["Message"]
    iot.update_authorizer(authorizerName="auth", status="INACTIVE")
    iot.set_default_authorizer(authorizerName="auth")
    with pytest.raises(ClientError) as info:
        iot.delete_authorizer(authorizerName="auth")
    assert error_of(info) == ("DeleteConflictException", 409)
    assert "default" in info.value.response["Error"]["Message"]
    iot.clear_default_authorizer()
    iot.create_domain_configuration(domainConfigurationName="dc", authorizerConfig={"defaultAuthorizerName": "auth"})
    with pytest.raises(ClientError) as info:
        iot.delete_authorizer(authorizerName="auth")
    assert error_of(info) == ("DeleteConflictException", 409)
    assert "dc" in info.value.response["Error"]["Message"]
    iot.update_domain_configuration(domainConfigurationName="dc", removeAuthorizerConfig=True)
    iot.delete_authorizer(authorizerName="auth")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_authorizer(authorizerName="auth")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_tags_for_resource(resourceArn=out["authorizerArn"])
    with pytest.raises(ClientError) as info:
        iot.delete_authorizer(authorizerName="auth")
    assert error_of(info) == ("ResourceNotFoundException", 404)


def test_list_order_filter_and_pages(iot):
    for name in ["c", "a", "e", "b", "d"]:
        create(iot, name, signingDisabled=True, status="INACTIVE" if name in "bd" else "ACTIVE")
    names = lambda out: [a["authorizerName"] for a in out["authorizers"]]
    everything = iot.list_authorizers()
    assert names(everything) == ["a", "b", "c", "d", "e"]
    assert "nextMarker" not in everything
    assert everything["authorizers"][0] == {"authorizerName": "a",
                                            "authorizerArn": f"arn:aws:iot:us-east-1:{ACCOUNT}:authorizer/a"}
    assert names(iot.list_authorizers(ascendingOrder=True)) == ["a", "b", "c", "d", "e"]
    assert names(iot.list_authorizers(ascendingOrder=False)) == ["e", "d", "c", "b", "a"]
    assert names(iot.list_authorizers(status="INACTIVE")) == ["b", "d"]
    assert names(iot.list_authorizers(status="ACTIVE", ascendingOrder=False)) == ["e", "c", "a"]

    def walk(**kw):
        seen, pages, marker = [], 0, None
        while True:
            out = iot.list_authorizers(pageSize=2, **kw, **({"marker": marker} if marker else {}))
            seen += names(out)
            pages += 1
            marker = out.get("nextMarker")
            if not marker:
                return seen, pages

    assert walk() == (["a", "b", "c", "d", "e"], 3)
    assert walk(ascendingOrder=False) == (["e", "d", "c", "b", "a"], 3)
    assert walk(status="ACTIVE") == (["a", "c", "e"], 2)
    first = iot.list_authorizers(pageSize=2)
    assert re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", first["nextMarker"])
    paginated = [a["authorizerName"] for page in iot.get_paginator("list_authorizers").paginate(PaginationConfig={"PageSize": 2})
                 for a in page["authorizers"]]
    assert paginated == ["a", "b", "c", "d", "e"]
    with pytest.raises(ClientError) as info:
        iot.list_authorizers(marker="!!!")
    assert error_of(info) == ("InvalidRequestException", 400)


def test_default_authorizer(iot):
    with pytest.raises(ClientError) as info:
        iot.describe_default_authorizer()
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.clear_default_authorizer()
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.set_default_authorizer(authorizerName="ghost")
    assert error_of(info) == ("ResourceNotFoundException", 404)
    one = create(iot, "one")
    create(iot, "two", signingDisabled=True)
    out = iot.set_default_authorizer(authorizerName="one")
    assert out["authorizerName"] == "one" and out["authorizerArn"] == one["authorizerArn"]
    desc = iot.describe_default_authorizer()["authorizerDescription"]
    assert desc["authorizerName"] == "one"
    assert desc["tokenSigningPublicKeys"] == {"main": PEM}
    with pytest.raises(ClientError) as info:
        iot.set_default_authorizer(authorizerName="one")
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)
    assert info.value.response["resourceArn"] == one["authorizerArn"]
    iot.set_default_authorizer(authorizerName="two")
    assert iot.describe_default_authorizer()["authorizerDescription"]["authorizerName"] == "two"
    iot.clear_default_authorizer()
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_default_authorizer()


def test_tag_untag(iot):
    arn = create(iot, "auth")["authorizerArn"]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    iot.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]


# TestInvokeAuthorizer ----------------------------------------------------------------
class FakeLambda:
    """Answers POST /2015-03-31/functions/{name}/invocations like Lambda's Invoke API."""

    def __init__(self):
        self.invocations: list[tuple[str, dict]] = []
        self.behaviour: dict = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.split("?")[0].split("/")
                if len(parts) != 5 or parts[1] != "2015-03-31" or parts[2] != "functions" or parts[4] != "invocations":
                    return self._reply(404, {"x-amzn-ErrorType": "UnknownOperationException"}, b"{}")
                name = urllib.parse.unquote(parts[3])
                fake.invocations.append((name, json.loads(body)))
                action = fake.behaviour.get(name)
                if action is None:
                    return self._reply(404, {"x-amzn-ErrorType": "ResourceNotFoundException"},
                                       json.dumps({"Type": "User", "Message": f"Function not found: {name}"}).encode())
                status, headers, payload = action(json.loads(body))
                self._reply(status, headers, payload)

            def _reply(self, status, headers, payload):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def returns(self, function, answer):
        payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.behaviour[function] = lambda event: (200, {"X-Amz-Executed-Version": "$LATEST"}, payload)

    def fails(self, function, message="boom"):
        payload = json.dumps({"errorMessage": message, "errorType": "Error"}).encode()
        self.behaviour[function] = lambda event: (200, {"X-Amz-Function-Error": "Unhandled"}, payload)


ALLOW = {
    "isAuthenticated": True,
    "principalId": "device42",
    "disconnectAfterInSeconds": 3600,
    "refreshAfterInSeconds": 600,
    "policyDocuments": [json.dumps({"Version": "2012-10-17", "Statement": [
        {"Action": "iot:Connect", "Effect": "Allow", "Resource": "*"}]})],
}


@pytest.fixture(scope="module")
def lambda_endpoint():
    fake = FakeLambda()
    fake.thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


@pytest.fixture(scope="module")
def localiot_settings(lambda_endpoint):
    return {"aws_endpoint_url": lambda_endpoint.url}


@pytest.fixture
def fake_lambda(lambda_endpoint):
    lambda_endpoint.invocations.clear()
    lambda_endpoint.behaviour.clear()
    return lambda_endpoint


def test_invoke_with_valid_signature(iot, fake_lambda):
    create(iot, "auth", tokenSigningPublicKeys={"old": OTHER_PEM, "new": PEM})
    fake_lambda.returns(FUNCTION, ALLOW)
    token = "allow-me"
    out = iot.test_invoke_authorizer(
        authorizerName="auth", token=token, tokenSignature=sign(token),
        httpContext={"headers": {"token": token, "x-amz-customauthorizer-name": "auth"}, "queryString": "?a=1"},
        mqttContext={"username": "user", "password": b"s3cret", "clientId": "client-1"},
        tlsContext={"serverName": "example.com"},
    )
    assert out["isAuthenticated"] is True
    assert out["principalId"] == "device42"
    assert out["disconnectAfterInSeconds"] == 3600
    assert out["refreshAfterInSeconds"] == 600
    assert out["policyDocuments"] == ALLOW["policyDocuments"]
    [(function, event)] = fake_lambda.invocations
    assert function == FUNCTION
    assert event["token"] == token
    assert event["signatureVerified"] is True
    assert event["protocols"] == ["tls", "http", "mqtt"]
    assert event["protocolData"] == {
        "tls": {"serverName": "example.com"},
        "http": {"headers": {"token": token, "x-amz-customauthorizer-name": "auth"}, "queryString": "?a=1"},
        "mqtt": {"username": "user", "password": base64.b64encode(b"s3cret").decode(), "clientId": "client-1"},
    }
    assert str(uuid.UUID(event["connectionMetadata"]["id"])) == event["connectionMetadata"]["id"]


@pytest.mark.parametrize("token,signature", [
    ("tampered", sign("original")),
    ("original", sign("original", OTHER_KEY)),
    ("original", base64.b64encode(b"not a signature").decode()),
])
def test_bad_signature_is_refused_before_lambda(iot, fake_lambda, token, signature):
    create(iot, "auth")
    fake_lambda.returns(FUNCTION, ALLOW)
    with pytest.raises(ClientError) as info:
        iot.test_invoke_authorizer(authorizerName="auth", token=token, tokenSignature=signature)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "signature" in info.value.response["Error"]["Message"]
    assert fake_lambda.invocations == []


def test_signing_enabled_needs_token_and_signature(iot, fake_lambda):
    create(iot, "auth")
    fake_lambda.returns(FUNCTION, ALLOW)
    with pytest.raises(ClientError) as info:
        iot.test_invoke_authorizer(authorizerName="auth", token="t")
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        iot.test_invoke_authorizer(authorizerName="auth", mqttContext={"username": "u"})
    assert error_of(info) == ("InvalidRequestException", 400)
    assert fake_lambda.invocations == []


def test_signing_disabled_passes_mqtt_credentials(iot, fake_lambda):
    create(iot, "auth", signingDisabled=True)
    fake_lambda.returns(FUNCTION, {**ALLOW, "policyDocuments": [
        {"Version": "2012-10-17", "Statement": [{"Action": "iot:Publish", "Effect": "Allow", "Resource": "*"}]}]})
    out = iot.test_invoke_authorizer(authorizerName="auth",
                                      mqttContext={"username": "user?x-amz-customauthorizer-name=auth",
                                                   "password": b"\x00\x01pw"})
    # Policy objects from the function come back as JSON strings.
    assert [json.loads(doc) for doc in out["policyDocuments"]] == [
        {"Version": "2012-10-17", "Statement": [{"Action": "iot:Publish", "Effect": "Allow", "Resource": "*"}]}]
    [(_, event)] = fake_lambda.invocations
    assert "token" not in event
    assert event["signatureVerified"] is False
    assert event["protocols"] == ["mqtt"]
    assert event["protocolData"] == {"mqtt": {"username": "user?x-amz-customauthorizer-name=auth",
                                              "password": base64.b64encode(b"\x00\x01pw").decode()}}


def test_denied(iot, fake_lambda):
    create(iot, "auth", signingDisabled=True)
    fake_lambda.returns(FUNCTION, {"isAuthenticated": False})
    out = iot.test_invoke_authorizer(authorizerName="auth", token="nope")
    assert out["isAuthenticated"] is False
    assert "principalId" not in out
    assert "policyDocuments" not in out
    assert "disconnectAfterInSeconds" not in out
    [(_, event)] = fake_lambda.invocations
    assert event["token"] == "nope" and event["protocols"] == []


def test_disconnect_defaults_to_a_day(iot, fake_lambda):
    create(iot, "auth", signingDisabled=True)
    fake_lambda.returns(FUNCTION, {"isAuthenticated": True, "principalId": "p1", "policyDocuments": []})
    out = iot.test_invoke_authorizer(authorizerName="auth", token="t")
    assert out["disconnectAfterInSeconds"] == 86400
    assert out["policyDocuments"] == []
    assert "refreshAfterInSeconds" not in out


@pytest.mark.parametrize("answer,fragment", [
    ({**ALLOW, "isAuthenticated": "true"}, "isAuthenticated"),
    ({k: v for k, v in ALLOW.items() if k != "isAuthenticated"}, "isAuthenticated"),
    ({k: v for k, v in ALLOW.items() if k != "principalId"}, "principalId"),
    ({**ALLOW, "principalId": "has-dash"}, "principalId"),
    ({**ALLOW, "principalId": "x" * 129}, "principalId"),
    ({**ALLOW, "principalId": ""}, "principalId"),
    ({k: v for k, v in ALLOW.items() if k != "policyDocuments"}, "policyDocuments"),
    ({**ALLOW, "policyDocuments": "{}"}, "policyDocuments"),
    ({**ALLOW, "policyDocuments": ["not json"]}, "policy document"),
    ({**ALLOW, "policyDocuments": ["[1, 2]"]}, "policy document"),
    ({**ALLOW, "policyDocuments": [42]}, "policy document"),
    ({**ALLOW, "policyDocuments": ["{}"] * 11}, "at most 10"),
    ({**ALLOW, "policyDocuments": [json.dumps({"Statement": "x" * 2100})]}, "2048"),
    ({**ALLOW, "disconnectAfterInSeconds": 299}, "disconnectAfterInSeconds"),
    ({**ALLOW, "disconnectAfterInSeconds": 86401}, "disconnectAfterInSeconds"),
    ({**ALLOW, "disconnectAfterInSeconds": "3600"}, "disconnectAfterInSeconds"),
    ({**ALLOW, "refreshAfterInSeconds": 100}, "refreshAfterInSeconds"),
    ({**ALLOW, "refreshAfterInSeconds": True}, "refreshAfterInSeconds"),
    ({**ALLOW, "context": "x"}, "context"),
    ([ALLOW], "JSON object"),
    (b"not json", "not JSON"),
    (b"", "JSON object"),
])
def test_malformed_lambda_responses(iot, fake_lambda, answer, fragment):
    create(iot, "auth", signingDisabled=True)
    fake_lambda.returns(FUNCTION, answer)
    with pytest.raises(ClientError) as info:
        iot.test_invoke_authorizer(authorizerName="auth", token="t")
    assert error_of(info) == ("InvalidResponseException", 400)
    assert fragment in info.value.response["Error"]["Message"]
    assert len(fake_lambda.invocations) == 1


def test_function_error(iot, fake_lambda):
    create(iot, "auth", signingDisabled=True)
    fake_lambda.fails(FUNCTION, "kaboom")
    with pytest.raises(ClientError) as info:
        iot.test_invoke_authorizer(authorizerName="auth", token="t")
    assert error_of(info) == ("InvalidResponseException", 400)
    assert "Unhandled" in info.value.response["Error"]["Message"]
    assert "kaboom" in info.value.response["Error"]["Message"]


def test_missing_function(iot, fake_lambda):
    create(iot, "auth", signingDisabled=True)
    with pytest.raises(ClientError) as info:
        iot.test_invoke_authorizer(authorizerName="auth", token="t")
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "does not exist" in info.value.response["Error"]["Message"]
    assert [name for name, _ in fake_lambda.invocations] == [FUNCTION]


def test_invoke_uses_updated_function(iot, fake_lambda):
    create(iot, "auth", signingDisabled=True)
    fake_lambda.returns(OTHER_FUNCTION, {**ALLOW, "principalId": "other"})
    iot.update_authorizer(authorizerName="auth", authorizerFunctionArn=OTHER_FUNCTION)
    assert iot.test_invoke_authorizer(authorizerName="auth", token="t")["principalId"] == "other"
    assert [name for name, _ in fake_lambda.invocations] == [OTHER_FUNCTION]


def test_invoke_missing_authorizer(iot):
    with pytest.raises(ClientError) as info:
        iot.test_invoke_authorizer(authorizerName="ghost", token="t")
    assert error_of(info) == ("ResourceNotFoundException", 404)


# invoke_authorizer as the broker will call it ------------------------------------------
class _Runtime:
    def __init__(self, client):
        self.client = client

    def aws_client(self, service, region):
        assert service == "lambda"
        return self.client


def test_invoke_authorizer_direct(fake_lambda):
    fake_lambda.behaviour.clear()
    fake_lambda.invocations.clear()
    fake_lambda.returns(FUNCTION, ALLOW)
    client = make_client(fake_lambda.url, "lambda")
    event = authorizers.build_event(token="t", signature_verified=True,
                                    mqtt={"username": "u", "password": "pw", "clientId": "c"},
                                    connection_id="conn-1")
    result = authorizers.invoke_authorizer(_Runtime(client), "us-east-1", {"authorizerFunctionArn": FUNCTION}, event)
    assert result == {k: ALLOW[k] for k in ("isAuthenticated", "principalId", "policyDocuments",
                                            "disconnectAfterInSeconds", "refreshAfterInSeconds")}
    assert fake_lambda.invocations == [(FUNCTION, {
        "token": "t", "signatureVerified": True, "protocols": ["mqtt"],
        "protocolData": {"mqtt": {"username": "u", "password": base64.b64encode(b"pw").decode(), "clientId": "c"}},
        "connectionMetadata": {"id": "conn-1"},
    })]
    fake_lambda.returns(FUNCTION, {**ALLOW, "context": {"tenant": "a"}})
    assert authorizers.invoke_authorizer(_Runtime(client), "us-east-1", {"authorizerFunctionArn": FUNCTION},
                                         event)["context"] == {"tenant": "a"}


def test_invoke_authorizer_unreachable_lambda():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}", "lambda",
                         config=BotoConfig(retries={"max_attempts": 0}, connect_timeout=2))
    with pytest.raises(authorizers.ServiceError) as info:
        authorizers.invoke_authorizer(_Runtime(client), "us-east-1", {"authorizerFunctionArn": FUNCTION},
                                      authorizers.build_event(token="t"))
    assert info.value.code == "ServiceUnavailableException"
    assert info.value.status == 503


def test_verify_token_signature_helper():
    doc = {"tokenSigningPublicKeys": {"a": OTHER_PEM, "b": PEM}}
    assert authorizers.verify_token_signature(doc, "tok", sign("tok")) is True
    assert authorizers.verify_token_signature(doc, "tok", sign("tok", OTHER_KEY)) is True
    assert authorizers.verify_token_signature(doc, "tok2", sign("tok")) is False
    assert authorizers.verify_token_signature(doc, "tok", "%%%") is False
    assert authorizers.verify_token_signature({"tokenSigningPublicKeys": None}, "tok", sign("tok")) is False
