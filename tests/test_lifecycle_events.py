"""Presence lifecycle events (localiot.broker.lifecycle) as their listeners get them: the
documented body for MQTT subscribers, rules whose FROM matches the presence topics (the
message is built only when someone would receive it), versionNumber counting a client id's
connections and reset after an hour away, as AWS does, without the broker keeping a slot
for every client id it ever saw. Real clients over plain MQTT; rules through boto3."""

from __future__ import annotations

import pytest

from localiot.broker import lifecycle
from localiot.testing import ACCOUNT, REGION, advance, wait_until

ROLE = f"arn:aws:iam::{ACCOUNT}:role/iot-rules"


@pytest.fixture(scope="module")
def localiot_settings():
    return {"mqtt_plain": True}


def _connected(server, client_id: str) -> bool:
    broker = server.app.runtime.broker
    return server.call(broker.is_connected, ACCOUNT, REGION, client_id)


def _visit(devices, server, client_id: str) -> None:
    device = devices.plain(client_id)
    device.close()
    assert wait_until(lambda: not _connected(server, client_id))


def _kept_versions(server) -> dict:
    """The lifecycle's versions of the client ids not connected now, in the default scope."""
    broker = server.app.runtime.broker
    return server.call(lambda: dict(broker.lifecycle._versions.get((ACCOUNT, REGION), {})))


def test_subscribers_get_the_documented_presence_body(localiot_server, devices):
    watcher = devices.plain("lc-watcher")
    watcher.subscribe("$aws/events/presence/+/lc-device")
    device = devices.plain("lc-device", username="lc-user")
    connected = watcher.expect_json("$aws/events/presence/connected/lc-device")
    assert sorted(connected) == ["clientId", "eventType", "ipAddress", "principalIdentifier",
                                 "sessionIdentifier", "timestamp", "versionNumber"]
    assert (connected["clientId"], connected["eventType"], connected["principalIdentifier"]) == \
        ("lc-device", "connected", "lc-user")
    assert connected["ipAddress"] == "127.0.0.1" and len(connected["sessionIdentifier"]) == 32
    device.close()
    gone = watcher.expect_json("$aws/events/presence/disconnected/lc-device")
    assert sorted(gone) == ["clientId", "clientInitiatedDisconnect", "disconnectReason", "eventType",
                            "ipAddress", "principalIdentifier", "sessionIdentifier", "timestamp",
                            "versionNumber"]
    assert (gone["disconnectReason"], gone["clientInitiatedDisconnect"]) == ("CLIENT_INITIATED_DISCONNECT", True)
    assert gone["sessionIdentifier"] == connected["sessionIdentifier"]
    assert gone["versionNumber"] == connected["versionNumber"]
    assert gone["timestamp"] >= connected["timestamp"]


def test_a_rule_on_the_presence_topics_gets_every_event(localiot_server, iot, devices):
    """Nothing subscribes to the presence topics over MQTT: the rule alone makes the broker build
    the events (and republishes them where a device listens)."""
    iot.create_topic_rule(ruleName="lc_presence", topicRulePayload={
        "sql": "SELECT clientId, eventType, versionNumber FROM '$aws/events/presence/+/lc-ruled'",
        "actions": [{"republish": {"topic": "lc-seen/${eventType}", "roleArn": ROLE}}]})
    try:
        listener = devices.plain("lc-listener")
        listener.subscribe("lc-seen/+")
        device = devices.plain("lc-ruled")
        assert listener.expect_json("lc-seen/connected") == \
            {"clientId": "lc-ruled", "eventType": "connected", "versionNumber": 0}
        device.close()
        assert listener.expect_json("lc-seen/disconnected") == \
            {"clientId": "lc-ruled", "eventType": "disconnected", "versionNumber": 0}
    finally:
        iot.delete_topic_rule(ruleName="lc_presence")


def test_version_numbers_restart_after_an_hour_away(localiot_server, devices):
    """A client id's versionNumber counts its connections, and starts again at 0 once it has been
    away about an hour (AWS)."""
    server = localiot_server
    watcher = devices.plain("lc-versions-watcher")
    watcher.subscribe("$aws/events/presence/connected/+")

    def connect_version(client_id, **kw):
        device = devices.plain(client_id, **kw)
        version = watcher.expect_json(f"$aws/events/presence/connected/{client_id}")["versionNumber"]
        device.close()
        assert wait_until(lambda: not _connected(server, client_id))
        return version

    assert [connect_version("lc-counted") for _ in range(3)] == [0, 1, 2]
    advance(server, 30 * 60)
    assert connect_version("lc-counted") == 3  # half an hour away: still counted
    advance(server, lifecycle.VERSION_KEPT_MS / 1000 + 1)
    assert connect_version("lc-counted") == 0


def test_client_ids_that_never_come_back_are_forgotten(localiot_server, devices):
    """The versions of disconnected client ids were kept forever (one slot per client id ever seen):
    a broker with churning client ids grew without bound. They are kept for an hour."""
    server = localiot_server
    names = [f"lc-once-{i}" for i in range(20)]
    for name in names:
        _visit(devices, server, name)
    assert set(names) <= set(_kept_versions(server))
    advance(server, lifecycle.VERSION_KEPT_MS / 1000 + 1)
    _visit(devices, server, "lc-after-the-hour")
    kept = _kept_versions(server)
    assert not set(names) & set(kept)
    assert "lc-after-the-hour" in kept
