"""Back-pressure instead of loss: subscribers slower than their publishers
slow the publishers down; nothing acknowledged is dropped (issue 12)."""

from __future__ import annotations

import asyncio
import threading
import time

import paho.mqtt.client as mqtt

from localiot.broker import Limits, codec
from localiot.broker.codec import Ack, Subscribe, SubOptions
from localiot.testing import RawClient, wait_until
from test_broker_mqtt import V3, V5, WAIT, Client, make_broker  # noqa: F401 (fixture)

PUBLISHERS, PER_PUBLISHER = 4, 5000


def _session(b, client_id):
    return b.broker.sessions[(b.broker.runtime.config.default_account, b.broker.runtime.config.default_region,
                              client_id)]


def test_slow_subscriber_gets_every_qos1_message_and_publishers_wait(make_broker):
    high = 200
    b = make_broker(limits=Limits(pending_high=high, pending_low=50))
    got: list[bytes] = []
    done = threading.Event()
    total = PUBLISHERS * PER_PUBLISHER

    def on_message(client, userdata, message):
        got.append(message.payload)
        if len(got) % 10 == 0:
            time.sleep(0.001)  # deliberately slower than the publishers
        if len(got) == total:
            done.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="slow", protocol=V3)
    sub.on_message = on_message
    sub.connect("127.0.0.1", b.port)
    sub.loop_start()
    assert wait_until(lambda: sub.is_connected())
    sub.subscribe("flood/#", 1)
    assert wait_until(lambda: len(b.broker.scopes) and "slow" in {s[2] for s in b.broker.sessions}
                      and _session(b, "slow").subscriptions)
    session = _session(b, "slow")
    peak = [0]
    watching = threading.Event()

    def watch():  # the subscriber's backlog on the broker, sampled
        while not watching.is_set():
            peak[0] = max(peak[0], len(session.pending))
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    pubs = []
    for p in range(PUBLISHERS):
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fast{p}", protocol=V3)
        pub.max_inflight_messages_set(100)
        pub.connect("127.0.0.1", b.port)
        pub.loop_start()
        pubs.append(pub)
    infos = [[] for _ in pubs]
    for n in range(PER_PUBLISHER):
        for p, pub in enumerate(pubs):
            infos[p].append(pub.publish(f"flood/{p}", f"{p}:{n}".encode(), qos=1))
    for p in range(PUBLISHERS):
        for info in infos[p]:
            info.wait_for_publish(60)
            assert info.is_published()
    assert done.wait(60), f"the subscriber got {len(got)} of {total}"
    watching.set()
    watcher.join()
    for pub in pubs:
        pub.disconnect()
        pub.loop_stop()
    sub.disconnect()
    sub.loop_stop()
    assert len(got) == total and len(set(got)) == total  # every message, once
    for p in range(PUBLISHERS):  # and in each publisher's order
        mine = [int(m.split(b":")[1]) for m in got if m.startswith(f"{p}:".encode())]
        assert mine == list(range(PER_PUBLISHER))
    # the publishers were held back: the backlog reached the high-water mark and stayed near it
    assert high // 2 <= peak[0] <= high + PUBLISHERS * 2, peak[0]


def test_receive_maximum_honoured_and_advertised(make_broker):
    broker = make_broker()
    raw = RawClient.plain(broker.port, codec.MQTT5)
    ack = raw.connect("small", properties={"receive_maximum": 5})
    assert ack.reason_code == 0 and ack.properties["receive_maximum"] == Limits().receive_maximum
    raw.send(Subscribe(1, [("rm", SubOptions(1))]))
    assert raw.recv().reason_codes == [1]
    pub = Client(broker.port, "pub", V5)
    for i in range(20):
        pub.publish("rm", str(i).encode(), qos=1)
    first = [raw.recv() for _ in range(5)]
    assert [p.payload for p in first] == [str(i).encode() for i in range(5)]
    raw.sock.settimeout(0.3)
    try:  # no sixth message while five are unacknowledged
        extra = raw.recv()
    except TimeoutError:
        extra = None
    assert extra is None
    raw.sock.settimeout(WAIT)
    raw.send(Ack(codec.PUBACK, first[0].packet_id))
    assert raw.recv().payload == b"5"
    pub.close()
    raw.close()


