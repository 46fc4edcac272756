"""MQTT 3.1.1 / 5.0 packet codec: round trips, properties, incremental framing, malformed input."""

import pytest

from localiot.broker import codec
from localiot.broker.codec import (
    Ack, Auth, Connack, Connect, Disconnect, MalformedPacket, Parser, Pingreq, Pingresp, Publish, Suback,
    Subscribe, SubOptions, Unsuback, Unsubscribe, Will, decode, encode, split_packet,
)

V3, V5 = codec.MQTT311, codec.MQTT5


def roundtrip(packet, version):
    raw = encode(packet, version)
    framed = split_packet(raw)
    assert framed is not None and framed[2] == len(raw)
    first, start, end = framed
    return decode(first, raw[start:end], version)


ALL_PROPERTY_VALUES = {
    "payload_format_indicator": 1, "message_expiry_interval": 3600, "content_type": "application/json",
    "response_topic": "reply/to", "correlation_data": b"\x00\x01corr", "subscription_identifier": [7, 268435455],
    "session_expiry_interval": 120, "assigned_client_identifier": "abc", "server_keep_alive": 30,
    "authentication_method": "m", "authentication_data": b"d", "request_problem_information": 0,
    "will_delay_interval": 5, "request_response_information": 1, "response_information": "ri",
    "server_reference": "other:1883", "reason_string": "because", "receive_maximum": 100,
    "topic_alias_maximum": 8, "topic_alias": 3, "maximum_qos": 1, "retain_available": 1,
    "user_property": [("k", "v"), ("k", "v2"), ("ü", "\u2603")], "maximum_packet_size": 149504,
    "wildcard_subscription_available": 1, "subscription_identifier_available": 0,
    "shared_subscription_available": 1,
}


def test_varint_boundaries():
    for n, raw in [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16383, b"\xff\x7f"), (16384, b"\x80\x80\x01"),
                   (2097151, b"\xff\xff\x7f"), (2097152, b"\x80\x80\x80\x01"), (268435455, b"\xff\xff\xff\x7f")]:
        assert codec.encode_varint(n) == raw
        assert codec.decode_varint(raw, 0, len(raw)) == (n, len(raw))
    assert codec.decode_varint(b"\x80\x80", 0, 2) is None  # incomplete
    with pytest.raises(MalformedPacket):
        codec.decode_varint(b"\x80\x80\x80\x80\x01", 0, 5)
    with pytest.raises(ValueError):
        codec.encode_varint(268435456)


@pytest.mark.parametrize("version", [V3, V5])
def test_connect_roundtrip(version):
    props = {"session_expiry_interval": 60, "receive_maximum": 10, "user_property": [("a", "b")]} if version == V5 else {}
    will_props = {"will_delay_interval": 5, "content_type": "text/plain"} if version == V5 else {}
    c = Connect("dev-1", version, False, 45, "user", b"\x00pw", Will("w/t", b"bye", 1, True, will_props), props)
    got = roundtrip(c, version)
    assert got == c


def test_connect_minimal_and_v5_password_without_username():
    assert roundtrip(Connect("", V3), V3) == Connect("", V3)
    c = Connect("x", V5, password=b"secret")
    assert roundtrip(c, V5).password == b"secret"


def test_connect_unknown_level_is_reported_not_raised():
    raw = encode(Connect("x", V3))
    raw = raw.replace(b"MQTT\x04", b"MQTT\x03")
    first, start, end = split_packet(raw)
    assert decode(first, raw[start:end], None).protocol_level == 3


@pytest.mark.parametrize("mutate, code", [
    (lambda b: b.replace(b"MQTT\x04\x02", b"MQTT\x04\x03"), codec.MALFORMED_PACKET),  # reserved flag
    (lambda b: b.replace(b"MQTT\x04\x02", b"MQTT\x04\x1a"), codec.MALFORMED_PACKET),  # will QoS 3 (with will flag)
    (lambda b: b.replace(b"MQTT\x04\x02", b"MQTT\x04\x22"), codec.MALFORMED_PACKET),  # will retain without will
    (lambda b: b.replace(b"MQTT\x04\x02", b"MQTT\x04\x42"), codec.MALFORMED_PACKET),  # v3 password, no user name
    (lambda b: b.replace(b"\x00\x04MQTT", b"\x00\x04MQTX"), codec.UNSUPPORTED_PROTOCOL_VERSION),
])
def test_connect_malformed(mutate, code):
    raw = mutate(encode(Connect("abc", V3)))
    first, start, end = split_packet(raw)
    with pytest.raises(MalformedPacket) as e:
        decode(first, raw[start:end], None)
    assert e.value.reason_code == code


