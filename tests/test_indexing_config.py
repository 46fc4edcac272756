"""Indexing configuration, DescribeIndex / ListIndices, building the index
over an existing fleet, freshness after each kind of change, and the index
surviving a restart."""

from __future__ import annotations

import tempfile
import time

import pytest
from botocore.exceptions import ClientError

from conftest import make_client
from indexing_fleet import connect, disconnect, eventually
from localiot.testing import local_server


def code(info):
    return info.value.response["Error"]["Code"]


def names(iot, query):
    return [t["thingName"] for t in iot.search_index(queryString=query, maxResults=500)["things"]]


def test_configuration_round_trip_and_indices(localiot_server):
    iot = make_client(localiot_server)
    got = iot.get_indexing_configuration()
    assert got["thingIndexingConfiguration"]["thingIndexingMode"] == "OFF"
    assert got["thingGroupIndexingConfiguration"]["thingGroupIndexingMode"] == "OFF"
    assert iot.list_indices()["indexNames"] == []
    with pytest.raises(ClientError) as info:
        iot.describe_index(indexName="AWS_Things")
    assert code(info) == "ResourceNotFoundException"

    iot.update_indexing_configuration(
        thingIndexingConfiguration={
            "thingIndexingMode": "REGISTRY_AND_SHADOW", "thingConnectivityIndexingMode": "STATUS",
            "namedShadowIndexingMode": "ON", "filter": {"namedShadowNames": ["cfg"]},
            "customFields": [{"name": "attributes.level", "type": "Number"}]},
        thingGroupIndexingConfiguration={"thingGroupIndexingMode": "ON"})
    got = iot.get_indexing_configuration()["thingIndexingConfiguration"]
    assert got["thingIndexingMode"] == "REGISTRY_AND_SHADOW" and got["thingConnectivityIndexingMode"] == "STATUS"
    assert got["filter"] == {"namedShadowNames": ["cfg"]}
    assert got["customFields"] == [{"name": "attributes.level", "type": "Number"}]
    managed = {f["name"]: f["type"] for f in got["managedFields"]}
    assert managed["shadow.version"] == "Number" and managed["connectivity.connected"] == "Boolean"
    assert managed["shadow.name.*.hasDelta"] == "Boolean"
    assert iot.list_indices()["indexNames"] == ["AWS_ThingGroups", "AWS_Things"]
    described = iot.describe_index(indexName="AWS_Things")
    assert described["indexStatus"] == "ACTIVE" and described["schema"] == "MULTI_INDEXING_MODE"
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY",
                                                                  "thingConnectivityIndexingMode": "STATUS"})
    assert iot.describe_index(indexName="AWS_Things")["schema"] == "REGISTRY_AND_CONNECTIVITY_STATUS"
    assert iot.list_indices(maxResults=1)["indexNames"] == ["AWS_ThingGroups"]


@pytest.mark.parametrize("config", [
    {"thingIndexingMode": "OFF", "thingConnectivityIndexingMode": "STATUS"},
    {"thingIndexingMode": "REGISTRY", "customFields": [{"name": "thingName", "type": "String"}]},
    {"thingIndexingMode": "REGISTRY", "customFields": [{"name": "bogus.field", "type": "String"}]},
    {"thingIndexingMode": "REGISTRY", "customFields": [{"name": "attributes.x"}]},
    {"thingIndexingMode": "REGISTRY", "filter": {"namedShadowNames": ["a"]}},
    {"thingIndexingMode": "REGISTRY_AND_SHADOW", "namedShadowIndexingMode": "ON",
     "filter": {"namedShadowNames": [f"s{i}" for i in range(11)]}},
])
def test_bad_configurations_are_refused_and_change_nothing(localiot_server, config):
    iot = make_client(localiot_server)
    with pytest.raises(ClientError) as info:
        iot.update_indexing_configuration(thingIndexingConfiguration=config)
    assert code(info) == "InvalidRequestException"
    assert iot.get_indexing_configuration()["thingIndexingConfiguration"]["thingIndexingMode"] == "OFF"


