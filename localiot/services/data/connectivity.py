"""GetThingConnectivityData (iot): is the thing's MQTT client connected, since
when, and why did it last disconnect.

As AWS documents, the client whose id is the thing's name counts. Whether it
is connected now is the broker's answer; the time and the disconnect reason
come from the last presence event (`$aws/events/presence/connected|disconnected/{clientId}`)
of its connections. A `PresenceLog` hears those (through
localiot.services.presence, as the broker's PresenceEvent) and keeps the last one per registered thing in
the store (kind "thing-connectivity", named by thing, in the thing's account
and region), written once per presence window in the presence unit of work
it shares with the audit's connection history, so the answer survives a restart and is
gone with the thing's account state on reset. A record that disagrees with
the broker (a server stopped without its clients disconnecting) is not
shown: then the answer is the connection state alone, as AWS gives for a
device never seen.

Install the log when the broker starts: `install(runtime)` (idempotent; the
first GetThingConnectivityData installs it too, hearing events from then on).
"""

from __future__ import annotations

from localiot.broker.lifecycle import PresenceEvent
from localiot.protocol.errors import not_found
from localiot.services import hooks, operation, presence
from localiot.services.registry import things

KIND = "thing-connectivity"
# The model's disconnectReason values; a broker reason outside them is mapped.
REASONS = ("AUTH_ERROR", "CLIENT_INITIATED_DISCONNECT", "CLIENT_ERROR", "CONNECTION_LOST", "DUPLICATE_CLIENTID",
           "FORBIDDEN_ACCESS", "MQTT_KEEP_ALIVE_TIMEOUT", "SERVER_ERROR", "SERVER_INITIATED_DISCONNECT",
           "THROTTLED", "WEBSOCKET_TTL_EXPIRATION", "CUSTOMAUTH_TTL_EXPIRATION", "UNKNOWN", "NONE")
_REASON_MAP = {"API_INITIATED_DISCONNECT": "SERVER_INITIATED_DISCONNECT"}


class PresenceLog:
    """A recorder of localiot.services.presence: the last event per client, written
    in the presence unit of work of its window for registered things."""

    def __init__(self, runtime):
        self.runtime = runtime
        # (account, region) -> {client: its last PresenceEvent}: the record is made from the event
        # when it is stored, for registered things only (most clients of a broker are not)
        self.pending: dict[tuple[str, str], dict[str, PresenceEvent]] = {}
        self.writing: dict[tuple[str, str], dict[str, PresenceEvent]] = {}  # taken, until their unit commits

    def hear(self, account: str, region: str, event: PresenceEvent) -> bool:
        pending = self.pending.get((account, region))
        if pending is None:
            pending = self.pending[(account, region)] = {}
        pending[event.client_id] = event
        return True

    def write(self, ctx, everything: bool = False) -> None:
        """Store the pending records of registered things (the fleet index follows in the same unit)."""
        self.store(ctx, self.take(ctx.account, ctx.region, everything))

    def take(self, account: str, region: str, everything: bool = False) -> dict | None:
        """The scope's pending records, out of `pending` (on the loop: localiot.services.presence
        writes them on a worker; until then `writing` answers for them)."""
        records = self.pending.pop((account, region), None)
        if records and self.runtime.broker is not None:
            self.writing[(account, region)] = records
            return records
        return None

    def store(self, ctx, records: dict | None) -> None:
        if not records:
            return
        tx = ctx.tx
        for client_id, event in records.items():
            if tx.get(things.KIND, client_id) is not None:
                tx.put(KIND, client_id, _record(event))
        ctx.after_commit(lambda: self._written(ctx.account, ctx.region, records))

    def _written(self, account: str, region: str, records: dict) -> None:
        scope = (account, region)
        writing = self.writing.get(scope)
        if writing is records:
            del self.writing[scope]
        elif writing is not None:  # one part of what was taken (presence stores it in parts)
            for client_id, event in records.items():
                if writing.get(client_id) is event:
                    del writing[client_id]
            if not writing and self.writing.get(scope) is writing:
                del self.writing[scope]

    def last(self, ctx, client_id: str) -> dict | None:
        scope = (ctx.account, ctx.region)
        event = self.pending.get(scope, {}).get(client_id) or self.writing.get(scope, {}).get(client_id)
        return _record(event) if event is not None else ctx.tx.get(KIND, client_id)


def _record(event: PresenceEvent) -> dict:
    """The stored record of a client's last presence event."""
    return {
        "connected": event.kind == "connected",
        "timestamp": event.timestamp,
        "disconnectReason": event.disconnect_reason,
        "sessionIdentifier": event.session_id,
    }


def install(runtime) -> PresenceLog:
    log_ = getattr(runtime, "presence_log", None)
    if log_ is None:
        log_ = runtime.presence_log = PresenceLog(runtime)
        presence.install(runtime).register(log_)
    return log_


def connectivity(ctx, thing_name: str) -> dict:
    broker = ctx.runtime.broker
    connected = broker is not None and broker.is_connected(ctx.account, ctx.region, thing_name)
    out = {"thingName": thing_name, "connected": connected}
    record = install(ctx.runtime).last(ctx, thing_name)
    if record is not None and record["connected"] == connected and record.get("timestamp") is not None:
        out["timestamp"] = record["timestamp"] / 1000
        if not connected and record.get("disconnectReason"):
            reason = record["disconnectReason"]
            out["disconnectReason"] = reason if reason in REASONS else _REASON_MAP.get(reason, "UNKNOWN")
    return out


def _forget(ctx, thing: dict) -> None:
    ctx.tx.delete(KIND, thing["thingName"])  # a thing made again later starts unseen


hooks.on(hooks.THING_DELETED, _forget)


@operation("iot")
def GetThingConnectivityData(ctx, req):
    name = req["thingName"]
    if ctx.tx.get(things.KIND, name) is None:
        raise not_found(f"Thing {name} cannot be found.")
    return connectivity(ctx, name)
