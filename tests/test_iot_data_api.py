"""The iot-data broker API against the real server: Publish reaching paho
subscribers (MQTT 5 properties, QoS, retain), retained messages, DeleteConnection,
and iot GetThingConnectivityData from the broker's presence events."""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
import uuid

import boto3
import paho.mqtt.client as mqtt
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from conftest import make_client
from localiot.services.data import connectivity
from localiot.testing import local_server

V3, V5 = mqtt.MQTTv311, mqtt.MQTTv5
T = 1_700_000_000
WAIT = 5


@pytest.fixture(scope="module")
def server():
    with local_server(mqtt_plain=True, background_period=0) as running:
        # The listeners should install the presence log when the broker starts;
        # installing it here too is harmless (idempotent).
        running.call(connectivity.install, running.app.runtime)
        yield running


@pytest.fixture
def fresh(server):
    server.reset()
    return server


@pytest.fixture
def data(fresh):
    return boto3.client("iot-data", endpoint_url=fresh.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=BotoConfig(retries={"max_attempts": 1}))


@pytest.fixture
def iot(fresh):
    return make_client(fresh)


class Device:
    """A paho client that records what it receives, with waits instead of sleeps."""

    def __init__(self, server, client_id=None, version=V3, clean=True, will=None):
        host, port = server.app.runtime.listeners["mqtt-plain"].rsplit(":", 1)
        kw = {"clean_session": clean} if version == V3 else {}
        self.client_id = client_id or f"d-{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=version,
                                  reconnect_on_failure=False, **kw)
        self.messages: queue.Queue = queue.Queue()
        self.connected, self.disconnected = threading.Event(), threading.Event()
        self.session_present = None
        self._acks: dict[int, threading.Event] = {}
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self.disconnected.set()
        self.client.on_subscribe = lambda c, u, mid, codes, props: self._acks.setdefault(mid, threading.Event()).set()
        if will:
            self.client.will_set(*will)
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert self.connected.wait(WAIT)

    def _on_connect(self, c, u, flags, rc, props):
        self.session_present = flags.session_present
        self.connected.set()

    def subscribe(self, *topics, qos=1):
        for topic in topics:
            _, mid = self.client.subscribe(topic, qos)
            assert self._acks.setdefault(mid, threading.Event()).wait(WAIT)

    def next(self, timeout=WAIT):
        return self.messages.get(timeout=timeout)

    def nothing(self, timeout=0.3):
        with pytest.raises(queue.Empty):
            self.messages.get(timeout=timeout)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def devices(fresh):
    made = []

    def make(**kw):
        device = Device(fresh, **kw)
        made.append(device)
        return device

    yield make
    for device in made:
        device.close()


def error_code(info) -> str:
    return info.value.response["Error"]["Code"]


def near(seconds: float, expected: float) -> bool:
    """The clock is set, then keeps running: a moment just after `expected`."""
    return expected <= seconds < expected + 5


