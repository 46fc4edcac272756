"""Jobs and commands through the broker's MQTT doors: a paho device hears
notify-next, starts the job with start-next, reports SUCCEEDED on its update
topic, and the control plane sees it; a command execution is answered on the
commands response topic."""

from __future__ import annotations

import importlib
import json
import queue
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from conftest import make_client
from localiot.broker import Identity
from localiot.testing import local_server

ACCOUNT, REGION = "123456789012", "us-east-1"
WAIT = 5
DOC = {"operation": "reboot", "delay": 5}


def through_door(server, identity, topic: str, payload: bytes) -> bool:
    """A publish admitted and served the way the broker does it for an MQTT client (policy aside)."""
    broker = server.app.runtime.broker
    return broker.serve_reserved(identity, broker.admit(identity, topic, trusted=True), payload, {})


@pytest.fixture(scope="module")
def server():
    with local_server(mqtt_plain=True, background_period=0) as running:
        yield running


@pytest.fixture
def fresh(server):
    server.reset()
    return server


@pytest.fixture
def iot(fresh):
    return make_client(fresh)


class Device:
    def __init__(self, server, client_id):
        host, port = server.app.runtime.listeners["mqtt-plain"].rsplit(":", 1)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        self.messages: queue.Queue = queue.Queue()
        self.connected = threading.Event()
        self.acks: dict[int, threading.Event] = {}
        self.results: dict[int, object] = {}
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_connect = lambda *args: self.connected.set()
        self.client.on_subscribe = lambda c, u, mid, codes, props: self._ack(mid, [code.value for code in codes])
        self.client.on_publish = lambda c, u, mid, rc, props: self._ack(mid, rc.value)
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert self.connected.wait(WAIT)

    def _ack(self, mid, result):
        self.results[mid] = result
        self.acks.setdefault(mid, threading.Event()).set()

    def subscribe(self, topic):
        _, mid = self.client.subscribe(topic, 1)
        assert self.acks.setdefault(mid, threading.Event()).wait(WAIT)
        assert self.results[mid] == [1]

    def publish(self, topic, body) -> int:
        info = self.client.publish(topic, json.dumps(body), 1)
        assert self.acks.setdefault(info.mid, threading.Event()).wait(WAIT)
        return self.results[info.mid]

    def wait_for(self, topic):
        """The next message on `topic`, skipping others (echoes of requests, notify ...)."""
        while True:
            message = self.messages.get(timeout=WAIT)
            if message.topic == topic:
                return json.loads(message.payload)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def device(fresh, iot):
    iot.create_thing(thingName="dev")
    made = Device(fresh, "dev")
    made.subscribe("$aws/things/dev/jobs/#")
    yield made
    made.close()


def thing_arn(name):
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"


def test_a_device_runs_a_job_over_mqtt(iot, device):
    jobs = "$aws/things/dev/jobs"
    iot.create_job(jobId="j1", targets=[thing_arn("dev")], document=json.dumps(DOC))
    notified = device.wait_for(f"{jobs}/notify-next")
    assert notified["execution"]["jobId"] == "j1" and notified["execution"]["status"] == "QUEUED"
    assert notified["execution"]["jobDocument"] == DOC

    device.publish(f"{jobs}/get", {"clientToken": "list"})
    pending = device.wait_for(f"{jobs}/get/accepted")
    assert pending["clientToken"] == "list" and [j["jobId"] for j in pending["queuedJobs"]] == ["j1"]

    assert device.publish(f"{jobs}/start-next", {"clientToken": "s1", "statusDetails": {"step": "download"}}) == 0
    started = device.wait_for(f"{jobs}/start-next/accepted")
    execution = started["execution"]
    assert started["clientToken"] == "s1" and isinstance(started["timestamp"], int)
    assert (execution["jobId"], execution["status"], execution["versionNumber"]) == ("j1", "IN_PROGRESS", 2)
    assert execution["jobDocument"] == DOC and execution["statusDetails"] == {"step": "download"}
    seen = iot.describe_job_execution(jobId="j1", thingName="dev")["execution"]
    assert seen["status"] == "IN_PROGRESS" and seen["statusDetails"]["detailsMap"] == {"step": "download"}

    device.publish(f"{jobs}/j1/update", {"status": "SUCCEEDED", "expectedVersion": 2, "clientToken": "u1",
                                         "statusDetails": {"step": "done"}, "includeJobExecutionState": True})
    updated = device.wait_for(f"{jobs}/j1/update/accepted")
    assert updated["clientToken"] == "u1"
    assert updated["executionState"] == {"status": "SUCCEEDED", "statusDetails": {"step": "done"},
                                         "versionNumber": 3}
    assert "execution" not in device.wait_for(f"{jobs}/notify-next")  # nothing left to do

    assert iot.describe_job_execution(jobId="j1", thingName="dev")["execution"]["status"] == "SUCCEEDED"
    job = iot.describe_job(jobId="j1")["job"]
    assert job["status"] == "COMPLETED" and job["jobProcessDetails"]["numberOfSucceededThings"] == 1


