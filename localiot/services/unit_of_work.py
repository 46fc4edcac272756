"""One unit of work: the only place where work on the store is opened, run,
committed and announced.

    with unit_of_work(runtime, account, region, "iot", "CreateThing") as ctx:
        output = handler(ctx, params)

Inside: one store transaction bound to (account, region); the UNIT_ENDING
hooks (localiot.services.hooks; when the unit wrote something) and then
`ctx.before_commit(fn)` callbacks run last inside it (an exception there
undoes everything). After the
commit, in this order: the events the work queued (`ctx.publish`) go to the
bus, the commit listeners hear which operation committed (the broker drops
cached grants when it changed device rights; a unit that wrote nothing and
queued no event tells them nothing), and `ctx.after_commit(fn)`
callbacks run. If the body raises, the transaction rolls back and nothing
after it happens.

The HTTP API, the MQTT doors, just-in-time registration and every time-driven
job use this; nothing else opens a writing transaction on behalf of an
operation.

An API call on SQLite runs `grouped`: its transaction may be a savepoint in
the commit it shares with the other API calls of the same loop iteration
(localiot.store.commit_group); then everything after the commit (`committed`)
runs once that shared COMMIT is done, before the call's reply goes out.

With PostgreSQL a unit of work usually runs on one of the node's worker
threads (localiot.cluster.workers): its body and transaction there, and
everything after the commit (`committed`) on the event loop, queued in
commit order. `run_off_loop` is how a caller on the loop runs one there;
`in_unit` is the coroutines' (asyncio tasks', async periodic jobs') way to
run `fn(ctx)` as one unit of work there.
"""

from __future__ import annotations

import logging
import sys

from localiot.services import hooks
from localiot.services.context import RequestContext

log = logging.getLogger("localiot.unit_of_work")
_UNIT_ENDING = hooks.registered(hooks.UNIT_ENDING)


class unit_of_work:  # noqa: N801 (used as a function: `with unit_of_work(...) as ctx`)
    """Run the body as one unit of work of `operation` in (account, region).

    `context` is the RequestContext class to build (families with extra
    per-run state subclass it); `context_fields` are passed to it.
    A plain context manager (not @contextmanager); `run` (every API call) goes
    through the same `_open` and `_close` without it."""

    __slots__ = ("runtime", "account", "region", "service", "operation", "write", "context", "fields",
                 "grouped", "_transaction", "ctx")

    def __init__(self, runtime, account: str, region: str, service: str = "iot", operation: str = "", *,
                 write: bool = True, context=RequestContext, grouped: bool = False, **context_fields):
        self.runtime, self.account, self.region = runtime, account, region
        self.service, self.operation, self.write = service, operation, write
        self.context, self.fields, self.grouped = context, context_fields, grouped

    def __enter__(self) -> RequestContext:
        self._transaction, self.ctx = _open(self.runtime, self.account, self.region, self.service, self.operation,
                                            self.write, self.grouped, self.context, self.fields)
        return self.ctx

    def __exit__(self, kind, error, trace) -> bool:
        if kind is not None:  # the body failed: roll back, nothing follows
            _let_go(self.ctx)
            return bool(self._transaction.__exit__(kind, error, trace))
        _close(self.runtime, self._transaction, self.ctx)
        return False


def _open(runtime, account: str, region: str, service: str, operation: str, write: bool, grouped: bool,
          context, fields: dict | None) -> tuple:
    """(the store transaction, entered; the unit's context on it)."""
    transaction = runtime.store.transaction(account, region, write=write, grouped=grouped)
    tx = transaction.__enter__()
    try:
        if fields:
            ctx = context(account, region, tx, runtime, service, operation, **fields)
        else:
            ctx = context(account, region, tx, runtime, service, operation)
    except BaseException:
        if not transaction.__exit__(*sys.exc_info()):
            raise
        ctx = None
    return transaction, ctx


def _close(runtime, transaction, ctx: RequestContext) -> None:
    """The end of a unit whose body returned: the hooks inside the transaction, its
    commit, then what follows the commit (`committed`), if anything does."""
    tx = ctx.tx
    try:
        if tx.changes:  # (UNIT_ENDING: derived data follows the writes; a unit that wrote none has nothing)
            for fn in _UNIT_ENDING:
                fn(ctx)
        if ctx.before_commit_hooks:
            for fn in ctx.before_commit_hooks:
                fn()
    except BaseException:
        _let_go(ctx)
        if not transaction.__exit__(*sys.exc_info()):
            raise
        return
    # A unit that wrote nothing, queued no event and asked for nothing after its commit
    # (every read) has nothing to follow it: its commit is all there is to do. (A read that
    # saw what an open commit group wrote still replies after that COMMIT: the HTTP handler
    # awaits `store.pending_commit` whatever the unit did.)
    if not (ctx.events or tx.changes or ctx.after_commit_hooks or ctx.extra_affects is not None):
        transaction.__exit__(None, None, None)
        return
    workers = runtime.workers
    if workers is not None and workers.on_worker():  # PostgreSQL, off the loop: what follows is the loop's
        with workers.commit_order:
            transaction.__exit__(None, None, None)
            workers.after_commit(committed, ctx)
        return
    transaction.__exit__(None, None, None)
    if not transaction.defer(committed, ctx):  # SQLite: the commit may still be the group's
        committed(ctx)


