"""Rules meet the broker: a device publishes over MQTT, a rule republishes to
an MQTT subscriber (QoS and MQTT 5 properties kept), and Basic Ingest reaches
its rule but no subscriber."""

import json
import queue
import uuid

import paho.mqtt.client as mqtt
import pytest

from conftest import make_client
from localiot.testing import local_server

ROLE = "arn:aws:iam::123456789012:role/iot-rules"


@pytest.fixture(scope="module")
def server():
    with local_server(mqtt_plain=True, background_period=0) as running:
        yield running


def mqtt_client(server, protocol=mqtt.MQTTv311):
    host, port = server.app.runtime.listeners["mqtt-plain"].rsplit(":", 1)
    received: queue.Queue = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"c-{uuid.uuid4().hex[:8]}", protocol=protocol)
    client.on_message = lambda c, u, msg: received.put(msg)
    client.connect(host, int(port))
    client.loop_start()
    return client, received


def subscribe(client, topic, qos=1):
    done = queue.Queue()
    client.on_subscribe = lambda *args: done.put(True)
    client.subscribe(topic, qos)
    done.get(timeout=5)


def rule(iot, name, sql, actions, version="2016-03-23"):
    iot.create_topic_rule(ruleName=name, topicRulePayload={
        "sql": sql, "actions": actions, "awsIotSqlVersion": version, "ruleDisabled": False})


def test_device_publish_is_republished_to_a_subscriber(server):
    iot = make_client(server)
    rule(iot, "hot", "SELECT temp, topic(2) AS device FROM 'sensors/+/telemetry' WHERE temp > 30",
         [{"republish": {"roleArn": ROLE, "topic": "alerts/${topic(2)}", "qos": 1}}])
    listener, received = mqtt_client(server)
    device, _ = mqtt_client(server)
    try:
        subscribe(listener, "alerts/#")
        device.publish("sensors/d1/telemetry", json.dumps({"temp": 20}), qos=1).wait_for_publish(5)
        device.publish("sensors/d2/telemetry", json.dumps({"temp": 42, "x": 1}), qos=1).wait_for_publish(5)
        message = received.get(timeout=10)
        assert message.topic == "alerts/d2"
        assert json.loads(message.payload) == {"temp": 42, "device": "d2"}
        assert message.qos == 1
        with pytest.raises(queue.Empty):
            received.get(timeout=0.5)  # the cool reading matched no WHERE
    finally:
        for client in (listener, device):
            client.loop_stop()
            client.disconnect()


def test_republish_keeps_mqtt5_properties(server):
    iot = make_client(server)
    rule(iot, "props", "SELECT * FROM 'in/props'", [{"republish": {
        "roleArn": ROLE, "topic": "out/props", "qos": 0,
        "headers": {"contentType": "application/json", "responseTopic": "reply/${topic(2)}",
                    "userProperties": [{"key": "origin", "value": "rule"}]}}}])
    listener, received = mqtt_client(server, mqtt.MQTTv5)
    device, _ = mqtt_client(server, mqtt.MQTTv5)
    try:
        subscribe(listener, "out/props", 0)
        device.publish("in/props", b'{"a": 1}', qos=1).wait_for_publish(5)
        message = received.get(timeout=10)
        assert json.loads(message.payload) == {"a": 1}
        assert message.properties.ContentType == "application/json"
        assert message.properties.ResponseTopic == "reply/props"
        assert ("origin", "rule") in message.properties.UserProperty
    finally:
        for client in (listener, device):
            client.loop_stop()
            client.disconnect()


def test_basic_ingest_to_exactly_the_rule_topic(server):
    """`$aws/rules/<ruleName>` with no further levels triggers the rule, as on AWS; the client stays connected."""
    iot = make_client(server)
    rule(iot, "exact", "SELECT * FROM 'ignored'", [{"republish": {"roleArn": ROLE, "topic": "ingested/exact", "qos": 0}}])
    listener, received = mqtt_client(server)
    device, _ = mqtt_client(server)
    try:
        subscribe(listener, "#", 0)
        device.publish("$aws/rules/exact", b'{"n": 1}', qos=1).wait_for_publish(5)
        message = received.get(timeout=10)
        assert (message.topic, json.loads(message.payload)) == ("ingested/exact", {"n": 1})
        device.publish("$aws/rules/exact", b'{"n": 2}', qos=1).wait_for_publish(5)
        assert json.loads(received.get(timeout=10).payload) == {"n": 2}
        assert device.is_connected()
        with pytest.raises(queue.Empty):
            received.get(timeout=0.5)
    finally:
        for client in (listener, device):
            client.loop_stop()
            client.disconnect()


def test_basic_ingest_reaches_the_rule_and_no_subscriber(server):
    iot = make_client(server)
    rule(iot, "ingest", "SELECT * FROM 'ignored/by/basic/ingest'",
         [{"republish": {"roleArn": ROLE, "topic": "ingested/${topic()}", "qos": 0}}])
    listener, received = mqtt_client(server)
    device, _ = mqtt_client(server)
    try:
        subscribe(listener, "#", 0)
        device.publish("$aws/rules/ingest/factory/line1", b'{"n": 7}', qos=1).wait_for_publish(5)
        message = received.get(timeout=10)
        # the rule sees the topic without the $aws/rules/{rule}/ prefix, and '#' never saw the ingest topic
        assert message.topic == "ingested/factory/line1"
        assert json.loads(message.payload) == {"n": 7}
        with pytest.raises(queue.Empty):
            received.get(timeout=0.5)
    finally:
        for client in (listener, device):
            client.loop_stop()
            client.disconnect()