def eventually(fn, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


# Publish -------------------------------------------------------------------------------
def test_publish_reaches_a_v5_subscriber_with_its_properties(data, devices):
    listener = devices(version=V5)
    listener.subscribe("fleet/+/cmd")
    data.publish(topic="fleet/d1/cmd", qos=1, payload=b'{"go":true}',
                 userProperties=json.dumps([{"deviceName": "alpha"}, {"deviceCnt": "45"}]),
                 payloadFormatIndicator="UTF8_DATA", contentType="application/json",
                 responseTopic="fleet/d1/reply", correlationData=base64.b64encode(b"req-7").decode(),
                 messageExpiry=120)
    message = listener.next()
    assert (message.topic, message.payload, message.qos, message.retain) == ("fleet/d1/cmd", b'{"go":true}', 1, 0)
    props = message.properties
    assert props.UserProperty == [("deviceName", "alpha"), ("deviceCnt", "45")]
    assert props.PayloadFormatIndicator == 1
    assert props.ContentType == "application/json"
    assert props.ResponseTopic == "fleet/d1/reply"
    assert props.CorrelationData == b"req-7"
    assert 0 < props.MessageExpiryInterval <= 120


def test_publish_defaults_to_qos0_and_reaches_v311_and_the_bus(data, devices, fresh):
    heard = []
    unsubscribe = fresh.app.bus.subscribe(lambda a, r, topic, payload: heard.append((a, r, topic, payload)))
    try:
        listener = devices()
        listener.subscribe("plain/#")
        data.publish(topic="plain/a", payload=b"hello")
        message = listener.next()
        assert (message.topic, message.payload, message.qos) == ("plain/a", b"hello", 0)
        assert ("123456789012", "us-east-1", "plain/a", b"hello") in heard  # rules engine, Defender
    finally:
        unsubscribe()


def test_publish_refuses_bad_topics_and_payloads(data):
    for topic in ("a/+/b", "a/#", "/".join("l" * 9), "x" * 257):
        with pytest.raises(ClientError) as info:
            data.publish(topic=topic, payload=b"x")
        assert error_code(info) == "InvalidRequestException", topic
    with pytest.raises(ClientError) as info:
        data.publish(topic="$aws/events/presence/connected/x", payload=b"{}")
    assert error_code(info) == "ForbiddenException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as info:
        data.publish(topic="big", payload=b"x" * (128 * 1024 + 1))
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    with pytest.raises(ClientError) as info:
        data.publish(topic="ok", payload=b"x", correlationData="not base64!")
    assert error_code(info) == "InvalidRequestException"
    with pytest.raises(ClientError) as info:
        data.publish(topic="ok", payload=b"x", responseTopic="replies/#")
    assert error_code(info) == "InvalidRequestException"
    with pytest.raises(ClientError) as info:
        data.publish(topic="ok", payload=b"x", userProperties=json.dumps({"not": "a list"}))
    assert error_code(info) == "InvalidRequestException"


def test_publish_follows_the_doors_reserved_topics(data):
    """The topics devices may publish to are the doors' (reply topics are nobody's);
    a family with no door yet is accepted and then served by nothing."""
    for topic in ("$aws/things/lamp/shadow/update/accepted", "$aws/things/lamp/defender/metrics/xml",
                  "$aws/commands/things/lamp/executions/e1/response/accepted/json"):
        with pytest.raises(ClientError) as info:
            data.publish(topic=topic, payload=b"{}")
        assert error_code(info) == "ForbiddenException", topic
    data.publish(topic="$aws/things/lamp/defender/metrics/json", payload=b"{}")
    with pytest.raises(ClientError) as info:
        data.publish(topic="$aws/things/lamp/shadow/#", payload=b"{}")
    assert error_code(info) == "InvalidRequestException"  # the name is checked first


def test_publish_to_a_shadow_topic_goes_through_the_shadow_door(data, devices):
    listener = devices()
    listener.subscribe("$aws/things/lamp/shadow/update/accepted", "$aws/things/lamp/shadow/update/delta")
    data.publish(topic="$aws/things/lamp/shadow/update", qos=1,
                 payload=json.dumps({"state": {"desired": {"on": True}}}).encode())
    accepted, delta = listener.next(), listener.next()
    assert accepted.topic.endswith("/update/accepted") and json.loads(accepted.payload)["version"] == 1
    assert delta.topic.endswith("/update/delta") and json.loads(delta.payload)["state"] == {"on": True}
    shadow = json.loads(data.get_thing_shadow(thingName="lamp")["payload"].read())
    assert shadow["state"]["desired"] == {"on": True}


# retained messages ---------------------------------------------------------------------
def test_retained_messages_get_list_and_delete(data, devices, fresh):
    fresh.clock.set(T)
    data.publish(topic="ret/a", payload=b"A", qos=1, retain=True,
                 userProperties=json.dumps([{"k": "v"}, {"k": "w"}]))
    data.publish(topic="ret/b", payload=b"BB", retain=True)
    data.publish(topic="ret/c", payload=b"CCC", qos=1, retain=True)
    data.publish(topic="ret/none", payload=b"not kept")  # retain off

    got = data.get_retained_message(topic="ret/a")
    assert (got["topic"], got["payload"], got["qos"]) == ("ret/a", b"A", 1)
    assert near(got["lastModifiedTime"] / 1000, T)
    assert json.loads(got["userProperties"]) == [{"k": "v"}, {"k": "w"}]
    assert "userProperties" not in data.get_retained_message(topic="ret/b")

    first = data.list_retained_messages(maxResults=2)
    assert [t["topic"] for t in first["retainedTopics"]] == ["ret/a", "ret/b"]
    summary = first["retainedTopics"][1]
    assert {k: summary[k] for k in ("topic", "payloadSize", "qos")} == {"topic": "ret/b", "payloadSize": 2, "qos": 0}
    assert near(summary["lastModifiedTime"] / 1000, T)
    second = data.list_retained_messages(maxResults=2, nextToken=first["nextToken"])
    assert [t["topic"] for t in second["retainedTopics"]] == ["ret/c"] and "nextToken" not in second

    late = devices()
    late.subscribe("ret/#")
    received = {m.topic: (m.payload, m.retain) for m in (late.next(), late.next(), late.next())}
    assert received == {"ret/a": (b"A", 1), "ret/b": (b"BB", 1), "ret/c": (b"CCC", 1)}

    data.publish(topic="ret/b", payload=b"", retain=True)  # an empty retained payload deletes
    with pytest.raises(ClientError) as info:
        data.get_retained_message(topic="ret/b")
    assert error_code(info) == "ResourceNotFoundException"
    assert [t["topic"] for t in data.list_retained_messages()["retainedTopics"]] == ["ret/a", "ret/c"]
    with pytest.raises(ClientError) as info:
        data.get_retained_message(topic="ret/+")
    assert error_code(info) == "InvalidRequestException"
    with pytest.raises(ClientError) as info:
        data.list_retained_messages(nextToken="garbage")
    assert error_code(info) == "InvalidRequestException"


def test_an_expired_retained_message_is_gone(data, fresh):
    fresh.clock.set(T)
    for name in ("a", "b", "c", "d"):
        expiry = {"messageExpiry": 10} if name in "bc" else {}
        data.publish(topic=f"exp/{name}", payload=b"x", retain=True, **expiry)
    fresh.clock.set(T + 11)
    with pytest.raises(ClientError):
        data.get_retained_message(topic="exp/b")
    page = data.list_retained_messages(maxResults=1)
    seen = [t["topic"] for t in page["retainedTopics"]]
    while "nextToken" in page:
        page = data.list_retained_messages(maxResults=1, nextToken=page["nextToken"])
        seen += [t["topic"] for t in page["retainedTopics"]]
    assert seen == ["exp/a", "exp/d"]


# connections ---------------------------------------------------------------------------
def test_delete_connection_sends_the_will_and_keeps_the_session(data, devices):
    watcher = devices()
    watcher.subscribe("wills/#")
    device = devices(client_id="dc-keep", clean=False, will=("wills/dc-keep", b"gone", 1))
    device.subscribe("keep/me")
    data.delete_connection(clientId="dc-keep")
    assert device.disconnected.wait(WAIT)
    will = watcher.next()
    assert (will.topic, will.payload) == ("wills/dc-keep", b"gone")
    with pytest.raises(ClientError) as info:
        data.delete_connection(clientId="dc-keep")
    assert error_code(info) == "ResourceNotFoundException"
    again = devices(client_id="dc-keep", clean=False)
    assert again.session_present is True


def test_delete_connection_can_clean_the_session_and_prevent_the_will(data, devices):
    watcher = devices()
    watcher.subscribe("wills/#")
    device = devices(client_id="dc-clean", clean=False, will=("wills/dc-clean", b"gone", 1))
    device.subscribe("keep/me")
    data.delete_connection(clientId="dc-clean", cleanSession=True, preventWillMessage=True)
    assert device.disconnected.wait(WAIT)
    watcher.nothing()
    again = devices(client_id="dc-clean", clean=False)
    assert again.session_present is False
    with pytest.raises(ClientError) as info:
        data.delete_connection(clientId="$bad")
    assert error_code(info) == "InvalidRequestException"


# GetThingConnectivityData ---------------------------------------------------------------
def test_thing_connectivity_follows_the_things_client(iot, devices, data, fresh):
    iot.create_thing(thingName="sensor-1")
    assert iot.get_thing_connectivity_data(thingName="sensor-1")["connected"] is False
    never = iot.get_thing_connectivity_data(thingName="sensor-1")
    assert "timestamp" not in never and "disconnectReason" not in never

    fresh.clock.set(T)
    device = devices(client_id="sensor-1")
    now = eventually(lambda: iot.get_thing_connectivity_data(thingName="sensor-1").get("timestamp"))
    got = iot.get_thing_connectivity_data(thingName="sensor-1")
    assert got["connected"] is True and near(now.timestamp(), T) and "disconnectReason" not in got

    fresh.clock.set(T + 60)
    device.close()
    got = eventually(lambda: (lambda g: g if not g["connected"] else None)(
        iot.get_thing_connectivity_data(thingName="sensor-1")))
    assert got["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT" and near(got["timestamp"].timestamp(), T + 60)

    devices(client_id="sensor-1")
    assert eventually(lambda: iot.get_thing_connectivity_data(thingName="sensor-1")["connected"])
    fresh.clock.set(T + 120)
    data.delete_connection(clientId="sensor-1")
    got = eventually(lambda: (lambda g: g if not g["connected"] else None)(
        iot.get_thing_connectivity_data(thingName="sensor-1")))
    assert got["disconnectReason"] == "SERVER_INITIATED_DISCONNECT" and near(got["timestamp"].timestamp(), T + 120)


def test_thing_connectivity_needs_a_registered_thing(iot, devices):
    devices(client_id="unregistered")
    with pytest.raises(ClientError) as info:
        iot.get_thing_connectivity_data(thingName="unregistered")
    assert error_code(info) == "ResourceNotFoundException"
    iot.create_thing(thingName="late")
    assert iot.get_thing_connectivity_data(thingName="late")["connected"] is False
