"""The fabric between two nodes that each keep their own SQLite store: plain MQTT
devices on each node, one nats-server between them (localiot.fabric)."""

import pytest

from cluster_nodes import devices, on, two_nodes, until  # noqa: F401 (devices: a fixture)
from localiot.testing import V5

# Each node keeps its own SQLite file here (the shared PostgreSQL case is test_multinode_cluster).
pytestmark = pytest.mark.sqlite_only("two nodes that each keep their own SQLite store")


@pytest.fixture(scope="module")
def nodes(localiot_nats):
    with two_nodes(localiot_nats, shared_postgres=False) as pair:
        yield pair


def test_a_message_published_on_one_node_reaches_a_subscriber_on_the_other(nodes, devices):
    a, b = nodes
    listener = on(devices, b)
    listener.subscribe("plant/+/temp")
    sender = on(devices, a)
    assert sender.publish("plant/7/temp", {"t": 21}) == 0
    m = listener.expect("plant/7/temp")
    assert m.payload == b'{"t": 21}' and m.qos == 1


def test_overlapping_filters_deliver_once(nodes, devices):
    a, b = nodes
    listener = on(devices, b)
    listener.subscribe("x/#", "x/+", "+/y")
    on(devices, a).publish("x/y", b"once")
    assert listener.expect("x/y").payload == b"once"
    listener.expect_none()


def test_hash_matches_the_parent_level_across_nodes(nodes, devices):
    a, b = nodes
    listener = on(devices, b)
    listener.subscribe("room/#")
    sender = on(devices, a)
    sender.publish("room", b"parent")
    sender.publish("room/1/light", b"child")
    assert listener.expect().payload == b"parent"
    assert listener.expect().payload == b"child"


@pytest.mark.parametrize("topic", ["a.b/c", "star/*/x", "gt/>", "sp ace/t", "caf\u00e9/%", "e//mpty"])
def test_characters_nats_treats_specially_travel_intact(nodes, devices, topic):
    a, b = nodes
    listener = on(devices, b)
    listener.subscribe(topic.split("/")[0] + "/#")
    on(devices, a).publish(topic, b"x")
    assert listener.expect().topic == topic
    listener.expect_none(0.2)


def test_wildcards_do_not_cross_into_dollar_topics_or_similar_subjects(nodes, devices):
    a, b = nodes
    listener = on(devices, b)
    listener.subscribe("+/status", "a/b")
    sender = on(devices, a)
    sender.publish("a.b", b"not a/b")  # one level 'a.b', not two
    sender.publish("a/b/c", b"deeper")
    sender.publish("dev/status", b"yes")
    assert listener.expect().payload == b"yes"
    listener.expect_none()


def test_mqtt5_properties_and_retain_flag_cross_nodes(nodes, devices):
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes

    a, b = nodes
    listener = on(devices, b, version=V5)
    listener.subscribe("props/#")
    sender = on(devices, a, version=V5)
    props = mqtt.Properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    props.ResponseTopic = "props/reply"
    props.CorrelationData = b"\x00\x01"
    props.UserProperty = [("k", "v")]
    info = sender.client.publish("props/x", b"{}", 1, properties=props)
    info.wait_for_publish(5)
    m = listener.expect("props/x")
    assert m.properties.ContentType == "application/json"
    assert m.properties.ResponseTopic == "props/reply"
    assert m.properties.CorrelationData == b"\x00\x01"
    assert m.properties.UserProperty == [("k", "v")]


def test_shared_subscription_gets_one_delivery_per_group_across_nodes(nodes, devices):
    a, b = nodes
    members = [on(devices, a), on(devices, b)]
    for m in members:
        m.subscribe("$share/workers/jobs/#")
    other_group = on(devices, b)
    other_group.subscribe("$share/audit/jobs/#")
    sender = on(devices, a)
    for i in range(20):
        sender.publish(f"jobs/{i}", str(i).encode())
    got = []
    for member in members:
        while True:
            try:
                got.append((member, int(member.expect(timeout=0.5).payload)))
            except AssertionError:
                break
    assert sorted(n for _, n in got) == list(range(20))  # each once in the group
    assert {id(member) for member, _ in got} == {id(m) for m in members}  # both nodes got some
    audit = sorted(int(other_group.expect().payload) for _ in range(20))
    assert audit == list(range(20))


def test_client_id_takeover_across_nodes(nodes, devices):
    a, b = nodes
    first = on(devices, a, "same-id", version=V5)
    on(devices, b, "same-id", version=V5)
    assert first.wait_closed()
    assert first.disconnect_reason == 0x8E  # Session taken over


def test_shadow_delta_from_node_b_api_reaches_the_device_on_node_a(nodes, devices):
    import json

    from localiot.testing import make_client

    a, b = nodes
    device = on(devices, a, "lamp-1")
    device.subscribe("$aws/things/lamp-1/shadow/update/delta")
    make_client(b, "iot-data").update_thing_shadow(
        thingName="lamp-1", payload=json.dumps({"state": {"desired": {"on": True}}}).encode())
    delta = device.expect_json("$aws/things/lamp-1/shadow/update/delta")
    assert delta["state"] == {"on": True}


def test_presence_events_of_node_a_reach_a_subscriber_on_node_b(nodes, devices):
    a, b = nodes
    watcher = on(devices, b)
    watcher.subscribe("$aws/events/presence/connected/+")
    on(devices, a, "visitor-1")
    event = watcher.expect_json("$aws/events/presence/connected/visitor-1")
    assert event["clientId"] == "visitor-1" and event["eventType"] == "connected"


def test_each_message_goes_through_the_rules_engine_of_its_own_node_only(nodes, devices):
    from localiot.testing import make_client

    a, b = nodes
    for server in nodes:  # the same rule on both nodes (each has its own store here)
        make_client(server).create_topic_rule(ruleName="echo", topicRulePayload={
            "sql": "SELECT * FROM 'sensor/+'", "actions": [{"republish": {"roleArn": "arn:aws:iam::123456789012:role/r",
                                                                        "topic": "echoed/${topic(2)}"}}]})
    try:
        watcher = on(devices, b)
        watcher.subscribe("echoed/#")
        on(devices, a).publish("sensor/9", b"{}")
        assert watcher.expect().topic == "echoed/9"
        watcher.expect_none(0.5)  # not a second time from node b's engine
    finally:
        for server in nodes:
            make_client(server).delete_topic_rule(ruleName="echo")


def test_connectivity_and_delete_connection_reach_a_client_on_the_other_node(nodes, devices):
    from localiot.testing import make_client

    a, b = nodes
    iot_b, data_b = make_client(b), make_client(b, "iot-data")
    watcher = on(devices, b)
    watcher.subscribe("wills/#")
    iot_b.create_thing(thingName="far-away")
    try:
        device = on(devices, a, "far-away", will=("wills/far-away", b"gone", 1))
        assert until(lambda: iot_b.get_thing_connectivity_data(thingName="far-away")["connected"])
        data_b.delete_connection(clientId="far-away")
        assert device.wait_closed()
        assert watcher.expect("wills/far-away").payload == b"gone"
        assert until(lambda: not iot_b.get_thing_connectivity_data(thingName="far-away")["connected"])
    finally:
        iot_b.delete_thing(thingName="far-away")
