"""The application URL over plain HTTP: the JSON the dashboard's pages read,
scoped to the application's account and region, and only while ACTIVE."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from fleethub_kit import ROLE_ARN, active_application, advance, enable_indexing, fleethub_client

from conftest import make_client


def get(url: str, data: dict | None = None) -> tuple[int, dict | str, str]:
    request = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,
                                     method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request) as response:
            status, body, kind = response.status, response.read(), response.headers.get_content_type()
    except urllib.error.HTTPError as error:
        status, body, kind = error.code, error.read(), error.headers.get_content_type()
    return status, (json.loads(body) if kind == "application/json" else body.decode()), kind


@pytest.fixture
def app_url(iot, localiot_server):
    enable_indexing(iot, localiot_server)
    for name, attrs in (("sensor-1", {"floor": "1"}), ("sensor-2", {"floor": "2"}), ("gateway", {"floor": "1"})):
        iot.create_thing(thingName=name, attributePayload={"attributes": attrs})
    data = make_client(localiot_server, "iot-data")
    data.update_thing_shadow(thingName="sensor-1", payload=json.dumps({"state": {"reported": {"temp": 21}}}))
    data.update_thing_shadow(thingName="sensor-1", shadowName="config",
                             payload=json.dumps({"state": {"desired": {"interval": 5}}}))
    group = iot.create_thing_group(thingGroupName="floor-1")
    iot.add_thing_to_thing_group(thingGroupName="floor-1", thingName="sensor-1")
    assert group["thingGroupName"] == "floor-1"
    hub = fleethub_client(localiot_server)
    return active_application(hub, localiot_server)["applicationUrl"]


def test_page_and_static_files(app_url):
    status, html, kind = get(app_url)
    assert status == 200 and kind == "text/html"
    assert 'src="static/app.js"' in html and "<label for=\"query\">" in html
    assert "http" not in html.replace("http-equiv", "")  # nothing from another host: no CDN
    status, script, kind = get(app_url + "static/app.js")
    assert status == 200 and kind in ("application/javascript", "text/javascript") and "EventSource" in script
    assert get(app_url + "static/../__init__.py")[0] == 404
    assert get(app_url.rstrip("/"))[0] == 200  # redirected to the slash form


def test_search_uses_the_fleet_query_language_and_pages(app_url):
    status, found, _ = get(app_url + "api/search?q=" + urllib.request.quote("attributes.floor:1"))
    assert status == 200
    assert sorted(t["thingName"] for t in found["things"]) == ["gateway", "sensor-1"]
    sensor = next(t for t in found["things"] if t["thingName"] == "sensor-1")
    assert sensor["shadow"]["reported"] == {"temp": 21} and sensor["connectivity"] == {"connected": False}
    status, everything, _ = get(app_url + "api/search")
    assert everything["queryString"] == "thingName:*" and len(everything["things"]) == 3
    status, refused, _ = get(app_url + "api/search?q=" + urllib.request.quote("attributes.floor:(1"))
    assert status == 400 and refused["code"] == "InvalidQueryException"


def test_device_details(app_url):
    status, device, _ = get(app_url + "api/things/sensor-1")
    assert status == 200
    assert device["thing"]["attributes"] == {"floor": "1"}
    assert device["groups"] == ["floor-1"]
    assert device["shadow"]["state"]["reported"] == {"temp": 21}
    assert device["namedShadows"]["config"]["state"]["delta"] == {"interval": 5}
    assert device["connectivity"]["connected"] is False
    assert get(app_url + "api/things/gateway")[1]["shadow"] is None
    status, missing, _ = get(app_url + "api/things/nobody")
    assert status == 404 and missing["code"] == "ResourceNotFoundException"


def test_jobs_created_from_the_page(app_url, iot):
    status, created, _ = get(app_url + "api/jobs", {"jobId": "reboot-1", "things": ["sensor-1", "sensor-2"],
                                                    "document": json.dumps({"op": "reboot"})})
    assert status == 201 and created["jobId"] == "reboot-1"
    assert iot.describe_job(jobId="reboot-1")["job"]["targets"] == [
        iot.describe_thing(thingName=t)["thingArn"] for t in ("sensor-1", "sensor-2")]
    listed = get(app_url + "api/jobs")[1]
    assert [j["jobId"] for j in listed["jobs"]] == ["reboot-1"]
    job = get(app_url + "api/jobs/reboot-1")[1]
    assert sorted(e["thingName"] for e in job["executions"]) == ["sensor-1", "sensor-2"]
    assert get(app_url + "api/things/sensor-2")[1]["jobs"][0]["status"] == "QUEUED"
    status, refused, _ = get(app_url + "api/jobs", {"jobId": "bad id!", "things": ["sensor-1"], "document": "{}"})
    assert status == 400 and refused["code"] == "InvalidRequestException"
    assert [j["jobId"] for j in get(app_url + "api/jobs")[1]["jobs"]] == ["reboot-1"]


def test_only_active_applications_are_served(iot, localiot_server):
    enable_indexing(iot, localiot_server)
    hub = fleethub_client(localiot_server)
    app = hub.create_application(applicationName="a", roleArn=ROLE_ARN)
    url = hub.describe_application(applicationId=app["applicationId"])["applicationUrl"]
    assert get(url)[0] == 404  # CREATING
    advance(localiot_server)
    assert get(url)[0] == 200
    hub.delete_application(applicationId=app["applicationId"])
    assert get(url)[0] == 404  # DELETING
    assert get(localiot_server.endpoint + "/fleethub/not-an-application/")[0] == 404


def test_each_application_sees_only_its_own_region(iot, localiot_server):
    enable_indexing(iot, localiot_server)
    iot.create_thing(thingName="here")
    west = make_client(localiot_server, region="eu-west-1")
    enable_indexing(west, localiot_server)
    west.create_thing(thingName="there")
    url = active_application(fleethub_client(localiot_server, region="eu-west-1"), localiot_server)["applicationUrl"]
    assert [t["thingName"] for t in get(url + "api/search")[1]["things"]] == ["there"]
    assert get(url + "api/things/here")[0] == 404
    assert get(url + "api/application")[1]["region"] == "eu-west-1"