@pytest.mark.parametrize("version", [V3, V5])
def test_connack_roundtrip(version):
    props = {"maximum_qos": 1, "topic_alias_maximum": 8, "server_keep_alive": 30} if version == V5 else {}
    assert roundtrip(Connack(True, 0, props), version) == Connack(True, 0, props)
    assert roundtrip(Connack(False, 5), version) == Connack(False, 5)


@pytest.mark.parametrize("version", [V3, V5])
def test_publish_roundtrip(version):
    props = {"payload_format_indicator": 1, "message_expiry_interval": 10, "topic_alias": 2,
             "user_property": [("x", "y")], "correlation_data": b"c", "response_topic": "r"} if version == V5 else {}
    for qos in (0, 1, 2):
        p = Publish("a/b/ü", b"\x00payload" * 3, qos, True, qos > 0, 77 if qos else None, props)
        assert roundtrip(p, version) == p
    assert roundtrip(Publish("t", b""), version).payload == b""


@pytest.mark.parametrize("version", [V3, V5])
@pytest.mark.parametrize("ptype", [codec.PUBACK, codec.PUBREC, codec.PUBREL, codec.PUBCOMP])
def test_acks_roundtrip(version, ptype):
    assert roundtrip(Ack(ptype, 1), version) == Ack(ptype, 1)
    if version == V5:
        a = Ack(ptype, 65535, 0x87, {"reason_string": "no", "user_property": [("a", "b")]})
        assert roundtrip(a, V5) == a
        assert roundtrip(Ack(ptype, 9, 0x10), V5) == Ack(ptype, 9, 0x10)
    else:  # v3 carries no reason code
        assert roundtrip(Ack(ptype, 9, 0x87), V3) == Ack(ptype, 9)


def test_pubrel_fixed_flags():
    assert encode(Ack(codec.PUBREL, 3))[0] == 0x62


@pytest.mark.parametrize("version", [V3, V5])
def test_subscribe_family_roundtrip(version):
    if version == V5:
        subs = [("a/+", SubOptions(1, True, True, 2)), ("$share/g/b/#", SubOptions(0, False, False, 1))]
        props = {"user_property": [("u", "1")]}
    else:
        subs = [("a/+", SubOptions(1)), ("b/#", SubOptions(0))]
        props = {}
    assert roundtrip(Subscribe(10, subs, props), version) == Subscribe(10, subs, props)
    assert roundtrip(Suback(10, [0, 1, 0x80], props), version) == Suback(10, [0, 1, 0x80], props)
    assert roundtrip(Unsubscribe(11, ["a/+", "b"], props), version) == Unsubscribe(11, ["a/+", "b"], props)
    expected = Unsuback(11, [0, 0x11], props) if version == V5 else Unsuback(11)
    assert roundtrip(Unsuback(11, [0, 0x11], props), version) == expected


@pytest.mark.parametrize("version", [V3, V5])
def test_ping_and_disconnect(version):
    assert encode(Pingreq(), version) == b"\xc0\x00"
    assert encode(Pingresp(), version) == b"\xd0\x00"
    assert isinstance(roundtrip(Pingreq(), version), Pingreq)
    assert isinstance(roundtrip(Pingresp(), version), Pingresp)
    assert roundtrip(Disconnect(), version) == Disconnect()
    if version == V5:
        d = Disconnect(0x8E, {"reason_string": "taken over", "session_expiry_interval": 0})
        assert roundtrip(d, V5) == d
    else:
        assert encode(Disconnect(0x8E), V3) == b"\xe0\x00"


def test_auth_only_in_v5():
    a = Auth(0x18, {"authentication_method": "SCRAM", "authentication_data": b"\x01"})
    assert roundtrip(a, V5) == a
    with pytest.raises(MalformedPacket):
        decode(0xF0, b"", V3)
    with pytest.raises(ValueError):
        encode(a, V3)


def test_every_property_roundtrips_typed():
    for name, value in ALL_PROPERTY_VALUES.items():
        pid, kind = codec.PROPERTY_IDS[name]
        allowed = codec.PROPERTIES[pid][2]
        ptype = next(iter(sorted(allowed - {codec.WILL}))) if allowed - {codec.WILL} else codec.WILL
        raw = codec.encode_properties({name: value})
        r = codec._Reader(raw)
        assert codec.decode_properties(r, ptype) == {name: value}, name
        assert r.remaining() == 0


