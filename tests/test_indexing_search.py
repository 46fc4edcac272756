"""SearchIndex through boto3 over a seeded fleet: a table of query cases with
the exact thing sets they must return, the documents returned, pagination,
and the modelled errors for bad queries."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from conftest import make_client
from indexing_fleet import ALL, C1, C2, GA, GB, S1, S2, S3, S4, S5, disconnect, search_all, seed
from localiot.testing import local_server

SENSORS = {S1, S2, S3, S4, S5}

CASES = [
    # registry: names, ids, types, groups
    ("thingName:sensor-01", {S1}),
    ("sensor-01", {S1}),
    ("thingName:sensor*", SENSORS),
    ("thingName:sensor-0?", SENSORS),
    ("thingName:*-a", {GA}),
    ("thingName:gateway-?", {GA, GB}),
    ("thingName:*", ALL),
    ("thingName:cam\\:2", {C2}),
    ('thingName:"cam:2"', {C2}),
    ("thingName:cam*", {C1, C2}),
    ("thingName:nothing", set()),
    ("thingName:SENSOR-01", set()),
    ("thingName:sens*01", {S1}),
    ("thingName:*0*", SENSORS),
    ('thingName:"sensor*"', set()),
    ("thingName:sensor\\*", set()),
    ("thingName:sensor-01 OR sensor-03", {S1, S3}),
    ("(thingName:gateway-a)", {GA}),
    ("thingTypeName:sensor", SENSORS),
    ("thingTypeName:gateway", {GA, GB}),
    ("thingTypeName:*", SENSORS | {GA, GB}),
    ("NOT thingTypeName:*", {C1, C2}),
    ("thingGroupNames:building5", {S1, S2, GA}),
    ("thingGroupNames:building6", {S3, S4, C1}),
    ("thingGroupNames:building*", {S1, S2, GA, S3, S4, C1}),
    ("NOT thingGroupNames:*", {S5, GB, C2}),
    ("registry.version:1", ALL),
    # attributes: strings, declared Number (floor) and String (model), inferred (firmware, site)
    ("attributes.model:T100", {S1, S2}),
    ('attributes.model:"T100:plus"', {S5}),
    ("attributes.model:T100\\:plus", {S5}),
    ('shadow.reported.mode:"deep sleep"', {S5}),
    ("shadow.reported.mode:deep\\ sleep", {S5}),
    ("attributes.model:T*", SENSORS),
    ("attributes.model:T?00", {S1, S2, S3, S4}),
    ("attributes.model:(T100 OR T200)", {S1, S2, S3, S4}),
    ("attributes.model:T1* AND NOT attributes.model:\"T100:plus\"", {S1, S2}),
    ("attributes.floor:1", {S1, GA}),
    ("attributes.floor:10", {S4}),
    ("attributes.floor>2", {S3, S4, S5}),
    ("attributes.floor>=2", {S2, S3, S4, S5, GB}),
    ("attributes.floor<2", {S1, GA}),
    ("attributes.floor<=1", {S1, GA}),
    ("attributes.floor > 3", {S4, S5}),
    ("attributes.floor:>3", {S4, S5}),
    ("attributes.floor:[2 TO 5]", {S2, S3, S5, GB}),
    ("attributes.floor:{2 TO 5}", {S3}),
    ("attributes.floor:[2 TO 5}", {S2, S3, GB}),
    ("attributes.floor:{2 TO 5]", {S3, S5}),
    ("attributes.floor:[* TO 2]", {S1, S2, GA, GB}),
    ("attributes.floor:[5 TO *]", {S4, S5}),
    ("attributes.floor:[1 TO 1]", {S1, GA}),
    ("attributes.firmware<2.3", {S1, S2, S5}),
    ("attributes.firmware:[2.0 TO 2.9]", {S1, S2, S3}),
    ("attributes.firmware:2.1", {S1}),
    ("attributes.site:north", {GA}),
    ("attributes.site:*", {GA, GB}),
    ("attributes.zone:x", {C1}),
    ("attributes.site:[m TO o]", {GA}),
    ("attributes.site>r", {GB}),
    ("attributes.nothing:*", set()),
    # classic shadow
    ("shadow.reported.temp>20", {S1, S2}),
    ("shadow.reported.temp<0", {S5}),
    ("shadow.reported.temp:[19 TO 21.5]", {S1, S3}),
    ("shadow.reported.temp:{19 TO 21.5}", set()),
    ("shadow.reported.temp:25", {S2}),
    ("shadow.reported.temp:25.0", {S2}),
    ("shadow.reported.temp:-3.5", {S5}),
    ("shadow.reported.temp:*", {S1, S2, S3, S5}),
    ("shadow.reported.battery<20", {S2}),
    ("shadow.reported.battery>=80", {S1, S5}),
    ("shadow.reported.battery:55", {S3}),
    ("shadow.reported.mode:eco", {S1, S3}),
    ("shadow.reported.mode:boost", {S2}),
    ("shadow.reported.mode:[a TO c]", {S2}),
    ("shadow.desired.mode:eco", {S1, S2}),
    ("shadow.reported.mode:eco AND shadow.desired.mode:eco", {S1}),
    ("shadow.hasDelta:true", {S2}),
    ("shadow.hasDelta:false", {S1, S3, S5, GA}),
    ("shadow.version:1", {S1, S2, S5, GA}),
    ("shadow.version>=2", {S3}),
    ("shadow.reported.tags:a", {S1}),
    ("shadow.reported.tags:b", {S1}),
    ("shadow.reported.uptime>500", {GA}),
    ("shadow.metadata.reported.temp.timestamp:*", {S1, S2, S3, S5}),
    # named shadows
    ("shadow.name.config.reported.interval:30", {S5}),
    ("shadow.name.config.reported.interval>=30", {S5, GA}),
    ("shadow.name.config.reported.interval:*", {S5, GA}),
    ("shadow.name.diag.reported.errors:2", {GA}),
    ("shadow.name.diag.reported.errors:[1 TO 3]", {GA}),
    ("shadow.name.config.version:1", {S5, GA}),
    ("shadow.name.config.hasDelta:false", {S5, GA}),
    # connectivity from real MQTT connections
    ("connectivity.connected:true", {S1, GA}),
    ("connectivity.connected:false", ALL - {S1, GA}),
    ("connectivity.disconnectReason:CLIENT_INITIATED_DISCONNECT", {S2}),
    ("connectivity.disconnectReason:*", {S2}),
    ("connectivity.timestamp:*", {S1, S2, GA}),
    ("connectivity.timestamp>0", {S1, S2, GA}),
    # boolean structure
    ("connectivity.connected:true AND thingTypeName:sensor", {S1}),
    ("thingTypeName:sensor AND attributes.floor>1", {S2, S3, S4, S5}),
    ("thingTypeName:sensor attributes.model:T200", {S3, S4}),
    ("thingTypeName:sensor AND NOT attributes.model:T100", {S3, S4, S5}),
    ("thingTypeName:sensor -attributes.model:T100", {S3, S4, S5}),
    ("thingTypeName:sensor AND +attributes.model:T200", {S3, S4}),
    ("thingName:cam_1 OR thingName:gateway-b", {C1, GB}),
    ("thingName:(cam_1 OR gateway-b)", {C1, GB}),
    ("(thingGroupNames:building5 OR thingGroupNames:building6) AND thingTypeName:sensor", {S1, S2, S3, S4}),
    ("thingGroupNames:building5 OR thingGroupNames:building6 AND thingTypeName:sensor", {S1, S2, GA, S3, S4}),
    ("NOT (thingTypeName:sensor OR thingTypeName:gateway)", {C1, C2}),
    ("NOT thingName:sensor* AND NOT thingName:cam*", {GA, GB}),
    ("shadow.reported.temp>20 OR shadow.reported.battery<60", {S1, S2, S3}),
    ("shadow.reported.temp>20 AND shadow.reported.battery<60", {S2}),
    ("shadow.hasDelta:true OR connectivity.connected:true", {S1, S2, GA}),
    ("attributes.floor:1 AND thingName:gateway*", {GA}),
    ("thingGroupNames:building5 AND NOT connectivity.connected:true", {S2}),
    ("((thingName:gateway-a OR thingName:gateway-b) AND attributes.site:south)", {GB}),
]

BAD = [
    "thingName:(a",
    "thingName:a AND",
    "AND thingName:a",
    "thingName:a)",
    '"unterminated',
    "foo:bar",
    "shadow.bogus:1",
    "attributes.model:[1 TO 5]",
    "attributes.model>3",
    "shadow.reported.temp:abc",
    "shadow.reported.temp:[a TO z]",
    "connectivity.connected:maybe",
    "connectivity.connected:[true TO false]",
    "shadow.version:1*",
    "thingName:a~",
    "thingName:/sensor.*/",
    "thingName:a^2",
    "thingName:[* TO *]",
    " OR ".join(f"thingName:t{i}" for i in range(10_000)),
    "(" * 5000 + "thingName:a" + ")" * 5000,
]


@pytest.fixture(scope="module")
def server():
    with local_server(mqtt_plain=True, background_period=0) as running:
        yield running


@pytest.fixture(scope="module")
def fleet(server):
    server.reset()
    iot = make_client(server)
    data = make_client(server, "iot-data")
    clients = seed(server, iot, data)
    yield iot
    for client in clients.values():
        disconnect(client)


def test_the_table_has_enough_cases():
    assert len(CASES) >= 100 and len({q for q, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("query,expected", CASES, ids=[q[:60] for q, _ in CASES])
def test_query(fleet, query, expected):
    assert set(search_all(fleet, query)) == expected


def test_results_are_in_name_order_and_page(fleet):
    names = search_all(fleet, "thingName:*", maxResults=2)
    assert names == sorted(ALL)
    first = fleet.search_index(queryString="thingName:*", maxResults=4)
    assert len(first["things"]) == 4 and first["nextToken"]


def test_a_thing_document_carries_what_aws_returns(fleet):
    things = fleet.search_index(queryString="thingName:sensor-01")["things"]
    assert len(things) == 1
    doc = things[0]
    described = fleet.describe_thing(thingName=S1)
    assert doc["thingName"] == S1 and doc["thingId"] == described["thingId"]
    assert doc["thingTypeName"] == "sensor" and doc["thingGroupNames"] == ["building5"]
    assert doc["attributes"] == {"floor": "1", "firmware": "2.1", "model": "T100"}
    shadow = json.loads(doc["shadow"])
    assert shadow["reported"]["temp"] == 21.5 and shadow["desired"] == {"mode": "eco"}
    assert shadow["version"] == 1 and shadow["hasDelta"] is False
    assert "timestamp" in shadow["metadata"]["reported"]["temp"]
    assert doc["connectivity"]["connected"] is True and doc["connectivity"]["timestamp"] > 0
    by_id = fleet.search_index(queryString=f"thingId:{described['thingId']}")["things"]
    assert [t["thingName"] for t in by_id] == [S1]
    named = json.loads(fleet.search_index(queryString="thingName:gateway-a")["things"][0]["shadow"])
    assert named["name"]["config"]["reported"] == {"interval": 60}
    assert named["name"]["diag"]["reported"] == {"errors": 2}
    gone = fleet.search_index(queryString="thingName:sensor-02")["things"][0]["connectivity"]
    assert gone["connected"] is False and gone["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"


@pytest.mark.parametrize("query", BAD, ids=[q[:40] for q in BAD])
def test_a_bad_query_is_an_invalid_query_exception(fleet, query):
    with pytest.raises(ClientError) as info:
        fleet.search_index(queryString=query)
    assert info.value.response["Error"]["Code"] == "InvalidQueryException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert info.value.response["Error"]["Message"]
    # nothing changed and the server still answers
    assert set(search_all(fleet, "thingTypeName:gateway")) == {GA, GB}


def test_an_unknown_index_or_query_version_is_refused(fleet):
    with pytest.raises(ClientError) as info:
        fleet.search_index(indexName="MyIndex", queryString="thingName:*")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as info:
        fleet.search_index(queryString="thingName:*", queryVersion="1999-01-01")
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    assert fleet.search_index(queryString="thingName:cam_1", queryVersion="2017-09-30")["things"]


def test_a_query_before_indexing_is_on_is_refused(server, fleet):
    other = make_client(server, access_key="222233334444")
    other.create_thing(thingName="lonely")
    with pytest.raises(ClientError) as info:
        other.search_index(queryString="thingName:*")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert other.list_indices()["indexNames"] == []
