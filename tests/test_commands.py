"""AWS IoT Device Management commands: the command resource, executions, their
delivery on the commands request topics, the device's response topic, timeouts."""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from conftest import make_client

from localiot.broker import Identity
from localiot.broker.reserved import ReservedPublish
from localiot.services.commands import executions
from localiot.services.commands.executions import cbor_dumps, cbor_loads
from localiot.services.context import RequestContext

ACCOUNT = "123456789012"
REGION = "us-east-1"
HOUR = 3600


# helpers -----------------------------------------------------------------------------
class Recorder:
    """Messages on the server's bus, as (topic, payload bytes)."""

    def __init__(self, bus):
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.unsubscribe = bus.subscribe(self._on_message)

    def _on_message(self, account, region, topic, payload):
        with self._lock:
            self.messages.append((topic, payload))

    def take(self) -> list[tuple[str, bytes]]:
        with self._lock:
            taken, self.messages = self.messages, []
        return taken

    def topics(self) -> list[str]:
        return [topic for topic, _ in self.take()]


@pytest.fixture
def bus(localiot_server):
    recorder = Recorder(localiot_server.app.bus)
    yield recorder
    recorder.unsubscribe()


@pytest.fixture
def jobs(localiot_server):
    return make_client(localiot_server, "iot-jobs-data")


def advance(server, seconds: float) -> float:
    """Move the server's clock without running background work (tests call tick)."""
    return server.clock.advance(seconds)


