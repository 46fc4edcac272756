"""The MQTT broker end to end: paho-mqtt 2.x clients (MQTT 3.1.1 and 5) and raw
sockets against a Broker on a free port, on its own event loop thread, with a
real SQLite store in a temporary data directory."""

from __future__ import annotations

import asyncio
import json
import queue
import socket
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from localiot.broker import Broker, Limits, codec
from localiot.broker.codec import Subscribe, SubOptions, Will
from localiot.broker.retained import get_retained, list_retained
from localiot.bus import Bus
from localiot.clock import Clock
from localiot.config import Config
from localiot.runtime import Runtime
from localiot.store import open_store
from localiot.testing import RawClient, wait_until

ACCOUNT, REGION = "123456789012", "us-east-1"
V3, V5 = mqtt.MQTTv311, mqtt.MQTTv5
WAIT = 5.0


class BrokerThread:
    """A Broker with its store, clock and bus, on an event loop in a thread."""

    def __init__(self, data_dir, **kw):
        self.data_dir = data_dir
        self.kw = kw
        self.clock = Clock()
        self.bus = Bus()
        self.loop = None

    def start(self) -> "BrokerThread":
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        config = Config.from_env(environ={}, data_dir=str(self.data_dir), default_account=ACCOUNT,
                                 default_region=REGION)
        self.runtime = Runtime(config, self.clock, self.bus)
        self.store = open_store(str(self.data_dir / "localiot.db"))
        self.broker = Broker(self.runtime, self.store, **self.kw)
        self.port = self.run(self.broker.start_tcp("127.0.0.1", 0))
        return self

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)

    def call(self, fn, *args, **kw):
        async def go():
            return fn(*args, **kw)
        return self.run(go())

    def stop(self) -> None:
        self.run(self.broker.stop())
        self.call(self.store.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT)
        self.loop.close()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def make_broker(tmp_path):
    started = []

    def make(**kw):
        b = BrokerThread(tmp_path, **kw).start()
        started.append(b)
        return b

    yield make
    for b in started:
        if b.loop is not None and not b.loop.is_closed():
            b.stop()


@pytest.fixture
def broker(make_broker):
    return make_broker()


