"""ML Detect end to end on the injectable clock, with paho devices over mutual
TLS: an ML behavior trains on the fleet's cloud-side datapoints (AWS's 14 days
and 25,000 datapoints), reports its progress through
GetBehaviorModelTrainingSummaries, stays silent while training, alarms on a
clear outlier once ACTIVE and clears after; a model without data expires after
AWS's 30 days of retries. Also metricsExportConfig (exported datapoints on an
MQTT topic) and statistical thresholds of device-side metrics."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from localiot.testing import ALLOW_ALL, Device, DevicePool, address, ca_file, error_of, local_server, move_clock
from localiot.testing import new_certificate

REGION, ACCOUNT = "us-east-1", "123456789012"
ALL = f"arn:aws:iot:{REGION}:{ACCOUNT}:all/things"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/defender-export"
KW = dict(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
DAY = 86400
ML = {"mlDetectionConfig": {"confidenceLevel": "HIGH"}}


@pytest.fixture(scope="module")
def server():
    with local_server(background_period=0) as srv:
        yield srv


@pytest.fixture
def iot(server):
    server.reset()
    return boto3.client("iot", endpoint_url=server.endpoint, **KW)


@pytest.fixture
def fleet(iot, server, tmp_path):
    """make(names) -> {name: connected paho device over mTLS}, one certificate attached to every thing."""
    pool = DevicePool()
    cert = new_certificate(iot, tmp_path, "fleet", policy=ALLOW_ALL)
    _, port = address(iot)
    ca = ca_file(server, tmp_path)

    def make(names):
        out = {}
        for name in names:
            iot.create_thing(thingName=name)
            iot.attach_thing_principal(thingName=name, principal=cert.arn)
            out[name] = pool.add(Device(port, name, ca=ca, cert=cert)).connect_ok()
        return out

    yield make
    pool.close()


def window(server, seconds: float = 300) -> None:
    move_clock(server, advance=seconds)


def summaries(iot, profile="ml"):
    return {s["behaviorName"]: s for s in iot.get_behavior_model_training_summaries(
        securityProfileName=profile)["summaries"]}


def burst(device: Device, count: int) -> None:
    for i in range(count):
        device.publish("telemetry/burst", json.dumps({"i": i}), qos=1)


def test_ml_behavior_trains_stays_silent_then_alarms_on_an_outlier(iot, server, fleet):
    things = fleet([f"ml-{i:02d}" for i in range(50)])
    iot.create_security_profile(securityProfileName="ml", behaviors=[
        {"name": "msgs", "metric": "aws:num-messages-sent",
         "criteria": {**ML, "consecutiveDatapointsToAlarm": 1, "consecutiveDatapointsToClear": 1}},
        {"name": "ports", "metric": "aws:num-listening-tcp-ports",
         "criteria": {"mlDetectionConfig": {"confidenceLevel": "LOW"}}}])
    iot.attach_security_profile(securityProfileName="ml", securityProfileTargetArn=ALL)
    started = summaries(iot)["msgs"]
    began = time.monotonic()  # the clock is real time plus the offset the test adds: real seconds count too
    assert started["modelStatus"] == "PENDING_BUILD" and started["datapointsCollectionPercentage"] == 0
    assert "lastModelRefreshDate" not in started

    quiet = things["ml-01"]
    for n in range(500):  # 50 things x 500 windows = 25,000 datapoints; a few messages now and then
        if n % 50 == 0:
            burst(quiet, 2)
        if n == 250:
            burst(things["ml-00"], 80)  # an outlier while training: no alarm, there is no model yet
        window(server)
        if n == 250:
            assert summaries(iot)["msgs"]["datapointsCollectionPercentage"] == pytest.approx(50.2, abs=0.01)
    progress = summaries(iot)
    assert progress["msgs"]["modelStatus"] == "PENDING_BUILD"  # enough datapoints, not yet 14 days
    assert progress["msgs"]["datapointsCollectionPercentage"] == 100
    assert progress["ports"]["datapointsCollectionPercentage"] == 0  # no device reports it
    assert iot.list_active_violations(securityProfileName="ml")["activeViolations"] == []

    window(server, 14 * DAY - 500 * 300)  # day 14: the first model is built
    built = summaries(iot)
    assert built["msgs"]["modelStatus"] == "ACTIVE"
    assert built["msgs"]["lastModelRefreshDate"].timestamp() == pytest.approx(
        started["trainingDataCollectionStartDate"].timestamp() + 14 * DAY, abs=301 + time.monotonic() - began)
    assert built["ports"]["modelStatus"] == "PENDING_BUILD"

    burst(quiet, 2)  # within the learned range
    burst(things["ml-00"], 80)  # far outside it
    window(server)
    active = iot.list_active_violations(securityProfileName="ml")["activeViolations"]
    assert [(v["thingName"], v["behavior"]["name"], v["lastViolationValue"]) for v in active] == [
        ("ml-00", "msgs", {"count": 80})]
    assert iot.list_active_violations(behaviorCriteriaType="MACHINE_LEARNING")["activeViolations"] == active
    assert iot.list_active_violations(behaviorCriteriaType="STATIC")["activeViolations"] == []
    window(server)  # a calm window clears it
    assert iot.list_active_violations(securityProfileName="ml")["activeViolations"] == []

    window(server, 31 * DAY)  # a month without enough datapoints: no model is built any more
    expired = summaries(iot)
    assert expired["ports"]["modelStatus"] == "EXPIRED" and expired["msgs"]["modelStatus"] == "EXPIRED"
    burst(things["ml-00"], 80)
    window(server)
    assert iot.list_active_violations(securityProfileName="ml")["activeViolations"] == []


def test_ml_behaviors_are_validated_and_summaries_follow_the_profile(iot):
    bad = [{"name": "with-value", "metric": "aws:num-messages-sent",
            "criteria": {**ML, "comparisonOperator": "less-than", "value": {"count": 1}}},
           {"name": "ip", "metric": "aws:source-ip-address", "criteria": ML}]
    answer = iot.validate_security_profile_behaviors(behaviors=bad)
    assert not answer["valid"]
    messages = [e["errorMessage"] for e in answer["validationErrors"]]
    assert "Behavior with-value: comparisonOperator cannot be used with mlDetectionConfig." in messages
    assert "Behavior ip: metric aws:source-ip-address is not supported by ML Detect." in messages
    assert error_of(iot.create_security_profile, securityProfileName="bad", behaviors=bad) == (
        "InvalidRequestException", 400)
    assert error_of(iot.get_behavior_model_training_summaries, securityProfileName="nope") == (
        "ResourceNotFoundException", 404)

    iot.create_security_profile(securityProfileName="ml", behaviors=[
        {"name": f"b{i}", "metric": "aws:num-disconnects", "criteria": ML} for i in range(12)])
    first = iot.get_behavior_model_training_summaries()
    assert len(first["summaries"]) == 10 and first["nextToken"]
    rest = iot.get_behavior_model_training_summaries(nextToken=first["nextToken"])
    assert [s["behaviorName"] for s in first["summaries"] + rest["summaries"]] == sorted(f"b{i}" for i in range(12))
    # a behavior that now measures another metric starts training again; a removed one goes
    move_clock_by = 3 * DAY
    iot.update_security_profile(securityProfileName="ml", behaviors=[
        {"name": "b0", "metric": "aws:num-disconnects", "criteria": ML},
        {"name": "b1", "metric": "aws:num-authorization-failures", "criteria": ML}])
    before = summaries(iot)
    assert sorted(before) == ["b0", "b1"]
    iot.delete_security_profile(securityProfileName="ml")
    assert iot.get_behavior_model_training_summaries()["summaries"] == []
    assert move_clock_by  # (the dates are checked in the end-to-end test)


def test_metrics_export_publishes_exported_datapoints(iot, server, fleet):
    things = fleet(["exp-1", "watcher"])
    watcher = things["watcher"]
    watcher.subscribe("defender/export")
    export = {"mqttTopic": "defender/export", "roleArn": ROLE}
    behaviors = [{"name": "sent", "metric": "aws:num-messages-sent", "exportMetric": True,
                  "criteria": {"comparisonOperator": "less-than", "value": {"count": 100}, "durationSeconds": 300}}]
    assert error_of(iot.create_security_profile, securityProfileName="x", behaviors=behaviors) == (
        "InvalidRequestException", 400)
    assert error_of(iot.create_security_profile, securityProfileName="x", behaviors=behaviors,
                    metricsExportConfig={"mqttTopic": "defender/#", "roleArn": ROLE}) == ("InvalidRequestException", 400)
    iot.create_security_profile(securityProfileName="export", behaviors=behaviors, metricsExportConfig=export,
                                additionalMetricsToRetainV2=[{"metric": "aws:num-disconnects", "exportMetric": True},
                                                             {"metric": "aws:num-connection-attempts"}])
    assert iot.describe_security_profile(securityProfileName="export")["metricsExportConfig"] == export
    iot.attach_security_profile(securityProfileName="export", securityProfileTargetArn=ALL)
    window(server)  # the first window closes what was counted since the start
    burst(things["exp-1"], 3)
    window(server)
    names = set()
    for _ in range(10):  # the first window's export (things of earlier tests too) may still be on its way
        message = watcher.expect_json("defender/export", timeout=20)
        assert message["header"] == {"version": "1.0"} and len(message["metrics"]) <= 100
        got = {}
        for m in message["metrics"]:
            got.setdefault(m["thing"], {})[m["name"]] = m["value"]
            names.add(m["name"])
            assert isinstance(m["timestamp"], int)
        if got.get("exp-1", {}).get("aws:num-messages-sent") == {"count": 3}:
            break
    assert got["exp-1"] == {"aws:num-messages-sent": {"count": 3}, "aws:num-disconnects": {"count": 0}}
    assert names == {"aws:num-messages-sent", "aws:num-disconnects"}  # aws:num-connection-attempts: retained only
    iot.update_security_profile(securityProfileName="export", deleteMetricsExportConfig=True,
                                deleteAdditionalMetricsToRetain=True,
                                behaviors=[{**behaviors[0], "exportMetric": False}])
    while True:  # what the last window exported in further messages
        try:
            watcher.expect("defender/export", timeout=1)
        except AssertionError:
            break
    window(server)
    watcher.expect_none(0.5)


def report(bytes_out: int, rid: int) -> str:
    return json.dumps({"header": {"report_id": rid, "version": "1.0"},
                       "metrics": {"network_stats": {"bytes_out": bytes_out}}})


def test_device_side_statistical_threshold_ranks_the_fleet(iot, server, fleet):
    names = [f"dev-{i:02d}" for i in range(11)]
    things = fleet(names)
    iot.create_security_profile(securityProfileName="stats", behaviors=[
        {"name": "bytes", "metric": "aws:all-bytes-out",
         "criteria": {"comparisonOperator": "less-than-equals", "statisticalThreshold": {"statistic": "p90"},
                      "durationSeconds": 300}}])
    iot.attach_security_profile(securityProfileName="stats", securityProfileTargetArn=ALL)
    for i, name in enumerate(names):
        device = things[name]
        device.subscribe(f"$aws/things/{name}/defender/metrics/json/accepted")
        device.publish(f"$aws/things/{name}/defender/metrics/json", report(5000 if name == "dev-10" else 100, i))
        assert device.expect_json()["status"] == "ACCEPTED"
    active = iot.list_active_violations(securityProfileName="stats")["activeViolations"]
    assert [(v["thingName"], v["lastViolationValue"]) for v in active] == [("dev-10", {"count": 5000})]
    assert iot.list_active_violations(behaviorCriteriaType="STATISTICAL")["activeViolations"] == active
    window(server, 301)  # the older reports leave the duration: a report in line with the fleet clears it
    things["dev-10"].publish("$aws/things/dev-10/defender/metrics/json", report(90, 99))
    assert things["dev-10"].expect_json()["status"] == "ACCEPTED"
    assert iot.list_active_violations(securityProfileName="stats")["activeViolations"] == []


def test_the_model_is_tukeys_fences_at_the_confidence_level():
    from localiot.services.defender.detect_ml import build, fences

    days = [{"day": 1, "n": 100, "hist": {"0": 60, "2": 30, "4": 10}}, {"day": 2, "n": 100, "hist": {"1": 100}}]
    model = build(days, counts=True)
    assert (model["q1"], model["q3"], model["spread"]) == (0.0, 1.0, 1.0)
    assert fences(model, "LOW") == (-1.5, 2.5)  # 4 messages are an outlier at LOW confidence ...
    assert fences(model, "MEDIUM") == (-3.0, 4.0)  # ... but normal at MEDIUM
    assert fences(model, "HIGH") == (-6.0, 7.0)
    sizes = build([{"day": 1, "n": 4, "hist": {"100.0": 2, "300.0": 2}}], counts=False)
    assert fences(sizes, "LOW") == (-200.0, 600.0)
