"""Fleet indexing of Device Defender violations (deviceDefender.* fields, fed by
a real paho device's metrics reports) and of locations (the geoLocations
filter, every location format, geo_distance and geo_bounding_box queries),
through boto3."""

from __future__ import annotations

import json

import pytest

from localiot.testing import ACCOUNT, REGION, error_code, make_client

SEATTLE = (47.6062, -122.3321)  # the Space Needle (47.6204, -122.3491) is ~2.0 km away
PORTLAND = (45.5152, -122.6784)  # ~233 km from Seattle
NEW_YORK = (40.7128, -74.0060)


def names(iot, query, **kw):
    found, token = [], None
    while True:
        page = iot.search_index(queryString=query, **({"nextToken": token} if token else {}), **kw)
        found += [t["thingName"] for t in page["things"]]
        token = page.get("nextToken")
        if not token:
            return sorted(found)


# Device Defender -----------------------------------------------------------------------------------
def _report(cpu: float, report_id: int) -> str:
    return json.dumps({"header": {"report_id": report_id, "version": "1.0"},
                       "metrics": {"listening_tcp_ports": {"ports": [{"port": 443}], "total": 1}},
                       "custom_metrics": {"cpu": [{"number": cpu}]}})


def test_violations_are_indexed_and_searchable(localiot_server, localiot_devices):
    iot = make_client(localiot_server)
    iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY", "deviceDefenderIndexingMode": "VIOLATIONS"})
    fields = {f["name"]: f["type"] for f in
              iot.get_indexing_configuration()["thingIndexingConfiguration"]["managedFields"]}
    assert fields["deviceDefender.violationCount"] == "Number"
    iot.create_custom_metric(metricName="cpu", metricType="number", clientRequestToken="c")
    iot.create_security_profile(securityProfileName="load", behaviors=[
        {"name": "cpu-high", "metric": "cpu", "criteria": {"comparisonOperator": "less-than", "value": {"number": 90}}}])
    iot.attach_security_profile(securityProfileName="load",
                                securityProfileTargetArn=f"arn:aws:iot:{REGION}:{ACCOUNT}:all/things")
    for name in ("hot-1", "calm-1"):
        iot.create_thing(thingName=name)
    device = localiot_devices.tls("hot-1")
    iot.attach_thing_principal(thingName="hot-1", principal=device.cert.arn)
    base = "$aws/things/hot-1/defender/metrics/json"
    device.subscribe(f"{base}/accepted")
    assert names(iot, "deviceDefender.violationCount:0") == ["calm-1", "hot-1"]

    device.publish(base, _report(97, 1))
    device.expect(f"{base}/accepted")
    assert [v["thingName"] for v in iot.list_active_violations()["activeViolations"]] == ["hot-1"]
    assert names(iot, "deviceDefender.violationCount>0") == ["hot-1"]  # the violation is indexed on its commit
    assert names(iot, "deviceDefender.load.cpu-high.inViolation:true") == ["hot-1"]
    assert names(iot, "deviceDefender.load.cpu-high.lastViolationValue.number>=97") == ["hot-1"]
    assert names(iot, "deviceDefender.load.cpu-high.lastViolationTime>0 AND thingName:hot*") == ["hot-1"]
    doc = iot.search_index(queryString="thingName:hot-1")["things"][0]
    defender = json.loads(doc["deviceDefender"])
    assert defender["violationCount"] == 1 and defender["load"]["cpu-high"]["inViolation"] is True
    assert defender["load"]["cpu-high"]["lastViolationValue"] == {"number": 97.0}
    group = iot.create_dynamic_thing_group(thingGroupName="violating", queryString="deviceDefender.violationCount>0")
    assert iot.list_things_in_thing_group(thingGroupName="violating")["things"] == ["hot-1"]

    device.publish(base, _report(20, 2))  # the violation clears: the thing leaves the dynamic group
    device.expect(f"{base}/accepted")
    assert names(iot, "deviceDefender.violationCount>0") == []
    assert names(iot, "deviceDefender.load.cpu-high.inViolation:false") == ["hot-1"]
    assert iot.list_things_in_thing_group(thingGroupName=group["thingGroupName"])["things"] == []
    stats = iot.get_statistics(queryString="thingName:*", aggregationField="deviceDefender.violationCount")
    assert stats["statistics"]["count"] == 2 and stats["statistics"]["sum"] == 0
    assert error_code(lambda: iot.search_index(queryString="deviceDefender.violationCount:many")) == \
        "InvalidQueryException"


def test_defender_fields_stay_out_unless_indexed(localiot_server):
    iot = make_client(localiot_server)
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    iot.create_thing(thingName="t")
    assert names(iot, "deviceDefender.violationCount:0") == []
    assert "deviceDefender" not in iot.search_index(queryString="thingName:t")["things"][0]


# Geolocation ---------------------------------------------------------------------------------------
@pytest.fixture
def located(localiot_server):
    iot = make_client(localiot_server)
    data = make_client(localiot_server, "iot-data")
    iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY_AND_SHADOW",
        "filter": {"geoLocations": [{"name": "shadow.reported.location", "order": "LatLon"}]}})
    places = {"wkt": f"POINT({SEATTLE[1]} {SEATTLE[0]})",  # WKT is longitude first
              "text": f"{PORTLAND[0]}, {PORTLAND[1]}",
              "object": {"latitude": SEATTLE[0] + 0.01, "long": SEATTLE[1]},
              "array": [NEW_YORK[0], NEW_YORK[1]],
              "nowhere": "somewhere nice", "far-out": [95, 10]}
    for name, location in places.items():
        iot.create_thing(thingName=name)
        data.update_thing_shadow(thingName=name,
                                 payload=json.dumps({"state": {"reported": {"location": location}}}).encode())
    iot.create_thing(thingName="no-shadow")
    return iot, data