def advance_over_http(server, seconds: float) -> float:
    """Move the clock as a user would: the server runs its background work before answering."""
    request = urllib.request.Request(server.endpoint + "/_localiot/clock", method="POST",
                                     data=json.dumps({"advance": seconds}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["now"]


def as_device(server, fn, *args, account=ACCOUNT, region=REGION, **kwargs):
    """Run fn(ctx, ...) on the server thread in one transaction, as the MQTT door will."""
    app = server.app

    def run():
        with app.store.transaction(account, region) as tx:
            ctx = RequestContext(account, region, tx, app.runtime, "iot", "UpdateCommandExecution")
            out = fn(ctx, *args, **kwargs)
        for topic, payload in ctx.events:
            app.bus.publish(account, region, topic, payload)
        return out

    return server.call(run)


def respond(server, thing, execution_id, document, fmt="json", **kwargs):
    body = cbor_dumps(document) if fmt == "cbor" else json.dumps(document).encode()
    return as_device(server, executions.update_from_device, "things", thing, execution_id, body, fmt, **kwargs)


def tick(server, now=None):
    app = server.app
    return server.call(executions.tick, app.store, app.runtime, now)


def error_of(excinfo) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error.get("Message", "")


def command_arn(command_id: str, region: str = REGION) -> str:
    return f"arn:aws:iot:{region}:{ACCOUNT}:command/{command_id}"


def thing_arn(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"


def static(iot, command_id="light", content=b'{"light":"on"}', content_type="application/json", **extra):
    payload = {"content": content}
    if content_type:
        payload["contentType"] = content_type
    return iot.create_command(commandId=command_id, payload=payload, **extra)


def dynamic(iot, command_id="setTemp", template=None, parameters=None, output="JSON"):
    template = template or json.dumps({"temperature": "${aws:iot:commandexecution::parameter:temperature}"})
    parameters = parameters if parameters is not None else [{
        "name": "temperature", "type": "INTEGER", "defaultValue": {"I": 72},
        "valueConditions": [{"comparisonOperator": "IN_RANGE", "operand": {"numberRange": {"min": "60", "max": "80"}}}],
    }]
    return iot.create_command(commandId=command_id, payloadTemplate=template, mandatoryParameters=parameters,
                              preprocessor={"awsJsonSubstitution": {"outputFormat": output}})


@pytest.fixture
def thing(iot):
    iot.create_thing(thingName="lamp")
    return "lamp"


def start(jobs, command_id="light", target=None, **extra):
    return jobs.start_command_execution(targetArn=target or thing_arn("lamp"), commandArn=command_arn(command_id),
                                        **extra)["executionId"]


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
    assert error_of(excinfo)[0] == "ValidationException"


def test_create_existing_command_is_a_conflict(iot):
    static(iot)
    with pytest.raises(ClientError) as excinfo:
        static(iot)
    assert error_of(excinfo)[0] == "ConflictException"
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
    assert error_of(excinfo)[0] == "ValidationException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError):
        iot.get_command(commandId="bad")


def test_get_missing_command(iot):
    with pytest.raises(ClientError) as excinfo:
        iot.get_command(commandId="nope")
    assert error_of(excinfo)[0] == "ResourceNotFoundException"


def test_update_display_name_description_and_deprecation(iot, localiot_server):
    static(iot, displayName="Light")
    created = iot.get_command(commandId="light")["createdAt"]
    advance(localiot_server, 5)
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
    assert error_of(excinfo)[0] == "ConflictException"
    out = iot.update_command(commandId="light", deprecated=False, displayName="Other")
    assert (out["deprecated"], out["displayName"]) == (False, "Other")


def test_update_missing_command(iot):
    with pytest.raises(ClientError) as excinfo:
        iot.update_command(commandId="nope", displayName="x")
    assert error_of(excinfo)[0] == "ResourceNotFoundException"


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
        assert error_of(excinfo)[0] == "ConflictException"
    advance(localiot_server, 12 * HOUR - 60)
    assert iot.get_command(commandId="light")["pendingDeletion"] is True
    advance(localiot_server, 61)
    with pytest.raises(ClientError) as excinfo:
        iot.get_command(commandId="light")
    assert error_of(excinfo)[0] == "ResourceNotFoundException"
    static(iot)  # the id is free again


def test_delete_command_deprecated_for_twelve_hours_goes_at_once(iot, localiot_server):
    static(iot, tags=[{"Key": "k", "Value": "v"}])
    iot.update_command(commandId="light", deprecated=True)
    advance(localiot_server, 12 * HOUR)
    out = iot.delete_command(commandId="light")
    assert out["statusCode"] == 204
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError):
        iot.get_command(commandId="light")
    with pytest.raises(ClientError) as excinfo:
        iot.list_tags_for_resource(resourceArn=command_arn("light"))
    assert error_of(excinfo)[0] == "ResourceNotFoundException"


def test_delete_recently_deprecated_command_waits_from_deprecation(iot, localiot_server):
    static(iot)
    iot.update_command(commandId="light", deprecated=True)
    advance(localiot_server, 4 * HOUR)
    assert iot.delete_command(commandId="light")["statusCode"] == 202
    advance(localiot_server, 8 * HOUR + 1)  # 12 hours after the deprecation
    with pytest.raises(ClientError):
        iot.get_command(commandId="light")


def test_delete_missing_command_answers_204(iot):
    assert iot.delete_command(commandId="nope")["statusCode"] == 204


def test_tick_finishes_pending_deletions(iot, localiot_server):
    static(iot)
    iot.delete_command(commandId="light")
    assert tick(localiot_server) == 0
    now = advance(localiot_server, 12 * HOUR + 1)
    assert tick(localiot_server, now) == 1
    with pytest.raises(ClientError):
        iot.get_command(commandId="light")


def test_list_commands_sorts_pages_and_filters(iot, localiot_server):
    for i in range(5):
        static(iot, command_id=f"c{i}", displayName=f"C{i}")
        advance(localiot_server, 1)
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
        assert error_of(excinfo)[0] == "ValidationException"


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
        assert error_of(excinfo)[0] == "ValidationException"


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
        assert error_of(excinfo)[0] == "ValidationException"


def test_parameter_without_value_or_default_is_required(iot, jobs, thing):
    dynamic(iot, parameters=[{"name": "temperature", "type": "INTEGER"}])
    with pytest.raises(ClientError) as excinfo:
        start(jobs, "setTemp")
    assert error_of(excinfo)[0] == "ValidationException"


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
        assert error_of(excinfo)[0] == code, kwargs
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert iot.list_command_executions()["commandExecutions"] == []


def test_deprecated_command_cannot_start_until_restored(iot, jobs, thing):
    static(iot)
    iot.update_command(commandId="light", deprecated=True)
    with pytest.raises(ClientError) as excinfo:
        start(jobs)
    assert error_of(excinfo)[0] == "ConflictException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    iot.update_command(commandId="light", deprecated=False)
    assert start(jobs)


def test_pending_deletion_command_cannot_start(iot, jobs, thing):
    static(iot)
    iot.delete_command(commandId="light")
    with pytest.raises(ClientError) as excinfo:
        start(jobs)
    assert error_of(excinfo)[0] == "ConflictException"


def test_client_token_makes_start_idempotent(iot, jobs, thing, bus):
    static(iot)
    bus.take()
    first = start(jobs, clientToken="token-1", executionTimeoutSeconds=60)
    again = start(jobs, clientToken="token-1", executionTimeoutSeconds=60)
    assert first == again
    assert len([t for t in bus.topics() if "/request/" in t]) == 1  # delivered once
    with pytest.raises(ClientError) as excinfo:
        start(jobs, clientToken="token-1", executionTimeoutSeconds=30)
    assert error_of(excinfo)[0] == "ConflictException"
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
        assert error_of(excinfo)[0] == "ResourceNotFoundException"


# the device's response topic --------------------------------------------------------
def test_device_reports_progress_then_success(iot, jobs, thing, bus, localiot_server):
    static(iot)
    execution_id = start(jobs, executionTimeoutSeconds=300)
    bus.take()
    base = f"$aws/commands/things/lamp/executions/{execution_id}"

    advance(localiot_server, 2)
    topic, reply = respond(localiot_server, "lamp", execution_id,
                           {"status": "IN_PROGRESS", "statusReason": {"reasonCode": "WARMING_UP"}})
    assert (topic, reply) == (f"{base}/response/accepted/json", {"executionId": execution_id})
    messages = dict(bus.take())
    assert set(messages) == {f"{base}/response/accepted/json", "$aws/events/commandExecution/light/IN_PROGRESS"}
    assert json.loads(messages[f"{base}/response/accepted/json"]) == {"executionId": execution_id}
    event = json.loads(messages["$aws/events/commandExecution/light/IN_PROGRESS"])
    assert event["statusReason"] == {"reasonCode": "WARMING_UP"}
    got = iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert got["status"] == "IN_PROGRESS" and got["statusReason"] == {"reasonCode": "WARMING_UP"}
    assert got["lastUpdatedAt"] > got["createdAt"] and "completedAt" not in got

    # IN_PROGRESS may be reported again.
    assert respond(localiot_server, "lamp", execution_id, {"status": "IN_PROGRESS"})[0].endswith("/accepted/json")

    advance(localiot_server, 2)
    topic, _ = respond(localiot_server, "lamp", execution_id, {
        "status": "SUCCEEDED",
        "result": {"brightness": {"s": "80%"}, "on": {"b": True}, "raw": {"bin": base64.b64encode(b"\x01").decode()}},
    })
    assert topic == f"{base}/response/accepted/json"
    assert "$aws/events/commandExecution/light/SUCCEEDED" in bus.topics()
    got = iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"), includeResult=True)
    assert got["status"] == "SUCCEEDED" and "statusReason" not in got
    assert got["result"] == {"brightness": {"S": "80%"}, "on": {"B": True}, "raw": {"BIN": b"\x01"}}
    assert got["completedAt"] == got["lastUpdatedAt"]
    assert "result" not in iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))

    # Terminal: nothing changes it any more.
    topic, reply = respond(localiot_server, "lamp", execution_id, {"status": "REJECTED"})
    assert topic == f"{base}/response/rejected/json"
    assert reply == {"error": "TerminalStateReached", "executionId": execution_id,
                     "errorMessage": "Command Execution status cannot be updated to REJECTED since execution "
                                     "has already completed with status SUCCEEDED."}
    assert bus.take()[0][0] == f"{base}/response/rejected/json"
    assert iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))["status"] == "SUCCEEDED"