def test_property_errors():
    def decode_props(raw, ptype=codec.PUBLISH):
        return codec.decode_properties(codec._Reader(codec.encode_varint(len(raw)) + raw), ptype)

    with pytest.raises(MalformedPacket) as e:  # unknown property id
        decode_props(b"\x7f\x00")
    assert e.value.reason_code == codec.MALFORMED_PACKET
    with pytest.raises(MalformedPacket) as e:  # not allowed in this packet
        decode_props(b"\x11\x00\x00\x00\x01")
    assert e.value.reason_code == codec.PROTOCOL_ERROR
    with pytest.raises(MalformedPacket) as e:  # twice
        decode_props(b"\x01\x01\x01\x00")
    assert e.value.reason_code == codec.PROTOCOL_ERROR
    with pytest.raises(MalformedPacket):  # boolean out of range
        decode_props(b"\x01\x02")
    with pytest.raises(MalformedPacket):  # receive maximum 0
        decode_props(b"\x21\x00\x00", codec.CONNECT)
    with pytest.raises(MalformedPacket):  # truncated string
        decode_props(b"\x03\x00\x05ab")
    with pytest.raises(MalformedPacket):  # property length past the packet
        codec.decode_properties(codec._Reader(b"\x05\x01"), codec.PUBLISH)
    assert decode_props(b"\x26\x00\x01a\x00\x01b\x26\x00\x01a\x00\x01c") == {"user_property": [("a", "b"), ("a", "c")]}


@pytest.mark.parametrize("first, body, version", [
    (0x00, b"", V3),  # reserved type 0
    (0x36, b"\x00\x01a\x00\x01", V3),  # QoS 3
    (0x38, b"\x00\x01a", V3),  # DUP at QoS 0
    (0x32, b"\x00\x01a\x00\x00", V3),  # packet id 0
    (0x30, b"\x00\x03a/+", V3),  # wildcard in topic name
    (0x30, b"\x00\x02\xc3\x28", V3),  # invalid UTF-8
    (0x30, b"\x00\x03a\x00b", V3),  # U+0000
    (0x30, b"\x00\x09ab", V3),  # topic longer than the packet
    (0x80, b"\x00\x01\x00\x01a\x00", V3),  # SUBSCRIBE with flags 0
    (0x82, b"\x00\x01", V3),  # SUBSCRIBE without filters
    (0x82, b"\x00\x01\x00\x01a\x03", V3),  # subscription QoS 3
    (0x82, b"\x00\x01\x00\x01a\x04", V3),  # v3 reserved option bits
    (0x82, b"\x00\x01\x00\x00\x01a\x30", V5),  # retain handling 3
    (0x82, b"\x00\x01\x00\x00\x01a\x40", V5),  # v5 reserved option bits
    (0xA2, b"\x00\x01", V3),  # UNSUBSCRIBE without filters
    (0xC0, b"\x00", V3),  # PINGREQ with a body
    (0xC1, b"", V3),  # PINGREQ with flags
    (0x40, b"\x00\x01\x00", V3),  # v3 PUBACK too long
    (0x40, b"\x00", V3),  # PUBACK too short
    (0xE0, b"\x00", V3),  # v3 DISCONNECT with a body
])
def test_malformed_packets(first, body, version):
    with pytest.raises(MalformedPacket):
        decode(first, body, version)


def test_publish_topic_wildcard_is_topic_name_invalid():
    with pytest.raises(MalformedPacket) as e:
        decode(0x30, b"\x00\x03a/#", V3)
    assert e.value.reason_code == codec.TOPIC_NAME_INVALID


@pytest.mark.parametrize("version", [V3, V5])
def test_decode_publish_in_place_is_the_decoder_of_both_paths(version):
    """codec.decode_publish reads a PUBLISH inside a larger buffer, as the broker's
    connection does, and gives what `decode` builds its Publish from."""
    v5 = version == V5
    plain = encode(Publish("a/b", b"payload", 1, packet_id=7), version)
    with_props = encode(Publish("a/b", b"p", 1, packet_id=9, properties={"content_type": "x"}), version)
    buf = b"junk" + plain + with_props
    first, start, end = split_packet(buf, 4)
    topic, pid, props, p = codec.decode_publish(first, buf, start, end, v5)
    assert (bytes(topic), pid, props, buf[p:end]) == (b"a/b", 7, None, b"payload")  # no properties: None
    first, start, end = split_packet(buf, end)
    topic, pid, props, p = codec.decode_publish(first, buf, start, end, v5)
    assert (bytes(topic), pid, buf[p:end]) == (b"a/b", 9, b"p")
    assert props == ({"content_type": "x"} if v5 else None)
    assert decode(first, buf[start:end], version) == Publish("a/b", b"p", 1, packet_id=9,
                                                             properties={"content_type": "x"} if v5 else {})


