"""The broker's connection history, as the audit's client-id and shared
certificate checks need it.

The broker tells localiot.services.presence of every connection's
connected and disconnected event (a PresenceEvent: clientId, principal,
sessionIdentifier, ipAddress, timestamp, disconnectReason). `ConnectionHistory`
hears them and keeps one record per connection in the store (kind
"connection-history", named "<clientId>|<connectedAt ms, 13 digits>|<the
sessionIdentifier's first 8 hex digits>", in the client's account and
region). The stored document is {principal, ipAddress, disconnectedAt,
disconnectReason}, the fields without a value left out (an open connection
has no disconnectedAt): clientId and connectedAt are in its name, and every
reader (`connections`, `records_of`, `fields`) gives the record with them,
{clientId, connectedAt, ...}. Records written before 2026-12-04 have both in
the document too, those before 2026-12-03 nulls and the whole session id in
their name: every reader takes all of them, so they age out rather than
being rewritten. At 10,000 idle connections the record is most of what an
idle plain connection costs beyond its objects (a row of ~280 bytes of SQLite
pages with the client id and connection time twice, ~200 without; eighth
pass in bench/README.md).
Writes share the presence unit of work of their window; an open
connection's record is held back until the connection ends or `HOLD` (1 s)
has passed, so a short connection costs one write, not a
write and a rewrite (a server killed in that second loses it, as it loses
any window's records); `flush(runtime)` writes everything pending and
held (an audit calls it first).

Retention: the checks that read it (CONFLICTING_CLIENT_IDS_CHECK,
DEVICE_CERTIFICATE_SHARED_CHECK) look at the last `catalog.HISTORY_DAYS`
(31) days, so a record that ended before that on the clock is deleted (a
pass over the records once per `PRUNE_EVERY` of clock time per scope, one
page per write, so no write pays for a whole pass); and a client id keeps
its `PER_CLIENT` (100) latest records, so a device reconnecting all day
long costs a bounded number of them (its CONNECTION_COUNT in a finding
stops at 100). A client id's first connection in a process is not counted
(a range read per connect, for clients that mostly have one record): its
next connection in the process counts, and the prune pass counts every
client id it passes. The names start with the client id so that its
records are one range of names, oldest first: counting them is a range read, not an
index entry per record (an index entry and its count were about half of a
record's cost). A client id seen with many records has its count kept in
memory (`counts`), so a device reconnecting all day long does not read its
hundred records back at every connection. Records named by connection time
first (before 2026-12) have no place in a client's range: they age out.

`install(runtime)` when the listeners start (idempotent).
"""

from __future__ import annotations

import asyncio

from localiot.broker.lifecycle import PresenceEvent
from localiot.services import presence
from localiot.services.defender.catalog import HISTORY_DAYS

KIND = "connection-history"
PER_CLIENT = 100  # latest records kept per client id
PRUNE_EVERY = 3600.0  # clock seconds between two passes over the records for those past the audit's window
PRUNE_PAGE = 500  # records a write looks at during a pass
COUNTED = 10  # a client id with at least this many records has its count kept in memory
COUNTS_MAX = 4096  # client ids whose count is kept (then forgotten together: counted again when seen)
HOLD = 1.0  # seconds an open connection's record waits for the connection's end before it is written
SESSION_DIGITS = 8  # of the session id, in a record's name
# What a held record is to the client's count (`_cap`): WRITTEN, stored before (a connection's end
# rewrites it); NEW, counted when it is stored; FIRST, the client id's first connection in this process,
# not counted then (most clients: a range read per connection was a tenth of a plain connect's CPU):
# the prune pass counts every client id's records (a client connecting once per process life), and
# the client's next connection in this process counts them
WRITTEN, NEW, FIRST = 0, 1, 2