class Client:
    """A paho client that records what it gets, with waits instead of sleeps."""

    def __init__(self, port, client_id="", version=V3, clean=True, will=None, keepalive=60, username=None,
                 password=None, properties=None, connect=True):
        kw = {"clean_session": clean} if version == V3 else {}
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version,
                             reconnect_on_failure=False, **kw)
        self.port, self.version, self.clean, self.keepalive = port, version, clean, keepalive
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.acks: dict[int, threading.Event] = {}
        self.results: dict[int, object] = {}
        self.connack = None
        self.disconnect_reason = None
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = self._on_ack
        self.c.on_unsubscribe = self._on_ack
        self.c.on_publish = self._on_publish
        if will:
            self.c.will_set(*will)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.properties = properties
        if connect:
            self.connect()

    def _on_connect(self, c, u, flags, rc, props):
        self.connack = (flags.session_present, rc.value, props)
        self.connected.set()

    def _on_disconnect(self, c, u, flags, rc, props):
        self.disconnect_reason = rc.value
        self.disconnected.set()

    def _on_ack(self, c, u, mid, codes, props):
        self.results[mid] = [code.value for code in codes]
        self.acks.setdefault(mid, threading.Event()).set()

    def _on_publish(self, c, u, mid, rc, props):
        self.results[mid] = rc.value
        self.acks.setdefault(mid, threading.Event()).set()

    def connect(self, expect_ok=True):
        kw = {}
        if self.version == V5:
            kw["clean_start"] = self.clean
            kw["properties"] = self.properties
        self.c.connect("127.0.0.1", self.port, keepalive=self.keepalive, **kw)
        self.c.loop_start()
        assert self.connected.wait(WAIT), "no CONNACK"
        if expect_ok:
            assert self.connack[1] == 0, f"refused: {self.connack[1]}"
        return self.connack

    def _wait(self, mid):
        assert self.acks.setdefault(mid, threading.Event()).wait(WAIT), "no ack"
        return self.results[mid]

    def subscribe(self, topic, qos=1, **opts):
        if self.version == V5:
            rc, mid = self.c.subscribe(topic, options=mqtt.SubscribeOptions(qos=qos, **opts))
        else:
            rc, mid = self.c.subscribe(topic, qos)
        return self._wait(mid)

    def unsubscribe(self, *topics):
        rc, mid = self.c.unsubscribe(list(topics))
        return self._wait(mid)

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, wait=True):
        info = self.c.publish(topic, payload, qos, retain, properties)
        if qos and wait:
            return self._wait(info.mid)
        return info

    def expect(self, timeout=WAIT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no message arrived") from None

    def expect_topic(self, topic, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            m = self.expect(max(0.01, deadline - time.monotonic()))
            if m.topic == topic:
                return m

    def expect_none(self, timeout=0.3):
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {m.topic}: {m.payload!r}")

    def sync(self):
        """A QoS 1 round trip: everything published before it has been routed."""
        self.publish("sync/" + str(id(self)), b"", qos=1)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()

    def kill(self):
        """Drop the TCP connection without DISCONNECT (abnormal end)."""
        self.c.socket().shutdown(socket.SHUT_RDWR)
        self.c.loop_stop()


# basics ---------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V3, V5])
def test_publish_subscribe_qos0_and_qos1(broker, version):
    sub = Client(broker.port, "sub", version)
    assert sub.subscribe("room/+/temp", qos=1) == [1]
    assert sub.subscribe("room/#", qos=0) == [0]
    pub = Client(broker.port, "pub", version)
    pub.publish("room/1/temp", b"21.5", qos=0)
    assert pub.publish("room/2/temp", b"22", qos=1) == 0
    first, second = sub.expect(), sub.expect()
    assert (first.topic, first.payload, first.qos) == ("room/1/temp", b"21.5", 0)
    assert (second.topic, second.payload, second.qos) == ("room/2/temp", b"22", 1)  # highest QoS of both matches
    sub.expect_none()
    pub.publish("room/x", b"q0", qos=1)
    m = sub.expect()
    assert (m.topic, m.qos) == ("room/x", 0)
    assert sub.unsubscribe("room/#") == ([0] if version == V5 else [])
    pub.publish("room/y", b"", qos=1)
    sub.expect_none()
    sub.close()
    pub.close()


def test_cross_version_delivery(broker):
    v3 = Client(broker.port, "v3", V3)
    v5 = Client(broker.port, "v5", V5)
    v3.subscribe("x/#")
    v5.subscribe("x/#")
    v5.publish("x/from5", b"a", qos=1, properties=_props(UserProperty=[("k", "v")]))
    v3.publish("x/from3", b"b", qos=1)
    assert {v3.expect().topic, v3.expect().topic} == {"x/from5", "x/from3"}
    got = {m.topic: m for m in (v5.expect(), v5.expect())}
    assert got["x/from5"].properties.UserProperty == [("k", "v")]
    v3.close()
    v5.close()


def _props(packet=PacketTypes.PUBLISH, **values):
    p = Properties(packet)
    for k, v in values.items():
        setattr(p, k, v)
    return p


# retained -------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V3, V5])
def test_retained_delivery_and_deletion(broker, version):
    pub = Client(broker.port, "pub", version)
    pub.publish("cfg/a", b"A", qos=1, retain=True)
    pub.publish("cfg/b", b"B", qos=0, retain=True)
    sub = Client(broker.port, "sub", version)
    sub.subscribe("cfg/+", qos=1)
    got = {m.topic: m for m in (sub.expect(), sub.expect())}
    assert got["cfg/a"].payload == b"A" and got["cfg/a"].retain and got["cfg/a"].qos == 1
    assert got["cfg/b"].payload == b"B" and got["cfg/b"].qos == 0
    pub.publish("cfg/a", b"A2", qos=1, retain=True)
    live = sub.expect()
    assert (live.payload, live.retain) == (b"A2", False)  # live delivery clears RETAIN
    pub.publish("cfg/a", b"", qos=1, retain=True)  # an empty retained payload deletes
    assert sub.expect().payload == b""
    later = Client(broker.port, "later", version)
    later.subscribe("cfg/#")
    assert later.expect().topic == "cfg/b"
    later.expect_none()
    with broker.store.transaction(ACCOUNT, REGION) as tx:
        assert broker.call(lambda: get_retained(tx, "cfg/a")) is None
    for c in (pub, sub, later):
        c.close()


def test_retain_handling_and_retain_as_published_v5(broker):
    pub = Client(broker.port, "pub", V5)
    pub.publish("r/t", b"kept", qos=1, retain=True)
    never = Client(broker.port, "never", V5)
    never.subscribe("r/#", retainHandling=2)
    never.expect_none(0.2)
    new_only = Client(broker.port, "new-only", V5)
    new_only.subscribe("r/#", retainHandling=1)
    assert new_only.expect().payload == b"kept"
    new_only.subscribe("r/#", retainHandling=1)  # not new: nothing again
    new_only.expect_none(0.2)
    rap = Client(broker.port, "rap", V5)
    rap.subscribe("live/#", retainAsPublished=True)
    pub.publish("live/x", b"1", qos=1, retain=True)
    assert rap.expect().retain
    for c in (pub, never, new_only, rap):
        c.close()


def test_retained_api_functions_and_http_publish(broker):
    sub = Client(broker.port, "sub", V5)
    sub.subscribe("api/#")
    broker.call(broker.broker.publish, ACCOUNT, REGION, "api/one", b'{"x":1}', 1, True,
                {"user_property": [("src", "http")]})
    m = sub.expect()
    assert (m.topic, m.payload, m.properties.UserProperty) == ("api/one", b'{"x":1}', [("src", "http")])
    broker.call(broker.broker.publish, ACCOUNT, REGION, "api/two", b"22", 0, True)

    def read():
        with broker.store.transaction(ACCOUNT, REGION, write=False) as tx:
            return get_retained(tx, "api/one"), list_retained(tx), list_retained(tx, after="api/one", limit=5)

    one, listed, after = broker.call(read)
    assert one["payload"] == b'{"x":1}' and one["qos"] == 1 and one["userProperties"] == [("src", "http")]
    assert [r["topic"] for r in listed] == ["api/one", "api/two"]
    assert listed[1]["payloadSize"] == 2 and listed[1]["qos"] == 0 and listed[1]["lastModifiedTime"] > 0
    assert [r["topic"] for r in after] == ["api/two"]
    sub.close()


def test_retained_topic_quota(make_broker):
    b = make_broker(limits=Limits(retained_topics_max=2))
    pub = Client(b.port, "pub", V5)
    assert pub.publish("q/1", b"1", qos=1, retain=True) == 0
    assert pub.publish("q/2", b"2", qos=1, retain=True) == 0
    assert pub.publish("q/3", b"3", qos=1, retain=True) == codec.QUOTA_EXCEEDED
    assert pub.publish("q/1", b"1b", qos=1, retain=True) == 0  # replacing is fine
    pub.close()


# persistence across restarts --------------------------------------------------------
@pytest.mark.parametrize("version", [V3, V5])
def test_persistent_session_and_retained_survive_restart(make_broker, version):
    b = make_broker()
    props = _props(PacketTypes.CONNECT, SessionExpiryInterval=3600) if version == V5 else None
    dev = Client(b.port, "dev", version, clean=False, properties=props)
    assert dev.connack[0] is False
    dev.subscribe("cmd/dev", qos=1)
    dev.close()
    pub = Client(b.port, "pub", version)
    pub.publish("cmd/dev", b"while-offline", qos=1)
    pub.publish("cmd/dev", b"qos0-not-kept", qos=0)
    pub.publish("state/dev", b"retained", qos=1, retain=True)
    pub.close()
    b.restart()
    dev = Client(b.port, "dev", version, clean=False, properties=props)
    assert dev.connack[0] is True  # session present
    m = dev.expect()
    assert (m.topic, m.payload, m.qos) == ("cmd/dev", b"while-offline", 1)
    dev.expect_none()
    dev.subscribe("state/#")
    assert dev.expect().payload == b"retained"
    dev.close()
    clean = Client(b.port, "dev", version, clean=True)  # a clean start ends the session
    assert clean.connack[0] is False
    clean.close()


def test_session_queue_quota_and_expiry(make_broker):
    b = make_broker(limits=Limits(queued_max=3))
    dev = Client(b.port, "dev", V3, clean=False)
    dev.subscribe("q", qos=1)
    dev.close()
    pub = Client(b.port, "pub", V3)
    for i in range(5):
        pub.publish("q", str(i).encode(), qos=1)
    pub.close()
    dev = Client(b.port, "dev", V3, clean=False)
    assert [dev.expect().payload for _ in range(3)] == [b"0", b"1", b"2"]
    dev.expect_none()
    dev.close()
    assert wait_until(lambda: not b.call(b.broker.is_connected, ACCOUNT, REGION, "dev"))
    b.clock.advance(3601)  # default expiry: one hour after disconnecting
    b.call(b.broker.sweep)
    dev = Client(b.port, "dev", V3, clean=False)
    assert dev.connack[0] is False
    dev.close()


def test_inflight_qos1_redelivered_with_dup(broker):
    raw = RawClient.plain(broker.port)
    assert raw.connect("dev", clean_start=False).reason_code == 0
    raw.send(Subscribe(1, [("t", SubOptions(1))]))
    assert raw.recv().reason_codes == [1]
    pub = Client(broker.port, "pub", V3)
    pub.publish("t", b"unacked", qos=1)
    first = raw.recv()
    assert (first.payload, first.dup, first.qos) == (b"unacked", False, 1)
    raw.close()  # never acknowledged
    assert wait_until(lambda: not broker.call(broker.broker.is_connected, ACCOUNT, REGION, "dev"))
    again = RawClient.plain(broker.port)
    ack = again.connect("dev", clean_start=False)
    assert ack.session_present
    resent = again.recv()
    assert (resent.payload, resent.dup, resent.packet_id) == (b"unacked", True, first.packet_id)
    again.send(codec.Ack(codec.PUBACK, resent.packet_id))
    again.close()
    pub.close()


# connection rules --------------------------------------------------------------------
def test_presence_version_numbers_count_a_client_ids_connections(broker):
    """versionNumber: 0 at a client id's first connection, one more at each next one (a takeover
    too); a disconnected event has its connection's number."""
    watcher = Client(broker.port, "watcher", V5)
    watcher.subscribe("$aws/events/presence/#")

    def version(kind):
        return json.loads(watcher.expect_topic(f"$aws/events/presence/{kind}/counted").payload)["versionNumber"]
    first = Client(broker.port, "counted")
    assert version("connected") == 0
    first.close()
    assert version("disconnected") == 0
    second = Client(broker.port, "counted")
    assert version("connected") == 1
    third = Client(broker.port, "counted")  # takes the client id over
    assert (version("disconnected"), version("connected")) == (1, 2)
    third.close()
    assert version("disconnected") == 2
    second.close()
    watcher.close()


@pytest.mark.parametrize("version", [V3, V5])
def test_duplicate_client_id_takes_over(broker, version):
    watcher = Client(broker.port, "watcher", V5)
    watcher.subscribe("$aws/events/presence/#")
    first = Client(broker.port, "dup", version, will=("wills/dup", b"gone", 1))
    watcher.expect_topic("$aws/events/presence/connected/dup")
    watcher.subscribe("wills/#")
    second = Client(broker.port, "dup", version)
    assert first.disconnected.wait(WAIT)
    if version == V5:
        assert first.disconnect_reason == codec.SESSION_TAKEN_OVER
    event = json.loads(watcher.expect_topic("$aws/events/presence/disconnected/dup").payload)
    assert event["disconnectReason"] == "DUPLICATE_CLIENTID"
    assert event["clientInitiatedDisconnect"] is False
    assert watcher.expect_topic("wills/dup").payload == b"gone"  # AWS sends the will on takeover
    assert second.publish("x", b"", qos=1) == 0
    for c in (watcher, second):
        c.close()


@pytest.mark.parametrize("version", [V3, V5])
def test_last_will_on_abnormal_disconnect_only(broker, version):
    sub = Client(broker.port, "sub", version)
    sub.subscribe("lwt/#")
    a = Client(broker.port, "a", version, will=("lwt/a", b"a died", 1, False))
    a.kill()
    m = sub.expect()
    assert (m.topic, m.payload) == ("lwt/a", b"a died")
    b = Client(broker.port, "b", version, will=("lwt/b", b"b died", 1, False))
    b.close()  # DISCONNECT: no will
    sub.expect_none()
    sub.close()


def test_will_delay_and_session_end_v5(broker):
    sub = Client(broker.port, "sub", V5)
    sub.subscribe("lwt/#")
    dev = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev", protocol=V5)
    dev.will_set("lwt/dev", b"late", 1, properties=_props(PacketTypes.WILLMESSAGE, WillDelayInterval=30))
    dev.connect("127.0.0.1", broker.port, properties=_props(PacketTypes.CONNECT, SessionExpiryInterval=300))
    dev.loop_start()
    assert wait_until(lambda: broker.call(broker.broker.is_connected, ACCOUNT, REGION, "dev"))
    dev.socket().shutdown(socket.SHUT_RDWR)
    dev.loop_stop()
    assert wait_until(lambda: not broker.call(broker.broker.is_connected, ACCOUNT, REGION, "dev"))
    broker.call(broker.broker.sweep)
    sub.expect_none(0.2)
    broker.clock.advance(31)
    broker.call(broker.broker.sweep)
    assert sub.expect().payload == b"late"
    sub.close()


def test_keep_alive_bounds_announced_v5(broker):
    c = Client(broker.port, "k1", V5, keepalive=5)
    assert c.connack[2].ServerKeepAlive == 30  # below 30 s is raised to 30
    assert c.connack[2].MaximumQoS == 1 and c.connack[2].TopicAliasMaximum == 8
    assert c.connack[2].RetainAvailable == 1 and c.connack[2].SharedSubscriptionAvailable == 1
    c.close()
    c = Client(broker.port, "k2", V5, keepalive=5000)
    assert c.connack[2].ServerKeepAlive == 1200
    c.close()


def test_keep_alive_timeout(make_broker):
    b = make_broker(limits=Limits(keepalive_min=1, sweep_interval=0.1))
    watcher = Client(b.port, "watcher", V5)
    watcher.subscribe("$aws/events/presence/disconnected/#")
    watcher.subscribe("lwt/#")
    raw = RawClient.plain(b.port)
    assert raw.connect("sleepy", keep_alive=1, will=Will("lwt/sleepy", b"timeout")).reason_code == 0
    assert raw.closed()  # after 1.5 x keep-alive without a packet
    event = json.loads(watcher.expect_topic("$aws/events/presence/disconnected/sleepy").payload)
    assert event["disconnectReason"] == "MQTT_KEEP_ALIVE_TIMEOUT"
    assert watcher.expect_topic("lwt/sleepy").payload == b"timeout"
    watcher.close()


def test_client_id_rules(broker):
    raw = RawClient.plain(broker.port)
    assert raw.connect("", clean_start=True).reason_code == 0  # v3 empty id with a clean session
    raw.close()
    raw = RawClient.plain(broker.port)
    assert raw.connect("", clean_start=False).reason_code == codec.V3_ID_REJECTED
    raw.close()
    raw = RawClient.plain(broker.port)
    assert raw.connect("x" * 129).reason_code == codec.V3_ID_REJECTED
    raw.close()
    raw = RawClient.plain(broker.port, codec.MQTT5)
    ack = raw.connect("")
    assert ack.reason_code == 0 and ack.properties["assigned_client_identifier"].startswith("localiot-")
    raw.close()
    raw = RawClient.plain(broker.port, codec.MQTT5)
    assert raw.connect("y" * 129).reason_code == codec.CLIENT_IDENTIFIER_NOT_VALID
    raw.close()
    raw = RawClient.plain(broker.port)
    raw.send(b"\x10\x0c\x00\x04MQTT\x03\x02\x00\x3c\x00\x00")  # MQTT 3.1 level 3
    assert raw.recv().reason_code == codec.V3_BAD_VERSION
    raw.close()


# QoS 2, limits, malformed ---------------------------------------------------------------
def test_qos2_v3(broker):
    c = Client(broker.port, "c", V3)
    assert c.subscribe("q2/#", qos=2) == [1]  # granted QoS 1
    c.publish("q2/x", b"two", qos=2, wait=False)
    assert c.disconnected.wait(WAIT)  # a QoS 2 publish closes a 3.1.1 connection
    c.c.loop_stop()


def test_qos2_v5(broker):
    c = Client(broker.port, "c", V5)
    assert c.subscribe("q2/#", qos=2) == [1]
    c.publish("q2/x", b"two", qos=2, wait=False)
    assert c.disconnected.wait(WAIT)
    assert c.disconnect_reason == codec.QOS_NOT_SUPPORTED
    c.c.loop_stop()


@pytest.mark.parametrize("version", [V3, V5])
def test_payload_limit(broker, version):
    sub = Client(broker.port, "sub", version)
    sub.subscribe("big")
    c = Client(broker.port, "c", version)
    c.publish("big", b"x" * (128 * 1024), qos=1)  # exactly 128 KB is fine
    assert len(sub.expect().payload) == 128 * 1024
    c.publish("big", b"x" * (128 * 1024 + 1), qos=1, wait=False)
    assert c.disconnected.wait(WAIT)
    if version == V5:
        assert c.disconnect_reason == codec.PACKET_TOO_LARGE
    sub.expect_none(0.2)
    c.c.loop_stop()
    sub.close()


@pytest.mark.parametrize("version", [V3, V5])
def test_subscription_limits(broker, version):
    failure = codec.QUOTA_EXCEEDED if version == V5 else 0x80
    c = Client(broker.port, "c", version)
    nine = [(f"t/{i}", 1) for i in range(9)]
    rc, mid = c.c.subscribe(nine)
    assert c._wait(mid) == [failure] * 9  # more than 8 filters in one SUBSCRIBE
    for start in range(0, 48, 8):
        rc, mid = c.c.subscribe([(f"s/{i}", 0) for i in range(start, start + 8)])
        assert c._wait(mid) == [0] * 8
    rc, mid = c.c.subscribe([("s/48", 0), ("s/49", 0), ("s/50", 0), ("s/0", 1)])
    assert c._wait(mid) == [0, 0, failure, 1]  # 50 per connection; re-subscribing is not new
    bad = codec.TOPIC_FILTER_INVALID if version == V5 else 0x80
    rc, mid = c.c.subscribe([("a/b/c/d/e/f/g/h/i", 0)])
    assert c._wait(mid) == [bad]
    c.close()


def test_malformed_packet_closes_v5_with_reason(broker):
    raw = RawClient.plain(broker.port, codec.MQTT5)
    assert raw.connect("m").reason_code == 0
    raw.send(b"\x36\x04\x00\x01a\x00")  # PUBLISH with QoS 3
    d = raw.recv()
    assert d.type == codec.DISCONNECT and d.reason_code == codec.MALFORMED_PACKET
    assert raw.closed()
    raw = RawClient.plain(broker.port)
    raw.send(b"\x30\x03\x00\x01a")  # PUBLISH before CONNECT
    assert raw.closed()