def committed(ctx: RequestContext) -> None:
    """What follows a commit: events to the bus, commit listeners, after-commit callbacks."""
    runtime = ctx.runtime
    events = ctx.events
    if events:
        publish = runtime.bus.publish
        for topic, payload in events:
            publish(ctx.account, ctx.region, topic, payload)
    # A unit that wrote and announced nothing (every read) has nothing to tell the listeners.
    if events or getattr(ctx.tx, "changes", True) or ctx.extra_affects is not None:
        for listener in tuple(runtime.commit_listeners):  # (a copy: a listener may leave the list)
            try:
                listener(ctx)
            except Exception:  # the call committed: a listener's failure must not turn it into an error
                log.exception("commit listener failed after %s %s", ctx.service, ctx.operation)
    after = ctx.after_commit_hooks
    if after:
        for fn in after:
            try:
                fn()
            except Exception:
                log.exception("after-commit work failed after %s %s", ctx.service, ctx.operation)
    ctx.before_commit_hooks = ctx.after_commit_hooks = None  # (_let_go's)


def _let_go(ctx: RequestContext) -> None:
    """Drop the unit's callbacks once they ran (or never will). A callback is usually a
    closure over `ctx` (iot-data Publish's delivery), so ctx -> list -> closure -> ctx
    is a reference cycle: left in place, every such call's objects waited for the
    cyclic garbage collector (~8 µs a Publish in process, most of it full collections
    walking the whole heap) instead of being freed when the call ends."""
    ctx.before_commit_hooks = ctx.after_commit_hooks = None


# Attempts of a unit of work the store refused to finish for a reason a new
# attempt removes (PostgreSQL: a deadlock between nodes, 40P01).
ATTEMPTS = 3


def run(runtime, account: str, region: str, service: str, operation: str, fn, *args, grouped: bool = False):
    """`fn(ctx, *args)` as one unit of work, run again from the start when the store
    ends it with a conflict a retry resolves (`store.retryable(error)`); SQLite never does.
    The HTTP API runs every call through this, `grouped`: its reply awaits the store's
    `pending_commit` when there is one, so its commit may be shared (localiot.store.commit_group).
    (`unit_of_work` without its object: this is every API call's.)"""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            # (_open's, written out)
            transaction = runtime.store.transaction(account, region, grouped=grouped)
            tx = transaction.__enter__()
            ctx = None
            try:
                ctx = RequestContext(account, region, tx, runtime, service, operation)
                output = fn(ctx, *args)
            except BaseException:  # the body failed: roll back, nothing follows
                if ctx is not None:
                    _let_go(ctx)
                if not transaction.__exit__(*sys.exc_info()):
                    raise
                continue  # (as a `with` whose transaction swallowed the error: the next attempt)
            _close(runtime, transaction, ctx)
            return output
        except Exception as error:
            retryable = getattr(runtime.store, "retryable", None)
            if retryable is None or attempt == ATTEMPTS or not retryable(error):
                raise
            log.info("retrying %s %s after %s", service, operation, error)


async def run_off_loop(runtime, fn, *args):
    """`fn(*args)` (which opens its units of work) on a worker thread when the node has
    them (PostgreSQL), else here on the loop, as before. Awaited on the loop."""
    workers = getattr(runtime, "workers", None)
    if workers is None:
        return fn(*args)
    return await workers.call(fn, *args)


async def in_unit(runtime, account: str, region: str, service: str, operation: str, fn, *args,
                  write: bool = True, **unit_fields):
    """`fn(ctx, *args)` as one unit of work, awaited from a coroutine (an asyncio task, an async
    periodic job): its body and transaction on a worker thread with PostgreSQL, here on the
    loop with SQLite. What follows the commit runs on the loop either way."""
    def body():
        with unit_of_work(runtime, account, region, service, operation, write=write, **unit_fields) as ctx:
            return fn(ctx, *args)
    return await run_off_loop(runtime, body)


def read_only(runtime, account: str, region: str, service: str = "iot", operation: str = ""):
    """A unit of work that only reads: no write lock, nothing to announce."""
    return unit_of_work(runtime, account, region, service, operation, write=False)
