"""Presence events to the store (localiot.services.presence): the audit's
connection history and the connectivity log are written together, once per
window of presence events (and at the server's stop), and the history is
bounded as the audit needs it (the latest 100 records per client id, whose
names are one range; nothing that ended before the audit's 31-day window).
Real clients over plain MQTT; the audit through boto3."""

from __future__ import annotations

import pytest
from test_audit_checks import audit, configure, findings_of

from localiot.services.defender import history
from localiot.testing import (
    ACCOUNT,
    REGION,
    RawClient,
    advance,
    local_server,
    wait_until,
)


@pytest.fixture(scope="module")
def localiot_settings():
    return {"mqtt_plain": True}


def _port(server) -> int:
    return server.listener("mqtt-plain")[1]


def _connected(server, client_id: str) -> bool:
    broker = server.app.runtime.broker
    return server.call(broker.is_connected, ACCOUNT, REGION, client_id)


def _visit(server, client_id: str) -> None:
    """Connect, then DISCONNECT; returns once the broker saw the client go."""
    raw = RawClient.plain(_port(server))
    assert raw.connect(client_id).reason_code == 0
    raw.send(b"\xe0\x00")
    assert raw.closed()
    raw.close()
    assert wait_until(lambda: not _connected(server, client_id))


def _records(server, client_id: str | None = None) -> list[dict]:
    def scan():
        history.flush(server.app.runtime)
        with server.app.store.transaction(ACCOUNT, REGION, write=False) as tx:
            return [history.fields(name, doc) for name, doc in tx.scan(history.KIND)]
    return [d for d in server.call(scan) if client_id is None or d["clientId"] == client_id]


def test_a_client_id_keeps_its_latest_100_connection_records(localiot_server, iot):
    server = localiot_server
    # a client id that starts with the flapper's and "|": its record sorts first in the flapper's range
    # of names, and is not the flapper's to delete
    neighbour = "flapper|0000000000000|forged"
    _visit(server, neighbour)
    for _ in range(history.PER_CLIENT + 4):
        _visit(server, "flapper")
    # then a takeover: the second connection with the same client id drops the first
    first = RawClient.plain(_port(server))
    assert first.connect("flapper").reason_code == 0
    second = RawClient.plain(_port(server))
    assert second.connect("flapper").reason_code == 0
    assert first.closed()
    second.send(b"\xe0\x00")
    assert second.closed()
    assert wait_until(lambda: not _connected(server, "flapper"))

    records = _records(server, "flapper")
    assert len(records) == history.PER_CLIENT  # 106 connections were made
    assert len(_records(server, neighbour)) == 1
    assert [r["disconnectReason"] for r in records].count("DUPLICATE_CLIENTID") == 1  # the latest ones stay
    configure(iot, "CONFLICTING_CLIENT_IDS_CHECK")
    task_id, _ = audit(iot, "CONFLICTING_CLIENT_IDS_CHECK")
    [finding] = findings_of(iot, taskId=task_id)
    resource = finding["nonCompliantResource"]
    assert resource["resourceIdentifier"] == {"clientId": "flapper"}
    assert resource["additionalInfo"] == {"CONNECTION_COUNT": str(history.PER_CLIENT)}
    first.close()
    second.close()


def test_a_client_ids_first_connection_in_a_process_is_counted_by_the_prune_pass(localiot_server):
    """A client id's first connection in a process is stored without counting its records (most
    clients have one): a client that connects once per process life over many of them is held
    to its latest 100 by the prune pass."""
    server = localiot_server
    now_ms = int(server.app.runtime.clock.now() * 1000)

    def earlier_lives():  # records of earlier processes (connected once in each), as they store them
        with server.app.store.transaction(ACCOUNT, REGION) as tx:
            for i in range(history.PER_CLIENT + 4):
                at = now_ms - 3_600_000 + i * 1000
                tx.put(history.KIND, f"nomad|{at:013d}|0000{i:04d}",
                       {"clientId": "nomad", "connectedAt": at, "disconnectedAt": at + 500,
                        "disconnectReason": "CONNECTION_LOST"})
    server.call(earlier_lives)
    advance(server, history.PRUNE_EVERY + 1)  # a pass is due at the next write
    _visit(server, "nomad")
    records = _records(server, "nomad")
    assert len(records) == history.PER_CLIENT
    assert max(r["connectedAt"] for r in records) > now_ms  # the newest ones stay: this connection's among them
    assert min(r["connectedAt"] for r in records) == now_ms - 3_600_000 + 5000


def test_records_that_ended_before_the_audit_window_are_deleted(localiot_server):
    server = localiot_server
    _visit(server, "old-timer")
    still_open = RawClient.plain(_port(server))
    assert still_open.connect("always-on").reason_code == 0
    assert {r["clientId"] for r in _records(server)} == {"old-timer", "always-on"}

    advance(server, 32 * 86400)  # past the 31 days CONFLICTING_CLIENT_IDS / DEVICE_CERTIFICATE_SHARED look at
    _visit(server, "newcomer")  # the next presence write looks for expired records
    assert sorted(r["clientId"] for r in _records(server)) == ["always-on", "newcomer"]  # open: still counts
    still_open.send(b"\xe0\x00")
    still_open.close()


