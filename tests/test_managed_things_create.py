"""CreateManagedThing through boto3's iot-managed-integrations client, case by
case from its API reference page (copied to tests/data): every length,
pattern, enum, map-size and required constraint the page states, the 201
answer, ClientToken idempotency and the modelled errors."""

import re

import boto3
import pytest
import regex
from botocore.config import Config
from botocore.exceptions import ClientError

import mi_spec
from conftest import make_client

FIELDS = mi_spec.request_fields()
BASE = {"Role": "DEVICE", "AuthenticationMaterial": "QR-0001", "AuthenticationMaterialType": "ZWAVE_QR_BAR_CODE"}
# Characters tried, in order, to break a pattern (the first one the page's pattern refuses is used).
BREAKERS = ["é", "!", "<", '"', "\t", "日", "\x7f"]


def _java(pattern: str) -> str:
    return re.sub(r"\\x\{([0-9a-fA-F]+)\}", lambda m: "\\x%02x" % int(m.group(1), 16), pattern)


def _fits(pattern: str | None, value: str) -> bool:
    return pattern is None or regex.fullmatch(_java(pattern), value) is not None


def _good_char(pattern: str | None) -> str:
    return next(c for c in "aA0 -" if _fits(pattern, c * 2))


def _bad_char(pattern: str, good: str) -> str | None:
    return next((c for c in BREAKERS if not _fits(pattern, good + c)), None)


def _cases():
    """(id, field, value, ok) for every constraint of every string field on the page."""
    cases = []
    for name, spec in FIELDS.items():
        if spec["type"] != "String":
            continue
        if "enum" in spec:
            cases += [(f"{name}={v}", name, v, True) for v in spec["enum"]]
            cases.append((f"{name}-not-in-enum", name, "NOT_A_VALUE", False))
            continue
        good = _good_char(spec.get("pattern"))
        cases.append((f"{name}-max", name, good * spec["max"], True))
        cases.append((f"{name}-over-max", name, good * (spec["max"] + 1), False))
        if spec["min"] >= 1:
            cases.append((f"{name}-under-min", name, good * (spec["min"] - 1), False))
        if "pattern" in spec:
            bad = _bad_char(spec["pattern"], good)
            if bad is not None:
                cases.append((f"{name}-pattern", name, good + bad, False))
    return cases


def _map_cases():
    cases = []
    for name, spec in FIELDS.items():
        if spec["type"] != "String to string map":
            continue
        good_key = _good_char(spec.get("key_pattern"))
        cases.append((f"{name}-max-entries", name, {f"k{i}": "v" for i in range(spec["entries_max"])}, True))
        cases.append((f"{name}-too-many", name, {f"k{i}": "v" for i in range(spec["entries_max"] + 1)}, False))
        cases.append((f"{name}-key-max", name, {good_key * spec["key_max"]: "v"}, True))
        cases.append((f"{name}-key-over-max", name, {good_key * (spec["key_max"] + 1): "v"}, False))
        if spec["key_min"] >= 1:
            cases.append((f"{name}-key-under-min", name, {"": "v"}, False))
        cases.append((f"{name}-value-max", name, {"k": "v" * spec["value_max"]}, True))
        cases.append((f"{name}-value-over-max", name, {"k": "v" * (spec["value_max"] + 1)}, False))
        if "key_pattern" in spec:
            bad_key = next(k for k in ("!!", "  ", "é") if not _fits(spec["key_pattern"], k))
            cases.append((f"{name}-key-pattern", name, {bad_key: "v"}, False))
    return cases


@pytest.fixture
def mi(localiot_server):
    return make_client(localiot_server, "iot-managed-integrations")


@pytest.fixture
def raw(localiot_server):
    """A client that sends what it is given: the server's own validation answers."""
    return boto3.client("iot-managed-integrations", endpoint_url=localiot_server.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(parameter_validation=False, retries={"max_attempts": 1}))


