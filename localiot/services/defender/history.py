"""The broker's connection history, as the audit's client-id and shared
certificate checks need it.

The broker publishes `$aws/events/presence/connected|disconnected/{clientId}`
on the bus for every connection (clientId, principalIdentifier, sessionIdentifier,
ipAddress, timestamp, disconnectReason). `ConnectionHistory` hears them
through localiot.services.presence and keeps one record per connection in
the store (kind "connection-history", named "<connectedAt ms, 13
digits>|<clientId>|<sessionIdentifier>", in the client's account and
region): {clientId, principal, ipAddress, connectedAt, disconnectedAt,
disconnectReason}, indexed by client id. Writes share the
presence unit of work of their loop iteration; `flush(runtime)` writes what
is pending (an audit calls it first).

Retention: the checks that read it (CONFLICTING_CLIENT_IDS_CHECK,
DEVICE_CERTIFICATE_SHARED_CHECK) look at the last `catalog.HISTORY_DAYS`
(31) days, so a record that ended before that on the clock is deleted
(looked at once per `PRUNE_EVERY` of clock time per scope, oldest first);
and a client id keeps its `PER_CLIENT` (100) latest records, so a device
reconnecting all day long costs a bounded number of them (its
CONNECTION_COUNT in a finding stops at 100).

`install(runtime)` when the listeners start (idempotent).
"""

from __future__ import annotations

from localiot.services import presence
from localiot.services.defender.catalog import HISTORY_DAYS

KIND = "connection-history"
PER_CLIENT = 100  # latest records kept per client id
PRUNE_EVERY = 3600.0  # clock seconds between two looks for records past the audit's window
PRUNE_PAGE = 500


class ConnectionHistory:
    def __init__(self, runtime):
        self.runtime = runtime
        self.open: dict[tuple[str, str, str, str], str] = {}  # (account, region, client, session) -> record name
        self.pending: dict[tuple[str, str], dict[str, dict]] = {}  # (account, region) -> {name: record}
        self.next_prune: dict[tuple[str, str], float] = {}  # scope -> clock time of the next age pruning

    def hear(self, account: str, region: str, kind: str, topic_client: str, body: dict) -> bool:
        client_id, session = body.get("clientId") or topic_client, str(body.get("sessionIdentifier"))
        key = (account, region, client_id, session)
        pending = self.pending.setdefault((account, region), {})
        if kind == "connected":
            name = f"{int(body.get('timestamp') or 0):013d}|{client_id}|{session}"
            self.open[key] = name
            pending[name] = {
                "clientId": client_id, "principal": body.get("principalIdentifier"),
                "ipAddress": body.get("ipAddress"), "connectedAt": body.get("timestamp"),
                "disconnectedAt": None, "disconnectReason": None,
            }
            return True
        name = self.open.pop(key, None)
        if name is None:
            return False
        update = {"disconnectedAt": body.get("timestamp"), "disconnectReason": body.get("disconnectReason")}
        record = pending.get(name)
        if record is not None:
            record.update(update)
        else:
            pending[name] = {"update": update}
        return True

    def write(self, ctx) -> None:
        records = self.pending.pop((ctx.account, ctx.region), None)
        tx = ctx.tx
        new_clients = set()
        for name, record in (records or {}).items():
            if "update" in record:
                stored = tx.get(KIND, name)
                if stored is None:
                    continue
                record = {**stored, **record["update"]}
            else:
                new_clients.add(record["clientId"])
            tx.put(KIND, name, record, {"client": record["clientId"]})
        for client_id in new_clients:
            excess = tx.count(KIND, "client", client_id) - PER_CLIENT
            if excess > 0:  # oldest first (names start with the connection time)
                for name, _ in tx.find(KIND, "client", client_id, limit=excess):
                    tx.delete(KIND, name)
        self._prune(ctx)

    def _prune(self, ctx) -> None:
        """Delete the records that ended before the audit's window, once per PRUNE_EVERY per scope."""
        now = ctx.now()
        scope = (ctx.account, ctx.region)
        due = self.next_prune.get(scope)
        if due is not None and now < due:
            return
        self.next_prune[scope] = now + PRUNE_EVERY
        cutoff = int((now - HISTORY_DAYS * 86400) * 1000)
        tx, after = ctx.tx, None
        while True:
            page = tx.scan(KIND, after=after, limit=PRUNE_PAGE)
            for name, doc in page:
                if (doc.get("connectedAt") or 0) >= cutoff:
                    return  # this one and every later one connected inside the window
                ended = doc.get("disconnectedAt")
                if ended is not None and ended < cutoff:
                    tx.delete(KIND, name)
            if len(page) < PRUNE_PAGE:
                return
            after = page[-1][0]


def install(runtime) -> ConnectionHistory:
    history = getattr(runtime, "connection_history", None)
    if history is None:
        history = runtime.connection_history = ConnectionHistory(runtime)
        presence.install(runtime).register(history)
    return history


def flush(runtime) -> None:
    presence.flush(runtime)


def connections(tx, since_ms: int) -> list[dict]:
    """Every connection recorded in this scope that was open at or after `since_ms`."""
    return [doc for _, doc in tx.scan(KIND) if (doc.get("disconnectedAt") or 2**62) >= since_ms]
