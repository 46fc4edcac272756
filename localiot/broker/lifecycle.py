"""AWS IoT lifecycle events: presence (connected / disconnected, with the
session's version number) and subscription changes, published as QoS 1
messages to the account's subscribers and the bus. Clients whose id holds
`#` or `+` get none, as on AWS."""

from __future__ import annotations

import json
from typing import Callable

import orjson

from localiot.broker.message import Message
from localiot.broker.sessions import Session


PRESENCE = "$aws/events/presence/"


# The body of the last presence event this process sent, by its payload object: its
# listeners on the bus get it without parsing the JSON again (they must not change it).
_last_sent: tuple[bytes, dict] | None = None
# A key of a disconnected event's body as its listeners in this process get it (not in the
# payload): when the connection began (the timestamp of its connected event, ms). The
# connection history names its record with it, without keeping it per open connection.
CONNECTED_AT = "localiot:connectedAt"


def parse_presence(topic: str, payload: bytes) -> tuple[str, str, dict] | None:
    """("connected" | "disconnected", client id, event body) of a presence event
    heard on the bus; None for any other topic or an unreadable body. The body of
    a disconnect this process sent also has `CONNECTED_AT`."""
    if not topic.startswith(PRESENCE):
        return None
    parts = topic.split("/", 4)
    if len(parts) != 5 or parts[3] not in ("connected", "disconnected"):
        return None
    last = _last_sent
    if last is not None and last[0] is payload:
        return parts[3], parts[4], last[1]
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    return parts[3], parts[4], body


class LifecycleEvents:
    def __init__(self, clock, route: Callable[[str, str, Message], None]):
        self.clock = clock
        self.route = route  # Broker.route
        # (account, region) -> client id -> version of its last connection, for the client ids not
        # connected now (a connected one's is on its session: an idle connection costs no slot here).
        # By scope, so that a client costs a slot keyed by its id's string, not a tuple of its own
        self._versions: dict[tuple[str, str], dict[str, int]] = {}

    def _send(self, account: str, region: str, topic: str, body: dict, connected_at: int | None = None) -> None:
        global _last_sent
        payload = orjson.dumps(body)  # compact, as json.dumps(separators=(",", ":")) but UTF-8, not \\u escapes
        if topic.startswith(PRESENCE):
            if connected_at is not None:
                body[CONNECTED_AT] = connected_at  # after the payload: for this process's listeners only
            _last_sent = (payload, body)
        self.route(account, region, Message(topic, payload, 1))

    def presence(self, conn, session: Session, event: str) -> None:
        """`$aws/events/presence/{connected|disconnected}/{clientId}`."""
        client_id = session.client_id
        if "#" in client_id or "+" in client_id:
            return  # AWS: such client ids get no lifecycle events
        scope = (session.account, session.region)
        versions = self._versions.get(scope)
        now = int(self.clock.now() * 1000)
        connected_at = None
        if event == "connected":
            version = versions.pop(client_id, -1) + 1 if versions else 0
            session.presence_version, session.connected_at = version, now
        else:
            version, connected_at = session.presence_version, session.connected_at
            session.connected_at = None
            if versions is None:
                versions = self._versions[scope] = {}
            versions[client_id] = version
        body = {
            "clientId": client_id,
            "timestamp": now,
            "eventType": event,
            "sessionIdentifier": session.session_id,
            "principalIdentifier": conn.identity.principal,
        }
        if event == "disconnected":
            body["clientInitiatedDisconnect"] = conn.client_initiated
            body["disconnectReason"] = conn.disconnect_reason
        body["ipAddress"] = conn.remote
        body["versionNumber"] = version
        if conn.identity.thing_name and conn.identity.attributes.get("exclusiveThing"):
            body["thingName"] = conn.identity.thing_name
        self._send(session.account, session.region, f"{PRESENCE}{event}/{client_id}", body, connected_at)

    def subscription(self, conn, session: Session, event: str, topics: list[str]) -> None:
        """`$aws/events/subscriptions/{subscribed|unsubscribed}/{clientId}`."""
        client_id = session.client_id
        if "#" in client_id or "+" in client_id:
            return
        body = {
            "clientId": client_id,
            "timestamp": int(self.clock.now() * 1000),
            "eventType": event,
            "sessionIdentifier": session.session_id,
            "principalIdentifier": conn.identity.principal,
            "topics": topics,
        }
        self._send(session.account, session.region, f"$aws/events/subscriptions/{event}/{client_id}", body)
