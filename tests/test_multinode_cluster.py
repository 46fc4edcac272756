"""Two localiot nodes on one PostgreSQL database and one nats-server (the
fabric, localiot.fabric): devices, subscribers and API callers on different
nodes see one AWS IoT. Each node runs in this process on its own event loop
thread, with its own data directory and listeners."""

import json

import pytest

from cluster_nodes import devices, on, two_nodes, until  # noqa: F401 (devices: a fixture)
from localiot.testing import advance, make_client, tls_device


@pytest.fixture(scope="module")
def nodes(localiot_nats):
    with two_nodes(localiot_nats, shared_postgres=True) as pair:
        yield pair


def test_a_tls_device_on_node_a_and_a_subscriber_on_node_b(nodes, devices):
    a, b = nodes
    listener = on(devices, b)
    listener.subscribe("fleet/+/telemetry")
    device = devices.add(tls_device(a, "truck-1"))
    assert device.publish("fleet/truck-1/telemetry", {"speed": 80}) == 0
    assert listener.expect_json("fleet/truck-1/telemetry") == {"speed": 80}


def test_a_shadow_updated_through_node_b_reaches_the_device_on_node_a(nodes, devices):
    a, b = nodes
    make_client(a).create_thing(thingName="boiler-1")
    device = on(devices, a, "boiler-1")
    device.subscribe("$aws/things/boiler-1/shadow/update/delta")
    make_client(b, "iot-data").update_thing_shadow(
        thingName="boiler-1", payload=json.dumps({"state": {"desired": {"temp": 60}}}).encode())
    delta = device.expect_json("$aws/things/boiler-1/shadow/update/delta")
    assert delta["state"] == {"temp": 60}
    shadow = json.loads(make_client(a, "iot-data").get_thing_shadow(thingName="boiler-1")["payload"].read())
    assert shadow["state"]["desired"] == {"temp": 60}


def test_a_persistent_session_resumed_on_another_node_gets_its_queued_messages(nodes, devices):
    a, b = nodes
    roamer = on(devices, a, "roamer", clean=False)
    roamer.subscribe("orders/#", qos=1)
    roamer.close()
    sender = on(devices, b)
    for i in range(3):
        assert sender.publish(f"orders/{i}", str(i).encode(), qos=1) == 0
    back = on(devices, b, "roamer", clean=False)
    assert back.session_present is True
    assert [back.expect().payload for _ in range(3)] == [b"0", b"1", b"2"]
    back.expect_none()
    on(devices, a).publish("orders/9", b"9", qos=1)  # its subscription followed it to node b
    assert back.expect("orders/9").payload == b"9"


def test_takeover_across_nodes_closes_the_older_connection_and_moves_the_session(nodes, devices):
    a, b = nodes
    first = on(devices, a, "twin", clean=False)
    first.subscribe("twin/in", qos=1)
    second = on(devices, b, "twin", clean=False)
    assert first.wait_closed()  # (MQTT 5 clients get reason 0x8E: test_fabric_pubsub)
    assert second.session_present is True
    on(devices, a).publish("twin/in", b"hello", qos=1)
    assert second.expect("twin/in").payload == b"hello"
    first.expect_none(0.2)


def test_revoking_a_certificate_through_node_b_disconnects_its_device_on_node_a(nodes, devices):
    a, b = nodes
    device = devices.add(tls_device(a, "to-revoke"))
    make_client(b).update_certificate(certificateId=device.cert.id, newStatus="REVOKED")
    assert device.wait_closed()


def test_a_policy_detached_through_node_b_takes_rights_away_on_node_a(nodes, devices):
    a, b = nodes
    listener = on(devices, a)
    listener.subscribe("limited/#")
    device = devices.add(tls_device(a, "limited-1"))
    assert device.publish("limited/1", b"allowed") == 0
    assert listener.expect("limited/1").payload == b"allowed"
    make_client(b).detach_policy(policyName=device.cert.policy_name, target=device.cert.arn)

    def refused() -> bool:  # the commit event reaches node a a moment after node b answered
        if device.closed.is_set():
            return True  # (a refused publish may also end the connection)
        device.publish("limited/1", b"probe", qos=0)
        return not _got(device=listener, topic="limited/1")

    assert until(refused, 5)


def test_a_rule_made_through_node_a_runs_once_for_a_message_published_on_node_b(nodes, devices):
    a, b = nodes
    watcher = on(devices, a)
    watcher.subscribe("copied/#")
    publisher = on(devices, b)
    publisher.publish("meter/1", b"{}")  # node b's rules engine compiles the scope: no rule yet
    watcher.expect_none(0.2)
    make_client(a).create_topic_rule(ruleName="copy", topicRulePayload={
        "sql": "SELECT * FROM 'meter/+'",
        "actions": [{"republish": {"roleArn": "arn:aws:iam::123456789012:role/r", "topic": "copied/${topic(2)}"}}]})
    try:
        assert until(lambda: publisher.publish("meter/2", b"{}") == 0 and _got(watcher, "copied/2"), 5)
        watcher.expect_none(0.5)  # once: only node b's engine saw it
    finally:
        make_client(a).delete_topic_rule(ruleName="copy")


def _got(device, topic: str) -> bool:
    try:
        device.expect(topic, timeout=0.3)
        return True
    except AssertionError:
        return False


def test_a_job_created_through_node_b_notifies_the_device_on_node_a(nodes, devices):
    a, b = nodes
    iot_b = make_client(b)
    arn = iot_b.create_thing(thingName="pump-1")["thingArn"]
    device = on(devices, a, "pump-1")
    device.subscribe("$aws/things/pump-1/jobs/notify-next")
    iot_b.create_job(jobId="flush-1", targets=[arn], document=json.dumps({"op": "flush"}))
    note = device.expect_json("$aws/things/pump-1/jobs/notify-next")
    assert note["execution"]["jobId"] == "flush-1"
    assert note["execution"]["jobDocument"] == {"op": "flush"}


def test_shared_subscribers_on_both_nodes_share_the_messages_of_either(nodes, devices):
    a, b = nodes
    members = [on(devices, a), on(devices, b)]
    for member in members:
        member.subscribe("$share/pool/tasks/+")
    senders = [on(devices, a), on(devices, b)]
    for i in range(20):
        senders[i % 2].publish(f"tasks/{i}", str(i).encode())
    got = {id(m): [] for m in members}
    for member in members:
        while True:
            try:
                got[id(member)].append(int(member.expect(timeout=0.5).payload))
            except AssertionError:
                break
    assert sorted(n for values in got.values() for n in values) == list(range(20))
    assert all(got.values())


def test_a_reset_through_node_a_resets_the_memory_of_node_b_too(nodes, devices):
    a, b = nodes
    make_client(a).create_thing(thingName="before-reset")
    kept = on(devices, b, "kept", clean=False)
    kept.subscribe("kept/#", qos=1)
    broker_b = b.app.runtime.broker
    assert ("123456789012", "us-east-1", "kept") in broker_b.sessions
    advance(a, 3600)
    assert until(lambda: b.clock.offset >= 3600)
    resets = broker_b.resets
    a.reset()  # answers once node b confirmed
    assert broker_b.resets == resets + 1 and not broker_b.sessions
    assert b.clock.offset == 0
    assert kept.wait_closed()
    assert make_client(b).list_things()["things"] == []
    back = on(devices, b, "kept", clean=False)
    assert back.session_present is False
