"""Rules meet the broker: a device publishes over MQTT, a rule republishes to
an MQTT subscriber (QoS and MQTT 5 properties kept), and Basic Ingest reaches
its rule but no subscriber."""

import json

from localiot.testing import V5

ROLE = "arn:aws:iam::123456789012:role/iot-rules"


def rule(iot, name, sql, actions, version="2016-03-23"):
    iot.create_topic_rule(ruleName=name, topicRulePayload={
        "sql": sql, "actions": actions, "awsIotSqlVersion": version, "ruleDisabled": False})


def test_device_publish_is_republished_to_a_subscriber(iot, devices):
    rule(iot, "hot", "SELECT temp, topic(2) AS device FROM 'sensors/+/telemetry' WHERE temp > 30",
         [{"republish": {"roleArn": ROLE, "topic": "alerts/${topic(2)}", "qos": 1}}])
    listener, device = devices.plain(), devices.plain()
    listener.subscribe("alerts/#")
    device.publish("sensors/d1/telemetry", {"temp": 20})
    device.publish("sensors/d2/telemetry", {"temp": 42, "x": 1})
    message = listener.expect(timeout=10)
    assert message.topic == "alerts/d2"
    assert json.loads(message.payload) == {"temp": 42, "device": "d2"}
    assert message.qos == 1
    listener.expect_none(timeout=0.5)  # the cool reading matched no WHERE


def test_republish_keeps_mqtt5_properties(iot, devices):
    rule(iot, "props", "SELECT * FROM 'in/props'", [{"republish": {
        "roleArn": ROLE, "topic": "out/props", "qos": 0,
        "headers": {"contentType": "application/json", "responseTopic": "reply/${topic(2)}",
                    "userProperties": [{"key": "origin", "value": "rule"}]}}}])
    listener, device = devices.plain(version=V5), devices.plain(version=V5)
    listener.subscribe("out/props", qos=0)
    device.publish("in/props", b'{"a": 1}')
    message = listener.expect(timeout=10)
    assert json.loads(message.payload) == {"a": 1}
    assert message.properties.ContentType == "application/json"
    assert message.properties.ResponseTopic == "reply/props"
    assert ("origin", "rule") in message.properties.UserProperty


def test_basic_ingest_reaches_the_rule_and_no_subscriber(iot, devices):
    rule(iot, "ingest", "SELECT * FROM 'ignored/by/basic/ingest'",
         [{"republish": {"roleArn": ROLE, "topic": "ingested/${topic()}", "qos": 0}}])
    listener, device = devices.plain(), devices.plain()
    listener.subscribe("#", qos=0)
    device.publish("$aws/rules/ingest/factory/line1", b'{"n": 7}')
    message = listener.expect(timeout=10)
    # the rule sees the topic without the $aws/rules/{rule}/ prefix, and '#' never saw the ingest topic
    assert message.topic == "ingested/factory/line1"
    assert json.loads(message.payload) == {"n": 7}
    listener.expect_none(timeout=0.5)


def test_basic_ingest_to_exactly_the_rule_topic(iot, devices):
    """`$aws/rules/<ruleName>` with no further levels triggers the rule, as on AWS; the client stays connected."""
    rule(iot, "exact", "SELECT * FROM 'ignored'", [{"republish": {"roleArn": ROLE, "topic": "ingested/exact", "qos": 0}}])
    listener, device = devices.plain(), devices.plain()
    listener.subscribe("#", qos=0)
    device.publish("$aws/rules/exact", b'{"n": 1}')
    message = listener.expect(timeout=10)
    assert (message.topic, json.loads(message.payload)) == ("ingested/exact", {"n": 1})
    device.publish("$aws/rules/exact", b'{"n": 2}')
    assert json.loads(listener.expect(timeout=10).payload) == {"n": 2}
    assert device.client.is_connected()
    listener.expect_none(timeout=0.5)