def test_connectivity_and_history_share_one_unit_of_work(localiot_server, iot):
    """A thing's connect + disconnect: GetThingConnectivityData and the history agree."""
    server = localiot_server
    iot.create_thing(thingName="lamp")
    _visit(server, "lamp")
    data = iot.get_thing_connectivity_data(thingName="lamp")
    assert (data["connected"], data["disconnectReason"]) == (False, "CLIENT_INITIATED_DISCONNECT")
    [record] = _records(server, "lamp")
    assert record["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert record["disconnectedAt"] == int(data["timestamp"].timestamp() * 1000)


def _stored(server, client_id: str) -> list[dict]:
    """The history records in the store now, without asking the recorders to flush first."""
    def scan():
        with server.app.store.transaction(ACCOUNT, REGION, write=False) as tx:
            found = [history.fields(name, doc) for name, doc in tx.scan(history.KIND)]
            return [doc for doc in found if doc["clientId"] == client_id]
    return server.call(scan)


def test_an_open_connection_is_recorded_once_it_has_lasted_the_hold(localiot_server):
    """A connection's record waits up to HOLD seconds for its end (one write for a short
    connection), then is written while the connection is still open."""
    server = localiot_server
    raw = RawClient.plain(_port(server))
    assert raw.connect("long-lived").reason_code == 0
    assert wait_until(lambda: _stored(server, "long-lived"), timeout=history.HOLD + 5)
    [record] = _stored(server, "long-lived")
    assert record.get("disconnectedAt") is None  # an open connection has no end (left out of the record)

    def raw_docs():  # the client id and connection time are the record's name, not its document's
        with server.app.store.transaction(ACCOUNT, REGION, write=False) as tx:
            return [(name, doc) for name, doc in tx.scan(history.KIND, prefix="long-lived|")]
    [(name, doc)] = server.call(raw_docs)
    assert name.startswith(f"long-lived|{record['connectedAt']:013d}|")
    assert "clientId" not in doc and "connectedAt" not in doc
    raw.send(b"\xe0\x00")
    assert raw.closed()
    raw.close()
    assert wait_until(lambda: _stored(server, "long-lived")[0].get("disconnectReason") == "CLIENT_INITIATED_DISCONNECT")
    assert len(_stored(server, "long-lived")) == 1


def test_a_reset_forgets_the_records_held_back(localiot_server):
    """A record still held back when the server is reset is not written into the wiped store."""
    server = localiot_server
    raw = RawClient.plain(_port(server))
    assert raw.connect("ghost").reason_code == 0
    server.reset()  # drops the connection; the store and the broker's sessions are wiped
    assert raw.closed()
    raw.close()
    assert _records(server, "ghost") == []


def test_the_server_stop_writes_the_records_still_held(tmp_path):
    """A connection open when the server stops: its record (held back for HOLD seconds, then its
    end waiting for the window) is written by the stop, and the next server on the store reads it."""
    with local_server(data_dir=str(tmp_path), mqtt_plain=True) as server:
        raw = RawClient.plain(_port(server))
        assert raw.connect("at-closing-time").reason_code == 0
        assert _stored(server, "at-closing-time") == []  # held back: not written yet
    raw.close()
    with local_server(data_dir=str(tmp_path), mqtt_plain=True) as server:
        [record] = _stored(server, "at-closing-time")
        assert record["disconnectReason"] == "SERVER_INITIATED_DISCONNECT" and record["disconnectedAt"]



def test_more_held_records_than_one_unit_takes_are_stored_in_parts(localiot_server, iot):
    """More open connections than one presence unit of work takes (presence.CHUNK), their
    records held back, then written at once by a reader's flush: all stored (in parts: one
    unit for all ran PostgreSQL out of its lock table at 16,700 records,
    bench/held_connections.py), then each one's end."""
    from localiot.services import presence

    server = localiot_server
    names = [f"burst-{i:04d}" for i in range(presence.CHUNK + 60)]
    iot.create_thing(thingName=names[1])
    clients = []
    for name in names:
        raw = RawClient.plain(_port(server))
        assert raw.connect(name).reason_code == 0
        clients.append(raw)

    def burst():
        return {r["clientId"]: r for r in _records(server) if r["clientId"].startswith("burst-")}

    opened = burst()
    assert sorted(opened) == names
    assert all(r.get("disconnectedAt") is None for r in opened.values())
    for raw in clients:
        raw.send(b"\xe0\x00")
    for raw in clients:
        assert raw.closed()
        raw.close()
    assert wait_until(lambda: not any(_connected(server, name) for name in names), timeout=20)
    ended = burst()
    assert sorted(ended) == names
    assert {r["disconnectReason"] for r in ended.values()} == {"CLIENT_INITIATED_DISCONNECT"}
    data = iot.get_thing_connectivity_data(thingName=names[1])
    assert (data["connected"], data["disconnectReason"]) == (False, "CLIENT_INITIATED_DISCONNECT")