def test_stuck_subscriber_disconnected_and_session_keeps_messages(make_broker):
    limits = Limits(pending_high=20, pending_low=5, stuck_timeout=30, queued_max=100)
    b = make_broker(limits=limits)
    raw = RawClient.plain(b.port)
    assert raw.connect("stuck", clean_start=False).reason_code == 0
    raw.send(Subscribe(1, [("s", SubOptions(1))]))
    assert raw.recv().reason_codes == [1]
    watcher = Client(b.port, "watcher", V3)
    watcher.subscribe("$aws/events/presence/disconnected/stuck", qos=1)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub", protocol=V3)
    pub.max_inflight_messages_set(20)
    pub.connect("127.0.0.1", b.port)
    pub.loop_start()
    infos = [pub.publish("s", str(i).encode(), qos=1) for i in range(200)]
    session = _session(b, "stuck")
    # the subscriber never acknowledges: its window fills, then its backlog, then the publisher waits
    assert wait_until(lambda: len(session.pending) >= limits.pending_high)
    time.sleep(0.3)
    acked = sum(i.is_published() for i in infos)
    assert acked < 200 and len(session.pending) <= limits.pending_high + 1
    b.call(b.clock.advance, 29)
    b.call(b.broker.sweep)
    assert session.conn is not None  # still connected before the timeout
    b.call(b.clock.advance, 2)
    b.call(b.broker.sweep)
    event = watcher.expect_topic("$aws/events/presence/disconnected/stuck")
    assert b'"THROTTLED"' in event.payload
    assert raw.closed()
    # the publisher reads again; every one of its messages is acknowledged
    for info in infos:
        info.wait_for_publish(WAIT)
        assert info.is_published()
    pub.disconnect()
    pub.loop_stop()
    # the persistent session kept what it had not acknowledged, up to the queued-messages quota
    back = RawClient.plain(b.port)
    assert back.connect("stuck", clean_start=False).session_present
    payloads = []
    while len(payloads) < limits.queued_max:
        packet = back.recv()
        payloads.append(packet.payload)
        back.send(Ack(codec.PUBACK, packet.packet_id))
    assert payloads[:10] == [str(i).encode() for i in range(10)]
    back.close()
    watcher.close()


def test_loop_stays_responsive_under_a_qos0_flood(make_broker):
    b = make_broker()
    sub = RawClient.plain(b.port)
    sub.connect("reader")
    sub.send(Subscribe(1, [("flood", SubOptions(0))]))
    assert sub.recv().reason_codes == [0]
    lags, control = [], []
    stop = threading.Event()

    async def tick(into):  # a 1 ms timer
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            t = loop.time()
            await asyncio.sleep(0.001)
            into.append(loop.time() - t - 0.001)

    # the same timer on an idle loop of this process: what the machine and the GIL cost any
    # loop here (a loaded machine deschedules the process), apart from the broker's own stalls
    idle = asyncio.new_event_loop()
    idle_thread = threading.Thread(target=idle.run_forever, daemon=True)
    idle_thread.start()
    ticking = asyncio.run_coroutine_threadsafe(tick(lags), b.loop)
    controlling = asyncio.run_coroutine_threadsafe(tick(control), idle)
    packet = codec.encode(codec.Publish("flood", b"x" * 16), codec.MQTT311)
    flooders = [RawClient.plain(b.port) for _ in range(8)]
    for i, f in enumerate(flooders):
        f.connect(f"flooder{i}")
    burst = packet * 50_000
    senders = [threading.Thread(target=f.sock.sendall, args=(burst,)) for f in flooders]
    drained = threading.Thread(target=lambda: _drain(sub, len(packet) * 50_000 * len(flooders)))
    drained.start()
    for s in senders:
        s.start()
    for s in senders:
        s.join(60)
    drained.join(120)
    stop.set()
    ticking.result(WAIT)
    controlling.result(WAIT)
    idle.call_soon_threadsafe(idle.stop)
    idle_thread.join(WAIT)
    idle.close()
    stalled = max(lags) - max(control)
    assert stalled < 0.5, f"the loop stalled for {max(lags):.2f} s (an idle loop here: {max(control):.2f} s)"
    for f in flooders + [sub]:
        f.close()


def _drain(raw, total):
    raw.sock.settimeout(20)
    got = 0
    while got < total:
        data = raw.sock.recv(1 << 20)
        if not data:
            return
        got += len(data)
