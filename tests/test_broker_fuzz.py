"""Fuzzing the MQTT packet decoder (hypothesis, bounded and seeded): any
bytes either decode or raise MalformedPacket, and no exception escapes a
connection of the real broker, which keeps serving its other clients."""

from __future__ import annotations

import socket

from hypothesis import HealthCheck, given, seed, settings, strategies as st

from localiot.broker import codec
from localiot.broker.codec import MalformedPacket, Subscribe, SubOptions, decode, decode_publish, encode
from localiot.testing import RawClient
from test_broker_mqtt import V3, V5, WAIT, Client, make_broker  # noqa: F401 (fixture)

VALID = [  # seeds that hypothesis mutates: one well-formed packet of each kind a client sends
    encode(codec.Connect("fuzz", codec.MQTT5, properties={"receive_maximum": 5}), codec.MQTT5),
    encode(codec.Connect("fuzz"), codec.MQTT311),
    encode(codec.Publish("a/b", b"x", 1, packet_id=7), codec.MQTT311),
    encode(codec.Publish("a/b", b"x", 0), codec.MQTT311),  # the QoS 0 fast path (Connection._publish_plain)
    encode(codec.Publish("a/b", b"x", 1, packet_id=7, properties={"topic_alias": 1}), codec.MQTT5),
    encode(Subscribe(3, [("a/#", SubOptions(1))]), codec.MQTT5),
    encode(codec.Ack(codec.PUBACK, 9), codec.MQTT311),
]


def _mutate(data: st.DataObject) -> bytes:
    raw = bytearray(data.draw(st.sampled_from(VALID)))
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))] + data.draw(st.binary(max_size=32))
    return bytes(raw)


@seed(12)
@settings(max_examples=1000, deadline=None)
@given(first=st.integers(0, 255), body=st.binary(max_size=300), version=st.sampled_from([None, 4, 5]))
def test_decode_raises_only_malformed_packet(first, body, version):
    try:
        decode(first, body, version)
    except MalformedPacket:
        pass


@seed(12)
@settings(max_examples=1000, deadline=None)
@given(data=st.data())
def test_decode_of_mutated_packets_raises_only_malformed_packet(data):
    raw = _mutate(data)
    if len(raw) < 2:
        return
    version = data.draw(st.sampled_from([None, 4, 5]))
    try:
        decode(raw[0], raw[2:], version)
        if raw[0] & 0xF0 == 0x30:
            decode_publish(raw[0], raw, 2, len(raw), version == 5)
    except MalformedPacket:
        pass


@seed(12)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_exception_escapes_a_connection(make_broker, data):
    b = _fuzz_broker(make_broker)
    raw = RawClient.plain(b.port, data.draw(st.sampled_from([codec.MQTT5, codec.MQTT311])))
    if data.draw(st.booleans()):  # after a CONNECT too, where PUBLISH takes the fast path (v3.1.1 QoS 0: faster)
        assert raw.connect(f"fuzz-{id(data)}").reason_code == 0
    chunks = [_mutate(data) for _ in range(data.draw(st.integers(1, 4)))]
    try:
        for chunk in chunks:
            raw.send(chunk)
        raw.sock.shutdown(socket.SHUT_WR)
        raw.sock.settimeout(2)
        while raw.sock.recv(65536):
            pass
    except OSError:
        pass  # the broker closed the connection: fine
    raw.close()
    b.call(lambda: None)  # everything the broker got has been handled
    assert b.escaped == [], b.escaped


_broker = {}


def _fuzz_broker(make_broker):
    """One broker for all examples (hypothesis calls the test many times with one fixture value)."""
    b = _broker.get(make_broker)
    if b is None:
        b = _broker[make_broker] = make_broker()
        b.escaped = []
        b.loop.call_soon_threadsafe(b.loop.set_exception_handler, lambda loop, ctx: b.escaped.append(ctx))
    return b


def test_oversized_remaining_length_closes_only_that_connection(make_broker):
    b = _fuzz_broker(make_broker)
    raw = RawClient.plain(b.port)
    raw.send(b"\x10\xff\xff\xff\xff\x7f")  # a remaining length past the maximum
    assert raw.closed()
    sub = Client(b.port, "ok", V3)
    sub.subscribe("t", qos=1)
    pub = Client(b.port, "pub", V5)
    pub.publish("t", b"still here", qos=1)
    assert sub.expect().payload == b"still here"
    assert b.escaped == []


def test_a_qos0_publish_too_short_for_its_topic_closes_only_that_connection(make_broker):
    b = _fuzz_broker(make_broker)
    for packet in (b"\x30\x00", b"\x30\x01\x00", b"\x30\x02\x00\x05"):  # the read's last bytes
        raw = RawClient.plain(b.port, codec.MQTT311)
        assert raw.connect("short").reason_code == 0
        raw.send(packet)
        assert raw.recv() is None  # closed (a v3.1.1 client gets no DISCONNECT)
        raw.close()
    b.call(lambda: None)
    assert b.escaped == [], b.escaped
    other = RawClient.plain(b.port, codec.MQTT311)
    assert other.connect("after-short").reason_code == 0
    other.close()
