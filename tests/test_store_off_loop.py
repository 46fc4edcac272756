"""With PostgreSQL a node's units of work run on worker threads
(localiot.cluster.workers): while one API call waits on a lock another
PostgreSQL session holds, the node still answers the other API calls, MQTT
(PINGREQ, a QoS 1 publish to a subscriber, a shadow update through its door)
and /_localiot/health; once the lock goes, the waiting call completes."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request

import psycopg
import pytest

from localiot.store.postgresql import _lock_key
from localiot.testing import make_client, plain_device
from cluster_nodes import devices, postgres_node  # noqa: F401,E402 (devices: a fixture)

ACCOUNT, REGION = "123456789012", "us-east-1"
PROMPT = 2.0  # seconds: what "answered while the other call waits" means here


@pytest.fixture(scope="module")
def node():
    with postgres_node() as (server, dsn):
        yield server, dsn


class HeldLock:
    """Another PostgreSQL session holding the store's lock on one document (as a
    slow call of another node would) until released."""

    def __init__(self, dsn: str, kind: str, name: str):
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("BEGIN")
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(ACCOUNT, REGION, "doc", kind, name),))

    def release(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


def waiting_call(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as error:  # noqa: BLE001 (the test reads it)
            out["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def timed(fn):
    start = time.monotonic()
    value = fn()
    return value, time.monotonic() - start


def pingreq(port: int) -> bytes:
    """CONNECT, then PINGREQ on a raw socket: the PINGRESP bytes."""
    client_id = b"pinger"
    variable = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id
    with socket.create_connection(("127.0.0.1", port), timeout=PROMPT) as sock:
        sock.sendall(bytes((0x10, len(variable))) + variable)
        assert sock.recv(4)[:2] == b"\x20\x02"
        sock.sendall(b"\xc0\x00")
        return sock.recv(2)


def test_a_call_waiting_on_a_lock_leaves_the_node_answering(node, devices):
    server, dsn = node
    iot, data = make_client(server), make_client(server, "iot-data")
    iot.create_thing(thingName="locked")
    iot.create_thing(thingName="free")
    listener = devices.add(plain_device(server, "listener"))
    listener.subscribe("plant/#")
    sender = devices.add(plain_device(server, "sender"))
    shadow_device = devices.add(plain_device(server, "free"))
    shadow_device.subscribe("$aws/things/free/shadow/update/accepted")

    lock = HeldLock(dsn, "thing", "locked")
    try:
        blocked, result = waiting_call(lambda: iot.update_thing(
            thingName="locked", attributePayload={"attributes": {"state": "after-lock"}}))
        time.sleep(0.3)  # the call reached PostgreSQL and waits on the lock
        assert blocked.is_alive() and not result

        described, seconds = timed(lambda: iot.describe_thing(thingName="free"))
        assert described["thingName"] == "free" and seconds < PROMPT
        _, seconds = timed(lambda: data.publish(topic="plant/http", qos=1, payload=b"via-api"))
        assert seconds < PROMPT
        with urllib.request.urlopen(server.endpoint + "/_localiot/health", timeout=PROMPT) as answer:
            assert answer.status == 200
        assert pingreq(server.listener("mqtt-plain")[1]) == b"\xd0\x00"
        assert sender.publish("plant/mqtt", b"via-mqtt") == 0
        assert {listener.expect().payload, listener.expect().payload} == {b"via-api", b"via-mqtt"}
        shadow_device.publish("$aws/things/free/shadow/update", {"state": {"reported": {"on": True}}})
        accepted = shadow_device.expect_json("$aws/things/free/shadow/update/accepted", timeout=PROMPT)
        assert accepted["state"] == {"reported": {"on": True}}
        assert blocked.is_alive() and not result  # still waiting all along
    finally:
        lock.release()
    blocked.join(10)
    assert "value" in result, result
    assert iot.describe_thing(thingName="locked")["attributes"] == {"state": "after-lock"}


def test_door_requests_of_one_device_run_in_the_order_it_sent_them(node, devices):
    server, _ = node
    make_client(server).create_thing(thingName="ordered")
    device = devices.add(plain_device(server, "ordered"))
    device.subscribe("$aws/things/ordered/shadow/update/accepted")
    for n in range(20):
        device.publish("$aws/things/ordered/shadow/update", {"state": {"reported": {"n": n}}})
    versions = [device.expect_json("$aws/things/ordered/shadow/update/accepted")["version"] for _ in range(20)]
    assert versions == list(range(1, 21))
    shadow = json.loads(make_client(server, "iot-data").get_thing_shadow(thingName="ordered")["payload"].read())
    assert shadow["state"]["reported"] == {"n": 19}


def test_the_puback_of_a_door_request_follows_its_commit(node, devices):
    server, _ = node
    make_client(server).create_thing(thingName="acked")
    device = devices.add(plain_device(server, "acked"))
    data = make_client(server, "iot-data")
    for n in range(5):
        assert device.publish("$aws/things/acked/shadow/update", {"state": {"reported": {"n": n}}}, qos=1) == 0
        shadow = json.loads(data.get_thing_shadow(thingName="acked")["payload"].read())
        assert shadow["state"]["reported"] == {"n": n}


def test_a_connect_answers_while_another_connects_session_write_waits_on_a_lock(node, devices):
    """The broker's own store work is off the loop too: while another PostgreSQL session holds
    the lock of one persistent session's document, that client's CONNECT waits (its session is
    stored before the CONNACK), and other clients still connect, publish and subscribe; messages
    for the waiting session meanwhile are queued for it and handed over as it connects."""
    server, dsn = node
    port = server.listener("mqtt-plain")[1]
    stats = lambda: json.load(urllib.request.urlopen(server.endpoint + "/_localiot/health", timeout=PROMPT))  # noqa: E731
    first = devices.add(plain_device(server, "patient", clean=False))
    first.subscribe("news/#", qos=1)
    first.close()
    lock = HeldLock(dsn, "mqtt-session", "patient")
    try:
        patient, outcome = waiting_call(lambda: devices.add(plain_device(server, "patient", clean=False)))
        time.sleep(0.3)  # its CONNECT reached the store write and waits on the lock
        assert patient.is_alive() and not outcome
        workers = stats()["workers"]
        assert workers["threads"] >= 1 and workers["busy"] >= 1
        other, seconds = timed(lambda: devices.add(plain_device(server, "impatient", clean=False)))
        assert seconds < PROMPT
        assert pingreq(port) == b"\xd0\x00"
        assert other.publish("news/today", b"while waiting", qos=1) == 0
        assert patient.is_alive() and not outcome  # still waiting all along
    finally:
        lock.release()
    patient.join(10)
    assert "value" in outcome, outcome
    assert outcome["value"].expect("news/today").payload == b"while waiting"


def test_of_two_connects_waiting_for_their_session_write_the_newer_keeps_the_client_id(node, devices):
    server, dsn = node
    devices.add(plain_device(server, "twice", clean=False)).close()  # a stored persistent session
    lock = HeldLock(dsn, "mqtt-session", "twice")
    try:
        older, first = waiting_call(lambda: plain_device(server, "twice", clean=False))
        time.sleep(0.3)  # its CONNECT waits on the session's write
        newer, second = waiting_call(lambda: devices.add(plain_device(server, "twice", clean=False)))
        time.sleep(0.3)
    finally:
        lock.release()
    older.join(10)
    newer.join(10)
    assert "error" in first, first  # no CONNACK: the newer connection took the client id
    assert "value" in second, second
    device = second["value"]
    device.subscribe("twice/t")
    assert device.publish("twice/t", b"still here") == 0
    assert device.expect("twice/t").payload == b"still here"