def test_rejections_come_back_on_the_rejected_topic(iot, device):
    jobs = "$aws/things/dev/jobs"
    iot.create_job(jobId="j2", targets=[thing_arn("dev")], document=json.dumps(DOC))
    device.publish(f"{jobs}/start-next", {})
    device.wait_for(f"{jobs}/start-next/accepted")
    device.publish(f"{jobs}/j2/update", {"status": "SUCCEEDED", "expectedVersion": 9, "clientToken": "v"})
    rejected = device.wait_for(f"{jobs}/j2/update/rejected")
    assert rejected["code"] == "VersionMismatch" and rejected["clientToken"] == "v"
    assert rejected["executionState"]["status"] == "IN_PROGRESS"
    device.client.publish(f"{jobs}/j2/get", b"{not json", 1)
    assert device.wait_for(f"{jobs}/j2/get/rejected")["code"] == "InvalidJson"
    device.publish(f"{jobs}/nope/get", {"clientToken": "n"})
    assert device.wait_for(f"{jobs}/nope/get/rejected")["code"] == "ResourceNotFound"
    assert iot.describe_job_execution(jobId="j2", thingName="dev")["execution"]["status"] == "IN_PROGRESS"


def test_devices_cannot_publish_notifications(device):
    assert device.publish("$aws/things/dev/jobs/notify-next", {}) == 0x87  # Not authorized
    assert device.publish("$aws/things/dev/jobs/get/accepted", {}) == 0x87


# commands ---------------------------------------------------------------------------------
@pytest.fixture
def lamp_command(fresh, iot):
    iot.create_thing(thingName="lamp")
    iot.create_command(commandId="light", payload={"content": b'{"light":"on"}', "contentType": "application/json"})
    jobs_data = make_client(fresh, "iot-jobs-data")
    execution_id = jobs_data.start_command_execution(
        targetArn=thing_arn("lamp"), commandArn=f"arn:aws:iot:{REGION}:{ACCOUNT}:command/light")["executionId"]
    return execution_id


def test_a_command_response_is_served_by_the_commands_door(fresh, iot, lamp_command):
    """Through the door the broker calls for `$aws/commands/...` publishes."""
    device = Device(fresh, "lamp")
    try:
        device.subscribe("$aws/commands/things/lamp/executions/+/response/#")
        base = f"$aws/commands/things/lamp/executions/{lamp_command}"
        identity = Identity(ACCOUNT, REGION, principal="lamp")
        assert fresh.call(through_door, fresh, identity, f"{base}/response/json", b'{"status":"SUCCEEDED"}')
        assert device.wait_for(f"{base}/response/accepted/json") == {"executionId": lamp_command}
        assert not fresh.call(through_door, fresh, identity, f"{base}/response/accepted/json", b"{}")
        got = iot.get_command_execution(executionId=lamp_command, targetArn=thing_arn("lamp"))
        assert got["status"] == "SUCCEEDED"
    finally:
        device.close()


def test_a_device_answers_a_command_over_mqtt(fresh, iot, lamp_command):
    device = Device(fresh, "lamp")
    try:
        device.subscribe("$aws/commands/things/lamp/executions/+/response/#")
        base = f"$aws/commands/things/lamp/executions/{lamp_command}"
        assert device.publish(f"{base}/response/json", {"status": "SUCCEEDED"}) == 0
        assert device.wait_for(f"{base}/response/accepted/json") == {"executionId": lamp_command}
        got = iot.get_command_execution(executionId=lamp_command, targetArn=thing_arn("lamp"))
        assert got["status"] == "SUCCEEDED"
    finally:
        device.close()


def test_the_device_sdk_jobs_client(fresh, iot):
    awscrt_mqtt = importlib.import_module("awscrt.mqtt")
    iotjobs = importlib.import_module("awsiot.iotjobs")
    iot.create_thing(thingName="sdk-dev")
    host, port = fresh.app.runtime.listeners["mqtt-plain"].rsplit(":", 1)
    connection = awscrt_mqtt.Connection(client=awscrt_mqtt.Client(None, None), host_name=host, port=int(port),
                                        client_id=f"sdk-{uuid.uuid4().hex[:8]}", clean_session=True,
                                        keep_alive_secs=30)
    connection.connect().result(WAIT)
    try:
        client = iotjobs.IotJobsClient(connection)
        qos = awscrt_mqtt.QoS.AT_LEAST_ONCE
        got = {name: queue.Queue() for name in ("next", "started", "updated")}
        for future in (
            client.subscribe_to_next_job_execution_changed_events(
                iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name="sdk-dev"), qos, got["next"].put)[0],
            client.subscribe_to_start_next_pending_job_execution_accepted(
                iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name="sdk-dev"), qos,
                got["started"].put)[0],
            client.subscribe_to_update_job_execution_accepted(
                iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name="sdk-dev", job_id="+"), qos,
                got["updated"].put)[0],
        ):
            future.result(WAIT)
        iot.create_job(jobId="sdk-job", targets=[thing_arn("sdk-dev")], document=json.dumps(DOC))
        assert got["next"].get(timeout=WAIT).execution.job_id == "sdk-job"
        client.publish_start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(thing_name="sdk-dev", client_token="c"), qos).result(WAIT)
        started = got["started"].get(timeout=WAIT)
        assert started.execution.status == "IN_PROGRESS" and started.execution.job_document == DOC
        client.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
            thing_name="sdk-dev", job_id="sdk-job", status="SUCCEEDED", expected_version=2), qos).result(WAIT)
        got["updated"].get(timeout=WAIT)
        assert got["next"].get(timeout=WAIT).execution is None
        assert iot.describe_job(jobId="sdk-job")["job"]["status"] == "COMPLETED"
    finally:
        connection.disconnect().result(WAIT)
