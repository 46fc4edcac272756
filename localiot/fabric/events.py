"""Commit events between nodes: what a committed unit of work changed, for the
caches other nodes keep.

After every unit of work that wrote something, this node sends on
`liot.c.commit` its account, region, operation, declared effects
(`localiot.services.Affects`) and the distinct kinds of what it wrote
(("doc", account, region, kind) and ("link", account, region, relation)).
Each other node replays its own commit listeners with it
(`runtime.commit_listeners`: device grants are recomputed and connections
whose certificate was revoked or deactivated are dropped, log levels are
read again, trust anchors reloaded), and tells its rules engine when topic
rules or destinations changed. MQTT messages that a unit of work publishes
(shadow deltas, job notifications, registry events) need nothing here: they
go through the broker's routing, and so the fabric, like any other message.
"""

from __future__ import annotations

import json
import logging

from localiot.fabric import subjects

log = logging.getLogger("localiot.fabric")

_RULE_KINDS = ("topicrule", "ruledestination")  # localiot.services.rules.documents


class RemoteCommit:
    """A unit of work another node committed, as commit listeners read it."""

    def __init__(self, runtime, doc: dict):
        from localiot.services import Affects

        self.runtime = runtime
        self.account, self.region = doc["a"], doc["r"]
        self.service, self.operation = doc["s"], doc["o"]
        self.affects = Affects(doc["f"])
        self.tx = _Changes([tuple(change) + ("",) for change in doc["k"]])
        self.events: list = []
        self.remote = True


class _Changes:
    def __init__(self, changes: list[tuple]):
        self.changes = changes


class CommitEvents:
    def __init__(self, fabric):
        self.fabric = fabric
        self.runtime = fabric.runtime
        self.subject = subjects.CONTROL + "commit"
        self.received = 0

    def start(self) -> None:
        self.fabric.conn.subscribe(self.subject, self._on_commit_event)
        self.runtime.commit_listeners.append(self.on_commit)

    def stop(self) -> None:
        if self.on_commit in self.runtime.commit_listeners:
            self.runtime.commit_listeners.remove(self.on_commit)

    def on_commit(self, ctx) -> None:
        """Commit listener: tell the other nodes (not for a replayed remote commit)."""
        if getattr(ctx, "remote", False):
            return
        changes = getattr(ctx.tx, "changes", None) or ()
        affects = int(ctx.affects.value) if ctx.affects else 0
        if not changes and not affects:
            return
        kinds = sorted({change[:4] for change in changes})
        doc = {"a": ctx.account, "r": ctx.region, "s": ctx.service, "o": ctx.operation, "f": affects,
               "k": kinds}
        self.fabric.conn.publish(self.subject, json.dumps(doc, separators=(",", ":")).encode())

    def _on_commit_event(self, subject: str, reply, body: bytes) -> None:
        self.received += 1
        ctx = RemoteCommit(self.runtime, json.loads(body))
        for listener in list(self.runtime.commit_listeners):
            if listener == self.on_commit:
                continue
            try:
                listener(ctx)
            except Exception:
                log.exception("commit listener failed for %s %s from another node", ctx.service, ctx.operation)
        rules = self.runtime.rules
        if rules is not None:
            for scope in {(c[1], c[2]) for c in ctx.tx.changes if c[0] == "doc" and c[3] in _RULE_KINDS}:
                rules.stale(*scope)