class ConnectionHistory:
    def __init__(self, runtime):
        self.runtime = runtime
        # (account, region) -> {name: (record, new)}: records to write at the next window; `new` is
        # what the record is to its client's count (WRITTEN, NEW, FIRST)
        self.pending: dict[tuple[str, str], dict[str, tuple[dict, int]]] = {}
        # (account, region) -> {session id: (connected event, due)}: an open connection waits until `due`
        # (loop time) for its end, so that its record is written once; the record is made from the
        # event only then (most connections of a burst end first)
        self.opening: dict[tuple[str, str], dict[str, tuple[PresenceEvent, float]]] = {}
        self.next_prune: dict[tuple[str, str], float] = {}  # scope -> clock time of the next pass
        self.prune_after: dict[tuple[str, str], str] = {}  # scope -> the last name looked at by the pass under way
        self.prune_run: dict[tuple[str, str], tuple[str, int]] = {}  # scope -> the client id that page ended with
        self.counts: dict[tuple[str, str, str], int] = {}  # (account, region, client) -> its stored records
        self.presence = None  # localiot.services.presence.Presence, set by install
        self._resets = 0  # the broker's reset count this state belongs to

    def _fresh(self) -> None:
        """Forget connections and held records from before a server reset (the store was wiped)."""
        broker = self.runtime.broker
        resets = 0 if broker is None else broker.resets
        if resets != self._resets:
            self._resets = resets
            self.pending.clear()
            self.opening.clear()
            self.counts.clear()
            self.next_prune.clear()
            self.prune_after.clear()
            self.prune_run.clear()

    def hear(self, account: str, region: str, event: PresenceEvent) -> bool:
        broker = self.runtime.broker
        if (0 if broker is None else broker.resets) != self._resets:
            self._fresh()
        scope = (account, region)
        session = event.session_id
        if event.kind == "connected":
            loop = asyncio._get_running_loop()
            if loop is None or self.presence is None:
                name, entry = _opened(event)
                self.pending.setdefault(scope, {})[name] = entry
                return True
            opening = self.opening.get(scope)
            if not opening:  # (else the scope has a flush coming: `take` asks for another for what it leaves)
                if opening is None:
                    opening = self.opening[scope] = {}
                self.presence.later(account, region, HOLD)
            opening[session] = (event, loop.time() + HOLD)
            return False  # nothing to write before it ends or is due
        at = event.connected_at
        if at is None:  # (a connection this process did not announce)
            return False
        name = _name(event.client_id, at, session)
        pending = self.pending.get(scope)
        if pending is None:
            pending = self.pending[scope] = {}
        opening = self.opening.get(scope)
        opened = opening.pop(session, None) if opening else None
        if opened is not None and opened[0].timestamp != at:  # another connection of the session
            opening[session] = opened
            opened = None
        prior = pending.get(name)  # its record taken from `opening`, not stored yet
        new = prior[1] if prior is not None else WRITTEN if opened is None else _new(opened[0])
        pending[name] = (_record(event.principal, event.ip_address, event.timestamp, event.disconnect_reason), new)
        return True

    def held(self) -> list[tuple[str, str]]:
        """The scopes with records waiting (for localiot.services.presence.flush)."""
        self._fresh()
        return [scope for scope in {*self.pending, *self.opening}
                if self.pending.get(scope) or self.opening.get(scope)]

    def write(self, ctx, everything: bool = False) -> None:
        self.store(ctx, self.take(ctx.account, ctx.region, everything))

    def take(self, account: str, region: str, everything: bool = False) -> dict:
        """The scope's records due now (with `everything`, open connections' too); the others
        stay held (on the loop: localiot.services.presence writes them on a worker)."""
        self._fresh()
        scope = (account, region)
        records = self.pending.pop(scope, None) or {}
        opening = self.opening.get(scope)
        if opening:
            now = None if everything else _loop_time()
            for session in [s for s, held in opening.items() if now is None or now >= held[1]]:
                name, entry = _opened(opening.pop(session)[0])
                records.setdefault(name, entry)
            if opening:
                self.presence.later(*scope, HOLD)
            else:
                del self.opening[scope]
        return records

    def store(self, ctx, records: dict) -> None:
        """Write records `take` took, in the presence unit of work."""
        tx = ctx.tx
        new_clients: dict[str, int] = {}
        counted: set[str] = set()
        for name, (record, new) in records.items():
            tx.put(KIND, name, record)
            if new:
                client_id = _client_of(name, record)
                new_clients[client_id] = new_clients.get(client_id, 0) + 1
                if new == NEW:
                    counted.add(client_id)
        counts, scope = self.counts, (ctx.account, ctx.region)
        for client_id, added in new_clients.items():
            if client_id in counted or (*scope, client_id) in counts:
                self._cap(ctx, client_id, added)
        self._prune(ctx)

    def _cap(self, ctx, client_id: str, added: int) -> None:
        """Keep the client id's PER_CLIENT latest records (its range of names, oldest first)."""
        tx, prefix = ctx.tx, f"{client_id}|"
        key = (ctx.account, ctx.region, client_id)
        known = self.counts.get(key)
        oldest = None
        if known is not None:
            known += added
            excess = known - PER_CLIENT
            if excess > 0:  # the oldest ones; another id may start with this one and "|": then all of them
                oldest = [name for name, doc in tx.scan(KIND, prefix=prefix, limit=excess)
                          if _client_of(name, doc) == client_id]
                if len(oldest) < excess:
                    known = None
        if known is None:  # counted from the store (a range read: short, unless the client id is a flapper)
            oldest = [name for name, doc in tx.scan(KIND, prefix=prefix) if _client_of(name, doc) == client_id]
            known = len(oldest)
        excess = known - PER_CLIENT
        if excess > 0:
            for name in oldest[:excess]:
                tx.delete(KIND, name)
            known = PER_CLIENT
        if known >= COUNTED:
            if key not in self.counts and len(self.counts) >= COUNTS_MAX:
                self.counts.clear()
            self.counts[key] = known
        else:
            self.counts.pop(key, None)

    def _prune(self, ctx) -> None:
        """Delete the records that ended before the audit's window: a pass over the scope's records
        once per PRUNE_EVERY, one page of them per write. The pass also counts each client id's
        records, for those whose first connection in a process was not counted (`_cap`)."""
        now = ctx.now()
        scope = (ctx.account, ctx.region)
        after = self.prune_after.pop(scope, None)
        run = self.prune_run.pop(scope, None)
        if after is None:
            due = self.next_prune.get(scope)
            if due is not None and now < due:
                return
            self.next_prune[scope] = now + PRUNE_EVERY
            run = None
        cutoff = int((now - HISTORY_DAYS * 86400) * 1000)
        tx = ctx.tx
        page = tx.scan(KIND, after=after, limit=PRUNE_PAGE)
        counts = self.counts
        kept: dict[str, int] = {}  # client id -> its records in this page (and the run the last page ended with)
        if run is not None:
            kept[run[0]] = run[1]
        client_id = None
        for name, doc in page:
            ended = doc.get("disconnectedAt")
            client_id = _client_of(name, doc)
            if ended is not None and ended < cutoff:
                tx.delete(KIND, name)
                key = (*scope, client_id)
                if key in counts:
                    counts[key] -= 1
            else:
                kept[client_id] = kept.get(client_id, 0) + 1
        for over, count in kept.items():
            if count > PER_CLIENT:
                self._cap(ctx, over, 0)
        if len(page) == PRUNE_PAGE:  # the next write looks at the next page
            self.prune_after[scope] = page[-1][0]
            if client_id in kept:
                self.prune_run[scope] = (client_id, kept[client_id])


