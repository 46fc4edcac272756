"""One server's AWS IoT logging: which level applies (cached), and writing an
entry to the server log and, when configured, to CloudWatch Logs.

The level comes from `levels.level_for` (localiot.services.logging_options),
read once per (account, region, client id, thing, source IP, principal) and
kept until a committed call changes what it depends on: the logging options,
a resource-specific level, a thing group or a group membership (the commit
listener bumps `generation`), or the server is reset (`forget`).
"""

from __future__ import annotations

import asyncio
import logging

from localiot.iotlogs import cloudwatch, entries
from localiot.iotlogs.entries import FAILURE, INFO
from localiot.services.logging_options import levels
from localiot.services.registry.things import MEMBER_OF

log = logging.getLogger("localiot.iotlogs")

UNCONFIGURED = -1  # the account never set logging options: refusals only, to the server log at INFO
_WATCHED_KINDS = {levels.OPTIONS, levels.LEVEL, levels.GROUP_KIND}
_CACHE_MAX = 10_000
_PY_LEVELS = {entries.ERROR: logging.ERROR, entries.WARN: logging.WARNING, entries.INFO: logging.INFO,
              entries.DEBUG: logging.INFO}  # DEBUG entries were asked for: shown at the server's INFO


class IoTLogs:
    def __init__(self, runtime, store=None):
        self.runtime = runtime
        self.store = store if store is not None else runtime.store
        self.clock = runtime.clock
        self.generation = 0
        self._levels: dict[tuple, tuple[int, int]] = {}  # per client, when the scope has per-client levels
        self._scopes: dict[tuple[str, str], tuple[int, int | None]] = {}  # (generation, level of every client)
        self._groups: dict[tuple[str, str], str | None] = {}  # (account, region) -> CloudWatch group or None
        self.shipper = cloudwatch.Shipper(runtime)
        runtime.commit_listeners.append(self._on_commit)

    # which level ---------------------------------------------------------------------
    def _on_commit(self, ctx) -> None:
        for change in ctx.tx.changes:
            if (change[0] == "doc" and change[3] in _WATCHED_KINDS) or (change[0] == "link"
                                                                        and change[3] == MEMBER_OF):
                self.forget(keep_queue=True)
                return

    def forget(self, keep_queue: bool = False) -> None:
        """Every cached level is stale (options changed, or the store was reset)."""
        self.generation += 1
        self._levels.clear()
        self._scopes.clear()
        self._groups.clear()
        if not keep_queue:
            self.shipper.forget()

    def scope_level(self, account: str, region: str) -> int | None:
        """The level every client of the scope gets (no per-client target), if known; else None."""
        scope = self._scopes.get((account, region))
        if scope is not None and scope[0] == self.generation:
            return scope[1]
        return None

    def verbosity(self, account: str, region: str, client_id=None, thing=None, ip=None, principal=None,
                  tx=None) -> int | None:
        """The level (entries.DISABLED .. DEBUG, or UNCONFIGURED) for one client; None when
        the store is inside another transaction and no `tx` was given (ask again later)."""
        scope = self._scopes.get((account, region))
        if scope is not None and scope[0] == self.generation and scope[1] is not None:
            return scope[1]  # one level for every client of the scope
        key = (account, region, client_id, thing, ip, principal)
        hit = self._levels.get(key)
        if hit is not None and hit[0] == self.generation:
            return hit[1]
        generation = self.generation
        if tx is not None:
            scoped = tx if (tx.account, tx.region) == (account, region) else tx.scope(account, region)
            value = self._read(scoped, generation, key)
        elif self.store is None:  # a broker without a store (tests of the broker alone): never configured
            return UNCONFIGURED
        elif self._busy():
            return None
        else:
            try:
                with self.store.transaction(account, region, write=False) as scoped:
                    value = self._read(scoped, generation, key)
            except Exception:  # logging must never take the broker down: entries wait for a readable store
                log.exception("reading the logging options of %s/%s failed", account, region)
                return UNCONFIGURED
        return value

    def _read(self, tx, generation: int, key: tuple) -> int:
        account, region, client_id, thing, ip, principal = key
        scope = self._scopes.get((account, region))
        if scope is None or scope[0] != generation:
            self._groups[(account, region)] = self._group(tx)
            scope = self._scopes[(account, region)] = (generation, self._scope_level(tx))
            if scope[1] is not None:
                return scope[1]
        name = levels.level_for(tx, client_id=client_id, thing_name=thing, source_ip=ip, principal_id=principal)
        value = UNCONFIGURED if name is None else levels.VERBOSITY[name]
        if len(self._levels) >= _CACHE_MAX:
            self._levels.clear()
        self._levels[key] = (generation, value)
        return value

    @staticmethod
    def _scope_level(tx) -> int | None:
        """The level of every client of the scope when it does not depend on the client
        (no options, v1 only, all logs disabled, no resource-specific level); else None."""
        v2 = levels.v2_options(tx)
        if v2 is None:
            name = levels.level_for(tx)
            return UNCONFIGURED if name is None else levels.VERBOSITY[name]
        if v2.get("disableAllLogs"):
            return entries.DISABLED
        if tx.count(levels.LEVEL) == 0:
            return levels.VERBOSITY[v2.get("defaultLogLevel", "DISABLED")]
        return None

    def _group(self, tx) -> str | None:
        """Where CloudWatch entries go: a role is configured and so is a downstream endpoint."""
        if not self.runtime.config.aws_endpoint_url:
            return None
        v2 = levels.v2_options(tx)
        if v2 is not None:
            return cloudwatch.V2_GROUP if v2.get("roleArn") else None
        v1 = levels.v1_options(tx)
        return cloudwatch.V1_GROUP if v1 and v1.get("roleArn") else None

    def _busy(self) -> bool:
        db = getattr(self.store, "db", None)
        return bool(db is not None and db.in_transaction)

    # writing ---------------------------------------------------------------------------
    def write(self, account: str, region: str, verbosity: int, level: int, status: str, event_type: str,
              fields: dict, trace: str | None = None) -> None:
        """Write one entry if `verbosity` lets `level` through (refusals only when unconfigured)."""
        if verbosity == UNCONFIGURED:
            if status != FAILURE:
                return
            py_level, group = logging.INFO, None
        elif level > verbosity or verbosity <= 0:
            return
        else:
            py_level, group = _PY_LEVELS[level], self._groups.get((account, region))
        to_server = log.isEnabledFor(py_level)
        if not to_server and group is None:
            return  # nobody would read it: no JSON built
        now = self.clock.now()
        text = entries.line(entries.build(now, level, status, event_type, account, fields, trace))
        if to_server:
            log.log(py_level, text)
        if group is not None:
            self.shipper.put(account, region, group, int(now * 1000), text)

    def emit(self, account: str, region: str, who: tuple, level: int, status: str, event_type: str, fields: dict,
             trace: str | None = None, tx=None) -> None:
        """Decide the level for `who` (client id, thing, source IP, principal) and write.
        Asked from inside another transaction, it runs again on the next loop turn."""
        verbosity = self.verbosity(account, region, *who, tx=tx)
        if verbosity is None:
            try:
                asyncio.get_running_loop().call_soon(self.emit, account, region, who, level, status, event_type,
                                                     fields, trace)
            except RuntimeError:
                log.warning("AWS IoT log entry %s for %s not written: no event loop", event_type, who[0])
            return
        self.write(account, region, verbosity, level, status, event_type, fields, trace)


def wants(verbosity: int | None, level: int = INFO) -> bool:
    """Whether a success entry at `level` would be written (the hot path's question)."""
    return verbosity is not None and verbosity >= level