def test_the_index_follows_every_kind_of_change_at_once(localiot_server):
    iot = make_client(localiot_server)
    data = make_client(localiot_server, "iot-data")
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY_AND_SHADOW",
                                                                  "namedShadowIndexingMode": "ON"},
                                      thingGroupIndexingConfiguration={"thingGroupIndexingMode": "ON"})
    iot.create_thing_type(thingTypeName="meter")
    iot.create_thing(thingName="m1", thingTypeName="meter", attributePayload={"attributes": {"v": "1"}})
    assert names(iot, "thingTypeName:meter") == ["m1"]
    iot.update_thing(thingName="m1", attributePayload={"attributes": {"v": "2"}})
    assert names(iot, "attributes.v:2") == ["m1"] and names(iot, "attributes.v:1") == []
    assert names(iot, "registry.version:2") == ["m1"]
    iot.create_thing_group(thingGroupName="g1", thingGroupProperties={"thingGroupDescription": "first"})
    iot.add_thing_to_thing_group(thingGroupName="g1", thingName="m1")
    assert names(iot, "thingGroupNames:g1") == ["m1"]
    groups = iot.search_index(indexName="AWS_ThingGroups", queryString="thingGroupDescription:first")
    assert [g["thingGroupName"] for g in groups["thingGroups"]] == ["g1"]
    iot.remove_thing_from_thing_group(thingGroupName="g1", thingName="m1")
    assert names(iot, "thingGroupNames:g1") == []
    data.update_thing_shadow(thingName="m1", payload=b'{"state":{"reported":{"kwh":12}}}')
    assert names(iot, "shadow.reported.kwh:12") == ["m1"]
    data.update_thing_shadow(thingName="m1", shadowName="cal", payload=b'{"state":{"desired":{"k":1}}}')
    assert names(iot, "shadow.name.cal.desired.k:1") == ["m1"]
    data.delete_thing_shadow(thingName="m1", shadowName="cal")
    assert names(iot, "shadow.name.cal.desired.k:*") == []
    data.delete_thing_shadow(thingName="m1")
    assert names(iot, "shadow.reported.kwh:*") == []
    iot.delete_thing_group(thingGroupName="g1")
    assert iot.search_index(indexName="AWS_ThingGroups", queryString="thingGroupName:*")["thingGroups"] == []
    iot.delete_thing(thingName="m1")
    assert names(iot, "thingName:*") == []
    # turning indexing off drops the index; on again rebuilds it from the store
    iot.create_thing(thingName="m2")
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "OFF"})
    with pytest.raises(ClientError) as info:
        iot.search_index(queryString="thingName:*")
    assert code(info) == "ResourceNotFoundException"
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    assert names(iot, "thingName:*") == ["m2"]


def test_connectivity_follows_real_mqtt_connections():
    with local_server(mqtt_plain=True, background_period=0) as server:
        iot = make_client(server)
        iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY",
                                                                      "thingConnectivityIndexingMode": "STATUS"})
        iot.create_thing(thingName="dev1")
        assert names(iot, "connectivity.connected:false") == ["dev1"]
        client = connect(server, "dev1")
        start = time.monotonic()
        assert eventually(lambda: names(iot, "connectivity.connected:true") == ["dev1"])
        lag = time.monotonic() - start
        assert lag < 1.0
        disconnect(client)
        assert eventually(lambda: names(iot, "connectivity.disconnectReason:CLIENT_INITIATED_DISCONNECT") == ["dev1"])


def test_building_over_an_existing_fleet_and_surviving_a_restart():
    with tempfile.TemporaryDirectory() as data_dir:
        with local_server(data_dir=data_dir, background_period=0) as server:
            iot = make_client(server)
            for i in range(1100):  # more than one build batch
                iot.create_thing(thingName=f"t{i:04d}", attributePayload={"attributes": {"n": str(i % 7)}})
            iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
            assert iot.describe_index(indexName="AWS_Things")["indexStatus"] in ("BUILDING", "ACTIVE")
            assert eventually(lambda: iot.describe_index(indexName="AWS_Things")["indexStatus"] == "ACTIVE")
            assert iot.get_statistics(queryString="thingName:*")["statistics"]["count"] == 1100
        with local_server(data_dir=data_dir, background_period=0) as server:
            iot = make_client(server)
            assert iot.describe_index(indexName="AWS_Things")["indexStatus"] == "ACTIVE"
            assert iot.get_statistics(queryString="attributes.n:3")["statistics"]["count"] == len(
                [i for i in range(1100) if i % 7 == 3])
            iot.create_thing(thingName="late", attributePayload={"attributes": {"n": "3"}})
            assert "late" in names(iot, "attributes.n:3")