def test_geo_distance_and_bounding_box(located):
    iot, data = located
    field = "shadow.reported.location"
    assert names(iot, f"{field}:geo_distance,47.6204,-122.3491,5km") == ["object", "wkt"]
    assert names(iot, f"{field}:geo_distance,47.6204,-122.3491,1000m") == []  # the nearest is ~1.4 km away
    assert names(iot, f"{field}:geo_distance,47.6204,-122.3491,300km") == ["object", "text", "wkt"]
    assert names(iot, f"{field}:geo_distance,47.6204,-122.3491,200mi") == ["object", "text", "wkt"]
    assert names(iot, f"{field}:geo_distance,{NEW_YORK[0]},{NEW_YORK[1]},1") == ["array"]  # metres by default
    # top-left, bottom-right: the Pacific Northwest
    assert names(iot, f"{field}:geo_bounding_box,49,-125,45,-120") == ["object", "text", "wkt"]
    assert names(iot, f"{field}:geo_bounding_box,47,-125,45,-120") == ["text"]
    assert names(iot, f"{field}:geo_bounding_box,50,170,30,-70") == ["array", "object", "text", "wkt"]  # wraps
    # combined with other terms, negated, in a dynamic group that follows the shadow
    assert names(iot, f"{field}:geo_distance,47.6204,-122.3491,300km AND NOT thingName:text") == ["object", "wkt"]
    iot.create_dynamic_thing_group(thingGroupName="seattle", queryString=f"{field}:geo_distance,47.6,-122.3,10km")
    assert iot.list_things_in_thing_group(thingGroupName="seattle")["things"] == ["object", "wkt"]
    data.update_thing_shadow(thingName="array", payload=json.dumps(
        {"state": {"reported": {"location": {"lat": 47.61, "lon": -122.33}}}}).encode())
    assert sorted(iot.list_things_in_thing_group(thingGroupName="seattle")["things"]) == ["array", "object", "wkt"]
    # the location's own fields stay searchable as ordinary fields
    assert names(iot, "shadow.reported.location.latitude>47") == ["object"]


def test_lon_lat_order_and_named_shadows(localiot_server):
    iot = make_client(localiot_server)
    data = make_client(localiot_server, "iot-data")
    iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY", "namedShadowIndexingMode": "ON",
        "filter": {"namedShadowNames": ["gps"],
                   "geoLocations": [{"name": "shadow.name.gps.reported.position", "order": "LonLat"}]}})
    for name, position in (("geojson", {"type": "Point", "coordinates": [SEATTLE[1], SEATTLE[0]]}),
                           ("pair", [NEW_YORK[1], NEW_YORK[0]]), ("text", f"{PORTLAND[1]},{PORTLAND[0]}")):
        iot.create_thing(thingName=name)
        data.update_thing_shadow(thingName=name, shadowName="gps",
                                 payload=json.dumps({"state": {"reported": {"position": position}}}).encode())
    field = "shadow.name.gps.reported.position"
    assert names(iot, f"{field}:geo_distance,{SEATTLE[0]},{SEATTLE[1]},1km") == ["geojson"]
    assert names(iot, f"{field}:geo_bounding_box,41,-75,40,-73") == ["pair"]
    assert names(iot, f"{field}:geo_bounding_box,46,-123,45,-122") == ["text"]
    config = iot.get_indexing_configuration()["thingIndexingConfiguration"]
    assert config["filter"]["geoLocations"] == [{"name": field, "order": "LonLat"}]


@pytest.mark.parametrize("query", [
    "shadow.reported.location:geo_distance,47.6,-122.3",  # no distance
    "shadow.reported.location:geo_distance,97.6,-122.3,5km",  # latitude out of range
    "shadow.reported.location:geo_distance,47.6,-122.3,5parsecs",
    "shadow.reported.location:geo_bounding_box,45,-125,49,-120",  # top below bottom
    "shadow.reported.location:geo_bounding_box,49,-125,45",
])
def test_bad_geoqueries_are_invalid_queries(located, query):
    iot, _ = located
    assert error_code(lambda: iot.search_index(queryString=query)) == "InvalidQueryException"


@pytest.mark.parametrize("config", [
    {"thingIndexingMode": "REGISTRY", "filter": {"geoLocations": [{"name": "shadow.reported.location"}]}},
    {"thingIndexingMode": "REGISTRY_AND_SHADOW", "filter": {"geoLocations": [{"name": "attributes.location"}]}},
    {"thingIndexingMode": "REGISTRY_AND_SHADOW",
     "filter": {"geoLocations": [{"name": "shadow.reported.a"}, {"name": "shadow.reported.b"}]}},
    {"thingIndexingMode": "REGISTRY_AND_SHADOW", "namedShadowIndexingMode": "ON",
     "filter": {"namedShadowNames": ["gps"], "geoLocations": [{"name": "shadow.name.other.reported.p"}]}},
])
def test_bad_geolocation_targets_change_nothing(localiot_server, config):
    iot = make_client(localiot_server)
    before = iot.get_indexing_configuration()["thingIndexingConfiguration"]
    assert error_code(lambda: iot.update_indexing_configuration(thingIndexingConfiguration=config)) == \
        "InvalidRequestException"
    assert iot.get_indexing_configuration()["thingIndexingConfiguration"] == before
