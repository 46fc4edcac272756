"""The MQTT broker end to end, continued from test_broker_mqtt.py (same bare
Broker on its own loop thread, same paho and raw clients): MQTT 5 features,
reserved topics, lifecycle events and the bus, authentication and
authorization."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from paho.mqtt.packettypes import PacketTypes

from localiot.broker import Identity, Refusal, codec
from localiot.broker.codec import Connect, Subscribe, SubOptions, encode
from localiot.broker.reserved import ReservedTopics, Route, TopicTemplate
from localiot.testing import RawClient, wait_until
from test_broker_mqtt import (ACCOUNT, REGION, V3, V5, WAIT, Client, _props, broker,  # noqa: F401 (fixtures)
                              make_broker)


# MQTT 5 features -------------------------------------------------------------------------
def test_shared_subscription_round_robin(broker):
    members = [Client(broker.port, f"m{i}", version) for i, version in enumerate((V3, V5, V5))]
    for m in members:
        assert m.subscribe("$share/workers/jobs/#", qos=1) == [1]
    other = Client(broker.port, "other", V5)
    other.subscribe("jobs/#")
    pub = Client(broker.port, "pub", V5)
    for i in range(6):
        pub.publish(f"jobs/{i}", str(i).encode(), qos=1)
    counts = [sorted(int(m.expect().payload) for _ in range(2)) for m in members]
    assert sorted(sum(counts, [])) == list(range(6))
    for m in members:
        m.expect_none(0.1)
    assert len([other.expect() for _ in range(6)]) == 6
    for c in members + [other, pub]:
        c.close()


def test_topic_alias(broker):
    sub = Client(broker.port, "sub", V5)
    sub.subscribe("alias/#")
    pub = Client(broker.port, "pub", V5)
    pub.publish("alias/long/topic", b"1", qos=1, properties=_props(TopicAlias=1))
    pub.publish("", b"2", qos=1, properties=_props(TopicAlias=1))
    assert [(m.topic, m.payload) for m in (sub.expect(), sub.expect())] == [
        ("alias/long/topic", b"1"), ("alias/long/topic", b"2")]
    pub.publish("alias/x", b"3", qos=1, properties=_props(TopicAlias=9), wait=False)  # over the maximum of 8
    assert pub.disconnected.wait(WAIT)
    assert pub.disconnect_reason == codec.TOPIC_ALIAS_INVALID
    pub.c.loop_stop()
    sub.close()


def test_message_properties_forwarded(broker):
    sub = Client(broker.port, "sub", V5)
    sub.subscribe("req/#")
    pub = Client(broker.port, "pub", V5)
    props = _props(UserProperty=[("a", "1"), ("a", "2")], ResponseTopic="resp/x", CorrelationData=b"\x01id",
                   PayloadFormatIndicator=1, ContentType="application/json", MessageExpiryInterval=60)
    pub.publish("req/1", b"{}", qos=1, properties=props)
    m = sub.expect()
    p = m.properties
    assert p.UserProperty == [("a", "1"), ("a", "2")]
    assert (p.ResponseTopic, p.CorrelationData, p.PayloadFormatIndicator, p.ContentType) == (
        "resp/x", b"\x01id", 1, "application/json")
    assert 0 < p.MessageExpiryInterval <= 60
    sub.close()
    pub.close()


def test_message_expiry_for_offline_session(broker):
    props = _props(PacketTypes.CONNECT, SessionExpiryInterval=600)
    dev = Client(broker.port, "dev", V5, clean=False, properties=props)
    dev.subscribe("exp/#")
    dev.close()
    pub = Client(broker.port, "pub", V5)
    pub.publish("exp/short", b"short", qos=1, properties=_props(MessageExpiryInterval=10))
    pub.publish("exp/long", b"long", qos=1, properties=_props(MessageExpiryInterval=100))
    pub.publish("exp/none", b"none", qos=1)
    pub.close()
    broker.clock.advance(30)
    dev = Client(broker.port, "dev", V5, clean=False, properties=props)
    got = [dev.expect(), dev.expect()]
    assert [m.payload for m in got] == [b"long", b"none"]
    assert 60 <= got[0].properties.MessageExpiryInterval <= 70  # what is left of it
    dev.expect_none()
    dev.close()


def test_no_local_v5(broker):
    c = Client(broker.port, "c", V5)
    c.subscribe("echo/#", noLocal=True)
    other = Client(broker.port, "other", V5)
    c.publish("echo/mine", b"1", qos=1)
    other.publish("echo/theirs", b"2", qos=1)
    assert c.expect().topic == "echo/theirs"
    c.expect_none(0.2)
    c.close()
    other.close()


# reserved topics, lifecycle events, bus -----------------------------------------------------
@pytest.mark.parametrize("topic", ["$aws/things/t1/shadow/update", "$aws/events/presence/connected/x", "$SYS/x"])
def test_reserved_topics_refused_without_handler(broker, topic):
    c5 = Client(broker.port, "c5", V5)
    assert c5.publish(topic, b"{}", qos=1) == codec.NOT_AUTHORIZED
    c5.close()
    c3 = Client(broker.port, "c3", V3)
    c3.publish(topic, b"{}", qos=1, wait=False)
    assert c3.disconnected.wait(WAIT)  # AWS disconnects a 3.1.1 client
    c3.c.loop_stop()


def test_reserved_topics_are_served_by_their_routes(make_broker):
    calls = []

    def serve(publish):
        calls.append((publish.identity.account, publish.topic, publish.payload, publish.parts))
        return publish.parts.get("operation") != "get"  # this door refuses jobs/get

    table = ReservedTopics([
        Route(TopicTemplate("$aws/things/{thing}/shadow/{operation:get|update|delete}"), serve),
        Route(TopicTemplate("$aws/things/{thing}/jobs/{operation}"), serve),
        Route(TopicTemplate("$aws/rules/{rule}/{topic+}"), serve, forward=False),
        Route(TopicTemplate("$aws/things/{thing}/tunnels/{request+}")),  # reserved, nothing serves it yet
    ])
    b = make_broker(reserved_topics=table)
    sub = Client(b.port, "sub", V5)
    sub.subscribe("$aws/things/+/shadow/#")
    sub.subscribe("$aws/rules/#")
    dev = Client(b.port, "dev", V5)
    assert dev.publish("$aws/things/t1/shadow/update", b'{"state":{}}', qos=1) == 0
    assert sub.expect().topic == "$aws/things/t1/shadow/update"  # subscribers see shadow requests
    assert dev.publish("$aws/rules/myRule/data/x", b"ingest", qos=1) == 0
    sub.expect_none(0.2)  # Basic Ingest goes to the rule only
    assert dev.publish("$aws/things/t1/jobs/get", b"{}", qos=1) == codec.NOT_AUTHORIZED  # the door refused
    assert dev.publish("$aws/things/t1/shadow/update/accepted", b"{}", qos=1) == codec.NOT_AUTHORIZED  # no route
    assert dev.publish("$aws/things/t1/tunnels/notify", b"{}", qos=1) == codec.NOT_AUTHORIZED  # no door yet
    assert [c[1] for c in calls] == ["$aws/things/t1/shadow/update", "$aws/rules/myRule/data/x",
                                     "$aws/things/t1/jobs/get"]
    assert calls[0][0] == ACCOUNT
    assert calls[0][3] == {"thing": "t1", "operation": "update"}
    assert calls[1][3] == {"rule": "myRule", "topic": "data/x"}
    sub.close()
    dev.close()


def test_a_will_on_a_reserved_topic_goes_to_its_door_without_a_connection(make_broker):
    calls = []

    def serve(publish):
        calls.append((publish.topic, publish.payload, publish.connection))
        return True

    table = ReservedTopics([Route(TopicTemplate("$aws/things/{thing}/shadow/{operation}"), serve)])
    b = make_broker(reserved_topics=table)
    dev = Client(b.port, "dev", V5, will=("$aws/things/t1/shadow/update", b'{"state":{}}'))
    dev.kill()  # no DISCONNECT: the will goes out
    assert wait_until(lambda: calls)
    assert calls == [("$aws/things/t1/shadow/update", b'{"state":{}}', None)]


def test_lifecycle_events(broker):
    watcher = Client(broker.port, "watcher", V5)
    watcher.subscribe("$aws/events/#")
    hash_sub = Client(broker.port, "hash", V5)
    hash_sub.subscribe("#")
    dev = Client(broker.port, "dev-1", V3, username="alice")
    connected = json.loads(watcher.expect_topic("$aws/events/presence/connected/dev-1").payload)
    assert set(connected) == {"clientId", "timestamp", "eventType", "sessionIdentifier", "principalIdentifier",
                              "ipAddress", "versionNumber"}
    assert connected["clientId"] == "dev-1" and connected["eventType"] == "connected"
    assert connected["principalIdentifier"] == "alice" and connected["ipAddress"] == "127.0.0.1"
    assert abs(connected["timestamp"] / 1000 - time.time()) < 60
    dev.subscribe("a/b")
    dev.c.subscribe([("c/d", 0), ("e/#", 1)])
    sub1 = json.loads(watcher.expect_topic("$aws/events/subscriptions/subscribed/dev-1").payload)
    assert sub1["topics"] == ["a/b"] and sub1["eventType"] == "subscribed"
    assert sub1["sessionIdentifier"] == connected["sessionIdentifier"]
    sub2 = json.loads(watcher.expect_topic("$aws/events/subscriptions/subscribed/dev-1").payload)
    assert sub2["topics"] == ["c/d", "e/#"]
    dev.unsubscribe("a/b")
    unsub = json.loads(watcher.expect_topic("$aws/events/subscriptions/unsubscribed/dev-1").payload)
    assert unsub["topics"] == ["a/b"] and unsub["eventType"] == "unsubscribed"
    dev.close()
    gone = json.loads(watcher.expect_topic("$aws/events/presence/disconnected/dev-1").payload)
    assert gone["clientInitiatedDisconnect"] is True
    assert gone["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert gone["versionNumber"] == connected["versionNumber"]
    dev = Client(broker.port, "dev-1", V3)
    again = json.loads(watcher.expect_topic("$aws/events/presence/connected/dev-1").payload)
    assert again["versionNumber"] > connected["versionNumber"]
    dev.kill()
    lost = json.loads(watcher.expect_topic("$aws/events/presence/disconnected/dev-1").payload)
    assert (lost["disconnectReason"], lost["clientInitiatedDisconnect"]) == ("CONNECTION_LOST", False)
    hash_sub.sync()
    assert all(not m.topic.startswith("$") for m in list(hash_sub.messages.queue))  # '#' skips $ topics
    watcher.close()
    hash_sub.close()


def test_bus_both_ways(broker):
    seen = []
    broker.call(broker.bus.subscribe, lambda a, r, t, p: seen.append((a, r, t, p)))
    sub = Client(broker.port, "sub", V3)
    sub.subscribe("$aws/events/thing/#")
    broker.call(broker.bus.publish, ACCOUNT, REGION, "$aws/events/thing/t1/created", b'{"eventType":"THING_EVENT"}')
    m = sub.expect()
    assert (m.topic, m.payload) == ("$aws/events/thing/t1/created", b'{"eventType":"THING_EVENT"}')
    broker.call(broker.bus.publish, "999999999999", REGION, "$aws/events/thing/t2/created", b"{}")
    sub.expect_none(0.2)  # other accounts' events stay there
    sub.publish("telemetry/1", b"42", qos=1)
    assert (ACCOUNT, REGION, "telemetry/1", b"42") in seen


# authentication and authorization -------------------------------------------------------------
def _authn(info):
    if info.username == "bad":
        return Refusal(codec.BAD_USERNAME_OR_PASSWORD)
    if info.username == "nobody":
        return None
    return Identity(ACCOUNT if info.username != "other" else "210987654321", REGION, principal=info.username or "")


def _authz(identity, action, resource):
    if action == "iot:Connect":
        return not resource.endswith(":client/forbidden")
    if action == "iot:Subscribe":
        return "/secret" not in resource
    if action == "iot:Publish":
        return "/readonly/" not in resource
    if action == "iot:RetainPublish":
        return "/noretain" not in resource
    if action == "iot:Receive":
        return "/hidden" not in resource
    return False


@pytest.mark.parametrize("version", [V3, V5])
def test_connect_refusals(make_broker, version):
    b = make_broker(authenticate=_authn, authorize=_authz)
    cases = [("ok", "dev", 0, 0), ("bad", "dev", 4, codec.BAD_USERNAME_OR_PASSWORD),
             ("nobody", "dev", 5, codec.NOT_AUTHORIZED), ("ok", "forbidden", 5, codec.NOT_AUTHORIZED)]
    for username, client_id, v3_code, v5_code in cases:
        c = Client(b.port, client_id, version, username=username, connect=False)
        c.connect(expect_ok=False)
        assert c.connack[1] == v5_code, (username, client_id)  # paho maps 3.1.1 return codes to reason codes
        c.c.loop_stop()
        c.c.disconnect()
        raw = RawClient.plain(b.port, version)
        ack = raw.connect(client_id, username=username)
        assert ack.reason_code == (v3_code if version == V3 else v5_code)
        if ack.reason_code:
            assert raw.closed()
        raw.close()


@pytest.mark.parametrize("version", [V3, V5])
def test_authorization_refusals(make_broker, version):
    b = make_broker(authenticate=_authn, authorize=_authz)
    c = Client(b.port, "c", version, username="u")
    denied = codec.NOT_AUTHORIZED if version == V5 else 0x80
    rc, mid = c.c.subscribe([("data/#", 1), ("x/secret", 1)])
    assert c._wait(mid) == [1, denied]
    other_account = Client(b.port, "c", version, username="other")  # same id, other account: no takeover
    other_account.subscribe("data/#")
    c.publish("data/hidden", b"no receive", qos=1)
    c.publish("data/ok", b"yes", qos=1)
    assert c.expect().topic == "data/ok"  # iot:Receive denied for data/hidden
    other_account.expect_none(0.2)  # accounts do not see each other's messages
    if version == V5:
        assert c.publish("data/readonly/x", b"", qos=1) == codec.NOT_AUTHORIZED
        assert c.publish("data/noretain", b"r", qos=1, retain=True) == codec.NOT_AUTHORIZED
        assert c.publish("data/ok2", b"still connected", qos=1) == 0
    else:
        c.publish("data/readonly/x", b"", qos=1, wait=False)
        assert c.disconnected.wait(WAIT)  # AWS disconnects a 3.1.1 client on an unauthorized publish
    c.c.loop_stop()
    other_account.close()


def test_async_authenticate_holds_early_packets(make_broker):
    async def authenticate(info):
        await asyncio.sleep(0.05)  # a custom authorizer calling out
        if info.password != b"token":
            return Refusal(codec.NOT_AUTHORIZED, "bad token")
        return Identity(ACCOUNT, REGION, principal="custom")

    b = make_broker(authenticate=authenticate)
    raw = RawClient.plain(b.port, codec.MQTT5)
    # CONNECT and SUBSCRIBE in one write: the SUBSCRIBE waits for the authorizer
    raw.send(encode(Connect("a", codec.MQTT5, username="u", password=b"token"), codec.MQTT5)
             + encode(Subscribe(1, [("t", SubOptions(1))]), codec.MQTT5))
    assert raw.recv().reason_code == 0
    assert raw.recv().reason_codes == [1]
    raw.close()
    raw = RawClient.plain(b.port, codec.MQTT5)
    ack = raw.connect("b", username="u", password=b"nope")
    assert ack.reason_code == codec.NOT_AUTHORIZED and ack.properties["reason_string"] == "bad token"
    assert raw.closed()
