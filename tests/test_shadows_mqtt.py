"""Device shadows through the MQTT door: the shared case table played by a paho
device on the reserved shadow topics (the same expectations the service and
HTTP doors meet), then what only MQTT has: /get/accepted, rejections on the
reply topics, fan-out to other subscribers, and the AWS IoT Device SDK v2."""

from __future__ import annotations

import importlib
import json
import queue
import uuid

import pytest
from botocore.config import Config as BotoConfig

from localiot.testing import NOT_AUTHORIZED, V5, WAIT, make_client
from shadow_cases import CASES, THING, Outcome, T, run_case

# Over MQTT a payload past 128 KB never reaches the shadow service: the broker
# closes the connection (test_a_request_over_128_kb_closes_the_connection).
MQTT_ONLY_ELSEWHERE = {"a request over 128 KB is too large"}
TERMINAL = {"update": ("update/documents", "update/rejected"), "get": ("get/accepted", "get/rejected"),
            "delete": ("delete/accepted", "delete/rejected")}


def prefix(thing: str, shadow: str | None) -> str:
    return f"$aws/things/{thing}/shadow" + (f"/name/{shadow}" if shadow else "")


class MqttDoor:
    """The case table's Door over MQTT: one device subscribed to all of the thing's
    shadow topics publishes each request and reads the replies up to the last one
    the service sends for it (`/update/documents`, `/get/accepted`, `/rejected` ...).
    Its own requests come back too (the broker delivers an accepted publish to
    subscribers of its topic); they are skipped."""

    def __init__(self, server, device, thing=THING):
        self.server, self.device = server, device
        device.subscribe(f"$aws/things/{thing}/shadow/#")

    def set_time(self, epoch):
        self.server.clock.set(epoch)

    def request(self, thing, shadow, op, payload=b"") -> Outcome:
        base = prefix(thing, shadow) + "/"
        self.device.publish(base + op, payload)
        out = Outcome()
        while True:
            message = self.device.expect()
            if message.topic.rsplit("/", 1)[1] in TERMINAL:  # an echo of a request
                continue
            topic = message.topic.removeprefix(base)
            out.published[topic] = json.loads(message.payload)
            if topic in TERMINAL[op]:
                break
        rejected = out.published.get(f"{op}/rejected")
        if rejected is not None:
            out.error = {k: rejected[k] for k in ("code", "message", "clientToken") if k in rejected}
        else:
            out.reply = out.published[f"{op}/accepted"]
        return out

    def update(self, thing, shadow, payload):
        return self.request(thing, shadow, "update", payload)

    def get(self, thing, shadow):
        return self.request(thing, shadow, "get")

    def delete(self, thing, shadow):
        return self.request(thing, shadow, "delete")


@pytest.mark.parametrize("case", [c for c in CASES if c["name"] not in MQTT_ONLY_ELSEWHERE],
                         ids=[c["name"] for c in CASES if c["name"] not in MQTT_ONLY_ELSEWHERE])
def test_case(case, localiot_server, devices):
    door = MqttDoor(localiot_server, devices.plain())
    run_case(case, door)


def test_get_answers_on_get_accepted_for_every_subscriber(localiot_server, devices):
    owner, watcher = devices.plain(), devices.plain()
    watcher.subscribe("$aws/things/lamp/shadow/get/accepted")
    door = MqttDoor(localiot_server, owner, "lamp")
    localiot_server.clock.set(T)
    door.update("lamp", None, b'{"state":{"desired":{"on":true}}}')
    owner.publish("$aws/things/lamp/shadow/get", b'{"clientToken":"tok"}')
    seen = json.loads(watcher.expect().payload)
    assert seen["state"] == {"desired": {"on": True}, "delta": {"on": True}} and seen["clientToken"] == "tok"
    assert seen["version"] == 1 and T <= seen["timestamp"] < T + 5


def test_rejections_carry_the_client_token(localiot_server, devices):
    door = MqttDoor(localiot_server, devices.plain())
    out = door.request(THING, "cfg", "get", b'{"clientToken":"abc"}')
    assert out.error == {"code": 404, "message": "No shadow exists with name: 'cfg'", "clientToken": "abc"}
    out = door.request(THING, None, "delete", b"not json")
    assert out.error == {"code": 400, "message": "Payload contains invalid json"}
    out = door.request(THING, None, "get", b'{"clientToken": 7}')
    assert out.error == {"code": 400, "message": "Invalid clientToken"}