def test_device_failure_with_reason(iot, jobs, thing, localiot_server):
    static(iot)
    execution_id = start(jobs)
    respond(localiot_server, "lamp", execution_id, {
        "status": "FAILED", "statusReason": {"reasonCode": "DEVICE_TOO_BUSY", "reasonDescription": "busy"}})
    got = iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert got["status"] == "FAILED"
    assert got["statusReason"] == {"reasonCode": "DEVICE_TOO_BUSY", "reasonDescription": "busy"}


def test_device_response_in_cbor(iot, jobs, thing, bus, localiot_server):
    static(iot)
    execution_id = start(jobs)
    bus.take()
    topic, _ = respond(localiot_server, "lamp", execution_id,
                       {"status": "SUCCEEDED", "result": {"dump": {"bin": b"\xde\xad"}}}, fmt="cbor")
    assert topic.endswith("/response/accepted/cbor")
    assert cbor_loads(dict(bus.take())[topic]) == {"executionId": execution_id}
    got = iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"), includeResult=True)
    assert got["result"] == {"dump": {"BIN": b"\xde\xad"}}
    topic, _ = respond(localiot_server, "lamp", execution_id, {"status": "FAILED"}, fmt="cbor")
    assert topic.endswith("/response/rejected/cbor")
    assert cbor_loads(bus.take()[0][1])["error"] == "TerminalStateReached"


