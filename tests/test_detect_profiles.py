"""Device Defender detect through boto3: security profiles (behaviors checked
as AWS checks them, versions, alert targets, metrics to retain), their targets
(all things, registered things, static and dynamic thing groups), custom
metrics and dimensions."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

ACCOUNT, REGION = "123456789012", "us-east-1"
PREFIX = f"arn:aws:iot:{REGION}:{ACCOUNT}:"
SNS = f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/defender"


def code(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def sent_behavior(limit=10, **criteria):
    return {"name": "sent", "metric": "aws:num-messages-sent",
            "criteria": {"comparisonOperator": "less-than-equals", "value": {"count": limit}, "durationSeconds": 300,
                         **criteria}}


def test_security_profile_crud_versions_and_filters(iot):
    made = iot.create_security_profile(
        securityProfileName="p1", securityProfileDescription="chatty devices", behaviors=[sent_behavior()],
        alertTargets={"SNS": {"alertTargetArn": SNS, "roleArn": ROLE}},
        additionalMetricsToRetainV2=[{"metric": "aws:num-disconnects"}], tags=[{"Key": "team", "Value": "sec"}])
    assert made["securityProfileArn"] == PREFIX + "securityprofile/p1"
    described = iot.describe_security_profile(securityProfileName="p1")
    assert (described["version"], described["securityProfileDescription"]) == (1, "chatty devices")
    assert described["behaviors"] == [sent_behavior()]
    assert described["alertTargets"] == {"SNS": {"alertTargetArn": SNS, "roleArn": ROLE}}
    assert iot.list_tags_for_resource(resourceArn=made["securityProfileArn"])["tags"] == [
        {"Key": "team", "Value": "sec"}]
    with pytest.raises(ClientError) as e:
        iot.create_security_profile(securityProfileName="p1")
    assert code(e) == ("ResourceAlreadyExistsException", 409)
    with pytest.raises(ClientError) as e:
        iot.update_security_profile(securityProfileName="p1", expectedVersion=7, securityProfileDescription="x")
    assert code(e) == ("VersionConflictException", 409)
    assert iot.describe_security_profile(securityProfileName="p1")["securityProfileDescription"] == "chatty devices"
    updated = iot.update_security_profile(securityProfileName="p1", expectedVersion=1, deleteAlertTargets=True,
                                          behaviors=[sent_behavior(20)])
    assert updated["version"] == 2 and "alertTargets" not in updated
    assert updated["behaviors"][0]["criteria"]["value"] == {"count": 20}
    iot.create_security_profile(securityProfileName="p2", behaviors=[
        {"name": "ports", "metric": "aws:listening-tcp-ports",
         "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [443, 8883]}}}])
    names = lambda **kw: [p["name"] for p in iot.list_security_profiles(**kw)["securityProfileIdentifiers"]]
    assert names() == ["p1", "p2"]
    assert names(metricName="aws:listening-tcp-ports") == ["p2"]
    assert names(metricName="aws:num-disconnects") == ["p1"]  # a retained metric counts
    with pytest.raises(ClientError) as e:
        iot.list_security_profiles(metricName="aws:num-disconnects", dimensionName="d")
    assert code(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.delete_security_profile(securityProfileName="p2", expectedVersion=3)
    assert code(e) == ("VersionConflictException", 409)
    iot.delete_security_profile(securityProfileName="p2", expectedVersion=1)
    assert names() == ["p1"]
    with pytest.raises(ClientError) as e:
        iot.describe_security_profile(securityProfileName="p2")
    assert code(e) == ("ResourceNotFoundException", 404)


BAD_BEHAVIORS = [
    ({"name": "b", "metric": "aws:no-such-metric", "criteria": {"comparisonOperator": "less-than",
                                                                "value": {"count": 1}}},
     "Behavior b: metric aws:no-such-metric is not supported."),
    ({"name": "b", "metric": "aws:num-messages-sent", "criteria": {"comparisonOperator": "in-port-set",
                                                                   "value": {"ports": [1]}}},
     "Behavior b: comparisonOperator in-port-set is not supported for metric aws:num-messages-sent."),
    ({"name": "b", "metric": "aws:source-ip-address", "criteria": {"comparisonOperator": "in-cidr-set",
                                                                   "value": {"cidrs": ["300.1.2.3/8"]}}},
     "Behavior b: 300.1.2.3/8 is not a valid CIDR."),
    ({"name": "b", "metric": "aws:num-messages-sent", "criteria": {"comparisonOperator": "less-than",
                                                                   "value": {"count": 1}, "durationSeconds": 301}},
     "Behavior b: durationSeconds must be one of 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400, 172800."),
    ({"name": "b", "metric": "aws:listening-tcp-ports", "criteria": {"comparisonOperator": "in-port-set",
                                                                     "statisticalThreshold": {"statistic": "p90"}}},
     "Behavior b: statisticalThreshold is not supported for metric aws:listening-tcp-ports."),
]


@pytest.mark.parametrize("behavior,message", BAD_BEHAVIORS)
def test_behaviors_are_validated_as_aws_does(iot, behavior, message):
    answer = iot.validate_security_profile_behaviors(behaviors=[behavior])
    assert answer["valid"] is False and answer["validationErrors"][0] == {"errorMessage": message}
    with pytest.raises(ClientError) as e:
        iot.create_security_profile(securityProfileName="bad", behaviors=[behavior])
    assert code(e) == ("InvalidRequestException", 400)
    assert e.value.response["Error"]["Message"] == message
    assert iot.list_security_profiles()["securityProfileIdentifiers"] == []
    assert iot.validate_security_profile_behaviors(behaviors=[sent_behavior()])["valid"] is True


def test_targets_all_things_groups_and_dynamic_groups(iot):
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    iot.create_security_profile(securityProfileName="p", behaviors=[sent_behavior()])
    iot.create_security_profile(securityProfileName="q", behaviors=[sent_behavior()])
    parent = iot.create_thing_group(thingGroupName="parent")["thingGroupArn"]
    child = iot.create_thing_group(thingGroupName="child", parentGroupName="parent")["thingGroupArn"]
    dynamic = iot.create_dynamic_thing_group(thingGroupName="dyn", queryString="thingName:dev*")["thingGroupArn"]
    for target in (PREFIX + "all/things", PREFIX + "all/registered-things", parent, dynamic):
        iot.attach_security_profile(securityProfileName="p", securityProfileTargetArn=target)
    iot.attach_security_profile(securityProfileName="q", securityProfileTargetArn=child)
    assert sorted(t["arn"] for t in iot.list_targets_for_security_profile(securityProfileName="p")[
        "securityProfileTargets"]) == sorted([PREFIX + "all/things", PREFIX + "all/registered-things", parent,
                                              dynamic])
    mappings = iot.list_security_profiles_for_target(securityProfileTargetArn=child, recursive=True)[
        "securityProfileTargetMappings"]
    assert sorted((m["securityProfileIdentifier"]["name"], m["target"]["arn"]) for m in mappings) == [
        ("p", parent), ("q", child)]
    assert [m["securityProfileIdentifier"]["name"] for m in iot.list_security_profiles_for_target(
        securityProfileTargetArn=child)["securityProfileTargetMappings"]] == ["q"]
    for bad, expected in ((PREFIX + "thinggroup/none", ("ResourceNotFoundException", 404)),
                          ("arn:aws:iot:us-east-1:123456789012:thing/x", ("InvalidRequestException", 400))):
        with pytest.raises(ClientError) as e:
            iot.attach_security_profile(securityProfileName="p", securityProfileTargetArn=bad)
        assert code(e) == expected
    iot.detach_security_profile(securityProfileName="p", securityProfileTargetArn=dynamic)
    with pytest.raises(ClientError) as e:
        iot.detach_security_profile(securityProfileName="p", securityProfileTargetArn=dynamic)
    assert code(e) == ("ResourceNotFoundException", 404)
    iot.delete_security_profile(securityProfileName="p")
    assert iot.list_security_profiles_for_target(securityProfileTargetArn=parent)[
        "securityProfileTargetMappings"] == []


def test_custom_metrics_and_dimensions(iot):
    made = iot.create_custom_metric(metricName="cpu", metricType="number", displayName="CPU",
                                    clientRequestToken="t1")
    assert made["metricArn"] == PREFIX + "custommetric/cpu"
    described = iot.describe_custom_metric(metricName="cpu")
    assert (described["metricType"], described["displayName"]) == ("number", "CPU")
    assert iot.update_custom_metric(metricName="cpu", displayName="load")["displayName"] == "load"
    iot.create_custom_metric(metricName="procs", metricType="string-list", clientRequestToken="t2")
    assert iot.list_custom_metrics()["metricNames"] == ["cpu", "procs"]
    dim = iot.create_dimension(name="telemetry", type="TOPIC_FILTER", stringValues=["telemetry/#"],
                               clientRequestToken="d1")
    assert dim["arn"] == PREFIX + "dimension/telemetry"
    assert iot.create_dimension(name="telemetry", type="TOPIC_FILTER", stringValues=["telemetry/#"],
                                clientRequestToken="d1")["arn"] == dim["arn"]  # the same request again
    with pytest.raises(ClientError) as e:
        iot.create_dimension(name="telemetry", type="TOPIC_FILTER", stringValues=["x"], clientRequestToken="d2")
    assert code(e) == ("ResourceAlreadyExistsException", 409)
    with pytest.raises(ClientError) as e:
        iot.create_dimension(name="bad", type="TOPIC_FILTER", stringValues=["a/#/b"], clientRequestToken="d3")
    assert code(e) == ("InvalidRequestException", 400)
    assert iot.update_dimension(name="telemetry", stringValues=["telemetry/+"])["stringValues"] == ["telemetry/+"]
    assert iot.list_dimensions()["dimensionNames"] == ["telemetry"]
    iot.create_security_profile(securityProfileName="p", behaviors=[
        {**sent_behavior(), "metricDimension": {"dimensionName": "telemetry", "operator": "IN"}},
        {"name": "cpu", "metric": "cpu", "criteria": {"comparisonOperator": "less-than", "value": {"number": 90}}}])
    assert [p["name"] for p in iot.list_security_profiles(dimensionName="telemetry")[
        "securityProfileIdentifiers"]] == ["p"]
    with pytest.raises(ClientError) as e:  # number-list operators on a number metric
        iot.create_security_profile(securityProfileName="q", behaviors=[
            {"name": "cpu", "metric": "cpu", "criteria": {"comparisonOperator": "in-set", "value": {"numbers": [1]}}}])
    assert code(e) == ("InvalidRequestException", 400)
    for call in (lambda: iot.delete_dimension(name="telemetry"), lambda: iot.delete_custom_metric(metricName="cpu")):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == ("InvalidRequestException", 400)
    iot.delete_security_profile(securityProfileName="p")
    iot.delete_dimension(name="telemetry")
    iot.delete_custom_metric(metricName="cpu")
    assert iot.list_custom_metrics()["metricNames"] == ["procs"]
    assert iot.list_dimensions()["dimensionNames"] == []
