"""IoT SQL as AWS's SQL reference states it (issue 11 item 16), end to end: a
paho device publishes, a rule created through boto3 evaluates the statement
and republishes, a paho subscriber (or the device shadow) receives the result."""

import json
import queue
import uuid

import paho.mqtt.client as mqtt
import pytest

from conftest import make_client
from localiot.testing import local_server

ROLE = "arn:aws:iam::123456789012:role/rules"


@pytest.fixture(scope="module")
def server():
    with local_server(mqtt_plain=True, background_period=0) as running:
        yield running


@pytest.fixture
def fresh(server):
    server.reset()
    return server


class Client:
    def __init__(self, server):
        host, port = server.app.runtime.listeners["mqtt-plain"].rsplit(":", 1)
        self.messages: queue.Queue = queue.Queue()
        self.acks: queue.Queue = queue.Queue()
        self.mqtt = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"c-{uuid.uuid4().hex[:8]}")
        self.mqtt.on_message = lambda c, u, m: self.messages.put(m)
        self.mqtt.on_subscribe = lambda *args: self.acks.put(True)
        self.mqtt.connect(host, int(port))
        self.mqtt.loop_start()

    def subscribe(self, topic):
        self.mqtt.subscribe(topic, 1)
        self.acks.get(timeout=5)

    def publish(self, topic, document):
        self.mqtt.publish(topic, json.dumps(document), qos=1).wait_for_publish(5)

    def close(self):
        self.mqtt.loop_stop()
        self.mqtt.disconnect()


def rule(server, name, sql, topic, version="2016-03-23"):
    make_client(server).create_topic_rule(ruleName=name, topicRulePayload={
        "sql": sql, "awsIotSqlVersion": version, "ruleDisabled": False,
        "actions": [{"republish": {"roleArn": ROLE, "topic": topic, "qos": 1}}]})


def roundtrip(server, sql, document, version="2016-03-23", topic="out/${topic(2)}"):
    rule(server, "r" + uuid.uuid4().hex[:8], sql, topic, version)
    client = Client(server)
    try:
        client.subscribe("out/#")
        client.publish("in/dev1", document)
        message = client.messages.get(timeout=10)
        return message.topic, json.loads(message.payload)
    finally:
        client.close()


@pytest.mark.parametrize("version", ["2015-10-08", "2016-03-23"])
def test_plus_joins_strings_in_the_statement_and_the_topic_template(fresh, version):
    topic, payload = roundtrip(fresh, "SELECT 'a' + 'b' AS ab, '1' + 2 AS s, name + '-' + n AS label, n + 1 AS sum "
                                      "FROM 'in/+'", {"name": "lamp", "n": 7}, version,
                               topic="out/${name + '-' + topic(2)}")
    assert topic == "out/lamp-dev1"
    assert payload == {"ab": "ab", "s": "12", "label": "lamp-7", "sum": 8}


def test_functions_as_the_reference_states_them(fresh):
    topic, payload = roundtrip(fresh, "SELECT decode(b64, 'base64') + 1 AS decoded, cast('1.25' AS Double) AS d, "
                                      "substring(false, -2.411E247) AS s, (SELECT v FROM obj) AS nested, "
                                      "(SELECT VALUE v FROM arr) AS from_array FROM 'in/+'",
                               {"b64": "NDE=", "obj": {"v": 1, "w": 2}, "arr": [{"v": 3}]})
    assert payload == {"decoded": 42, "d": 1.25, "s": "false", "nested": {"v": 1}, "from_array": [3]}


def test_dollar_dollar_in_a_republish_topic_is_one_dollar(fresh):
    rule(fresh, "to_shadow", "SELECT {'desired': {'temp': temp}} AS state FROM 'in/+'",
         "$$aws/things/${topic(2)}/shadow/update")
    client = Client(fresh)
    try:
        client.subscribe("$aws/things/dev1/shadow/update")
        client.publish("in/dev1", {"temp": 21})
        message = client.messages.get(timeout=10)
        assert message.topic == "$aws/things/dev1/shadow/update"
        assert json.loads(message.payload) == {"state": {"desired": {"temp": 21}}}
    finally:
        client.close()


@pytest.mark.xfail(reason="the rules engine's republish reaches MQTT subscribers but not the broker's reserved-topic "
                          "doors (localiot/services/rules + localiot/broker, outside the SQL engine)", strict=False)
def test_a_rule_republishing_to_a_shadow_topic_updates_the_shadow(fresh):
    iot, data = make_client(fresh), make_client(fresh, "iot-data")
    iot.create_thing(thingName="dev1")
    rule(fresh, "to_shadow", "SELECT {'desired': {'temp': temp}} AS state FROM 'in/+'",
         "$$aws/things/${topic(2)}/shadow/update")
    client = Client(fresh)
    try:
        client.subscribe("$aws/things/dev1/shadow/update/accepted")
        client.publish("in/dev1", {"temp": 21})
        accepted = json.loads(client.messages.get(timeout=5).payload)
        assert accepted["state"] == {"desired": {"temp": 21}}
    finally:
        client.close()
    shadow = json.loads(data.get_thing_shadow(thingName="dev1")["payload"].read())
    assert shadow["state"]["desired"] == {"temp": 21}


@pytest.mark.xfail(reason="MQTT publishes reach the rules engine through the bus without the publishing client's "
                          "identity (localiot/broker + localiot/services/rules/engine.py submit), so clientid() "
                          "answers n/a outside Basic Ingest", strict=False)
def test_clientid_of_an_mqtt_publish(fresh):
    client = Client(fresh)
    try:
        client.subscribe("out/#")
        rule(fresh, "who", "SELECT clientid() AS c FROM 'in/+'", "out/who")
        client.publish("in/dev1", {})
        payload = json.loads(client.messages.get(timeout=5).payload)
        assert payload == {"c": client.mqtt._client_id.decode()}
    finally:
        client.close()
