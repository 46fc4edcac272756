"""Fleet metrics through boto3: CRUD with modelled errors, and data points
sent to CloudWatch on the injectable clock, read back from moto's server."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from conftest import make_client
from localiot.testing import local_server

T = 1_700_000_000


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def server(moto_url):
    with local_server(aws_endpoint_url=moto_url, downstream_access_key="testing", downstream_secret_key="testing",
                      background_period=0) as srv:
        yield srv


@pytest.fixture
def iot(server):
    server.reset()
    client = make_client(server)
    client.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY_AND_SHADOW",
        "customFields": [{"name": "shadow.reported.temp", "type": "Number"}]})
    return client


def clock(server, **body):
    requests.post(f"{server.endpoint}/_localiot/clock", json=body, timeout=30).raise_for_status()


def code(info):
    return info.value.response["Error"]["Code"]


def test_fleet_metric_crud_and_errors(iot):
    made = iot.create_fleet_metric(metricName="hot", queryString="shadow.reported.temp>30", period=60,
                                   aggregationType={"name": "Statistics", "values": ["count"]},
                                   aggregationField="shadow.reported.temp", description="hot things",
                                   tags=[{"Key": "team", "Value": "ops"}])
    assert made["metricArn"] == "arn:aws:iot:us-east-1:123456789012:fleetmetric/hot"
    got = iot.describe_fleet_metric(metricName="hot")
    assert got["queryString"] == "shadow.reported.temp>30" and got["version"] == 1 and got["period"] == 60
    assert got["indexName"] == "AWS_Things" and got["description"] == "hot things"
    assert iot.list_tags_for_resource(resourceArn=made["metricArn"])["tags"] == [{"Key": "team", "Value": "ops"}]
    iot.update_fleet_metric(metricName="hot", indexName="AWS_Things", period=120, expectedVersion=1)
    assert iot.describe_fleet_metric(metricName="hot")["period"] == 120
    assert [m["metricName"] for m in iot.list_fleet_metrics()["fleetMetrics"]] == ["hot"]

    bad = [
        (dict(queryString="thingName:(x"), "InvalidQueryException"),
        (dict(aggregationField="attributes.undeclared"), "InvalidAggregationException"),
        (dict(aggregationType={"name": "Statistics", "values": ["median"]}), "InvalidAggregationException"),
        (dict(period=90), "InvalidRequestException"),
        (dict(metricName="hot"), "ResourceAlreadyExistsException"),
        (dict(indexName="Nope"), "ResourceNotFoundException"),
    ]
    for change, error in bad:
        kw = dict(metricName="other", queryString="thingName:*", period=60, aggregationField="shadow.reported.temp",
                  aggregationType={"name": "Statistics", "values": ["count"]})
        kw.update(change)
        with pytest.raises(ClientError) as info:
            iot.create_fleet_metric(**kw)
        assert code(info) == error, change
    assert [m["metricName"] for m in iot.list_fleet_metrics()["fleetMetrics"]] == ["hot"]
    with pytest.raises(ClientError) as info:
        iot.update_fleet_metric(metricName="hot", indexName="AWS_Things", expectedVersion=1)
    assert code(info) == "VersionConflictException"
    iot.delete_fleet_metric(metricName="hot")
    with pytest.raises(ClientError) as info:
        iot.describe_fleet_metric(metricName="hot")
    assert code(info) == "ResourceNotFoundException"


def test_data_points_reach_cloudwatch_each_period(server, iot, moto_url):
    data = make_client(server, "iot-data")
    temps = {"a": 10, "b": 35, "c": 40}
    for name, temp in temps.items():
        iot.create_thing(thingName=name)
        data.update_thing_shadow(thingName=name, payload=json.dumps({"state": {"reported": {"temp": temp}}}).encode())
    clock(server, set=T)
    iot.create_fleet_metric(metricName="temps", queryString="thingName:*", period=60,
                            aggregationType={"name": "Statistics", "values": ["average"]},
                            aggregationField="shadow.reported.temp")
    iot.create_fleet_metric(metricName="p50", queryString="thingName:*", period=60,
                            aggregationType={"name": "Percentiles", "values": ["50"]},
                            aggregationField="shadow.reported.temp")
    clock(server, advance=30)  # not due yet
    cw = boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    assert cw.list_metrics(Namespace="IoTFleetMetrics")["Metrics"] == []
    clock(server, advance=31)
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="IoTFleetMetrics")["Metrics"]}
    assert names == {"temps", "p50"}
    start = datetime.fromtimestamp(T - 600, timezone.utc)
    stats = cw.get_metric_statistics(Namespace="IoTFleetMetrics", MetricName="temps", StartTime=start,
                                     EndTime=start + timedelta(hours=1), Period=60,
                                     Statistics=["Average", "SampleCount", "Maximum"])["Datapoints"]
    assert len(stats) == 1
    assert stats[0]["SampleCount"] == 3 and stats[0]["Maximum"] == 40
    assert stats[0]["Average"] == pytest.approx(sum(temps.values()) / 3)
    median = cw.get_metric_statistics(Namespace="IoTFleetMetrics", MetricName="p50", StartTime=start,
                                      EndTime=start + timedelta(hours=1), Period=60, Statistics=["Maximum"],
                                      Dimensions=[{"Name": "Percentile", "Value": "50"}])["Datapoints"]
    assert [p["Maximum"] for p in median] == [35]
    # the next period sees the fleet as it is then
    data.update_thing_shadow(thingName="a", payload=b'{"state":{"reported":{"temp":100}}}')
    clock(server, advance=60)
    stats = cw.get_metric_statistics(Namespace="IoTFleetMetrics", MetricName="temps", StartTime=start,
                                     EndTime=start + timedelta(hours=1), Period=3600,
                                     Statistics=["SampleCount", "Maximum"])["Datapoints"]
    assert stats[0]["SampleCount"] == 6 and stats[0]["Maximum"] == 100