@pytest.mark.parametrize("first, body, message", [
    (0x36, b"\x00\x01a\x00\x01", "PUBLISH with QoS 3"),
    (0x38, b"\x00\x01a", "PUBLISH with DUP set at QoS 0"),
    (0x30, b"\x00", "packet ends early"),
    (0x32, b"\x00\x01a\x00", "packet ends early"),
    (0x30, b"\x00\x05ab", "length exceeds the packet"),
])
def test_decode_publish_refuses_malformed_bodies(first, body, message):
    with pytest.raises(MalformedPacket, match=message):
        codec.decode_publish(first, body, 0, len(body), False)


def test_split_packet_partial_and_too_large():
    raw = encode(Publish("t", b"x" * 200))
    for cut in range(len(raw)):
        assert split_packet(raw[:cut]) is None
    assert split_packet(raw) == (0x30, 3, len(raw))
    with pytest.raises(MalformedPacket) as e:
        split_packet(b"\x30\xff\xff\x7f", 0, max_size=1000)  # length known before the body
    assert e.value.reason_code == codec.PACKET_TOO_LARGE


def test_parser_byte_by_byte_and_coalesced():
    stream = b"".join([
        encode(Connect("c1", V5, properties={"session_expiry_interval": 5}), V5),
        encode(Publish("a/b", b"1", 1, packet_id=1, properties={"user_property": [("k", "v")]}), V5),
        encode(Subscribe(2, [("x/#", SubOptions(1))]), V5),
        encode(Pingreq(), V5),
        encode(Publish("big", b"z" * 70000), V5),
        encode(Disconnect(0x04), V5),
    ])
    parser = Parser()
    got = []
    for i in range(len(stream)):
        got += parser.feed(stream[i:i + 1])
    assert [type(p).__name__ for p in got] == ["Connect", "Publish", "Subscribe", "Pingreq", "Publish", "Disconnect"]
    assert got[1].properties == {"user_property": [("k", "v")]}
    assert got[4].payload == b"z" * 70000
    assert parser.buffered == 0
    parser = Parser()
    assert len(parser.feed(stream)) == 6  # all at once
    parser = Parser()
    assert parser.feed(stream[:7]) == []
    assert parser.buffered == 7


def test_parser_learns_version_from_connect():
    parser = Parser()
    parser.feed(encode(Connect("a", V5), V5))
    assert parser.version == V5
    (ack,) = parser.feed(encode(Ack(codec.PUBACK, 1, 0x87), V5))
    assert ack.reason_code == 0x87


@pytest.mark.parametrize("connect", [
    codec.Connect("device-1", codec.MQTT311, True, 60),
    codec.Connect("d", codec.MQTT311, False, 0),
    codec.Connect("", codec.MQTT311, True, 65535),
    codec.Connect("ünïcode-id", codec.MQTT311, True, 1200),
])
def test_the_plain_connect_decoder_reads_what_the_reader_reads(connect):
    body = codec.encode(connect, codec.MQTT311)[2:]  # (a short packet: one length byte)
    assert codec.decode_connect_plain(body) == codec.decode(0x10, body, None) == connect


@pytest.mark.parametrize("connect", [
    codec.Connect("device-1", codec.MQTT311, True, 60, username="u"),
    codec.Connect("device-1", codec.MQTT311, True, 60, username="u", password=b"p"),
    codec.Connect("device-1", codec.MQTT311, True, 60, will=codec.Will("a/b", b"x", 1, False, {})),
    codec.Connect("device-1", codec.MQTT5, True, 60),
])
def test_the_plain_connect_decoder_leaves_every_other_connect_to_the_reader(connect):
    body = codec.encode(connect, connect.protocol_level)[2:]
    assert codec.decode_connect_plain(body) is None
    assert codec.decode(0x10, body, None) == connect


def test_the_plain_connect_decoder_refuses_what_the_reader_refuses():
    body = codec.encode(codec.Connect("device-1", codec.MQTT311, True, 60), codec.MQTT311)[2:]
    assert codec.decode_connect_plain(body + b"x") is None  # trailing bytes: the reader's error
    with pytest.raises(codec.MalformedPacket):
        codec.decode(0x10, body + b"x", None)
    assert codec.decode_connect_plain(body[:7] + b"\x03" + body[8:]) is None  # a reserved flag set
    bad = body[:12] + b"\xff" + body[13:]  # not UTF-8
    with pytest.raises(codec.MalformedPacket):
        codec.decode_connect_plain(bad)
    with pytest.raises(codec.MalformedPacket):
        codec.decode(0x10, bad, None)