@pytest.mark.parametrize("payload, error", [
    (b"{not json", "InvalidJson"),
    (b"[1, 2]", "InvalidRequest"),
    (b'{"statusReason": {"reasonCode": "X"}}', "InvalidRequest"),
    (b'{"status": "CREATED"}', "InvalidRequest"),
    (b'{"status": "DONE"}', "InvalidRequest"),
    (b'{"status": "FAILED", "statusReason": {"reasonCode": "lower case"}}', "InvalidRequest"),
    (b'{"status": "FAILED", "statusReason": {"reasonDescription": "no code"}}', "InvalidRequest"),
    (b'{"status": "SUCCEEDED", "result": {}}', "InvalidRequest"),
    (b'{"status": "SUCCEEDED", "result": {"out": "plain"}}', "InvalidRequest"),
    (b'{"status": "SUCCEEDED", "result": {"out": {"s": "a", "b": true}}}', "InvalidRequest"),
    (b'{"status": "SUCCEEDED", "result": {"bad name!": {"s": "a"}}}', "InvalidRequest"),
    (b'{"status": "SUCCEEDED", "result": {"out": {"bin": "***"}}}', "InvalidRequest"),
])
def test_device_updates_that_are_rejected(iot, jobs, thing, localiot_server, payload, error):
    static(iot)
    execution_id = start(jobs)
    topic, reply = as_device(localiot_server, executions.update_from_device, "things", "lamp", execution_id,
                             payload, "json")
    assert topic == f"$aws/commands/things/lamp/executions/{execution_id}/response/rejected/json"
    assert reply["error"] == error and reply["executionId"] == execution_id and reply["errorMessage"]
    assert iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))["status"] == "CREATED"


def test_empty_result_message(iot, jobs, thing, localiot_server):
    static(iot)
    execution_id = start(jobs)
    _, reply = respond(localiot_server, "lamp", execution_id, {"status": "SUCCEEDED", "result": {}})
    assert reply["errorMessage"] == "At least 1 command execution result is required."


def test_device_update_for_unknown_or_foreign_execution(iot, jobs, thing, localiot_server):
    static(iot)
    execution_id = start(jobs)
    iot.create_thing(thingName="other")
    for device, eid in ((("things", "other"), execution_id), (("clients", "lamp"), execution_id),
                        (("things", "lamp"), "00000000-0000-0000-0000-000000000000")):
        _, reply = as_device(localiot_server, executions.update_from_device, *device, eid,
                             b'{"status": "SUCCEEDED"}', "json")
        assert reply["error"] == "ResourceNotFound"
    _, reply = as_device(localiot_server, executions.update_from_device, "things", "lamp", execution_id,
                         b'{"status": "SUCCEEDED"}', "xml")
    assert reply["error"] == "InvalidTopic"


def test_client_target_answers_on_the_clients_topic(iot, jobs, localiot_server, bus):
    static(iot)
    target = f"arn:aws:iot:{REGION}:{ACCOUNT}:client/sensor-7"
    execution_id = start(jobs, target=target)
    topic, _ = as_device(localiot_server, executions.update_from_device, "clients", "sensor-7", execution_id,
                         b'{"status": "SUCCEEDED"}', "json")
    assert topic == f"$aws/commands/clients/sensor-7/executions/{execution_id}/response/accepted/json"
    assert iot.get_command_execution(executionId=execution_id, targetArn=target)["status"] == "SUCCEEDED"


