"""Command executions after delivery: the device's response topic, timeouts,
listing and deleting executions, the CBOR codec."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from localiot.broker import Identity
from localiot.broker.reserved import ReservedPublish
from localiot.services.commands import executions
from localiot.services.commands.executions import cbor_dumps, cbor_loads
from localiot.testing import ACCOUNT, REGION, advance, error_code, make_client

# fixtures: bus (the server's bus, recorded), jobs (iot-jobs-data), thing ("lamp")
from commands_helpers import bus, jobs, thing  # noqa: F401
from commands_helpers import HOUR, as_device, command_arn, dynamic, respond, start, static, thing_arn, tick


# the device's response topic --------------------------------------------------------
def test_device_reports_progress_then_success(iot, jobs, thing, bus, localiot_server):
    static(iot)
    execution_id = start(jobs, executionTimeoutSeconds=300)
    bus.take()
    base = f"$aws/commands/things/lamp/executions/{execution_id}"

    localiot_server.clock.advance(2)
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

    localiot_server.clock.advance(2)
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
    if publish.pending is not None:  # PostgreSQL: the unit of work runs on a worker (localiot.cluster.workers)
        asyncio.run_coroutine_threadsafe(asyncio.wait([publish.pending]), localiot_server.loop).result(10)
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
    now = localiot_server.clock.advance(4)
    assert tick(localiot_server, now) == 0
    now = localiot_server.clock.advance(2)
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
    tick(localiot_server, localiot_server.clock.advance(6))
    # The device may not go back to IN_PROGRESS, but may still finish.
    _, reply = respond(localiot_server, "lamp", execution_id, {"status": "IN_PROGRESS"})
    assert reply["error"] == "InvalidStateTransition"
    with pytest.raises(ClientError) as excinfo:  # not terminal: can't be deleted
        iot.delete_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert error_code(excinfo) == "ConflictException"
    topic, _ = respond(localiot_server, "lamp", execution_id, {"status": "SUCCEEDED"})
    assert topic.endswith("/accepted/json")
    got = iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert got["status"] == "SUCCEEDED" and "statusReason" not in got


def test_a_timeout_reported_by_the_device_is_terminal(iot, jobs, thing, localiot_server):
    static(iot)
    execution_id = start(jobs, executionTimeoutSeconds=5)
    tick(localiot_server, localiot_server.clock.advance(6))
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
    advance(localiot_server, 6)
    # the tick ran inside the clock call: the event is out before anyone reads the execution
    assert bus.topics() == ["$aws/events/commandExecution/light/TIMED_OUT"]
    assert tick(localiot_server) == 0
    assert iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))["status"] == "TIMED_OUT"


def test_reads_apply_an_overdue_timeout_without_the_timer(iot, jobs, thing, bus, localiot_server):
    static(iot)
    execution_id = start(jobs)
    localiot_server.clock.advance(11)
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
    localiot_server.clock.advance(184 * 24 * HOUR)
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
    localiot_server.clock.advance(120)
    second = start(jobs, "setTemp", executionTimeoutSeconds=HOUR)
    localiot_server.clock.advance(120)
    third = start(jobs, target=thing_arn("fan"), executionTimeoutSeconds=HOUR)
    localiot_server.clock.advance(120)
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
    assert error_code(excinfo) == code


def test_delete_command_execution(iot, jobs, thing, localiot_server):
    static(iot)
    execution_id = start(jobs, clientToken="once")
    with pytest.raises(ClientError) as excinfo:
        iot.delete_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert error_code(excinfo) == "ConflictException"
    assert excinfo.value.response["resourceId"] == execution_id
    respond(localiot_server, "lamp", execution_id, {"status": "REJECTED"})
    iot.delete_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    with pytest.raises(ClientError) as excinfo:
        iot.get_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    assert error_code(excinfo) == "ResourceNotFoundException"
    # Deleting again, or a missing one, is a no-op.
    iot.delete_command_execution(executionId=execution_id, targetArn=thing_arn("lamp"))
    # The client token is free again once its execution is gone.
    assert start(jobs, clientToken="once") != execution_id


def test_executions_outlive_their_command(iot, jobs, thing, localiot_server):
    static(iot)
    execution_id = start(jobs, executionTimeoutSeconds=HOUR)
    iot.delete_command(commandId="light")
    respond(localiot_server, "lamp", execution_id, {"status": "SUCCEEDED"})
    localiot_server.clock.advance(12 * HOUR + 1)
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
