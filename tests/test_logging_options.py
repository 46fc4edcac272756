"""The AWS IoT logging-options API through boto3 against the real server, and
which level applies to a client (levels.level_for) read from the same store."""

import pytest
from botocore.exceptions import ClientError

from localiot.services.logging_options import levels

ROLE = "arn:aws:iam::123456789012:role/iot-logging"


def code(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def level_for(server, **kwargs):
    def read():
        with server.app.store.transaction("123456789012", "us-east-1", write=False) as tx:
            return levels.level_for(tx, **kwargs)
    return server.call(read)


def test_v1_options_round_trip(iot):
    assert {k: v for k, v in iot.get_logging_options().items() if k != "ResponseMetadata"} == {}
    iot.set_logging_options(loggingOptionsPayload={"roleArn": ROLE, "logLevel": "WARN"})
    out = iot.get_logging_options()
    assert (out["roleArn"], out["logLevel"]) == (ROLE, "WARN")


def test_v1_bad_role_changes_nothing(iot):
    iot.set_logging_options(loggingOptionsPayload={"roleArn": ROLE, "logLevel": "INFO"})
    with pytest.raises(ClientError) as e:
        iot.set_logging_options(loggingOptionsPayload={"roleArn": "not-an-arn", "logLevel": "DEBUG"})
    assert code(e) == ("InvalidRequestException", 400)
    assert iot.get_logging_options()["logLevel"] == "INFO"


def test_v2_not_configured(iot):
    for call in (iot.get_v2_logging_options, iot.list_v2_logging_levels):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == ("NotConfiguredException", 404)
    with pytest.raises(ClientError) as e:
        iot.set_v2_logging_level(logTarget={"targetType": "CLIENT_ID", "targetName": "c1"}, logLevel="DEBUG")
    assert code(e) == ("NotConfiguredException", 404)


def test_v2_options_round_trip(iot):
    iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="WARN")
    out = iot.get_v2_logging_options()
    assert (out["roleArn"], out["defaultLogLevel"], out["disableAllLogs"]) == (ROLE, "WARN", False)
    iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="INFO", disableAllLogs=True)
    out = iot.get_v2_logging_options()
    assert (out["defaultLogLevel"], out["disableAllLogs"]) == ("INFO", True)


def test_v2_bad_input(iot):
    with pytest.raises(ClientError) as e:
        iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="LOUD")
    assert code(e)[1] == 400
    iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="ERROR")
    with pytest.raises(ClientError) as e:
        iot.set_v2_logging_level(logTarget={"targetType": "DEFAULT", "targetName": "x"}, logLevel="DEBUG")
    assert code(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.set_v2_logging_level(logTarget={"targetType": "THING_GROUP", "targetName": "missing"}, logLevel="DEBUG")
    assert code(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.set_v2_logging_level(logTarget={"targetType": "GALAXY", "targetName": "x"}, logLevel="DEBUG")
    assert code(e)[1] == 400
    assert iot.list_v2_logging_levels()["logTargetConfigurations"] == []


def test_levels_set_list_filter_page_delete(iot):
    iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="ERROR")
    iot.create_thing_group(thingGroupName="g1")
    targets = [("CLIENT_ID", f"client-{i}") for i in range(5)] + [("SOURCE_IP", "10.0.0.1"),
                                                                 ("PRINCIPAL_ID", "abc"), ("THING_GROUP", "g1")]
    for target_type, name in targets:
        iot.set_v2_logging_level(logTarget={"targetType": target_type, "targetName": name}, logLevel="DEBUG")
    # setting again replaces the level, not a second entry
    iot.set_v2_logging_level(logTarget={"targetType": "CLIENT_ID", "targetName": "client-0"}, logLevel="WARN")
    seen, token = [], None
    while True:
        page = iot.list_v2_logging_levels(maxResults=3, **({"nextToken": token} if token else {}))
        assert len(page["logTargetConfigurations"]) <= 3
        seen += page["logTargetConfigurations"]
        token = page.get("nextToken")
        if not token:
            break
    assert len(seen) == len(targets)
    assert {"logTarget": {"targetType": "CLIENT_ID", "targetName": "client-0"}, "logLevel": "WARN"} in seen
    only = iot.list_v2_logging_levels(targetType="SOURCE_IP")["logTargetConfigurations"]
    assert only == [{"logTarget": {"targetType": "SOURCE_IP", "targetName": "10.0.0.1"}, "logLevel": "DEBUG"}]
    iot.delete_v2_logging_level(targetType="SOURCE_IP", targetName="10.0.0.1")
    assert iot.list_v2_logging_levels(targetType="SOURCE_IP")["logTargetConfigurations"] == []


def test_most_specific_target_wins(iot, localiot_server):
    s = localiot_server
    assert level_for(s, client_id="dev") is None  # never configured
    iot.set_logging_options(loggingOptionsPayload={"roleArn": ROLE, "logLevel": "WARN"})
    assert level_for(s, client_id="dev") == "WARN"  # v1 applies while v2 is not set
    iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="ERROR")
    iot.create_thing(thingName="dev")
    iot.create_thing_group(thingGroupName="parent")
    iot.create_thing_group(thingGroupName="child", parentGroupName="parent")
    iot.add_thing_to_thing_group(thingGroupName="child", thingName="dev")
    who = dict(client_id="dev", thing_name="dev", source_ip="10.1.1.1", principal_id="p1")
    assert level_for(s, **who) == "ERROR"
    iot.set_v2_logging_level(logTarget={"targetType": "THING_GROUP", "targetName": "parent"}, logLevel="INFO")
    assert level_for(s, **who) == "INFO"  # inherited from the parent group
    iot.set_v2_logging_level(logTarget={"targetType": "THING_GROUP", "targetName": "child"}, logLevel="WARN")
    assert level_for(s, **who) == "WARN"  # the thing's own group beats its parent
    iot.set_v2_logging_level(logTarget={"targetType": "PRINCIPAL_ID", "targetName": "p1"}, logLevel="DEBUG")
    assert level_for(s, **who) == "DEBUG"
    iot.set_v2_logging_level(logTarget={"targetType": "SOURCE_IP", "targetName": "10.1.1.1"}, logLevel="DISABLED")
    assert level_for(s, **who) == "DISABLED"
    iot.set_v2_logging_level(logTarget={"targetType": "CLIENT_ID", "targetName": "dev"}, logLevel="INFO")
    assert level_for(s, **who) == "INFO"
    assert level_for(s, client_id="other", thing_name="dev") == "WARN"
    assert level_for(s, client_id="other") == "ERROR"
    iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="ERROR", disableAllLogs=True)
    assert level_for(s, **who) == "DISABLED"