def test_the_commands_door_serves_response_topics(iot, jobs, thing, bus, localiot_server):
    """The broker's reserved-topic table sends `.../response/{format}` to the commands door;
    the reply topics are nobody's to publish."""
    static(iot)
    execution_id = start(jobs)
    base = f"$aws/commands/things/lamp/executions/{execution_id}"
    table = localiot_server.app.runtime.broker.reserved_topics
    assert table.find(f"{base}/response/accepted/json") is None
    assert table.kind(f"{base}/response/accepted/json") == "forbidden"
    route, parts = table.find(f"{base}/response/json")
    assert parts == {"device_type": "things", "device_id": "lamp", "execution_id": execution_id, "format": "json"}
    assert table.find("$aws/things/lamp/shadow/update")[0] is not route
    bus.take()
    publish = ReservedPublish(Identity(ACCOUNT, REGION, principal="lamp"), f"{base}/response/json",
                              b'{"status": "SUCCEEDED"}', {}, 1, parts)
    assert localiot_server.call(route.serve, publish) is True
    replies = dict(bus.take())
    assert json.loads(replies[f"{base}/response/accepted/json"]) == {"executionId": execution_id}


def test_update_without_publish_queues_nothing(iot, jobs, thing, bus, localiot_server):
    static(iot)
    execution_id = start(jobs)
    bus.take()
    respond(localiot_server, "lamp", execution_id, {"status": "DONE"}, publish=False)
    assert bus.take() == []


# timeouts ---------------------------------------------------------------------------
def test_tick_times_executions_out(iot, jobs, thing, bus, localiot_server):
    static(iot)
    quick = start(jobs, executionTimeoutSeconds=5)
    slow = start(jobs, executionTimeoutSeconds=60)
    created = iot.get_command_execution(executionId=quick, targetArn=thing_arn("lamp"))["createdAt"]
    bus.take()
    now = advance(localiot_server, 4)
    assert tick(localiot_server, now) == 0
    now = advance(localiot_server, 2)
    assert tick(localiot_server, now) == 1
    messages = bus.take()
    assert [t for t, _ in messages] == ["$aws/events/commandExecution/light/TIMED_OUT"]
    event = json.loads(messages[0][1])
    assert event["executionId"] == quick
    assert event["statusReason"] == {"reasonCode": "$NO_RESPONSE_FROM_DEVICE"}
    assert tick(localiot_server, now) == 0  # once only
    got = iot.get_command_execution(executionId=quick, targetArn=thing_arn("lamp"))
    assert got["status"] == "TIMED_OUT"
    assert got["statusReason"] == {"reasonCode": "$NO_RESPONSE_FROM_DEVICE"}
    assert (got["completedAt"] - created).total_seconds() == pytest.approx(5, abs=0.01)
    assert iot.get_command_execution(executionId=slow, targetArn=thing_arn("lamp"))["status"] == "CREATED"


def test_a_cloud_timeout_is_not_terminal(iot, jobs, thing, localiot_server):
    static(iot)
    execution_id = start(jobs, executionTimeoutSeconds=5)
    tick(localiot_server, advance(localiot_server, 6))
    # The device may not go back to IN_PROGRESS, but may still finish.
    _, reply = respond(localiot_server, "lamp", execution_id, {"status": "IN_PROGRESS"})
    assert reply["error"] == "InvalidStateTransition"
    with pytest.raises(ClientError) as excinfo:  # not terminal: can't be deleted
        iot.delete_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert error_of(excinfo)[0] == "ConflictException"
    topic, _ = respond(localiot_server, "lamp", execution_id, {"status": "SUCCEEDED"})
    assert topic.endswith("/accepted/json")
    got = iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert got["status"] == "SUCCEEDED" and "statusReason" not in got


def test_a_timeout_reported_by_the_device_is_terminal(iot, jobs, thing, localiot_server):
    static(iot)
    execution_id = start(jobs, executionTimeoutSeconds=5)
    tick(localiot_server, advance(localiot_server, 6))
    respond(localiot_server, "lamp", execution_id,
            {"status": "TIMED_OUT", "statusReason": {"reasonCode": "MOTOR_STALLED"}})
    got = iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert got["status"] == "TIMED_OUT" and got["statusReason"] == {"reasonCode": "MOTOR_STALLED"}
    _, reply = respond(localiot_server, "lamp", execution_id, {"status": "SUCCEEDED"})
    assert reply["error"] == "TerminalStateReached"
    iot.delete_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))