def error_of(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def count(mi):
    return len(mi.list_managed_things()["Items"])


def test_the_page_names_every_field_the_model_accepts():
    # Every request field on the page is a member of the operation the client sends.
    shape = boto3.client("iot-managed-integrations", region_name="us-east-1").meta.service_model \
        .operation_model("CreateManagedThing").input_shape
    assert set(FIELDS) <= set(shape.members)
    assert {n for n, f in FIELDS.items() if f["required"]} == set(shape.required_members)
    assert len(_cases()) > 40 and len(_map_cases()) >= 14


@pytest.mark.parametrize("field,value,ok", [c[1:] for c in _cases()], ids=[c[0] for c in _cases()])
def test_string_constraints_from_the_page(raw, mi, field, value, ok):
    request = {**BASE, field: value}
    if field == "CredentialLockerId":
        # No credential locker exists: a valid id gets past validation to ResourceNotFoundException.
        with pytest.raises(ClientError) as info:
            raw.create_managed_thing(**request)
        assert error_of(info) == (("ResourceNotFoundException", 404) if ok else ("ValidationException", 400))
        return
    if ok:
        out = raw.create_managed_thing(**request)
        assert out["ResponseMetadata"]["HTTPStatusCode"] == 201
        return
    with pytest.raises(ClientError) as info:
        raw.create_managed_thing(**request)
    assert error_of(info) == ("ValidationException", 400)
    assert f"at '{field}' failed to satisfy constraint" in info.value.response["Error"]["Message"]
    assert count(mi) == 0


@pytest.mark.parametrize("field,value,ok", [c[1:] for c in _map_cases()], ids=[c[0] for c in _map_cases()])
def test_map_constraints_from_the_page(raw, mi, field, value, ok):
    if ok:
        created = raw.create_managed_thing(**BASE, **{field: value})
        if field == "MetaData":
            assert mi.get_managed_thing_meta_data(Identifier=created["Id"])["MetaData"] == value
        else:
            assert mi.list_tags_for_resource(ResourceArn=created["Arn"])["tags"] == value
        return
    with pytest.raises(ClientError) as info:
        raw.create_managed_thing(**BASE, **{field: value})
    assert error_of(info) == ("ValidationException", 400)
    assert count(mi) == 0


@pytest.mark.parametrize("missing", [n for n, f in FIELDS.items() if f["required"]])
def test_required_fields(raw, mi, missing):
    request = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ClientError) as info:
        raw.create_managed_thing(**request)
    assert error_of(info) == ("ValidationException", 400)
    assert f"Value null at '{missing}' failed to satisfy constraint: Member must not be null" in \
        info.value.response["Error"]["Message"]
    assert count(mi) == 0


def test_the_201_answer_matches_the_page(mi, localiot_server):
    out = mi.create_managed_thing(**BASE, Name="kitchen lamp")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 201
    answer = mi_spec.response_fields()
    assert set(answer) == {k for k in out if k != "ResponseMetadata"}
    for name in ("Arn", "Id"):
        assert answer[name]["min"] <= len(out[name]) <= answer[name]["max"]
        assert regex.fullmatch(answer[name]["pattern"], out[name]), out[name]
    assert out["Arn"] == f"arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/{out['Id']}"
    thing = mi.get_managed_thing(Identifier=out["Id"])
    assert thing["CreatedAt"] == out["CreatedAt"]
    assert thing["Role"] == "DEVICE" and thing["Name"] == "kitchen lamp"
    assert thing["ProvisioningStatus"] == "PRE_ASSOCIATED"


def test_every_field_is_stored(mi):
    report = {"version": "1.0.0", "nodeId": "node-1", "endpoints": [{
        "id": "1", "deviceTypes": ["OnOffLight"],
        "capabilities": [{"id": "matter.OnOff@1.4", "name": "On/Off", "version": "6",
                          "properties": ["OnOff"], "actions": ["Toggle"], "events": []}]}]}
    out = mi.create_managed_thing(
        Role="CONTROLLER", AuthenticationMaterial="WIFI:S:home;P:secret;;", AuthenticationMaterialType="WIFI_SETUP_QR_BAR_CODE",
        Brand="Acme", Model="Hub 2", Name="Hall hub", Owner="owner@example.com", SerialNumber="SN-1",
        Classification="hub", Capabilities='{"light": "on"}', CapabilityReport=report,
        MetaData={"room": "hall"}, Tags={"team": "home"}, ClientToken="create-1")
    thing = mi.get_managed_thing(Identifier=out["Id"])
    assert {k: thing[k] for k in ("Role", "Brand", "Model", "Name", "Owner", "SerialNumber", "Classification")} == {
        "Role": "CONTROLLER", "Brand": "Acme", "Model": "Hub 2", "Name": "Hall hub", "Owner": "owner@example.com",
        "SerialNumber": "SN-1", "Classification": "hub"}
    assert thing["MetaData"] == {"room": "hall"} and thing["Tags"] == {"team": "home"}
    capabilities = mi.get_managed_thing_capabilities(Identifier=out["Id"])
    assert capabilities["Capabilities"] == '{"light": "on"}'
    assert capabilities["CapabilityReport"] == report
    assert capabilities["ManagedThingId"] == out["Id"]


