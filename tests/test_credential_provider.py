"""The credential provider (issue 11 item 2): `GET /role-aliases/{alias}/credentials`
over mutual TLS on the ALPN port, with AWS's checks and answers, and temporary
credentials from STS AssumeRole at the downstream endpoint (moto's server)."""

import http.server
import json
import ssl
import threading
import urllib.error
import urllib.request

import boto3
import pytest
from moto.server import ThreadedMotoServer

from localiot.testing import local_server
from test_mqtt_tls import ca_file, new_certificate

ROLE = "arn:aws:iam::123456789012:role/device-role"
ALIAS_ARN = "arn:aws:iot:us-east-1:123456789012:rolealias/"


def allow(resource: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:AssumeRoleWithCertificate", "Resource": resource}]}


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def running(moto_url):
    with local_server(aws_endpoint_url=moto_url, downstream_access_key="testing",
                      downstream_secret_key="testing", background_period=0) as server:
        yield server


@pytest.fixture
def iot(running):
    running.reset()
    return boto3.client("iot", endpoint_url=running.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def fetch(server, iot, tmp_path, alias, cert=None, thing=None):
    """(status, error type, JSON body) of the request a device makes, at DescribeEndpoint's host."""
    host = iot.describe_endpoint(endpointType="iot:CredentialProvider")["endpointAddress"]
    port = server.app.runtime.listeners["mqtt-alpn"].rsplit(":", 1)[1]
    context = ssl.create_default_context(cafile=ca_file(server, tmp_path))
    if cert is not None:
        context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    request = urllib.request.Request(f"https://{host}:{port}/role-aliases/{alias}/credentials",
                                     headers={"x-amzn-iot-thingname": thing} if thing else {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            return answer.status, None, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("x-amzn-ErrorType"), json.load(error)


def device(iot, tmp_path, policy, thing="pump-1", active=True):
    cert = new_certificate(iot, tmp_path, active=active, policy=policy)
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=cert.arn)
    return cert


def test_credentials_for_a_thing_through_its_policy_variables(running, iot, tmp_path, moto_url):
    cert = device(iot, tmp_path, allow(ALIAS_ARN + "${iot:Connection.Thing.ThingName}-role"))
    iot.create_role_alias(roleAlias="pump-1-role", roleArn=ROLE, credentialDurationSeconds=900)
    status, _, body = fetch(running, iot, tmp_path, "pump-1-role", cert, thing="pump-1")
    assert status == 200, body
    found = body["credentials"]
    assert set(found) == {"accessKeyId", "secretAccessKey", "sessionToken", "expiration"}
    assert found["expiration"].endswith("Z")
    # the credentials are the downstream STS's own: its GetCallerIdentity knows the assumed role
    sts = boto3.client("sts", endpoint_url=moto_url, region_name="us-east-1",
                       aws_access_key_id=found["accessKeyId"], aws_secret_access_key=found["secretAccessKey"],
                       aws_session_token=found["sessionToken"])
    assert sts.get_caller_identity()["Arn"].endswith(f":assumed-role/device-role/{cert.id}")
    # without the thing name the thing's variables are unknown: the policy does not allow it
    assert fetch(running, iot, tmp_path, "pump-1-role", cert)[:3] == (403, "AccessDeniedException",
                                                                      {"message": "Access Denied"})


def test_a_thing_not_attached_to_the_certificate(running, iot, tmp_path):
    cert = device(iot, tmp_path, allow("*"))
    iot.create_thing(thingName="other")
    iot.create_role_alias(roleAlias="a", roleArn=ROLE)
    for thing in ("other", "missing"):
        assert fetch(running, iot, tmp_path, "a", cert, thing=thing) == (
            403, "AccessDeniedException", {"message": "Invalid thing name passed"})


def test_a_policy_without_the_permission(running, iot, tmp_path):
    cert = device(iot, tmp_path, allow(ALIAS_ARN + "another"))
    iot.create_role_alias(roleAlias="a", roleArn=ROLE)
    assert fetch(running, iot, tmp_path, "a", cert, thing="pump-1") == (
        403, "AccessDeniedException", {"message": "Access Denied"})


def test_a_missing_role_alias(running, iot, tmp_path):
    cert = device(iot, tmp_path, allow("*"))
    assert fetch(running, iot, tmp_path, "nope", cert, thing="pump-1") == (
        404, "ResourceNotFoundException", {"message": "Role alias does not exist"})


def test_an_inactive_certificate_and_no_certificate(running, iot, tmp_path):
    cert = device(iot, tmp_path, allow("*"), active=False)
    iot.create_role_alias(roleAlias="a", roleArn=ROLE)
    assert fetch(running, iot, tmp_path, "a", cert)[:2] == (403, "AccessDeniedException")
    assert fetch(running, iot, tmp_path, "a")[:2] == (403, "AccessDeniedException")


class RefusingSts(http.server.BaseHTTPRequestHandler):
    """A downstream STS that refuses every AssumeRole, as STS does for a role that may not be assumed."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = (b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                b"<Code>AccessDenied</Code><Message>not authorized to perform: sts:AssumeRole</Message></Error>"
                b"<RequestId>r</RequestId></ErrorResponse>")
        self.send_response(403)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_sts_refusing_is_the_unable_to_assume_answer(tmp_path):
    sts = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingSts)
    threading.Thread(target=sts.serve_forever, daemon=True).start()
    with local_server(aws_endpoint_url=f"http://127.0.0.1:{sts.server_address[1]}", downstream_access_key="testing",
                      downstream_secret_key="testing", background_period=0) as server:
        iot = boto3.client("iot", endpoint_url=server.endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        cert = device(iot, tmp_path, allow("*"))
        iot.create_role_alias(roleAlias="a", roleArn=ROLE)
        assert fetch(server, iot, tmp_path, "a", cert) == (
            400, "InvalidRequestException", {"message": "Unable to assume the role, or the role to assume does not exist"})
    sts.shutdown()
