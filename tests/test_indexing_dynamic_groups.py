"""Dynamic thing groups through boto3: membership from the query at creation,
following shadow, registry and query changes; the registry shows them; static
group operations refuse them; a continuous job reaches a new member."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from conftest import make_client

ACCOUNT = "123456789012"


@pytest.fixture
def iot(localiot_server):
    client = make_client(localiot_server)
    client.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY_AND_SHADOW",
        "customFields": [{"name": "shadow.reported.battery", "type": "Number"}]})
    return client


@pytest.fixture
def data(localiot_server):
    return make_client(localiot_server, "iot-data")


def report(data, thing, **reported):
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"reported": reported}}).encode())


def members(iot, group):
    return sorted(t for t in iot.list_things_in_thing_group(thingGroupName=group)["things"])


def code(info):
    return info.value.response["Error"]["Code"]


def test_membership_follows_shadows_and_a_continuous_job_reaches_new_members(iot, data):
    for name in ("d1", "d2", "d3"):
        iot.create_thing(thingName=name)
    report(data, "d1", battery=10)
    report(data, "d2", battery=90)
    made = iot.create_dynamic_thing_group(thingGroupName="low-battery", queryString="shadow.reported.battery<20")
    assert made["queryString"] == "shadow.reported.battery<20" and made["indexName"] == "AWS_Things"
    assert members(iot, "low-battery") == ["d1"]
    iot.create_job(jobId="charge", targets=[made["thingGroupArn"]], document='{"op":"charge"}',
                   targetSelection="CONTINUOUS")
    assert [e["jobId"] for e in iot.list_job_executions_for_thing(thingName="d1")["executionSummaries"]] == ["charge"]
    assert iot.list_job_executions_for_thing(thingName="d2")["executionSummaries"] == []

    report(data, "d2", battery=5)  # joins in the same call
    assert members(iot, "low-battery") == ["d1", "d2"]
    assert [e["jobId"] for e in iot.list_job_executions_for_thing(thingName="d2")["executionSummaries"]] == ["charge"]
    assert iot.list_thing_groups_for_thing(thingName="d2")["thingGroups"][0]["groupName"] == "low-battery"
    report(data, "d1", battery=100)  # leaves
    assert members(iot, "low-battery") == ["d2"]
    found = iot.search_index(queryString="thingGroupNames:low-battery")["things"]
    assert [t["thingName"] for t in found] == ["d2"]


def test_registry_changes_and_query_updates(iot):
    iot.create_thing(thingName="a1", attributePayload={"attributes": {"site": "north"}})
    iot.create_thing(thingName="a2", attributePayload={"attributes": {"site": "south"}})
    iot.create_dynamic_thing_group(thingGroupName="north", queryString="attributes.site:north",
                                   thingGroupProperties={"thingGroupDescription": "north site"})
    assert members(iot, "north") == ["a1"]
    iot.update_thing(thingName="a2", attributePayload={"attributes": {"site": "north"}})
    assert members(iot, "north") == ["a1", "a2"]
    iot.create_thing(thingName="a3", attributePayload={"attributes": {"site": "north"}})
    assert members(iot, "north") == ["a1", "a2", "a3"]
    iot.delete_thing(thingName="a1")
    assert members(iot, "north") == ["a2", "a3"]

    described = iot.describe_thing_group(thingGroupName="north")
    assert described["queryString"] == "attributes.site:north" and described["status"] == "ACTIVE"
    assert described["indexName"] == "AWS_Things" and described["version"] == 1
    version = iot.update_dynamic_thing_group(thingGroupName="north", thingGroupProperties={},
                                             queryString="attributes.site:south OR thingName:a3",
                                             expectedVersion=1)["version"]
    assert version == 2 and members(iot, "north") == ["a3"]
    with pytest.raises(ClientError) as info:
        iot.update_dynamic_thing_group(thingGroupName="north", thingGroupProperties={}, expectedVersion=1)
    assert code(info) == "VersionConflictException"


def test_static_operations_refuse_dynamic_groups_and_bad_input_changes_nothing(iot):
    iot.create_thing(thingName="t1")
    iot.create_thing_group(thingGroupName="static")
    iot.create_dynamic_thing_group(thingGroupName="dyn", queryString="thingName:t*")
    for call in (lambda: iot.add_thing_to_thing_group(thingGroupName="dyn", thingName="t1"),
                 lambda: iot.update_thing_group(thingGroupName="dyn", thingGroupProperties={}),
                 lambda: iot.delete_thing_group(thingGroupName="dyn"),
                 lambda: iot.update_dynamic_thing_group(thingGroupName="static", thingGroupProperties={}),
                 lambda: iot.delete_dynamic_thing_group(thingGroupName="static")):
        with pytest.raises(ClientError) as info:
            call()
        assert code(info) == "InvalidRequestException"
    with pytest.raises(ClientError) as info:
        iot.create_dynamic_thing_group(thingGroupName="bad", queryString="thingName:(t")
    assert code(info) == "InvalidQueryException"
    with pytest.raises(ClientError) as info:
        iot.create_dynamic_thing_group(thingGroupName="dyn", queryString="thingName:x")
    assert code(info) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as info:
        iot.update_dynamic_thing_group(thingGroupName="dyn", thingGroupProperties={}, queryString="nope:1")
    assert code(info) == "InvalidQueryException"
    assert members(iot, "dyn") == ["t1"]
    assert "bad" not in [g["groupName"] for g in iot.list_thing_groups()["thingGroups"]]
    with pytest.raises(ClientError) as info:
        iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "OFF"})
    assert code(info) == "InvalidRequestException"

    iot.delete_dynamic_thing_group(thingGroupName="dyn")
    assert iot.list_thing_groups_for_thing(thingName="t1")["thingGroups"] == []
    iot.delete_dynamic_thing_group(thingGroupName="dyn")  # gone already: succeeds


def test_a_dynamic_group_needs_indexing(localiot_server):
    iot = make_client(localiot_server)
    with pytest.raises(ClientError) as info:
        iot.create_dynamic_thing_group(thingGroupName="g", queryString="thingName:*")
    assert code(info) == "ResourceNotFoundException"