@pytest.mark.parametrize("report,where", [
    ({"version": "2.0.0", "endpoints": []}, "CapabilityReport.version"),
    ({"endpoints": []}, "CapabilityReport.version"),
    ({"version": "1.0.0"}, "CapabilityReport.endpoints"),
    ({"version": "1.0.0", "endpoints": [{"id": "e-1", "deviceTypes": [], "capabilities": []}]},
     "CapabilityReport.endpoints.1.member.id"),
    ({"version": "1.0.0", "endpoints": [{"id": "1", "deviceTypes": [], "capabilities": [
        {"id": "OnOff", "name": "x", "version": "1", "properties": [], "actions": [], "events": []}]}]},
     "CapabilityReport.endpoints.1.member.capabilities.1.member.id"),
    ({"version": "1.0.0", "endpoints": [{"id": "1", "deviceTypes": [], "capabilities": [
        {"id": "matter.OnOff@1.4", "name": "x", "version": "01", "properties": [], "actions": [], "events": []}]}]},
     "CapabilityReport.endpoints.1.member.capabilities.1.member.version"),
    ({"version": "1.0.0", "endpoints": [{"id": str(i), "deviceTypes": [], "capabilities": []} for i in range(41)]},
     "CapabilityReport.endpoints"),
])
def test_capability_report_constraints(raw, mi, report, where):
    with pytest.raises(ClientError) as info:
        raw.create_managed_thing(**BASE, CapabilityReport=report)
    assert error_of(info) == ("ValidationException", 400)
    assert f"at '{where}'" in info.value.response["Error"]["Message"]
    assert count(mi) == 0


def test_same_token_and_parameters_return_the_same_thing(mi):
    first = mi.create_managed_thing(**BASE, Name="lamp", Tags={"a": "1"}, ClientToken="token-1")
    again = mi.create_managed_thing(**BASE, Name="lamp", Tags={"a": "1"}, ClientToken="token-1")
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (again["Id"], again["Arn"], again["CreatedAt"]) == (first["Id"], first["Arn"], first["CreatedAt"])
    assert [t["Id"] for t in mi.list_managed_things()["Items"]] == [first["Id"]]


@pytest.mark.parametrize("change", [{"Name": "other"}, {"Role": "CONTROLLER"}, {"Tags": {"a": "2"}},
                                    {"MetaData": {"m": "1"}}, {"AuthenticationMaterial": "QR-0002"}])
def test_same_token_with_other_parameters_is_a_conflict(mi, change):
    first = mi.create_managed_thing(**BASE, Name="lamp", Tags={"a": "1"}, ClientToken="token-2")
    with pytest.raises(ClientError) as info:
        mi.create_managed_thing(**{**BASE, "Name": "lamp", "Tags": {"a": "1"}, **change}, ClientToken="token-2")
    assert error_of(info) == ("ConflictException", 409)
    assert "token-2" in info.value.response["Error"]["Message"]
    assert [t["Id"] for t in mi.list_managed_things()["Items"]] == [first["Id"]]
    assert mi.get_managed_thing(Identifier=first["Id"])["Name"] == "lamp"


def test_tokens_are_per_call_and_per_account(mi, localiot_server):
    # boto3 fills ClientToken with a fresh UUID when it is not given: two calls, two things.
    a = mi.create_managed_thing(**BASE)
    b = mi.create_managed_thing(**BASE)
    assert a["Id"] != b["Id"] and count(mi) == 2
    other = make_client(localiot_server, "iot-managed-integrations", access_key="111122223333")
    mine = mi.create_managed_thing(**BASE, ClientToken="shared")
    theirs = other.create_managed_thing(**BASE, ClientToken="shared")
    assert mine["Id"] != theirs["Id"]
    assert ":111122223333:managed-thing/" in theirs["Arn"]
    assert [t["Id"] for t in other.list_managed_things()["Items"]] == [theirs["Id"]]


def test_modelled_errors(raw, mi):
    with pytest.raises(ClientError) as info:
        mi.create_managed_thing(**BASE, CredentialLockerId="locker1")
    assert error_of(info) == ("ResourceNotFoundException", 404)
    assert info.value.response["ResourceId"] == "locker1"
    with pytest.raises(ClientError) as info:
        mi.create_managed_thing(**BASE, Tags={"aws:reserved": "x"})
    assert error_of(info) == ("ValidationException", 400)
    assert count(mi) == 0
    # The page lists these errors with these status codes; the client knows each by its model.
    for code, status in mi_spec.errors().items():
        assert hasattr(mi.exceptions, code), code
        shape = mi.meta.service_model.shape_for(code)
        assert shape.metadata["error"]["httpStatusCode"] == status
