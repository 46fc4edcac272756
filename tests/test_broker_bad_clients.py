"""Clients that misbehave, against the real server over mutual TLS (issue 12,
"Bad input"): each gets AWS IoT's behaviour and costs the other clients
nothing. paho devices from the test kit where paho can do what the test
needs; a raw TLS client (same certificates) for what paho will not send or
will not stop reading."""

from __future__ import annotations

import time

import pytest

from localiot.broker import codec
from localiot.broker.codec import Ack, Subscribe, SubOptions, encode
from localiot.testing import V3, V5, WAIT, advance
from localiot.testing import RawClient, wait_until


def _broker(server):
    return server.app.runtime.broker


def _conn(server, client_id):
    def find():
        return next((c for c in _broker(server).connections if c.client_id == client_id), None)
    return server.call(find)


def _round_trip(device, topic="bystander/ping") -> float:
    """A QoS 1 message from `device` to itself: seconds until it arrives."""
    t = time.monotonic()
    assert device.publish(topic, b"ping") == 0
    assert device.expect(topic).payload == b"ping"
    return time.monotonic() - t


# a client that opens 10,000 subscriptions ----------------------------------------------
@pytest.mark.parametrize("version", [V3, V5])
def test_ten_thousand_subscriptions_get_the_quota_and_cost_others_nothing(localiot_server, iot, tmp_path, devices,
                                                                         version):
    refused = codec.QUOTA_EXCEEDED if version == V5 else codec.V3_SUBACK_FAILURE
    greedy = devices.tls("greedy", version=version)
    bystander = devices.tls("bystander")
    bystander.subscribe("bystander/ping")
    # 1,250 SUBSCRIBEs of 8 filters, all sent before the first SUBACK is read
    mids = [greedy.client.subscribe([(f"many/{n}/{i}", 1) for i in range(8)])[1] for n in range(1250)]
    slowest = max(_round_trip(bystander) for _ in range(5))  # while the broker works through them
    codes = [code for mid in mids for code in greedy._wait(mid)]
    assert len(codes) == 10_000
    assert codes[:50] == [1] * 50 and codes[50:] == [refused] * 9_950  # AWS's 50 per connection
    assert greedy.client.is_connected()
    session = _conn(localiot_server, "greedy").session
    assert len(session.subscriptions) == 50
    # the granted ones work, the refused ones route nothing
    bystander.publish("many/0/0", b"granted")
    assert greedy.expect("many/0/0").payload == b"granted"
    bystander.publish("many/9/0", b"refused")
    greedy.expect_none(0.3)
    assert slowest < 2.0, f"a bystander's round trip took {slowest:.2f} s"
    # one SUBSCRIBE of 10,000 filters is refused whole (AWS: at most 8 per request); the connection
    # stays up (paho cannot take a 10,000-code SUBACK in time, so a raw client sends this one)
    raw_version = codec.MQTT5 if version == V5 else codec.MQTT311
    greedier = RawClient.tls(localiot_server, iot, tmp_path, "greedier", raw_version)
    assert greedier.connect("greedier").reason_code == 0
    greedier.send(Subscribe(7, [(f"more/{i}", SubOptions(0)) for i in range(10_000)]))
    suback = greedier.recv()
    assert suback.packet_id == 7 and suback.reason_codes == [refused] * 10_000
    assert _conn(localiot_server, "greedier").session.subscriptions == {}
    greedier.send(b"\xc0\x00")
    assert greedier.recv().type == codec.PINGRESP
    greedier.close()


# PUBACKs for packet ids the server never sent ---------------------------------------------
@pytest.mark.parametrize("version", [codec.MQTT311, codec.MQTT5])
def test_pubacks_for_unknown_packet_ids_are_ignored(localiot_server, iot, tmp_path, devices, version):
    persistent = {"clean_start": False}
    if version == codec.MQTT5:
        persistent["properties"] = {"session_expiry_interval": 3600}
    device = RawClient.tls(localiot_server, iot, tmp_path, "acker", version)
    assert device.connect("acker", **persistent).reason_code == 0
    device.send(Subscribe(1, [("acks/#", SubOptions(1))]))
    assert device.recv().reason_codes == [1]
    app = devices.tls("app")
    for i in range(3):
        assert app.publish(f"acks/{i}", str(i).encode()) == 0
    first = [device.recv() for _ in range(3)]
    real = {p.packet_id for p in first}
    assert [p.payload for p in first] == [b"0", b"1", b"2"]
    # every other packet id, twice, and a PUBACK for a real one twice over
    bogus = b"".join(encode(Ack(codec.PUBACK, pid), version) for pid in range(1, 65536) if pid not in real)
    device.send(bogus + bogus)
    device.send(Ack(codec.PUBACK, first[0].packet_id))
    device.send(Ack(codec.PUBACK, first[0].packet_id))
    device.send(b"\xc0\x00")  # PINGREQ: still connected, nothing in between
    device.sock.settimeout(30)  # 131,070 PUBACKs go through first: seconds on a loaded machine
    assert device.recv().type == codec.PINGRESP
    device.sock.settimeout(WAIT)
    session = _conn(localiot_server, "acker").session
    assert sorted(localiot_server.call(lambda: list(session.inflight))) == sorted(real - {first[0].packet_id})
    # the unacknowledged two are still owed: redelivered to the next connection of the session
    device.close()
    assert wait_until(lambda: _conn(localiot_server, "acker") is None)
    again = RawClient.tls(localiot_server, iot, tmp_path, "acker-2", version)
    assert again.connect("acker", **persistent).session_present
    redelivered = [again.recv() for _ in range(2)]
    assert [(p.payload, p.dup) for p in redelivered] == [(b"1", True), (b"2", True)]
    for p in redelivered:
        again.send(Ack(codec.PUBACK, p.packet_id))
    assert app.publish("acks/3", b"3") == 0
    assert again.recv().payload == b"3"
    again.close()


