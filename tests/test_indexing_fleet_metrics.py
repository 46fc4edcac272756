"""Fleet metrics through boto3: CRUD with modelled errors, and data points
sent to CloudWatch on the injectable clock, read back from moto's server."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from localiot.testing import ACCOUNT, REGION, error_code, make_client, move_clock

T = 1_700_000_000


@pytest.fixture(scope="module")
def localiot_settings(localiot_moto):
    return {"aws_endpoint_url": localiot_moto, "downstream_access_key": "testing", "downstream_secret_key": "testing"}


@pytest.fixture
def iot(localiot_server):
    client = make_client(localiot_server)
    client.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY_AND_SHADOW",
        "customFields": [{"name": "shadow.reported.temp", "type": "Number"}]})
    return client


def test_fleet_metric_crud_and_errors(iot):
    made = iot.create_fleet_metric(metricName="hot", queryString="shadow.reported.temp>30", period=60,
                                   aggregationType={"name": "Statistics", "values": ["count"]},
                                   aggregationField="shadow.reported.temp", description="hot things",
                                   tags=[{"Key": "team", "Value": "ops"}])
    assert made["metricArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:fleetmetric/hot"
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
        assert error_code(info) == error, change
    assert [m["metricName"] for m in iot.list_fleet_metrics()["fleetMetrics"]] == ["hot"]
    with pytest.raises(ClientError) as info:
        iot.update_fleet_metric(metricName="hot", indexName="AWS_Things", expectedVersion=1)
    assert error_code(info) == "VersionConflictException"
    iot.delete_fleet_metric(metricName="hot")
    with pytest.raises(ClientError) as info:
        iot.describe_fleet_metric(metricName="hot")
    assert error_code(info) == "ResourceNotFoundException"


def test_data_points_reach_cloudwatch_each_period(localiot_server, iot, localiot_moto):
    data = make_client(localiot_server, "iot-data")
    run = uuid.uuid4().hex[:6]  # moto is the test session's: this run's own metric names
    temps_metric, p50_metric = f"temps-{run}", f"p50-{run}"
    temps = {"a": 10, "b": 35, "c": 40}
    for name, temp in temps.items():
        iot.create_thing(thingName=name)
        data.update_thing_shadow(thingName=name, payload=json.dumps({"state": {"reported": {"temp": temp}}}).encode())
    move_clock(localiot_server, set=T)
    iot.create_fleet_metric(metricName=temps_metric, queryString="thingName:*", period=60,
                            aggregationType={"name": "Statistics", "values": ["average"]},
                            aggregationField="shadow.reported.temp")
    iot.create_fleet_metric(metricName=p50_metric, queryString="thingName:*", period=60,
                            aggregationType={"name": "Percentiles", "values": ["50"]},
                            aggregationField="shadow.reported.temp")
    move_clock(localiot_server, advance=30)  # not due yet
    cw = make_client(localiot_moto, "cloudwatch")
    assert [m for m in cw.list_metrics(Namespace="IoTFleetMetrics")["Metrics"] if run in m["MetricName"]] == []
    move_clock(localiot_server, advance=31)
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="IoTFleetMetrics")["Metrics"]}
    assert {name for name in names if run in name} == {temps_metric, p50_metric}
    start = datetime.fromtimestamp(T - 600, timezone.utc)
    stats = cw.get_metric_statistics(Namespace="IoTFleetMetrics", MetricName=temps_metric, StartTime=start,
                                     EndTime=start + timedelta(hours=1), Period=60,
                                     Statistics=["Average", "SampleCount", "Maximum"])["Datapoints"]
    assert len(stats) == 1
    assert stats[0]["SampleCount"] == 3 and stats[0]["Maximum"] == 40
    assert stats[0]["Average"] == pytest.approx(sum(temps.values()) / 3)
    median = cw.get_metric_statistics(Namespace="IoTFleetMetrics", MetricName=p50_metric, StartTime=start,
                                      EndTime=start + timedelta(hours=1), Period=60, Statistics=["Maximum"],
                                      Dimensions=[{"Name": "Percentile", "Value": "50"}])["Datapoints"]
    assert [p["Maximum"] for p in median] == [35]
    # the next period sees the fleet as it is then
    data.update_thing_shadow(thingName="a", payload=b'{"state":{"reported":{"temp":100}}}')
    move_clock(localiot_server, advance=60)
    stats = cw.get_metric_statistics(Namespace="IoTFleetMetrics", MetricName=temps_metric, StartTime=start,
                                     EndTime=start + timedelta(hours=1), Period=3600,
                                     Statistics=["SampleCount", "Maximum"])["Datapoints"]
    assert stats[0]["SampleCount"] == 6 and stats[0]["Maximum"] == 100
