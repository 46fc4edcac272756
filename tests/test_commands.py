"""AWS IoT Device Management commands: the command resource, executions and their
delivery on the commands request topics (the response topic, timeouts and
listing are in test_command_executions.py)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from localiot.services.commands.executions import cbor_loads
from localiot.testing import ACCOUNT, REGION, error_code

# fixtures: bus (the server's bus, recorded), jobs (iot-jobs-data), thing ("lamp")
from commands_helpers import bus, jobs, thing  # noqa: F401
from commands_helpers import HOUR, command_arn, dynamic, start, static, thing_arn, tick


# the command resource -------------------------------------------------------------------
def test_create_and_get_static_command(iot):
    out = static(iot, displayName="Light", description="Turns the light on", tags=[{"Key": "team", "Value": "a"}])
    assert out["commandId"] == "light"
    assert out["commandArn"] == command_arn("light")
    got = iot.get_command(commandId="light")
    assert got["namespace"] == "AWS-IoT"
    assert got["displayName"] == "Light"
    assert got["description"] == "Turns the light on"
    assert got["payload"] == {"content": b'{"light":"on"}', "contentType": "application/json"}
    assert got["deprecated"] is False and got["pendingDeletion"] is False
    assert got["createdAt"] == got["lastUpdatedAt"]
    assert "payloadTemplate" not in got and "roleArn" not in got
    assert iot.list_tags_for_resource(resourceArn=out["commandArn"])["tags"] == [{"Key": "team", "Value": "a"}]


def test_payload_content_type_defaults_to_octet_stream(iot):
    static(iot, content=b"\x00\x01binary", content_type=None)
    assert iot.get_command(commandId="light")["payload"] == {"content": b"\x00\x01binary",
                                                             "contentType": "application/octet-stream"}


def test_create_dynamic_command_keeps_template_preprocessor_and_parameters(iot):
    dynamic(iot)
    got = iot.get_command(commandId="setTemp")
    assert got["payloadTemplate"] == '{"temperature": "${aws:iot:commandexecution::parameter:temperature}"}'
    assert got["preprocessor"] == {"awsJsonSubstitution": {"outputFormat": "JSON"}}
    assert got["mandatoryParameters"][0]["name"] == "temperature"
    assert got["mandatoryParameters"][0]["defaultValue"] == {"I": 72}
    assert "payload" not in got


def test_create_fleetwise_command_needs_a_role(iot):
    role = "arn:aws:iam::123456789012:role/fleetwise"
    iot.create_command(commandId="fw", namespace="AWS-IoT-FleetWise", roleArn=role,
                       mandatoryParameters=[{"name": "$actuatorPath.Vehicle.Door", "defaultValue": {"B": True}}])
    got = iot.get_command(commandId="fw")
    assert got["namespace"] == "AWS-IoT-FleetWise" and got["roleArn"] == role
    with pytest.raises(ClientError) as excinfo:
        iot.create_command(commandId="fw2", namespace="AWS-IoT-FleetWise")
    assert error_code(excinfo) == "ValidationException"


def test_create_existing_command_is_a_conflict(iot):
    static(iot)
    with pytest.raises(ClientError) as excinfo:
        static(iot)
    assert error_code(excinfo) == "ConflictException"
    assert excinfo.value.response["resourceId"] == "light"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


TEMPLATE = '{"t": "${aws:iot:commandexecution::parameter:t}"}'
PROCESSOR = {"awsJsonSubstitution": {"outputFormat": "JSON"}}
T_PARAM = [{"name": "t", "type": "INTEGER"}]


@pytest.mark.parametrize("kwargs", [
    pytest.param({}, id="no-payload"),
    pytest.param({"payload": {"content": b"x"}, "payloadTemplate": TEMPLATE, "preprocessor": PROCESSOR,
                  "mandatoryParameters": T_PARAM}, id="payload-and-template"),
    pytest.param({"payload": {"content": b"x"}, "roleArn": "arn:aws:iam::123456789012:role/r"}, id="role-in-aws-iot"),
    pytest.param({"payload": {"content": b"x", "contentType": "json"}}, id="content-type-not-type/subtype"),
    pytest.param({"payload": {"content": b"x" * (32 * 1024 + 1)}}, id="payload-over-32KB"),
    pytest.param({"payloadTemplate": TEMPLATE, "mandatoryParameters": T_PARAM}, id="template-without-preprocessor"),
    pytest.param({"payload": {"content": b"x"}, "preprocessor": PROCESSOR}, id="preprocessor-without-template"),
    pytest.param({"payloadTemplate": '{"t": ${aws:iot:commandexecution::parameter:t}}', "preprocessor": PROCESSOR,
                  "mandatoryParameters": T_PARAM}, id="template-not-json"),
    pytest.param({"payloadTemplate": '{"t": 1}', "preprocessor": PROCESSOR}, id="template-without-placeholder"),
    pytest.param({"payloadTemplate": TEMPLATE, "preprocessor": PROCESSOR}, id="placeholder-not-declared"),
    pytest.param({"payloadTemplate": '{"t": "${aws:iot:commandexecution::thingName}"}', "preprocessor": PROCESSOR},
                 id="unsupported-placeholder"),
    pytest.param({"payloadTemplate": TEMPLATE, "preprocessor": PROCESSOR,
                  "mandatoryParameters": T_PARAM + T_PARAM}, id="duplicate-parameter"),
    pytest.param({"payloadTemplate": TEMPLATE, "preprocessor": PROCESSOR,
                  "mandatoryParameters": [{"name": "t", "type": "INTEGER", "defaultValue": {"S": "hot"}}]},
                 id="default-of-wrong-type"),
    pytest.param({"payloadTemplate": TEMPLATE, "preprocessor": PROCESSOR,
                  "mandatoryParameters": [{"name": "t", "type": "INTEGER", "defaultValue": {"I": 1, "S": "1"}}]},
                 id="two-value-members"),
    pytest.param({"payloadTemplate": TEMPLATE, "preprocessor": PROCESSOR,
                  "mandatoryParameters": [{"name": "t", "type": "BOOLEAN", "valueConditions": [
                      {"comparisonOperator": "EQUALS", "operand": {"string": "true"}}]}]},
                 id="condition-on-boolean"),
    pytest.param({"payloadTemplate": TEMPLATE, "preprocessor": PROCESSOR,
                  "mandatoryParameters": [{"name": "t", "type": "STRING", "valueConditions": [
                      {"comparisonOperator": "LESS_THAN", "operand": {"string": "b"}}]}]},
                 id="less-than-on-string"),
    pytest.param({"payloadTemplate": TEMPLATE, "preprocessor": PROCESSOR,
                  "mandatoryParameters": [{"name": "t", "type": "INTEGER", "valueConditions": [
                      {"comparisonOperator": "IN_SET", "operand": {"number": "1"}}]}]},
                 id="set-operator-needs-numbers"),
    pytest.param({"payloadTemplate": TEMPLATE, "preprocessor": PROCESSOR,
                  "mandatoryParameters": [{"name": "t", "type": "INTEGER", "valueConditions": [
                      {"comparisonOperator": "IN_RANGE", "operand": {"numberRange": {"min": "9", "max": "1"}}}]}]},
                 id="empty-range"),
    pytest.param({"payloadTemplate": TEMPLATE, "preprocessor": PROCESSOR,
                  "mandatoryParameters": [{"name": "t", "type": "INTEGER", "valueConditions": [
                      {"comparisonOperator": "EQUALS", "operand": {"number": "ten"}}]}]},
                 id="operand-not-a-number"),
])
def test_create_command_validation(iot, kwargs):
    with pytest.raises(ClientError) as excinfo:
        iot.create_command(commandId="bad", **kwargs)
    assert error_code(excinfo) == "ValidationException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError):
        iot.get_command(commandId="bad")


def test_get_missing_command(iot):
    with pytest.raises(ClientError) as excinfo:
        iot.get_command(commandId="nope")
    assert error_code(excinfo) == "ResourceNotFoundException"


def test_update_display_name_description_and_deprecation(iot, localiot_server):
    static(iot, displayName="Light")
    created = iot.get_command(commandId="light")["createdAt"]
    localiot_server.clock.advance(5)
    out = iot.update_command(commandId="light", displayName="Lamp", description="new")
    assert (out["commandId"], out["displayName"], out["description"], out["deprecated"]) == ("light", "Lamp", "new", False)
    assert out["lastUpdatedAt"] > created
    got = iot.get_command(commandId="light")
    assert (got["displayName"], got["description"], got["createdAt"]) == ("Lamp", "new", created)

    assert iot.update_command(commandId="light", deprecated=True)["deprecated"] is True
    assert iot.get_command(commandId="light")["deprecated"] is True
    # A deprecated command can't be edited, unless restored in the same call.
    with pytest.raises(ClientError) as excinfo:
        iot.update_command(commandId="light", displayName="Other")
    assert error_code(excinfo) == "ConflictException"
    out = iot.update_command(commandId="light", deprecated=False, displayName="Other")
    assert (out["deprecated"], out["displayName"]) == (False, "Other")


def test_update_missing_command(iot):
    with pytest.raises(ClientError) as excinfo:
        iot.update_command(commandId="nope", displayName="x")
    assert error_code(excinfo) == "ResourceNotFoundException"


def test_delete_available_command_is_pending_for_twelve_hours(iot, localiot_server):
    static(iot)
    out = iot.delete_command(commandId="light")
    assert out["statusCode"] == 202
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 202
    got = iot.get_command(commandId="light")
    assert got["pendingDeletion"] is True
    assert iot.list_commands()["commands"] == []  # pending deletions are left out
    # Deleting again while pending: still 202.
    assert iot.delete_command(commandId="light")["statusCode"] == 202
    for call in (lambda: iot.update_command(commandId="light", displayName="x"), lambda: static(iot)):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "ConflictException"
    localiot_server.clock.advance(12 * HOUR - 60)
    assert iot.get_command(commandId="light")["pendingDeletion"] is True
    localiot_server.clock.advance(61)
    with pytest.raises(ClientError) as excinfo:
        iot.get_command(commandId="light")
    assert error_code(excinfo) == "ResourceNotFoundException"
    static(iot)  # the id is free again


def test_delete_command_deprecated_for_twelve_hours_goes_at_once(iot, localiot_server):
    static(iot, tags=[{"Key": "k", "Value": "v"}])
    iot.update_command(commandId="light", deprecated=True)
    localiot_server.clock.advance(12 * HOUR)
    out = iot.delete_command(commandId="light")
    assert out["statusCode"] == 204
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError):
        iot.get_command(commandId="light")
    with pytest.raises(ClientError) as excinfo:
        iot.list_tags_for_resource(resourceArn=command_arn("light"))
    assert error_code(excinfo) == "ResourceNotFoundException"


def test_delete_recently_deprecated_command_waits_from_deprecation(iot, localiot_server):
    static(iot)
    iot.update_command(commandId="light", deprecated=True)
    localiot_server.clock.advance(4 * HOUR)
    assert iot.delete_command(commandId="light")["statusCode"] == 202
    localiot_server.clock.advance(8 * HOUR + 1)  # 12 hours after the deprecation
    with pytest.raises(ClientError):
        iot.get_command(commandId="light")


def test_delete_missing_command_answers_204(iot):
    assert iot.delete_command(commandId="nope")["statusCode"] == 204


def test_tick_finishes_pending_deletions(iot, localiot_server):
    static(iot)
    iot.delete_command(commandId="light")
    assert tick(localiot_server) == 0
    now = localiot_server.clock.advance(12 * HOUR + 1)
    assert tick(localiot_server, now) == 1
    with pytest.raises(ClientError):
        iot.get_command(commandId="light")


def test_list_commands_sorts_pages_and_filters(iot, localiot_server):
    for i in range(5):
        static(iot, command_id=f"c{i}", displayName=f"C{i}")
        localiot_server.clock.advance(1)
    dynamic(iot)
    iot.create_command(commandId="fw", namespace="AWS-IoT-FleetWise", roleArn="arn:aws:iam::123456789012:role/r")

    listed = iot.list_commands()["commands"]
    assert [c["commandId"] for c in listed] == ["fw", "setTemp", "c4", "c3", "c2", "c1", "c0"]
    assert set(listed[2]) == {"commandArn", "commandId", "displayName", "deprecated", "createdAt",
                              "lastUpdatedAt", "pendingDeletion"}
    ascending = iot.list_commands(sortOrder="ASCENDING")["commands"]
    assert [c["commandId"] for c in ascending][:2] == ["c0", "c1"]

    seen, token = [], None
    while True:
        page = iot.list_commands(maxResults=3, **({"nextToken": token} if token else {}))
        assert len(page["commands"]) <= 3
        seen += [c["commandId"] for c in page["commands"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == ["fw", "setTemp", "c4", "c3", "c2", "c1", "c0"]

    assert [c["commandId"] for c in iot.list_commands(namespace="AWS-IoT-FleetWise")["commands"]] == ["fw"]
    assert len(iot.list_commands(namespace="AWS-IoT")["commands"]) == 6
    assert [c["commandId"] for c in iot.list_commands(commandParameterName="temperature")["commands"]] == ["setTemp"]
    assert iot.list_commands(commandParameterName="nothing")["commands"] == []


def test_list_commands_default_page_is_25(iot):
    for i in range(27):
        static(iot, command_id=f"c{i:02d}")
    page = iot.list_commands()
    assert len(page["commands"]) == 25 and page["nextToken"]
    assert len(iot.list_commands(nextToken=page["nextToken"])["commands"]) == 2


def test_tag_and_untag_a_command(iot):
    arn = static(iot)["commandArn"]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    iot.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]


# starting executions and delivering them ---------------------------------------------------
def test_start_delivers_the_payload_on_the_request_topic(iot, jobs, thing, bus):
    static(iot)
    bus.take()
    execution_id = start(jobs)
    messages = bus.take()
    assert messages[0] == (f"$aws/commands/things/lamp/executions/{execution_id}/request/json", b'{"light":"on"}')
    topic, body = messages[1]
    assert topic == "$aws/events/commandExecution/light/CREATED"
    event = json.loads(body)
    assert event["executionId"] == execution_id and event["status"] == "CREATED"
    assert event["eventType"] == "COMMAND_EXECUTION"
    assert event["commandArn"] == command_arn("light") and event["targetArn"] == thing_arn("lamp")

    got = iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert got["status"] == "CREATED"
    assert got["commandArn"] == command_arn("light")
    assert got["executionTimeoutSeconds"] == 10  # the default
    assert got["createdAt"] == got["startedAt"] == got["lastUpdatedAt"]
    assert "completedAt" not in got and "statusReason" not in got and "result" not in got
    assert 182 <= (got["timeToLive"] - got["createdAt"]).days <= 184


@pytest.mark.parametrize("content_type, suffix", [
    ("application/cbor", "/cbor"),
    ("application/json; charset=utf-8", "/json"),
    ("text/plain", ""),
    (None, ""),  # application/octet-stream
])
def test_request_topic_follows_the_content_type(iot, jobs, thing, bus, content_type, suffix):
    static(iot, content=b"\xa1\x61a\x01", content_type=content_type)
    bus.take()
    execution_id = start(jobs)
    assert bus.take()[0] == (f"$aws/commands/things/lamp/executions/{execution_id}/request{suffix}", b"\xa1\x61a\x01")


def test_start_on_an_mqtt_client(iot, jobs, bus):
    static(iot)
    bus.take()
    target = f"arn:aws:iot:{REGION}:{ACCOUNT}:client/sensor-7"
    execution_id = start(jobs, target=target)
    assert bus.take()[0][0] == f"$aws/commands/clients/sensor-7/executions/{execution_id}/request/json"
    assert iot.get_command_execution(executionId=execution_id, targetArn=target)["targetArn"] == target


def test_dynamic_command_substitutes_parameters_in_json(iot, jobs, thing, bus):
    template = json.dumps({
        "temperature": "${aws:iot:commandexecution::parameter:temperature}",
        "mode": "${aws:iot:commandexecution::parameter:mode}",
        "eco": "${aws:iot:commandexecution::parameter:eco}",
        "ratio": "${aws:iot:commandexecution::parameter:ratio}",
        "label": "set ${aws:iot:commandexecution::parameter:mode} to ${aws:iot:commandexecution::parameter:temperature}",
        "timeout": "${aws:iot:commandexecution::executionTimeoutSec}",
        "list": ["${aws:iot:commandexecution::parameter:big}"],
    })
    dynamic(iot, template=template, parameters=[
        {"name": "temperature", "type": "INTEGER", "defaultValue": {"I": 72}},
        {"name": "mode", "type": "STRING", "value": {"S": "heat"}, "defaultValue": {"S": "cool"}},
        {"name": "eco", "type": "BOOLEAN"},
        {"name": "ratio", "type": "DOUBLE", "defaultValue": {"D": 0.5}},
        {"name": "big", "type": "UNSIGNEDLONG", "defaultValue": {"UL": "18446744073709551615"}},
    ])
    bus.take()
    execution_id = start(jobs, "setTemp", parameters={"eco": {"B": True}, "temperature": {"I": 68}},
                         executionTimeoutSeconds=30)
    topic, body = bus.take()[0]
    assert topic == f"$aws/commands/things/lamp/executions/{execution_id}/request/json"
    assert json.loads(body) == {"temperature": 68, "mode": "heat", "eco": True, "ratio": 0.5,
                                "label": "set heat to 68", "timeout": 30, "list": [18446744073709551615]}
    got = iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert got["parameters"] == {"temperature": {"I": 68}, "mode": {"S": "heat"}, "eco": {"B": True},
                                 "ratio": {"D": 0.5}, "big": {"UL": "18446744073709551615"}}
    assert got["executionTimeoutSeconds"] == 30


def test_dynamic_command_in_cbor(iot, jobs, thing, bus):
    template = json.dumps({"blob": "${aws:iot:commandexecution::parameter:blob}",
                           "n": "${aws:iot:commandexecution::parameter:n}"})
    dynamic(iot, template=template, output="CBOR", parameters=[
        {"name": "blob", "type": "BINARY"}, {"name": "n", "type": "LONG", "defaultValue": {"L": -5}}])
    bus.take()
    execution_id = start(jobs, "setTemp", parameters={"blob": {"BIN": b"\x00\xff"}})
    topic, body = bus.take()[0]
    assert topic == f"$aws/commands/things/lamp/executions/{execution_id}/request/cbor"
    assert cbor_loads(body) == {"blob": b"\x00\xff", "n": -5}
    got = iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert got["parameters"]["blob"] == {"BIN": b"\x00\xff"}


@pytest.mark.parametrize("parameters, ok", [
    (None, True),  # the default, 72
    ({"temperature": {"I": 60}}, True),  # IN_RANGE includes its bounds
    ({"temperature": {"I": 80}}, True),
    ({"temperature": {"I": 81}}, False),
    ({"temperature": {"I": 59}}, False),
    ({"temperature": {"S": "70"}}, False),  # wrong type
    ({"temperature": {"I": 70}, "humidity": {"I": 1}}, False),  # not a parameter of the command
])
def test_value_conditions_are_checked_at_start(iot, jobs, thing, parameters, ok):
    dynamic(iot)
    extra = {"parameters": parameters} if parameters else {}
    if ok:
        assert start(jobs, "setTemp", **extra)
    else:
        with pytest.raises(ClientError) as excinfo:
            start(jobs, "setTemp", **extra)
        assert error_code(excinfo) == "ValidationException"


@pytest.mark.parametrize("condition, value, ok", [
    ({"comparisonOperator": "IN_SET", "operand": {"strings": ["ON", "OFF"]}}, {"S": "ON"}, True),
    ({"comparisonOperator": "IN_SET", "operand": {"strings": ["ON", "OFF"]}}, {"S": "DIM"}, False),
    ({"comparisonOperator": "NOT_IN_SET", "operand": {"strings": ["DIM"]}}, {"S": "DIM"}, False),
    ({"comparisonOperator": "NOT_EQUALS", "operand": {"string": "DIM"}}, {"S": "ON"}, True),
    ({"comparisonOperator": "EQUALS", "operand": {"string": "ON"}}, {"S": "OFF"}, False),
])
def test_string_conditions(iot, jobs, thing, condition, value, ok):
    dynamic(iot, template='{"p": "${aws:iot:commandexecution::parameter:p}"}',
            parameters=[{"name": "p", "type": "STRING", "valueConditions": [condition]}])
    if ok:
        assert start(jobs, "setTemp", parameters={"p": value})
    else:
        with pytest.raises(ClientError) as excinfo:
            start(jobs, "setTemp", parameters={"p": value})
        assert error_code(excinfo) == "ValidationException"


@pytest.mark.parametrize("kind, condition, value, ok", [
    ("DOUBLE", {"comparisonOperator": "GREATER_THAN", "operand": {"number": "1.5"}}, {"D": 1.5}, False),
    ("DOUBLE", {"comparisonOperator": "GREATER_THAN_EQUALS", "operand": {"number": "1.5"}}, {"D": 1.5}, True),
    ("LONG", {"comparisonOperator": "LESS_THAN", "operand": {"number": "10"}}, {"L": 9}, True),
    ("LONG", {"comparisonOperator": "LESS_THAN_EQUALS", "operand": {"number": "10"}}, {"L": 11}, False),
    ("INTEGER", {"comparisonOperator": "IN_SET", "operand": {"numbers": ["1", "2"]}}, {"I": 2}, True),
    ("INTEGER", {"comparisonOperator": "NOT_IN_SET", "operand": {"numbers": ["1", "2"]}}, {"I": 2}, False),
    ("INTEGER", {"comparisonOperator": "NOT_IN_RANGE",
                 "operand": {"numberRange": {"min": "1", "max": "5"}}}, {"I": 5}, False),
    ("UNSIGNEDLONG", {"comparisonOperator": "EQUALS", "operand": {"number": "7"}}, {"UL": "7"}, True),
])
def test_numeric_conditions(iot, jobs, thing, kind, condition, value, ok):
    dynamic(iot, template='{"p": "${aws:iot:commandexecution::parameter:p}"}',
            parameters=[{"name": "p", "type": kind, "valueConditions": [condition]}])
    if ok:
        assert start(jobs, "setTemp", parameters={"p": value})
    else:
        with pytest.raises(ClientError) as excinfo:
            start(jobs, "setTemp", parameters={"p": value})
        assert error_code(excinfo) == "ValidationException"


def test_parameter_without_value_or_default_is_required(iot, jobs, thing):
    dynamic(iot, parameters=[{"name": "temperature", "type": "INTEGER"}])
    with pytest.raises(ClientError) as excinfo:
        start(jobs, "setTemp")
    assert error_code(excinfo) == "ValidationException"


def test_start_errors(iot, jobs, thing):
    static(iot)
    cases = [
        ({"commandArn": command_arn("nope"), "targetArn": thing_arn("lamp")}, "ResourceNotFoundException", 404),
        ({"commandArn": command_arn("light"), "targetArn": thing_arn("ghost")}, "ResourceNotFoundException", 404),
        ({"commandArn": "light", "targetArn": thing_arn("lamp")}, "ValidationException", 400),
        ({"commandArn": command_arn("light"), "targetArn": "arn:aws:iot:us-east-1:123456789012:thinggroup/g"},
         "ValidationException", 400),
        ({"commandArn": command_arn("light"), "targetArn": thing_arn("lamp"), "executionTimeoutSeconds": 12 * HOUR + 1},
         "ValidationException", 400),
        ({"commandArn": command_arn("light", "eu-west-1"), "targetArn": thing_arn("lamp")},
         "ResourceNotFoundException", 404),
    ]
    for kwargs, code, status in cases:
        with pytest.raises(ClientError) as excinfo:
            jobs.start_command_execution(**kwargs)
        assert error_code(excinfo) == code, kwargs
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert iot.list_command_executions()["commandExecutions"] == []


def test_deprecated_command_cannot_start_until_restored(iot, jobs, thing):
    static(iot)
    iot.update_command(commandId="light", deprecated=True)
    with pytest.raises(ClientError) as excinfo:
        start(jobs)
    assert error_code(excinfo) == "ConflictException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    iot.update_command(commandId="light", deprecated=False)
    assert start(jobs)


def test_pending_deletion_command_cannot_start(iot, jobs, thing):
    static(iot)
    iot.delete_command(commandId="light")
    with pytest.raises(ClientError) as excinfo:
        start(jobs)
    assert error_code(excinfo) == "ConflictException"


def test_client_token_makes_start_idempotent(iot, jobs, thing, bus):
    static(iot)
    bus.take()
    first = start(jobs, clientToken="token-1", executionTimeoutSeconds=60)
    again = start(jobs, clientToken="token-1", executionTimeoutSeconds=60)
    assert first == again
    assert len([t for t in bus.topics() if "/request/" in t]) == 1  # delivered once
    with pytest.raises(ClientError) as excinfo:
        start(jobs, clientToken="token-1", executionTimeoutSeconds=30)
    assert error_code(excinfo) == "ConflictException"
    assert start(jobs, clientToken="token-2", executionTimeoutSeconds=60) != first
    assert len(iot.list_command_executions()["commandExecutions"]) == 2


def test_get_command_execution_needs_its_target(iot, jobs, thing):
    static(iot)
    execution_id = start(jobs)
    iot.create_thing(thingName="other")
    for kwargs in ({"executionId": execution_id, "targetArn": thing_arn("other")},
                   {"executionId": "00000000-0000-0000-0000-000000000000", "targetArn": thing_arn("lamp")}):
        with pytest.raises(ClientError) as excinfo:
            iot.get_command_execution(**kwargs)
        assert error_code(excinfo) == "ResourceNotFoundException"
