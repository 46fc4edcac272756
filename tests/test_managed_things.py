"""Managed things after creation, through boto3's iot-managed-integrations
client: Get, List (filters, pagination), Update, Delete, capabilities,
metadata, state, connectivity, tags, and the operations left unimplemented."""

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import make_client

BASE = {"Role": "DEVICE", "AuthenticationMaterial": "QR-0001", "AuthenticationMaterialType": "ZIGBEE_QR_BAR_CODE"}
REPORT = {"version": "1.0.0", "endpoints": [{
    "id": "1", "deviceTypes": ["Thermostat"],
    "capabilities": [{"id": "matter.Thermostat@1.4", "name": "Thermostat", "version": "7",
                      "properties": ["LocalTemperature"], "actions": [], "events": []}]}]}


@pytest.fixture
def mi(localiot_server):
    return make_client(localiot_server, "iot-managed-integrations")


def error_of(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def advance(server, seconds):
    request = urllib.request.Request(server.endpoint + "/_localiot/clock", method="POST",
                                     data=json.dumps({"advance": seconds}).encode())
    urllib.request.urlopen(request).read()


def test_get_update_round_trip(mi, localiot_server):
    thing = mi.create_managed_thing(**BASE, Name="den", Owner="alice", MetaData={"floor": "1"})
    before = mi.get_managed_thing(Identifier=thing["Id"])
    assert before["UpdatedAt"] == before["CreatedAt"]
    advance(localiot_server, 60)
    out = mi.update_managed_thing(Identifier=thing["Id"], Name="study", Owner="bob", SerialNumber="SN 9",
                                  Brand="Acme", Model="T1", Classification="thermostat", HubNetworkMode="STANDARD",
                                  MetaData={"floor": "2"}, CapabilityReport=REPORT, Capabilities="thermostat",
                                  WiFiSimpleSetupConfiguration={"EnableAsProvisionee": True, "TimeoutInMinutes": 10})
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    after = mi.get_managed_thing(Identifier=thing["Id"])
    assert {k: after[k] for k in ("Name", "Owner", "SerialNumber", "Brand", "Model", "Classification",
                                  "HubNetworkMode", "MetaData", "Role", "CreatedAt")} == {
        "Name": "study", "Owner": "bob", "SerialNumber": "SN 9", "Brand": "Acme", "Model": "T1",
        "Classification": "thermostat", "HubNetworkMode": "STANDARD", "MetaData": {"floor": "2"},
        "Role": "DEVICE", "CreatedAt": before["CreatedAt"]}
    assert after["WiFiSimpleSetupConfiguration"] == {"EnableAsProvisionee": True, "TimeoutInMinutes": 10}
    assert (after["UpdatedAt"] - before["UpdatedAt"]).total_seconds() >= 60
    assert mi.get_managed_thing_meta_data(Identifier=thing["Id"]) | {"ResponseMetadata": None} == {
        "ManagedThingId": thing["Id"], "MetaData": {"floor": "2"}, "ResponseMetadata": None}
    capabilities = mi.get_managed_thing_capabilities(Identifier=thing["Id"])
    assert capabilities["CapabilityReport"] == REPORT and capabilities["Capabilities"] == "thermostat"
    # Fields not sent stay as they are.
    mi.update_managed_thing(Identifier=thing["Id"], Name="office")
    again = mi.get_managed_thing(Identifier=thing["Id"])
    assert again["Name"] == "office" and again["Owner"] == "bob"


def test_update_refusals_change_nothing(mi):
    thing = mi.create_managed_thing(**BASE, Name="den")
    with pytest.raises(ClientError) as info:
        mi.update_managed_thing(Identifier=thing["Id"], Name="bad!name")
    assert error_of(info) == ("ValidationException", 400)
    with pytest.raises(ClientError) as info:
        mi.update_managed_thing(Identifier=thing["Id"], Name="x", CredentialLockerId="missing1")
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        mi.update_managed_thing(Identifier="nosuchthing", Name="x")
    assert error_of(info) == ("ResourceNotFoundException", 404)
    assert mi.get_managed_thing(Identifier=thing["Id"])["Name"] == "den"


def test_missing_things_answer_not_found(mi):
    calls = [lambda: mi.get_managed_thing(Identifier="nosuch"),
             lambda: mi.delete_managed_thing(Identifier="nosuch"),
             lambda: mi.get_managed_thing_state(ManagedThingId="nosuch"),
             lambda: mi.get_managed_thing_capabilities(Identifier="nosuch"),
             lambda: mi.get_managed_thing_meta_data(Identifier="nosuch"),
             lambda: mi.get_managed_thing_connectivity_data(Identifier="nosuch")]
    for call in calls:
        with pytest.raises(ClientError) as info:
            call()
        assert error_of(info) == ("ResourceNotFoundException", 404)
        assert info.value.response["ResourceId"] == "nosuch"
    with pytest.raises(ClientError) as info:
        mi.get_managed_thing(Identifier="bad!id")
    assert error_of(info) == ("ValidationException", 400)


def test_state_and_connectivity_of_a_thing_that_never_connected(mi):
    thing = mi.create_managed_thing(**BASE, CapabilityReport=REPORT)
    assert mi.get_managed_thing_state(ManagedThingId=thing["Id"])["Endpoints"] == []
    data = mi.get_managed_thing_connectivity_data(Identifier=thing["Id"])
    assert data["ManagedThingId"] == thing["Id"] and data["Connected"] is False
    assert "Timestamp" not in data


def test_delete(mi):
    thing = mi.create_managed_thing(**BASE, Tags={"a": "1"})
    keep = mi.create_managed_thing(**BASE)
    assert mi.delete_managed_thing(Identifier=thing["Id"])["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as info:
        mi.get_managed_thing(Identifier=thing["Id"])
    assert error_of(info) == ("ResourceNotFoundException", 404)
    assert [t["Id"] for t in mi.list_managed_things()["Items"]] == [keep["Id"]]
    with pytest.raises(ClientError) as info:
        mi.list_tags_for_resource(ResourceArn=thing["Arn"])
    assert error_of(info) == ("ResourceNotFoundException", 404)
    assert mi.delete_managed_thing(Identifier=keep["Id"], Force=True)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert mi.list_managed_things()["Items"] == []


def test_list_filters(mi):
    a = mi.create_managed_thing(**BASE, Owner="alice", SerialNumber="S1")
    b = mi.create_managed_thing(**{**BASE, "Role": "CONTROLLER"}, Owner="bob", SerialNumber="S2")
    c = mi.create_managed_thing(**{**BASE, "AuthenticationMaterialType": "DISCOVERED_DEVICE"}, Owner="alice")

    def ids(**filters):
        return [t["Id"] for t in mi.list_managed_things(**filters)["Items"]]

    assert ids() == [a["Id"], b["Id"], c["Id"]]
    assert ids(OwnerFilter="alice") == [a["Id"], c["Id"]]
    assert ids(RoleFilter="CONTROLLER") == [b["Id"]]
    assert ids(SerialNumberFilter="S2") == [b["Id"]]
    assert ids(ProvisioningStatusFilter="DISCOVERED") == [c["Id"]]
    assert ids(ProvisioningStatusFilter="PRE_ASSOCIATED", OwnerFilter="alice") == [a["Id"]]
    assert ids(ParentControllerIdentifierFilter="hub1", ConnectorPolicyIdFilter="p") == []
    summary = mi.list_managed_things(OwnerFilter="bob")["Items"][0]
    assert {k: summary[k] for k in ("Id", "Arn", "Role", "Owner", "SerialNumber", "ProvisioningStatus")} == {
        "Id": b["Id"], "Arn": b["Arn"], "Role": "CONTROLLER", "Owner": "bob", "SerialNumber": "S2",
        "ProvisioningStatus": "PRE_ASSOCIATED"}
    with pytest.raises(ClientError) as info:
        mi.list_managed_things(RoleFilter="HUB")
    assert error_of(info) == ("ValidationException", 400)


def test_list_pagination_with_the_botocore_paginator(mi):
    created = [mi.create_managed_thing(**BASE, Name=f"t{i}")["Id"] for i in range(7)]
    first = mi.list_managed_things(MaxResults=3)
    assert len(first["Items"]) == 3 and first["NextToken"]
    pages = list(mi.get_paginator("list_managed_things").paginate(PaginationConfig={"PageSize": 3}))
    assert [len(p["Items"]) for p in pages] == [3, 3, 1]
    assert [t["Id"] for p in pages for t in p["Items"]] == created
    for bad in ("garbage", "eyJub3QiOiAidGhpcyJ9"):
        with pytest.raises(ClientError) as info:
            mi.list_managed_things(NextToken=bad)
        assert error_of(info) == ("ValidationException", 400)
    with pytest.raises(ClientError) as info:
        mi.list_managed_things(MaxResults=1001)
    assert error_of(info) == ("ValidationException", 400)


def test_tags(mi):
    thing = mi.create_managed_thing(**BASE, Tags={"a": "1"})
    mi.tag_resource(ResourceArn=thing["Arn"], Tags={"b": "2", "a": "3"})
    assert mi.list_tags_for_resource(ResourceArn=thing["Arn"])["tags"] == {"a": "3", "b": "2"}
    mi.untag_resource(ResourceArn=thing["Arn"], TagKeys=["a"])
    assert mi.list_tags_for_resource(ResourceArn=thing["Arn"])["tags"] == {"b": "2"}
    assert mi.get_managed_thing(Identifier=thing["Id"])["Tags"] == {"b": "2"}
    mi.untag_resource(ResourceArn=thing["Arn"], TagKeys=["b"])
    assert "tags" not in mi.list_tags_for_resource(ResourceArn=thing["Arn"])
    with pytest.raises(ClientError) as info:
        mi.tag_resource(ResourceArn=thing["Arn"], Tags={f"k{i}": "v" for i in range(51)})
    assert error_of(info) == ("InvalidRequestException", 400)
    mi.tag_resource(ResourceArn=thing["Arn"], Tags={f"k{i}": "v" for i in range(50)})
    with pytest.raises(ClientError) as info:
        mi.tag_resource(ResourceArn=thing["Arn"], Tags={"one-more": "v"})
    assert error_of(info) == ("InvalidRequestException", 400)
    assert len(mi.list_tags_for_resource(ResourceArn=thing["Arn"])["tags"]) == 50
    missing = thing["Arn"].rsplit("/", 1)[0] + "/0123abc"
    locker = thing["Arn"].replace("managed-thing/", "credential-locker/")
    for arn in (missing, locker):
        with pytest.raises(ClientError) as info:
            mi.tag_resource(ResourceArn=arn, Tags={"a": "1"})
        assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        mi.list_tags_for_resource(ResourceArn="arn:aws:iot:us-east-1:123456789012:thing/x")
    assert error_of(info) == ("InvalidRequestException", 400)


def test_things_are_scoped_to_account_and_region(mi, localiot_server):
    thing = mi.create_managed_thing(**BASE)
    elsewhere = make_client(localiot_server, "iot-managed-integrations", region="eu-west-1")
    assert elsewhere.list_managed_things()["Items"] == []
    with pytest.raises(ClientError) as info:
        elsewhere.get_managed_thing(Identifier=thing["Id"])
    assert error_of(info) == ("ResourceNotFoundException", 404)


def test_other_operations_answer_not_implemented(mi):
    with pytest.raises(ClientError) as info:
        mi.create_credential_locker(Name="locker")
    assert error_of(info) == ("NotImplementedException", 501)
    with pytest.raises(ClientError) as info:
        mi.get_managed_thing_certificate(Identifier="x")
    assert error_of(info) == ("NotImplementedException", 501)