def _loop_time() -> float | None:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return None


def _new(event: PresenceEvent) -> int:
    """What an open connection's record is to its client's count: a client id's first connection
    in this process is not counted (see ConnectionHistory._cap)."""
    return FIRST if event.version == 0 else NEW


def _opened(event: PresenceEvent) -> tuple[str, tuple[dict, int]]:
    """The name and pending entry of an open connection's record, from its connected event."""
    record = _record(event.principal, event.ip_address, None, None)
    return _name(event.client_id, event.timestamp, event.session_id), (record, _new(event))


def _name(client_id: str, connected_at: int | None, session: str | None) -> str:
    """The record's name: the client's range, oldest first; the session id's first 8 hex digits
    tell apart two connections of one client id in one millisecond."""
    return f"{client_id}|{connected_at or 0:013d}|{(session or '')[:SESSION_DIGITS]}"


def _record(principal, ip, disconnected_at, reason) -> dict:
    """The stored document: the fields that have a value (an open connection's end, an anonymous
    principal are left out; readers take a missing field as null). The client id and the
    connection time are the record's name's (`fields` puts them back)."""
    record = {}
    if principal is not None:
        record["principal"] = principal
    if ip is not None:
        record["ipAddress"] = ip
    if disconnected_at is not None:
        record["disconnectedAt"] = disconnected_at
    if reason is not None:
        record["disconnectReason"] = reason
    return record


def _client_of(name: str, doc: dict) -> str:
    """The client id of a stored record (an older record has it in its document too)."""
    return doc.get("clientId") or name.rsplit("|", 2)[0]


def fields(name: str, doc: dict) -> dict:
    """A stored record as its readers take it: {clientId, connectedAt, principal, ipAddress,
    disconnectedAt, disconnectReason} (a field without a value left out, as stored)."""
    if "clientId" in doc and "connectedAt" in doc:  # written before 2026-12-04 (or named by time first)
        return doc
    client_id, at, _ = name.rsplit("|", 2)
    return {"clientId": client_id, "connectedAt": int(at), **doc}


def install(runtime) -> ConnectionHistory:
    history = getattr(runtime, "connection_history", None)
    if history is None:
        history = runtime.connection_history = ConnectionHistory(runtime)
        history.presence = presence.install(runtime)
        history.presence.register(history)
    return history


def flush(runtime) -> None:
    presence.flush(runtime)


def connections(tx, since_ms: int) -> list[dict]:
    """Every connection recorded in this scope that was open at or after `since_ms` (see `fields`)."""
    return [fields(name, doc) for name, doc in tx.scan(KIND) if (doc.get("disconnectedAt") or 2**62) >= since_ms]


def records_of(tx, client_id: str) -> list[dict]:
    """The connections recorded for `client_id` in this scope, oldest first (see `fields`)."""
    found = [fields(name, doc) for name, doc in tx.scan(KIND, prefix=f"{client_id}|")]
    return [record for record in found if record["clientId"] == client_id]
