"""Checks for the bundled botocore model of AWS IoT Fleet Hub (iotfleethub).

Current botocore no longer ships this service, so localiot carries its own
model under localiot/models, loadable through AWS_DATA_PATH.
"""

import csv
import json
import os
import re
from pathlib import Path

import botocore.session
import pytest
from botocore.exceptions import ParamValidationError
from botocore.serialize import create_serializer

MODELS_DIR = Path(__file__).resolve().parents[1] / "localiot" / "models"
OPERATIONS_TSV = Path(__file__).resolve().parent / "data" / "operations.tsv"

APP_ID = "0123abcd-4567-89ef-0123-456789abcdef"
ROLE_ARN = "arn:aws:iam::123456789012:role/AWSIotFleetHub_abc123"


@pytest.fixture(scope="module")
def session():
    old = os.environ.get("AWS_DATA_PATH")
    paths = [str(MODELS_DIR)] + ([old] if old else [])
    os.environ["AWS_DATA_PATH"] = os.pathsep.join(paths)
    try:
        yield botocore.session.Session()
    finally:
        if old is None:
            os.environ.pop("AWS_DATA_PATH", None)
        else:
            os.environ["AWS_DATA_PATH"] = old


@pytest.fixture(scope="module")
def client(session):
    return session.create_client(
        "iotfleethub",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _spec_operations():
    """{operation: (method, uri-with-braces)} for iotfleethub from operations.tsv."""
    ops = {}
    with open(OPERATIONS_TSV, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["service"] != "iotfleethub":
                continue
            path, _, query = row["request_uri"].partition("?")
            # placeholders in the TSV have no braces: /applications/applicationId
            path = re.sub(r"/(applicationId|resourceArn)(?=/|$)", r"/{\1}", path)
            ops[row["operation"]] = (row["method"], path, query)
    return ops


def test_model_files_are_valid_json():
    base = MODELS_DIR / "iotfleethub" / "2020-11-03"
    for name in ("service-2.json", "paginators-1.json", "endpoint-rule-set-1.json"):
        with open(base / name) as f:
            json.load(f)


def test_metadata(client):
    meta = client.meta.service_model.metadata
    assert meta["apiVersion"] == "2020-11-03"
    assert meta["endpointPrefix"] == "api.fleethub.iot"
    assert meta["protocol"] == "rest-json"
    assert meta["serviceId"] == "IoTFleetHub"
    assert meta["signingName"] == "iotfleethub"
    assert meta["uid"] == "iotfleethub-2020-11-03"


def test_operations_match_spec(client):
    spec = _spec_operations()
    assert len(spec) == 8
    model = client.meta.service_model
    assert sorted(model.operation_names) == sorted(spec)
    for name, (method, path, query) in spec.items():
        op = model.operation_model(name)
        assert op.http["method"] == method, name
        assert op.http["requestUri"] == path, name
        # every query parameter in the spec is a querystring member of the input
        members = op.input_shape.members if op.input_shape else {}
        qs_names = {
            m.serialization.get("name")
            for m in members.values()
            if m.serialization.get("location") == "querystring"
        }
        for pair in filter(None, query.split("&")):
            assert pair.split("=")[0] in qs_names, (name, pair)
        uri_names = {
            m.serialization.get("name")
            for m in members.values()
            if m.serialization.get("location") == "uri"
        }
        assert uri_names == set(re.findall(r"{(\w+)}", path)), name


def test_response_codes_and_errors(client):
    model = client.meta.service_model
    expected = {
        "CreateApplication": 201,
        "DeleteApplication": 204,
        "DescribeApplication": 200,
        "ListApplications": 200,
        "ListTagsForResource": 200,
        "TagResource": 200,
        "UntagResource": 200,
        "UpdateApplication": 202,
    }
    for name, code in expected.items():
        assert model.operation_model(name).http["responseCode"] == code
    errs = {
        e.name: e.metadata["error"]["httpStatusCode"]
        for e in model.operation_model("UpdateApplication").error_shapes
    }
    assert errs == {
        "ConflictException": 409,
        "InternalFailureException": 500,
        "InvalidRequestException": 400,
        "ResourceNotFoundException": 404,
        "ThrottlingException": 400,
    }
    limit = model.shape_for("LimitExceededException")
    assert limit.metadata["error"]["httpStatusCode"] == 410
    assert "message" in limit.members
    assert hasattr(client.exceptions, "ResourceNotFoundException")


def test_constraints(client):
    model = client.meta.service_model
    create = model.operation_model("CreateApplication").input_shape
    assert set(create.required_members) == {"applicationName", "roleArn"}
    assert create.members["clientToken"].metadata.get("idempotencyToken") is True
    assert create.members["applicationName"].metadata["max"] == 100
    assert create.members["tags"].metadata["max"] == 50
    summary = model.shape_for("ApplicationSummary")
    assert summary.members["applicationState"].enum == [
        "CREATING", "DELETING", "ACTIVE", "CREATE_FAILED", "DELETE_FAILED"
    ]
    assert summary.members["applicationCreationDate"].type_name == "timestamp"
    delete = model.operation_model("DeleteApplication").input_shape
    assert delete.members["clientToken"].serialization["location"] == "querystring"
    assert delete.members["clientToken"].metadata.get("idempotencyToken") is True


def test_param_validation(client):
    with pytest.raises(ParamValidationError):
        client.create_application(applicationName="app")  # roleArn missing
    with pytest.raises(ParamValidationError):
        client.create_application(applicationName="", roleArn=ROLE_ARN)  # min 1
    with pytest.raises(ParamValidationError):
        client.describe_application(applicationId="too-short")  # fixed length 36
    with pytest.raises(ParamValidationError):
        client.untag_resource(resourceArn=ROLE_ARN)  # tagKeys missing


def test_serialize_create_application(client):
    op = client.meta.service_model.operation_model("CreateApplication")
    serializer = create_serializer("rest-json")
    req = serializer.serialize_to_request(
        {
            "applicationName": "my-app",
            "applicationDescription": "desc",
            "roleArn": ROLE_ARN,
            "clientToken": "tok-1",
            "tags": {"k": "v"},
        },
        op,
    )
    assert req["method"] == "POST"
    assert req["url_path"] == "/applications"
    assert json.loads(req["body"]) == {
        "applicationName": "my-app",
        "applicationDescription": "desc",
        "roleArn": ROLE_ARN,
        "clientToken": "tok-1",
        "tags": {"k": "v"},
    }


def test_serialize_uri_and_query_members(client):
    model = client.meta.service_model
    serializer = create_serializer("rest-json")
    req = serializer.serialize_to_request(
        {"applicationId": APP_ID, "clientToken": "tok"},
        model.operation_model("DeleteApplication"),
    )
    assert req["method"] == "DELETE"
    assert req["url_path"] == "/applications/" + APP_ID
    assert req["query_string"] == {"clientToken": "tok"}
    req = serializer.serialize_to_request(
        {"resourceArn": ROLE_ARN, "tagKeys": ["a", "b"]},
        model.operation_model("UntagResource"),
    )
    assert req["url_path"].startswith("/tags/arn")
    assert req["query_string"] == {"tagKeys": ["a", "b"]}


def test_client_request_and_idempotency_token(client):
    """Hook before-send to capture the real request without any network I/O."""
    captured = {}

    def capture(request, **kwargs):
        captured["url"] = request.url
        captured["method"] = request.method
        captured["body"] = request.body
        from botocore.awsrequest import AWSResponse

        class _Raw:
            def stream(self, **kw):
                yield b""

        return AWSResponse(request.url, 201, {}, _Raw())

    client.meta.events.register("before-send.iotfleethub.CreateApplication", capture)
    try:
        client.create_application(applicationName="my-app", roleArn=ROLE_ARN)
    finally:
        client.meta.events.unregister("before-send.iotfleethub.CreateApplication", capture)
    assert captured["method"] == "POST"
    assert captured["url"] == "http://127.0.0.1:1/applications"
    body = json.loads(captured["body"])
    assert body["applicationName"] == "my-app"
    assert body["roleArn"] == ROLE_ARN
    assert body["clientToken"]  # auto-filled idempotency token


def test_paginator(client):
    assert client.can_paginate("list_applications")


def test_default_endpoint(session):
    c = session.create_client(
        "iotfleethub",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert c.meta.endpoint_url == "https://api.fleethub.iot.eu-west-1.amazonaws.com"
