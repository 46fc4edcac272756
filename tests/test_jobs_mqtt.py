"""The jobs MQTT API as the broker's door calls it: localiot.doors.jobs parses
the reserved request topics, data_plane.device_request serves them, and the
door builds the accepted / rejected documents. Requests run on the server thread in a transaction, as the door's
will; the jobs are set up through boto3."""

import json

import pytest

from localiot.services.context import RequestContext
from localiot.doors import jobs as jobs_door

ACCOUNT = "123456789012"
DOC = {"operation": "update", "version": 2}


def thing_arn(name):
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/{name}"


def mqtt(server, topic, payload=None, raw=None):
    """Publish one request; returns (reply topic, reply) or None."""
    body = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else b"")

    def run():
        app = server.app
        with app.store.transaction(ACCOUNT, "us-east-1") as tx:
            ctx = RequestContext(ACCOUNT, "us-east-1", tx, app.runtime, "iot-jobs-data", "mqtt")
            route = jobs_door.parse_topic(topic)
            reply = jobs_door.answer(ctx, topic, route, body) if route is not None else None
        for event_topic, event_payload in ctx.events:
            app.bus.publish(ACCOUNT, "us-east-1", event_topic, event_payload)
        return reply

    return server.call(run)


@pytest.fixture
def dev(iot):
    iot.create_thing(thingName="dev")
    iot.create_job(jobId="j1", targets=[thing_arn("dev")], document=json.dumps(DOC))
    return "$aws/things/dev/jobs/"


def test_get_pending(localiot_server, dev):
    topic, reply = mqtt(localiot_server, dev + "get", {"clientToken": "tok-1"})
    assert topic == dev + "get/accepted"
    assert reply["clientToken"] == "tok-1" and isinstance(reply["timestamp"], int)
    assert reply["inProgressJobs"] == []
    assert [j["jobId"] for j in reply["queuedJobs"]] == ["j1"]
    topic, reply = mqtt(localiot_server, dev + "get", raw=b"")  # an empty payload is an empty request
    assert topic.endswith("/accepted") and "clientToken" not in reply


def test_start_next_describe_and_update(localiot_server, dev, iot):
    topic, reply = mqtt(localiot_server, dev + "start-next",
                        {"clientToken": "s", "statusDetails": {"step": "1"}, "stepTimeoutInMinutes": 5})
    assert topic == dev + "start-next/accepted"
    execution = reply["execution"]
    assert execution["jobId"] == "j1" and execution["status"] == "IN_PROGRESS"
    assert execution["jobDocument"] == DOC  # an object over MQTT
    assert execution["statusDetails"] == {"step": "1"} and execution["versionNumber"] == 2

    topic, reply = mqtt(localiot_server, dev + "j1/get", {"clientToken": "d", "includeJobDocument": False})
    assert topic == dev + "j1/get/accepted" and "jobDocument" not in reply["execution"]
    topic, reply = mqtt(localiot_server, dev + "$next/get", {})
    assert topic == dev + "$next/get/accepted" and reply["execution"]["jobDocument"] == DOC

    topic, reply = mqtt(localiot_server, dev + "j1/update", {
        "status": "IN_PROGRESS", "statusDetails": {"step": "2"}, "expectedVersion": "2",
        "includeJobExecutionState": True, "includeJobDocument": True, "clientToken": "u"})
    assert topic == dev + "j1/update/accepted"
    assert reply["executionState"] == {"status": "IN_PROGRESS", "statusDetails": {"step": "2"}, "versionNumber": 3}
    assert reply["jobDocument"] == DOC and reply["clientToken"] == "u"

    topic, reply = mqtt(localiot_server, dev + "j1/update", {"status": "SUCCEEDED", "expectedVersion": 3})
    assert topic.endswith("/accepted") and set(reply) == {"timestamp"}
    assert iot.describe_job(jobId="j1")["job"]["status"] == "COMPLETED"
    topic, reply = mqtt(localiot_server, dev + "start-next", {"clientToken": "none"})
    assert topic.endswith("/accepted") and "execution" not in reply and reply["clientToken"] == "none"
    topic, reply = mqtt(localiot_server, dev + "$next/get", {})
    assert topic.endswith("/accepted") and "execution" not in reply


