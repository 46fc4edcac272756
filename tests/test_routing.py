"""Every operation of the spec is routed to its own service and operation,
and none of them ends in a 500 — real handler or an honest 501."""

import csv
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from localiot.protocol.models import load_services

# the operations of the spec (service, name, method, URI), shipped with the tests
SPEC = Path(__file__).resolve().parent / "data" / "operations.tsv"
SERVICES = {s.name: s for s in load_services()}


def spec_rows():
    with open(SPEC, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def signed_request(endpoint, method, path, service, body=b"", headers=None, region="us-east-1",
                   access_key="testing", secret="testing"):
    request = AWSRequest(method=method, url=endpoint + path, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(access_key, secret), service, region).add_auth(request)
    prepared = request.prepare()
    raw = urllib.request.Request(prepared.url, data=body or None, method=method, headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(raw) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def sample_path(operation):
    """The operation's URI with each label filled by a value of its type."""
    uri = operation.http["requestUri"].split("?")[0]
    members = operation.input_shape.members if operation.input_shape else {}
    by_label = {m.serialization.get("name", n): m for n, m in members.items()}
    out = uri
    for label, member in by_label.items():
        value = "1" if member.type_name in ("integer", "long") else "sample"
        out = out.replace("{%s+}" % label, "sample/greedy").replace("{%s}" % label, value)
    return out


def test_spec_lists_297_operations_all_in_models():
    rows = spec_rows()
    assert len(rows) == 297
    for row in rows:
        service = SERVICES[row["service"]]
        assert row["operation"] in service.operations, row


@pytest.mark.parametrize("row", spec_rows(), ids=lambda r: f"{r['service']}.{r['operation']}")
def test_operation_routes_to_itself_and_never_500(localiot_server, row):
    service = SERVICES[row["service"]]
    operation = service.operations[row["operation"]]
    assert operation.http["method"] == row["method"]
    if service.protocol == "json":
        headers = {"X-Amz-Target": f"{service.model.metadata['targetPrefix']}.{operation.name}",
                   "Content-Type": "application/x-amz-json-1.1"}
        status, got, body = signed_request(localiot_server.endpoint, "POST", "/", service.signing_name,
                                           b"{}", headers)
    else:
        spec_path = row["request_uri"].split("?")[0]
        model_path = operation.http["requestUri"].split("?")[0]
        assert spec_path == model_path.replace("{", "").replace("}", ""), (spec_path, model_path)
        body = b"{}" if row["method"] in ("POST", "PUT", "PATCH") else b""
        status, got, body = signed_request(localiot_server.endpoint, row["method"], sample_path(operation),
                                           service.signing_name, body, {"Content-Type": "application/json"})
    assert status != 500, body
    assert status < 500 or status == 501, (status, body)
    assert got["x-localiot-operation"] == f"{row['service']}.{row['operation']}"
    error_type = got.get("x-amzn-ErrorType")
    if status == 501:
        assert error_type == "NotImplementedException"
        assert operation.name in json.loads(body)["message"]


def test_unsigned_request_falls_back_to_first_matching_service(localiot_server):
    request = urllib.request.Request(localiot_server.endpoint + "/things/abc/shadow", method="GET")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request)
    assert info.value.headers["x-localiot-operation"] == "iot-data.GetThingShadow"


def test_credential_scope_picks_service_when_routes_collide(localiot_server):
    # GET /things/{thingName}/jobs is iot ListJobExecutionsForThing and iot-jobs-data GetPendingJobExecutions.
    _, iot_headers, _ = signed_request(localiot_server.endpoint, "GET", "/things/abc/jobs", "iot")
    _, jobs_headers, _ = signed_request(localiot_server.endpoint, "GET", "/things/abc/jobs", "iot-jobs-data")
    assert iot_headers["x-localiot-operation"] == "iot.ListJobExecutionsForThing"
    assert jobs_headers["x-localiot-operation"] == "iot-jobs-data.GetPendingJobExecutions"


def test_unknown_route_is_a_404_error_not_a_crash(localiot_server):
    status, headers, body = signed_request(localiot_server.endpoint, "GET", "/no/such/route", "iot")
    assert status == 404
    assert headers["x-amzn-ErrorType"] == "UnknownOperationException"


def test_unknown_json_target(localiot_server):
    status, headers, body = signed_request(
        localiot_server.endpoint, "POST", "/", "IoTSecuredTunneling", b"{}",
        {"X-Amz-Target": "IoTSecuredTunneling.Nope", "Content-Type": "application/x-amz-json-1.1"})
    assert status == 400
    assert json.loads(body)["__type"] == "UnknownOperationException"


def test_malformed_json_body_is_a_serialization_error(localiot_server):
    status, headers, body = signed_request(localiot_server.endpoint, "POST", "/things/t1", "iot", b"{not json",
                                           {"Content-Type": "application/json"})
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "SerializationException"


def test_wrong_json_type_is_a_serialization_error(localiot_server):
    status, headers, body = signed_request(localiot_server.endpoint, "POST", "/things/t1", "iot",
                                           json.dumps({"thingTypeName": 5}).encode(),
                                           {"Content-Type": "application/json"})
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "SerializationException"
    # and nothing was created
    status, _, _ = signed_request(localiot_server.endpoint, "GET", "/things/t1", "iot")
    assert status == 404


def test_routes_of_whole_segments_match_as_their_regex_does():
    """Router.match compares a route made of literal segments and whole {labels} segment by
    segment; its answer (route and labels) is the route regex's on every template filled
    with plain, %-encoded, empty and literal-looking labels, with trailing slashes."""
    import re

    from multidict import MultiDict, MultiDictProxy

    from localiot.protocol.router import Router

    router = Router(list(SERVICES.values()))
    routes = list(router.all_routes())
    assert sum(route.simple is not None for route in routes) > len(routes) // 2

    def by_regex(method, path, query, services):
        kept = [(route, route.simple) for route in routes]
        for route, _ in kept:
            route.simple = None
        try:
            return router.match(method, path, query, services)
        finally:
            for route, simple in kept:
                route.simple = simple

    paths = {("GET", "/"), ("GET", "//"), ("POST", "/things//"), ("GET", "/things/a%2Fb/shadow")}
    for route in routes:
        uri = route.operation.http["requestUri"].split("?")[0]
        for fill in ("abc", "a%2Fb", "", "x y", "things", "shadow"):
            path = re.sub(r"\{[^}]+\}", fill, uri)
            paths |= {(route.method, path), (route.method, path + "/"), (route.method, path + "//"),
                      (route.method, "/" + fill)}
    query = MultiDictProxy(MultiDict())
    for method, path in sorted(paths):
        for services in (None, {"iot"}, {"iot-data"}):
            ours, theirs = router.match(method, path, query, services), by_regex(method, path, query, services)
            assert (ours and (ours[0].label, ours[1])) == (theirs and (theirs[0].label, theirs[1])), (method, path)