# a subscriber that never reads its socket -------------------------------------------------
@pytest.mark.parametrize("qos", [0, 1])
def test_a_subscriber_that_never_reads_is_bounded_then_disconnected(localiot_server, iot, tmp_path, devices, qos):
    broker = _broker(localiot_server)
    deaf = RawClient.tls(localiot_server, iot, tmp_path, "deaf", rcvbuf=4096)
    assert deaf.connect("deaf").reason_code == 0
    deaf.send(Subscribe(1, [("feed/#", SubOptions(qos))]))
    assert deaf.recv().reason_codes == [qos]
    watcher = devices.tls("watcher")
    watcher.subscribe("$aws/events/presence/disconnected/deaf")
    fast = devices.tls("fast")  # a second subscriber of the same feed, reading normally
    fast.subscribe("feed/#", qos=qos)
    bystander = devices.tls("bystander")
    bystander.subscribe("bystander/ping")
    publisher = devices.tls("feeder")
    payload, count = b"x" * 16_384, 1_500  # 24 MB offered, far more than the deaf client's buffers
    got = []
    fast.client.on_message = lambda c, u, m: got.append(m.payload)
    infos = [publisher.client.publish("feed/x", payload, qos) for _ in range(count)]
    deaf_conn, feeder_conn = _conn(localiot_server, "deaf"), _conn(localiot_server, "feeder")

    def held():  # what the server keeps for the deaf client: (bytes waiting to be written, messages)
        t = deaf_conn.transport
        session = deaf_conn.session
        messages = len(session.pending) + len(session.inflight) if session is not None else 0
        return (t.get_write_buffer_size() if t is not None else 0) + sum(map(len, deaf_conn.out)), messages

    assert wait_until(lambda: localiot_server.call(lambda: feeder_conn.blocked_by is deaf_conn), 20), \
        "the publisher feeding a subscriber that does not read is not held back"
    peak_bytes = peak_messages = 0
    for _ in range(20):  # held: the server's share stays put while the publisher has more to send
        written, messages = localiot_server.call(held)
        peak_bytes, peak_messages = max(peak_bytes, written), max(peak_messages, messages)
        time.sleep(0.02)
    limits = broker.limits
    # bounded: a few MB of output (asyncio's high-water mark, one read's worth of messages) and, at QoS 1,
    # the in-flight window plus the back-pressure high-water mark of messages (shared with `fast`)
    assert peak_bytes < 4 * 1024 * 1024, f"{peak_bytes} bytes of output for a client that never reads"
    assert peak_messages <= (limits.receive_maximum + limits.pending_high + 1 if qos else 0), peak_messages
    assert localiot_server.call(lambda: feeder_conn.blocked_by is deaf_conn)
    assert _round_trip(bystander) < 2.0  # the others are served meanwhile
    # past the back-pressure timeout on the server's clock, the deaf client goes (THROTTLED)
    advance(localiot_server, broker.limits.stuck_timeout + 1)
    event = watcher.expect_json("$aws/events/presence/disconnected/deaf")
    assert event["disconnectReason"] == "THROTTLED"
    assert wait_until(lambda: _conn(localiot_server, "deaf") is None)
    # the publisher is read again: every message reaches the subscriber that reads
    assert wait_until(lambda: len(got) == count, 60), f"{len(got)} of {count}"
    if qos:
        assert all(info.is_published() for info in infos)
    deaf.close()


# a packet larger than the broker accepts ---------------------------------------------------
def test_a_packet_announcing_256_mb_is_refused_from_its_header(localiot_server, iot, tmp_path, devices):
    client = RawClient.tls(localiot_server, iot, tmp_path, "huge")
    assert client.connect("huge").reason_code == 0
    bystander = devices.tls("bystander")
    bystander.subscribe("bystander/ping")
    client.send(b"\x30\xff\xff\xff\x7f" + b"\x00\x01a")  # a PUBLISH of 268,435,455 bytes, 3 of them sent
    got = client.recv_until_closed()
    assert [(p.type, p.reason_code) for p in got] == [(codec.DISCONNECT, codec.PACKET_TOO_LARGE)]
    assert _round_trip(bystander) < 2.0
    client.close()
