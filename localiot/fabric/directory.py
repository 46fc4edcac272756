"""Which clients are connected to the other nodes, for the API calls that ask
the broker about a connection (GetThingConnectivityData, DeleteConnection).

Every node hears every presence event (`$aws/events/presence/...`, a
subscription of its own on `liot.m.*.*.%24aws.events.presence.>`) and keeps
client id -> node for the clients connected elsewhere; a "disconnected"
event removes the entry only when it comes from the node that holds it (the
events of a takeover may arrive in either order). A DeleteConnection for a
client on another node goes out on `liot.c.disconnect`, and the node that
holds the connection closes it.
"""

from __future__ import annotations

import json

from localiot.broker.lifecycle import parse_presence
from localiot.fabric import subjects, wire


class Directory:
    def __init__(self, fabric):
        self.fabric = fabric
        self.remote: dict[tuple[str, str, str], str] = {}
        fabric.conn.subscribe(subjects.PREFIX + "*.*.%24aws.events.presence.>", self._on_presence)
        fabric.conn.subscribe(subjects.CONTROL + "disconnect", self._on_disconnect)

    def _on_presence(self, subject: str, reply, body: bytes) -> None:
        node, _, msg = wire.decode(body)
        parsed = parse_presence(msg.topic, msg.payload)
        if parsed is None:
            return
        event, client_id, _ = parsed
        tokens = subject.split(".", 4)
        key = (subjects.untoken(tokens[2]), subjects.untoken(tokens[3]), client_id)
        if event == "connected":
            self.remote[key] = node
        elif self.remote.get(key) == node:
            del self.remote[key]

    def forget_node(self, node: str) -> None:
        """A node died: none of its clients is connected any more."""
        for key in [key for key, holder in self.remote.items() if holder == node]:
            del self.remote[key]

    def is_connected(self, account: str, region: str, client_id: str) -> bool:
        return (account, region, client_id) in self.remote

    def disconnect(self, account: str, region: str, client_id: str, clean_session: bool, prevent_will: bool) -> bool:
        """Ask the node holding the client to disconnect it; False if no node does."""
        if (account, region, client_id) not in self.remote:
            return False
        body = json.dumps([account, region, client_id, clean_session, prevent_will]).encode()
        self.fabric.conn.publish(subjects.CONTROL + "disconnect", body)
        return True

    def _on_disconnect(self, subject: str, reply, body: bytes) -> None:
        account, region, client_id, clean_session, prevent_will = json.loads(body)
        broker = self.fabric.broker
        session = broker.sessions.get((account, region, client_id)) if broker is not None else None
        if session is not None and session.conn is not None:
            broker.disconnect_client(account, region, client_id, clean_session, prevent_will)
            broker.flush_soon()
