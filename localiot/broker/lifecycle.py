"""AWS IoT lifecycle events: presence (connected / disconnected, with the
session's version number) and subscription changes, published as QoS 1
messages to the account's subscribers and the bus. Clients whose id holds
`#` or `+` get none, as on AWS.

A presence event reaches two kinds of listener. The recorders in this
process (the audit's connection history, the connectivity log behind
GetThingConnectivityData and the fleet index: localiot.services.presence)
get its fields as a `PresenceEvent`, always, without JSON. The message
itself (its body as AWS documents it, the JSON, the route through the
subscription trie and the bus) is built only when something would receive
it: an MQTT subscription or stored session whose filter matches, a rule
whose FROM matches, a bus listener without a filter (Fleet Hub's live
page), or another node (with a fabric, always). That was a third of the
Python time of a plain connect + disconnect, for the usual broker where
nobody listens to the presence topics (bench/README.md, eighth pass).
"""

from __future__ import annotations

import json
from typing import Callable

import orjson

from localiot.broker.message import Message
from localiot.broker.sessions import Session


PRESENCE = "$aws/events/presence/"
# AWS resets a client id's versionNumber to 0 once it has not been connected for about an hour (a
# persistent session's, once the session expired): a disconnected client id's version is kept that
# long (ms) and then forgotten, so client ids that never come back do not hold a slot forever.
VERSION_KEPT_MS = 3600 * 1000


class PresenceEvent:
    """One presence event's fields, as the recorders in this process take them. `connected_at`:
    a disconnect's connection began then (its connected event's timestamp, ms); None for a connect."""

    __slots__ = ("kind", "client_id", "timestamp", "session_id", "principal", "ip_address",
                 "disconnect_reason", "connected_at", "version")

    def __init__(self, kind: str, client_id: str, timestamp: int, session_id: str, principal: str | None,
                 ip_address: str | None, disconnect_reason: str | None, connected_at: int | None, version: int):
        self.kind = kind
        self.client_id = client_id
        self.timestamp = timestamp
        self.session_id = session_id
        self.principal = principal
        self.ip_address = ip_address
        self.disconnect_reason = disconnect_reason
        self.connected_at = connected_at
        self.version = version


def parse_presence(topic: str, payload: bytes) -> tuple[str, str, dict] | None:
    """("connected" | "disconnected", client id, event body) of a presence event
    heard on the bus or from another node; None for any other topic or an unreadable body."""
    if not topic.startswith(PRESENCE):
        return None
    parts = topic.split("/", 4)
    if len(parts) != 5 or parts[3] not in ("connected", "disconnected"):
        return None
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    return parts[3], parts[4], body


class LifecycleEvents:
    def __init__(self, broker):
        self.broker = broker  # its clock, route, bus, fabric and runtime (the recorders: runtime.presence)
        # (account, region) -> client id -> (versionNumber of its last connection, when it ended, ms), for
        # the client ids not connected now (a connected one's is on its session: an idle connection costs
        # no slot here), oldest end first: one that ended VERSION_KEPT_MS ago is forgotten. By scope, so
        # that a client costs a slot keyed by its id's string, not a tuple of its own
        self._versions: dict[tuple[str, str], dict[str, tuple[int, int]]] = {}

    def forget(self) -> None:
        """Forget the versions of the client ids not connected (the state was wiped)."""
        self._versions.clear()

    def _wanted(self, account: str, region: str, topic: str) -> bool:
        """Whether anything would receive a lifecycle message on `topic` (see the module's doc)."""
        broker = self.broker
        return broker.fabric is not None or broker.bus.wants(account, region, topic)

    def _send(self, account: str, region: str, topic: str, body: dict) -> None:
        payload = orjson.dumps(body)  # compact, as json.dumps(separators=(",", ":")) but UTF-8, not \\u escapes
        self.broker.route(account, region, Message(topic, payload, 1))

    def presence(self, conn, session: Session, event: str) -> None:
        """`$aws/events/presence/{connected|disconnected}/{clientId}`."""
        client_id = session.client_id
        if "#" in client_id or "+" in client_id:
            return  # AWS: such client ids get no lifecycle events
        account, region = session.account, session.region
        versions = self._versions.get((account, region))
        now = int(self.broker.clock.now() * 1000)
        connected_at = reason = None
        if event == "connected":
            last = versions.pop(client_id, None) if versions else None
            if last is not None and last[1] <= now - VERSION_KEPT_MS:
                last = None  # away for an hour: counted from 0 again
            # a persistent session kept since (its client id's slot forgotten after an hour) goes on counting
            prior = session.presence_version if last is None else last[0]
            version = 0 if prior is None else prior + 1
            session.presence_version, session.connected_at = version, now
        else:
            version, connected_at = session.presence_version or 0, session.connected_at
            session.connected_at = None
            reason = conn.disconnect_reason
            if versions is None:
                versions = self._versions[(account, region)] = {}
            elif versions and versions[next(iter(versions))][1] <= now - VERSION_KEPT_MS:  # (oldest first)
                _forget_old(versions, now)
            versions[client_id] = (version, now)
        identity = conn.identity
        recorders = getattr(self.broker.runtime, "presence", None)
        if recorders is not None:
            recorders.heard(account, region, PresenceEvent(event, client_id, now, session.session_id,
                                                           identity.principal, conn.remote, reason,
                                                           connected_at, version))
        topic = f"{PRESENCE}{event}/{client_id}"
        broker = self.broker
        if broker.fabric is None and not broker.bus.wants(account, region, topic):  # (_wanted, inline)
            return
        body = {
            "clientId": client_id,
            "timestamp": now,
            "eventType": event,
            "sessionIdentifier": session.session_id,
            "principalIdentifier": identity.principal,
        }
        if event == "disconnected":
            body["clientInitiatedDisconnect"] = conn.client_initiated
            body["disconnectReason"] = reason
        body["ipAddress"] = conn.remote
        body["versionNumber"] = version
        if identity.thing_name and identity.attributes.get("exclusiveThing"):
            body["thingName"] = identity.thing_name
        self._send(account, region, topic, body)

    def subscription(self, conn, session: Session, event: str, topics: list[str]) -> None:
        """`$aws/events/subscriptions/{subscribed|unsubscribed}/{clientId}`."""
        client_id = session.client_id
        if "#" in client_id or "+" in client_id:
            return
        topic = f"$aws/events/subscriptions/{event}/{client_id}"
        if not self._wanted(session.account, session.region, topic):
            return
        body = {
            "clientId": client_id,
            "timestamp": int(self.broker.clock.now() * 1000),
            "eventType": event,
            "sessionIdentifier": session.session_id,
            "principalIdentifier": conn.identity.principal,
            "topics": topics,
        }
        self._send(session.account, session.region, topic, body)


def _forget_old(versions: dict[str, tuple[int, int]], now: int) -> None:
    """Forget the versions of client ids away for VERSION_KEPT_MS (the oldest come first; after
    the clock was set back, those behind a newer one wait for it, and a connect ignores them)."""
    cutoff = now - VERSION_KEPT_MS
    while versions:
        client_id = next(iter(versions))
        if versions[client_id][1] > cutoff:
            return
        del versions[client_id]