def test_rejections(localiot_server, dev, iot):
    topic, reply = mqtt(localiot_server, dev + "j1/update", {"status": "IN_PROGRESS", "expectedVersion": 5,
                                                             "clientToken": "v"})
    assert topic == dev + "j1/update/rejected"
    assert reply["code"] == "VersionMismatch" and reply["clientToken"] == "v"
    assert reply["executionState"] == {"status": "QUEUED", "statusDetails": {}, "versionNumber": 1}
    topic, reply = mqtt(localiot_server, dev + "missing/update", {"status": "IN_PROGRESS"})
    assert topic == dev + "missing/update/rejected" and reply["code"] == "ResourceNotFound"
    topic, reply = mqtt(localiot_server, dev + "j1/update", {"status": "BOGUS"})
    assert reply["code"] == "InvalidRequest"
    topic, reply = mqtt(localiot_server, dev + "j1/update", {"status": "IN_PROGRESS",
                                                             "statusDetails": {f"k{i}": "v" for i in range(11)}})
    assert reply["code"] == "InvalidRequest"
    topic, reply = mqtt(localiot_server, dev + "j1/update", raw=b"{not json")
    assert topic.endswith("/rejected") and reply["code"] == "InvalidJson"
    topic, reply = mqtt(localiot_server, dev + "j1/update", raw=b"[1, 2]")
    assert reply["code"] == "InvalidJson"
    topic, reply = mqtt(localiot_server, dev + "j1/frobnicate", {})
    assert topic == dev + "j1/frobnicate/rejected" and reply["code"] == "InvalidTopic"
    topic, reply = mqtt(localiot_server, dev + "$next/update", {"status": "SUCCEEDED"})
    assert reply["code"] == "InvalidTopic"

    mqtt(localiot_server, dev + "j1/update", {"status": "SUCCEEDED"})
    topic, reply = mqtt(localiot_server, dev + "j1/update", {"status": "IN_PROGRESS", "clientToken": "t"})
    assert reply["code"] == "InvalidStateTransition" and reply["executionState"]["status"] == "SUCCEEDED"
    topic, reply = mqtt(localiot_server, dev + "j1/get", {})
    assert topic.endswith("/rejected") and reply["code"] == "TerminalStateReached"
    assert "executionState" not in reply


def test_not_requests(localiot_server, dev):
    for topic in (dev + "notify", dev + "notify-next", dev + "get/accepted", dev + "j1/update/rejected",
                  dev + "notify-next-namespace-aws-gg-deployment", "$aws/things/dev/shadow/update", "other/topic"):
        assert mqtt(localiot_server, topic, {}) is None


def test_namespaced_job(localiot_server, iot):
    iot.create_thing(thingName="core")
    seen = []
    stop = localiot_server.app.bus.subscribe(lambda a, r, topic, payload: seen.append(topic))
    try:
        iot.create_job(jobId="deploy", targets=[thing_arn("core")], document=json.dumps(DOC),
                       namespaceId="aws-gg-deployment")
    finally:
        stop()
    base = "$aws/things/core/jobs/"
    assert seen == [base + "notify-namespace-aws-gg-deployment", base + "notify-next-namespace-aws-gg-deployment"]
    # the default namespace does not see it
    topic, reply = mqtt(localiot_server, base + "get", {})
    assert reply["queuedJobs"] == []
    topic, reply = mqtt(localiot_server, base + "$next/namespace-aws-gg-deployment/get", {})
    assert topic == base + "$next/namespace-aws-gg-deployment/get/accepted"
    assert reply["execution"]["jobId"] == "deploy"
    topic, reply = mqtt(localiot_server, base + "namespace-aws-gg-deployment/get", {})
    assert [j["jobId"] for j in reply["queuedJobs"]] == ["deploy"]
    topic, reply = mqtt(localiot_server, base + "deploy/namespace-aws-gg-deployment/update",
                        {"status": "SUCCEEDED", "includeJobExecutionState": True})
    assert topic == base + "deploy/namespace-aws-gg-deployment/update/accepted"
    assert reply["executionState"]["status"] == "SUCCEEDED"
    assert [j["jobId"] for j in iot.list_jobs(namespaceId="aws-gg-deployment")["jobs"]] == ["deploy"]


def test_parse_topic():
    assert jobs_door.parse_topic("$aws/things/t/jobs/get") == {
        "thing": "t", "namespace": None, "jobId": None, "operation": "get-pending"}
    assert jobs_door.parse_topic("$aws/things/t/jobs/j/namespace-ns/update") == {
        "thing": "t", "namespace": "ns", "jobId": "j", "operation": "update"}
    assert jobs_door.parse_topic("$aws/things/t/jobs/namespace-ns/start-next")["operation"] == "start-next"
    assert jobs_door.parse_topic("$aws/things/t/jobs/a/b/c")["operation"] == "invalid"
    assert jobs_door.parse_topic("$aws/things/t/jobs/j/get/accepted") is None