def test_moving_the_clock_over_http_runs_the_timeout_tick(iot, jobs, thing, bus, localiot_server):
    static(iot)
    execution_id = start(jobs, executionTimeoutSeconds=5)
    bus.take()
    advance_over_http(localiot_server, 6)
    # the tick ran inside the clock call: the event is out before anyone reads the execution
    assert bus.topics() == ["$aws/events/commandExecution/light/TIMED_OUT"]
    assert tick(localiot_server) == 0
    assert iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))["status"] == "TIMED_OUT"


def test_reads_apply_an_overdue_timeout_without_the_timer(iot, jobs, thing, bus, localiot_server):
    static(iot)
    execution_id = start(jobs)
    advance(localiot_server, 11)
    bus.take()
    assert iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))["status"] == "TIMED_OUT"
    assert bus.topics() == ["$aws/events/commandExecution/light/TIMED_OUT"]
    assert tick(localiot_server) == 0


def test_tick_covers_every_account_and_region(iot, jobs, thing, localiot_server):
    other = make_client(localiot_server, "iot", region="eu-west-1", access_key="210987654321")
    other_jobs = make_client(localiot_server, "iot-jobs-data", region="eu-west-1", access_key="210987654321")
    static(iot)
    static(other)
    start(jobs, executionTimeoutSeconds=5)
    other_jobs.start_command_execution(targetArn="arn:aws:iot:eu-west-1:210987654321:client/c1",
                                       commandArn="arn:aws:iot:eu-west-1:210987654321:command/light",
                                       executionTimeoutSeconds=5)
    # The in-process clock moves without running background work, so tick does it here.
    assert tick(localiot_server, localiot_server.clock.advance(6)) == 2
    assert other.list_command_executions(status="TIMED_OUT")["commandExecutions"][0]["targetArn"] \
        == "arn:aws:iot:eu-west-1:210987654321:client/c1"
    assert len(iot.list_command_executions(status="TIMED_OUT")["commandExecutions"]) == 1


def test_executions_expire_after_their_time_to_live(iot, jobs, thing, localiot_server):
    static(iot)
    execution_id = start(jobs)
    respond(localiot_server, "lamp", execution_id, {"status": "SUCCEEDED"})
    advance(localiot_server, 184 * 24 * HOUR)
    with pytest.raises(ClientError):
        iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert iot.list_command_executions()["commandExecutions"] == []


def test_tick_sweeps_expired_executions(iot, jobs, thing, localiot_server):
    static(iot)
    execution_id = start(jobs)
    respond(localiot_server, "lamp", execution_id, {"status": "SUCCEEDED"})
    assert tick(localiot_server, localiot_server.clock.advance(184 * 24 * HOUR)) == 1


# listing and deleting executions ---------------------------------------------------------
def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M")


def test_list_command_executions_filters_sorts_and_pages(iot, jobs, thing, localiot_server):
    static(iot)
    dynamic(iot)
    iot.create_thing(thingName="fan")
    first = start(jobs, executionTimeoutSeconds=HOUR)
    advance(localiot_server, 120)
    second = start(jobs, "setTemp", executionTimeoutSeconds=HOUR)
    advance(localiot_server, 120)
    third = start(jobs, target=thing_arn("fan"), executionTimeoutSeconds=HOUR)
    advance(localiot_server, 120)
    respond(localiot_server, "lamp", first, {"status": "SUCCEEDED"})

    listed = iot.list_command_executions()["commandExecutions"]
    assert [e["executionId"] for e in listed] == [third, second, first]
    assert set(listed[2]) == {"commandArn", "executionId", "targetArn", "status", "createdAt", "startedAt",
                              "completedAt"}
    ascending = iot.list_command_executions(sortOrder="ASCENDING")["commandExecutions"]
    assert [e["executionId"] for e in ascending] == [first, second, third]

    def ids(**kwargs):
        return [e["executionId"] for e in iot.list_command_executions(**kwargs)["commandExecutions"]]

    assert ids(targetArn=thing_arn("lamp")) == [second, first]
    assert ids(commandArn=command_arn("light")) == [third, first]
    assert ids(status="SUCCEEDED") == [first]
    assert ids(status="CREATED", namespace="AWS-IoT") == [third, second]
    assert ids(namespace="AWS-IoT-FleetWise") == []

    page = iot.list_command_executions(maxResults=2)
    assert len(page["commandExecutions"]) == 2
    rest = iot.list_command_executions(maxResults=2, nextToken=page["nextToken"])
    assert [e["executionId"] for e in rest["commandExecutions"]] == [first] and "nextToken" not in rest

    created = iot.get_command_execution(executionId=second, targetArn=thing_arn("lamp"))["createdAt"].timestamp()
    assert ids(startedTimeFilter={"after": _iso(created - 30)}) == [third, second]
    assert ids(startedTimeFilter={"before": _iso(created - 30)}) == [first]
    assert ids(startedTimeFilter={"after": _iso(created - 200), "before": _iso(created + 60)}) == [second, first]
    assert ids(completedTimeFilter={"after": _iso(created - 200)}) == [first]


