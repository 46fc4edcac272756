"""The broker's connection history, as the audit's client-id and shared
certificate checks need it.

The broker publishes `$aws/events/presence/connected|disconnected/{clientId}`
on the bus for every connection (clientId, principalIdentifier, sessionIdentifier,
ipAddress, timestamp, disconnectReason). `ConnectionHistory` hears them and
keeps one record per connection in the store (kind "connection-history",
named "<connectedAt ms, 13 digits>|<clientId>|<sessionIdentifier>", in the
client's account and region): {clientId, principal, ipAddress, connectedAt,
disconnectedAt, disconnectReason}. Writes are batched once per loop
iteration; `flush(runtime)` writes what is pending (an audit calls it first).

`install(runtime)` when the listeners start (idempotent).
"""

from __future__ import annotations

import logging

from localiot.broker.lifecycle import parse_presence
from localiot.bus import OncePerIteration

log = logging.getLogger("localiot.defender.history")

KIND = "connection-history"


class ConnectionHistory:
    def __init__(self, runtime):
        self.runtime = runtime
        self.open: dict[tuple[str, str, str, str], str] = {}  # (account, region, client, session) -> record name
        self.pending: dict[tuple[str, str, str], dict] = {}  # (account, region, name) -> record
        self._flush = OncePerIteration(self.flush)
        self.unsubscribe = runtime.bus.subscribe(self._on_bus)

    def _on_bus(self, account: str, region: str, topic: str, payload: bytes) -> None:
        event = parse_presence(topic, payload)
        if event is None:
            return
        kind, topic_client, body = event
        client_id, session = body.get("clientId") or topic_client, str(body.get("sessionIdentifier"))
        key = (account, region, client_id, session)
        if kind == "connected":
            name = f"{int(body.get('timestamp') or 0):013d}|{client_id}|{session}"
            self.open[key] = name
            self.pending[(account, region, name)] = {
                "clientId": client_id, "principal": body.get("principalIdentifier"),
                "ipAddress": body.get("ipAddress"), "connectedAt": body.get("timestamp"),
                "disconnectedAt": None, "disconnectReason": None,
            }
        else:
            name = self.open.pop(key, None)
            if name is None:
                return
            record = self.pending.get((account, region, name))
            update = {"disconnectedAt": body.get("timestamp"), "disconnectReason": body.get("disconnectReason")}
            if record is not None:
                record.update(update)
            else:
                self.pending[(account, region, name)] = {"update": update}
        self._flush.request()

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        store = self.runtime.store
        if not pending or store is None:
            return
        try:
            with store.transaction("", "") as tx:
                for (account, region, name), record in pending.items():
                    scoped = tx.scope(account, region)
                    if "update" in record:
                        stored = scoped.get(KIND, name)
                        if stored is None:
                            continue
                        record = {**stored, **record["update"]}
                    scoped.put(KIND, name, record, {"principal": record.get("principal")})
        except Exception:
            log.exception("could not store %d connection records", len(pending))

    def reset(self) -> None:
        self.open.clear()
        self.pending.clear()


def install(runtime) -> ConnectionHistory:
    history = getattr(runtime, "connection_history", None)
    if history is None:
        history = runtime.connection_history = ConnectionHistory(runtime)
    return history


def flush(runtime) -> None:
    history = getattr(runtime, "connection_history", None)
    if history is not None:
        history.flush()


def connections(tx, since_ms: int) -> list[dict]:
    """Every connection recorded in this scope that was open at or after `since_ms`."""
    return [doc for _, doc in tx.scan(KIND) if (doc.get("disconnectedAt") or 2**62) >= since_ms]
