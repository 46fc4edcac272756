"""In-transaction hooks between families, so the registry need not import
the families that react to it (jobs follow group membership, ...).

    hooks.on(THING_ADDED_TO_GROUP, fn)      # fn(ctx, group_doc, thing_doc)
    hooks.fire(THING_ADDED_TO_GROUP, ctx, group_doc, thing_doc)

Hooks run inside the caller's transaction: an exception undoes the whole call.
"""

from __future__ import annotations

from typing import Callable

THING_ADDED_TO_GROUP = "thing-added-to-group"  # (ctx, group doc, thing doc)
THING_DELETED = "thing-deleted"  # (ctx, thing doc)
JOB_CREATING = "job-creating"  # (ctx, job spec): may refuse it or rewrite destinationPackageVersions
JOB_EXECUTION_SUCCEEDED = "job-execution-succeeded"  # (ctx, job doc, execution doc)
# (ctx) at the end of every unit of work that wrote (ctx.tx.changes not empty), inside its
# transaction, before the ctx.before_commit callbacks: derived data follows ctx.tx.changes
# (fleet index). A unit that wrote nothing (every read) does not fire it.
UNIT_ENDING = "unit-ending"

_HOOKS: dict[str, list[Callable]] = {}


def on(event: str, fn: Callable) -> Callable:
    _HOOKS.setdefault(event, []).append(fn)
    return fn


def registered(event: str) -> list[Callable]:
    """The hooks of `event`, as a list that hooks registered later join (for a caller that
    fires one event on every call: the unit of work's UNIT_ENDING)."""
    return _HOOKS.setdefault(event, [])


def fire(event: str, ctx, *args) -> None:
    for fn in _HOOKS.get(event, ()):
        fn(ctx, *args)
