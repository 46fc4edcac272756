"""Cross-node QoS 1 is at least once: a PUBACK from node A means that node B, which
holds a persistent session subscribed to the topic, has the message in the
shared store, so SIGKILL of B right after the PUBACK loses nothing
(localiot.fabric.confirm). Two `localiot serve` processes on one PostgreSQL
database and one nats-server; B is really killed."""

import signal
import threading
import time

import pytest
from cluster_nodes import Node

from localiot.fabric.liveness import HEARTBEAT
from localiot.testing import Device, DevicePool

PLAIN = ["--mqtt-plain", "--mqtt-plain-port", "0", "--log-level", "INFO"]
CONFIRM = 4.0  # LOCALIOT_FABRIC_CONFIRM_TIMEOUT of the nodes: longer than a release request to a silent node (2 s)


@pytest.fixture
def cluster(localiot_nats, tmp_path):
    from localiot.testing.postgres import shared_server

    pg = shared_server()
    dsn = pg.create_database()
    env = {"LOCALIOT_FABRIC_CONFIRM_TIMEOUT": str(CONFIRM)}
    nodes = [Node(name, tmp_path, store=dsn, fabric=localiot_nats, period=0, extra=PLAIN, env=env).launch()
             for name in ("a", "b")]
    made = DevicePool()
    try:
        yield [node.wait_ready() for node in nodes], made
    finally:
        made.close()
        for node in nodes:
            node.signal(signal.SIGCONT) if node.process.poll() is None else None
            node.stop()
        pg.drop_database(dsn)


def device(made: DevicePool, node: Node, client_id: str, **kw) -> Device:
    return made(node.listener("mqtt-plain"), client_id, version=4, **kw)


def publish_all(publisher: Device, topics: list[str], seconds: float) -> None:
    """Publish every topic at QoS 1 at once (payload: the topic), then wait for every PUBACK."""
    mids = [publisher.client.publish(topic, topic.encode(), 1).mid for topic in topics]
    deadline = time.monotonic() + seconds
    for mid in mids:
        event = publisher.acks.setdefault(mid, threading.Event())
        assert event.wait(max(0.0, deadline - time.monotonic())), f"no PUBACK for message {mid}"


def received(d: Device, count: int, seconds: float = 15.0) -> set[bytes]:
    """Payloads `d` gets until it has `count` distinct ones (QoS 1: duplicates are allowed)."""
    got: set[bytes] = set()
    deadline = time.monotonic() + seconds
    while len(got) < count and time.monotonic() < deadline:
        try:
            got.add(d.expect(timeout=max(0.05, deadline - time.monotonic())).payload)
        except AssertionError:
            break
    return got


def sessions_on_b(made, b: Node) -> tuple[Device, Device]:
    """Two persistent sessions held by node b: 'away' (subscribed, then gone) and 'here' (connected)."""
    away = device(made, b, "away", clean=False).connect_ok()
    away.subscribe("work/#", qos=1)
    away.close()
    here = device(made, b, "here", clean=False).connect_ok()
    here.subscribe("alerts/#", qos=1)
    time.sleep(2.5 * HEARTBEAT)  # a has heard b's heartbeats: b is a node a expects confirmations from
    return away, here


def reconnect_and_check(made, a: Node, topics: list[str], before: set[bytes] = frozenset()) -> None:
    back = device(made, a, "away", clean=False).connect_ok()
    assert back.session_present is True
    work = [t.encode() for t in topics if t.startswith("work/")]
    assert received(back, len(work)) == set(work)
    here = device(made, a, "here", clean=False).connect_ok()
    assert here.session_present is True
    alerts = {t.encode() for t in topics if t.startswith("alerts/")}
    assert alerts - set(before) <= received(here, len(alerts - set(before)))


def test_sigkill_right_after_the_puback_loses_no_message_of_the_other_nodes_sessions(cluster):
    (a, b), made = cluster
    _, here = sessions_on_b(made, b)
    publisher = device(made, a, "pub").connect_ok()
    topics = [f"work/{i}" for i in range(100)] + [f"alerts/{i}" for i in range(100)]
    publish_all(publisher, topics, 20)
    b.kill()  # the moment the last PUBACK is in
    got_before = set()
    while True:  # what 'here' got before b died (its connection is gone now)
        try:
            got_before.add(here.messages.get_nowait().payload)
        except Exception:
            break
    reconnect_and_check(made, a, topics, got_before)


def test_a_node_that_does_not_confirm_gets_the_messages_queued_in_the_store_for_it(cluster):
    (a, b), made = cluster
    sessions_on_b(made, b)
    publisher = device(made, a, "pub").connect_ok()
    b.signal(signal.SIGSTOP)  # b hears nothing more: it would lose what a acknowledges
    topics = [f"work/{i}" for i in range(20)] + [f"alerts/{i}" for i in range(20)]
    started = time.monotonic()
    publish_all(publisher, topics, 4 * CONFIRM + 10)
    waited = time.monotonic() - started
    b.kill()
    reconnect_and_check(made, a, topics)
    assert waited >= CONFIRM * 0.9  # the PUBACKs waited for b ...
    assert "did not confirm" in a.log.read_text()  # ... then a queued the messages for b's sessions


def test_a_session_that_moves_while_its_node_is_silent_gets_what_was_acknowledged_meanwhile(cluster):
    (a, b), made = cluster
    sessions_on_b(made, b)
    publisher = device(made, a, "pub").connect_ok()
    b.signal(signal.SIGSTOP)
    topics = [f"work/{i}" for i in range(10)]
    mids = [publisher.client.publish(topic, topic.encode(), 1).mid for topic in topics]  # b does not confirm
    back = device(made, a, "away", clean=False).connect_ok()  # through a while b is silent: the session moves
    assert back.session_present is True
    for mid in mids:
        assert publisher.acks.setdefault(mid, threading.Event()).wait(4 * CONFIRM + 10), f"no PUBACK for {mid}"
    assert received(back, len(topics)) == {t.encode() for t in topics}


def test_a_shared_subscriptions_messages_are_queued_for_it_when_its_node_does_not_confirm(cluster):
    """NATS hands a `$share/` group's messages to one node of the group: b, the only one here. b
    stops answering: a queues each message for b's member session in the store before the PUBACK."""
    (a, b), made = cluster
    member = device(made, b, "member", clean=False).connect_ok()
    member.subscribe("$share/workers/jobs/#", qos=1)
    time.sleep(2.5 * HEARTBEAT)  # a has heard b's heartbeats (and its group's interest)
    publisher = device(made, a, "pub").connect_ok()
    b.signal(signal.SIGSTOP)
    topics = [f"jobs/{i}" for i in range(10)]
    publish_all(publisher, topics, 4 * CONFIRM + 10)
    b.kill()
    back = device(made, a, "member", clean=False).connect_ok()
    assert back.session_present is True
    assert received(back, len(topics)) == {t.encode() for t in topics}
