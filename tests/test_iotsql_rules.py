"""IoT SQL as AWS's SQL reference states it (issue 11 item 16), end to end: a
paho device publishes, a rule created through boto3 evaluates the statement
and republishes, a paho subscriber (or the device shadow) receives the result."""

import json
import uuid

import pytest

from localiot.testing import ACCOUNT, make_client, plain_device

ROLE = f"arn:aws:iam::{ACCOUNT}:role/rules"


def rule(server, name, sql, topic, version="2016-03-23"):
    make_client(server).create_topic_rule(ruleName=name, topicRulePayload={
        "sql": sql, "awsIotSqlVersion": version, "ruleDisabled": False,
        "actions": [{"republish": {"roleArn": ROLE, "topic": topic, "qos": 1}}]})


def roundtrip(server, sql, document, version="2016-03-23", topic="out/${topic(2)}"):
    rule(server, "r" + uuid.uuid4().hex[:8], sql, topic, version)
    client = plain_device(server)
    try:
        client.subscribe("out/#")
        client.publish("in/dev1", document)
        message = client.expect(timeout=10)
        return message.topic, json.loads(message.payload)
    finally:
        client.close()


@pytest.mark.parametrize("version", ["2015-10-08", "2016-03-23"])
def test_plus_joins_strings_in_the_statement_and_the_topic_template(localiot_server, version):
    sql = "SELECT 'a' + 'b' AS ab, '1' + 2 AS s, name + '-' + n AS label, n + 1 AS sum FROM 'in/+'"
    topic, payload = roundtrip(localiot_server, sql, {"name": "lamp", "n": 7}, version,
                               topic="out/${name + '-' + topic(2)}")
    assert topic == "out/lamp-dev1"
    assert payload == {"ab": "ab", "s": "12", "label": "lamp-7", "sum": 8}


def test_functions_as_the_reference_states_them(localiot_server):
    sql = ("SELECT decode(b64, 'base64') + 1 AS decoded, cast('1.25' AS Double) AS d, "
           "substring(false, -2.411E247) AS s, (SELECT v FROM obj) AS nested, "
           "(SELECT VALUE v FROM arr) AS from_array FROM 'in/+'")
    topic, payload = roundtrip(localiot_server, sql, {"b64": "NDE=", "obj": {"v": 1, "w": 2}, "arr": [{"v": 3}]})
    assert payload == {"decoded": 42, "d": 1.25, "s": "false", "nested": {"v": 1}, "from_array": [3]}


def test_dollar_dollar_in_a_republish_topic_is_one_dollar(localiot_server):
    rule(localiot_server, "to_shadow", "SELECT {'desired': {'temp': temp}} AS state FROM 'in/+'",
         "$$aws/things/${topic(2)}/shadow/update")
    client = plain_device(localiot_server)
    try:
        client.subscribe("$aws/things/dev1/shadow/update")
        client.publish("in/dev1", {"temp": 21})
        message = client.expect(timeout=10)
        assert message.topic == "$aws/things/dev1/shadow/update"
        assert json.loads(message.payload) == {"state": {"desired": {"temp": 21}}}
    finally:
        client.close()


def test_a_rule_republishing_to_a_shadow_topic_updates_the_shadow(localiot_server):
    iot, data = make_client(localiot_server), make_client(localiot_server, "iot-data")
    iot.create_thing(thingName="dev1")
    rule(localiot_server, "to_shadow", "SELECT {'desired': {'temp': temp}} AS state FROM 'in/+'",
         "$$aws/things/${topic(2)}/shadow/update")
    client = plain_device(localiot_server)
    try:
        client.subscribe("$aws/things/dev1/shadow/update/accepted")
        client.publish("in/dev1", {"temp": 21})
        accepted = json.loads(client.expect(timeout=5).payload)
        assert accepted["state"] == {"desired": {"temp": 21}}
    finally:
        client.close()
    shadow = json.loads(data.get_thing_shadow(thingName="dev1")["payload"].read())
    assert shadow["state"]["desired"] == {"temp": 21}


def test_clientid_of_an_mqtt_publish(localiot_server):
    client = plain_device(localiot_server)
    try:
        client.subscribe("out/#")
        rule(localiot_server, "who", "SELECT clientid() AS c FROM 'in/+'", "out/who")
        client.publish("in/dev1", {})
        payload = json.loads(client.expect(timeout=5).payload)
        assert payload == {"c": client.client_id}
    finally:
        client.close()


def test_principal_and_traceid_of_an_mqtt_publish(localiot_server):
    client = plain_device(localiot_server)
    try:
        client.subscribe("out/#")
        rule(localiot_server, "who", "SELECT clientid() AS c, principal() AS p, traceid() AS t FROM 'in/+'", "out/who")
        client.publish("in/dev1", {})
        first = json.loads(client.expect(timeout=5).payload)
        client.publish("in/dev1", {})
        second = json.loads(client.expect(timeout=5).payload)
        assert first["c"] == client.client_id and first["p"] == "anonymous"
        assert uuid.UUID(first["t"]) and first["t"] != second["t"]  # one trace id per message
    finally:
        client.close()


def test_an_http_publish_has_no_client_and_no_traceid(localiot_server):
    client = plain_device(localiot_server)
    try:
        client.subscribe("out/#")
        rule(localiot_server, "who", "SELECT clientid() AS c, traceid() AS t, 1 AS one FROM 'in/+'", "out/who")
        make_client(localiot_server, "iot-data").publish(topic="in/http", qos=1, payload=b"{}")
        assert json.loads(client.expect(timeout=5).payload) == {"c": "n/a", "one": 1}  # traceid() Undefined
    finally:
        client.close()


def test_principal_of_a_certificate_publish_is_the_certificate_id(localiot_server, tmp_path):
    from localiot.testing import ALLOW_ALL, DevicePool, ca_file, new_certificate

    iot = make_client(localiot_server)
    cert = new_certificate(iot, tmp_path, policy=ALLOW_ALL)
    listener = plain_device(localiot_server)
    try:
        listener.subscribe("out/#")
        rule(localiot_server, "who", "SELECT clientid() AS c, principal() AS p FROM 'in/+'", "out/who")
        port = int(localiot_server.app.runtime.listeners["iot:Data-ATS"].rsplit(":", 1)[1])
        pool = DevicePool()
        try:
            device = pool(port, "sensor-7", ca=ca_file(localiot_server, tmp_path), cert=cert).connect_ok()
            assert device.publish("in/sensor-7", b"{}") == 0
            assert json.loads(listener.expect(timeout=5).payload) == {"c": "sensor-7", "p": cert.id}
        finally:
            pool.close()
    finally:
        listener.close()