def test_delta_reaches_a_device_that_listens_for_it_only(localiot_server, devices):
    app_side, device = devices.plain(), devices.plain(version=V5)
    device.subscribe("$aws/things/heater/shadow/update/delta")
    MqttDoor(localiot_server, app_side, "heater").update("heater", None, b'{"state":{"desired":{"temp":21}}}')
    delta = device.expect()
    assert delta.topic == "$aws/things/heater/shadow/update/delta"
    assert json.loads(delta.payload)["state"] == {"temp": 21}


def test_both_doors_share_one_shadow(localiot_server, devices):
    """An HTTP update reaches MQTT subscribers; an MQTT update is what HTTP reads."""
    data = make_client(localiot_server, "iot-data", config=BotoConfig(retries={"max_attempts": 1}))
    device = devices.plain()
    door = MqttDoor(localiot_server, device, "pump")
    data.update_thing_shadow(thingName="pump", payload=b'{"state":{"desired":{"rpm":900}}}')
    delta = device.expect()
    assert delta.topic.endswith("/update/accepted")  # then delta and documents follow
    assert json.loads(device.expect().payload)["state"] == {"rpm": 900}
    device.expect()
    out = door.update("pump", None, b'{"state":{"reported":{"rpm":900}}}')
    assert out.reply["version"] == 2 and "update/delta" not in out.published
    shadow = json.loads(data.get_thing_shadow(thingName="pump")["payload"].read())
    assert shadow["state"] == {"desired": {"rpm": 900}, "reported": {"rpm": 900}} and shadow["version"] == 2


def test_an_offline_persistent_session_gets_the_updates_it_subscribed_to(localiot_server, devices):
    """A stored session with nobody connected is a receiver: the events are built and queued for it."""
    thing, client_id = f"kiln-{uuid.uuid4().hex[:6]}", f"watcher-{uuid.uuid4().hex[:6]}"
    watcher = devices.plain(client_id, clean=False)
    watcher.subscribe(f"$aws/things/{thing}/shadow/update/documents", qos=1)
    watcher.close()
    data = make_client(localiot_server, "iot-data", config=BotoConfig(retries={"max_attempts": 1}))
    data.update_thing_shadow(thingName=thing, payload=b'{"state":{"reported":{"temp":900}}}')
    back = devices.plain(client_id, clean=False)
    message = back.expect(f"$aws/things/{thing}/shadow/update/documents")
    assert json.loads(message.payload)["current"]["state"] == {"reported": {"temp": 900}}


def test_a_rule_on_shadow_topics_hears_updates_no_device_subscribed_to(localiot_server, devices):
    """No MQTT subscription matches the shadow's topics, but a rule's FROM does: the event is built."""
    iot = make_client(localiot_server)
    name = f"docs_{uuid.uuid4().hex[:6]}"
    iot.create_topic_rule(ruleName=name, topicRulePayload={
        "sql": "SELECT current.state.reported AS reported, topic(3) AS thing "
               "FROM '$aws/things/+/shadow/update/documents'", "awsIotSqlVersion": "2016-03-23",
        "actions": [{"republish": {"roleArn": "arn:aws:iam::123456789012:role/r", "topic": f"{name}/out"}}]})
    listener = devices.plain()
    listener.subscribe(f"{name}/out")
    thing = f"oven-{uuid.uuid4().hex[:6]}"
    data = make_client(localiot_server, "iot-data", config=BotoConfig(retries={"max_attempts": 1}))
    for temp in (180, 200):  # the first compiles the rules (their change made them stale), the second finds them
        data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"reported": {"temp": temp}}}))
        assert json.loads(listener.expect(f"{name}/out").payload) == {"reported": {"temp": temp}, "thing": thing}
    iot.delete_topic_rule(ruleName=name)


def test_the_broker_wants_the_topics_of_its_sessions_filters(localiot_server, devices):
    from localiot.broker.subscriptions import wanted

    app = localiot_server.app
    account, region = app.config.default_account, app.config.default_region
    thing = f"fan-{uuid.uuid4().hex[:6]}"
    accepted, documents = (f"$aws/things/{thing}/shadow/update/{t}" for t in ("accepted", "documents"))

    def wants(topic):
        return localiot_server.call(wanted, app.broker, account, region, topic)

    assert not wants(accepted) and not wants(documents)
    device = devices.plain()
    device.subscribe(f"$aws/things/{thing}/shadow/update/accepted")
    assert wants(accepted) and not wants(documents)
    device.subscribe("$aws/things/+/shadow/#")
    assert wants(documents)
    device.unsubscribe("$aws/things/+/shadow/#", f"$aws/things/{thing}/shadow/update/accepted")
    assert not wants(accepted) and not wants(documents)