@pytest.mark.parametrize("kwargs, code", [
    ({"startedTimeFilter": {"after": "2024-01-01T00:00"}, "completedTimeFilter": {"after": "2024-01-01T00:00"}},
     "ValidationException"),
    ({"targetArn": "arn:aws:iot:us-east-1:123456789012:thing/lamp", "commandArn": command_arn("light")},
     "ValidationException"),
    ({"startedTimeFilter": {"after": "yesterday"}}, "ValidationException"),
    ({"commandArn": command_arn("nope")}, "ResourceNotFoundException"),
])
def test_list_command_executions_errors(iot, kwargs, code):
    with pytest.raises(ClientError) as excinfo:
        iot.list_command_executions(**kwargs)
    assert error_of(excinfo)[0] == code


def test_delete_command_execution(iot, jobs, thing, localiot_server):
    static(iot)
    execution_id = start(jobs, clientToken="once")
    with pytest.raises(ClientError) as excinfo:
        iot.delete_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert error_of(excinfo)[0] == "ConflictException"
    assert excinfo.value.response["resourceId"] == execution_id
    respond(localiot_server, "lamp", execution_id, {"status": "REJECTED"})
    iot.delete_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    with pytest.raises(ClientError) as excinfo:
        iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert error_of(excinfo)[0] == "ResourceNotFoundException"
    # Deleting again, or a missing one, is a no-op.
    iot.delete_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    # The client token is free again once its execution is gone.
    assert start(jobs, clientToken="once") != execution_id


def test_executions_outlive_their_command(iot, jobs, thing, localiot_server):
    static(iot)
    execution_id = start(jobs, executionTimeoutSeconds=HOUR)
    iot.delete_command(commandId="light")
    respond(localiot_server, "lamp", execution_id, {"status": "SUCCEEDED"})
    advance(localiot_server, 12 * HOUR + 1)
    got = iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert got["status"] == "SUCCEEDED"
    listed = iot.list_command_executions(commandArn=command_arn("light"))["commandExecutions"]
    assert [e["executionId"] for e in listed] == [execution_id]


# the CBOR codec (cbor2, strict) ----------------------------------------------------------------------
@pytest.mark.parametrize("value", [
    0, 23, 24, 255, 256, 65536, 2**32, 2**64 - 1, -1, -24, -25, -2**63, 1.5, -0.0, True, False, None,
    "", "héllo", b"", b"\x00\xff", [], [1, [2, "x"]], {"a": {"b": [True, None]}}, "x" * 300, list(range(30)),
])
def test_cbor_round_trip(value):
    assert cbor_loads(cbor_dumps(value)) == value


def test_cbor_reads_indefinite_lengths_halves_and_tags():
    assert cbor_loads(bytes.fromhex("9f018202039f0405ffff")) == [1, [2, 3], [4, 5]]
    assert cbor_loads(bytes.fromhex("bf61610161629f0203ffff")) == {"a": 1, "b": [2, 3]}
    assert cbor_loads(bytes.fromhex("7f657374726561646d696e67ff")) == "streaming"
    assert cbor_loads(bytes.fromhex("f93c00")) == 1.0
    assert cbor_loads(bytes.fromhex("c249010000000000000000")) == 2**64
    with pytest.raises(ValueError):
        cbor_loads(bytes.fromhex("8301"))
    with pytest.raises(ValueError):
        cbor_loads(bytes.fromhex("0102"))