def test_an_update_nobody_wanted_does_not_keep_a_new_subscriber_from_the_next(localiot_server, devices):
    # The bus keeps its subscribers' answers (Bus.wants): a SUBSCRIBE, an UNSUBSCRIBE and a
    # session dropped make it ask again.
    thing = f"kiln-{uuid.uuid4().hex[:6]}"
    accepted = f"$aws/things/{thing}/shadow/update/accepted"
    data = make_client(localiot_server, "iot-data")
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"reported": {"t": 1}}}))
    device = devices.plain()
    device.subscribe(accepted)
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"reported": {"t": 2}}}))
    assert json.loads(device.expect(accepted).payload)["state"] == {"reported": {"t": 2}}
    device.unsubscribe(accepted)
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"reported": {"t": 3}}}))
    again = devices.plain()
    again.subscribe(accepted)
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"reported": {"t": 4}}}))
    assert json.loads(again.expect(accepted).payload)["state"] == {"reported": {"t": 4}}
    device.expect_none()


def test_devices_cannot_publish_the_services_topics(devices):
    device = devices.plain(version=V5)
    assert device.publish("$aws/things/lamp/shadow/update/accepted", b"{}") == NOT_AUTHORIZED
    assert device.publish("$aws/things/lamp/shadow/other", b"{}") == NOT_AUTHORIZED


def test_a_request_over_128_kb_closes_the_connection(localiot_server, devices):
    device = devices.plain(version=V5)
    device.client.publish(f"$aws/things/{THING}/shadow/update",
                          json.dumps({"state": {"desired": {"a": "x" * (128 * 1024)}}}), 1)
    assert device.closed.wait(WAIT)
    assert device.disconnect_reason == 0x95  # Packet too large
    door = MqttDoor(localiot_server, devices.plain())
    assert door.get(THING, None).error["code"] == 404  # nothing was written


# the AWS IoT Device SDK v2 ------------------------------------------------------------------
def test_device_sdk_shadow_client(localiot_server):
    awscrt_mqtt = importlib.import_module("awscrt.mqtt")
    iotshadow = importlib.import_module("awsiot.iotshadow")
    host, port = localiot_server.listener("mqtt-plain")
    # No TLS context: awscrt speaks plain MQTT to the development listener.
    connection = awscrt_mqtt.Connection(client=awscrt_mqtt.Client(None, None), host_name=host, port=port,
                                        client_id=f"sdk-{uuid.uuid4().hex[:8]}", clean_session=True,
                                        keep_alive_secs=30)
    connection.connect().result(WAIT)
    try:
        shadow = iotshadow.IotShadowClient(connection)
        got: dict[str, queue.Queue] = {name: queue.Queue() for name in ("accepted", "delta", "get", "rejected")}
        qos = awscrt_mqtt.QoS.AT_LEAST_ONCE
        futures = [
            shadow.subscribe_to_update_shadow_accepted(
                iotshadow.UpdateShadowSubscriptionRequest(thing_name="sdk-thing"), qos, got["accepted"].put)[0],
            shadow.subscribe_to_shadow_delta_updated_events(
                iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name="sdk-thing"), qos, got["delta"].put)[0],
            shadow.subscribe_to_get_shadow_accepted(
                iotshadow.GetShadowSubscriptionRequest(thing_name="sdk-thing"), qos, got["get"].put)[0],
            shadow.subscribe_to_get_shadow_rejected(
                iotshadow.GetShadowSubscriptionRequest(thing_name="sdk-thing"), qos, got["rejected"].put)[0],
        ]
        for future in futures:
            future.result(WAIT)

        shadow.publish_get_shadow(iotshadow.GetShadowRequest(thing_name="sdk-thing", client_token="g0"), qos)
        error = got["rejected"].get(timeout=WAIT)
        assert (error.code, error.client_token) == (404, "g0")

        shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(
            thing_name="sdk-thing", client_token="u1",
            state=iotshadow.ShadowState(desired={"color": "green"}, reported={"color": "red"})), qos).result(WAIT)
        accepted = got["accepted"].get(timeout=WAIT)
        assert accepted.client_token == "u1" and accepted.version == 1
        assert accepted.state.desired == {"color": "green"} and accepted.state.reported == {"color": "red"}
        delta = got["delta"].get(timeout=WAIT)
        assert delta.state == {"color": "green"} and delta.version == 1

        shadow.publish_get_shadow(iotshadow.GetShadowRequest(thing_name="sdk-thing", client_token="g1"), qos)
        document = got["get"].get(timeout=WAIT)
        assert document.client_token == "g1" and document.state.delta == {"color": "green"}
    finally:
        connection.disconnect().result(WAIT)
