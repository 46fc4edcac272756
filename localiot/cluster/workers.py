"""Units of work off the event loop: with the PostgreSQL store a node runs the
HTTP API's calls, the MQTT doors' units of work and its synchronous
time-driven work on a few worker threads, each with its own connection
(localiot.store.postgresql), and the loop only awaits their results. A call
waiting on PostgreSQL (a lock another node holds, a slow statement) then
holds one worker thread, never the loop: MQTT traffic, /_localiot/health and
the other API calls go on. SQLite keeps running everything on the loop
(`runtime.workers` stays None: its one connection is the loop's).

What runs where:
- on a worker: the handler (or door function, or periodic job) and its
  transaction, the UNIT_ENDING hooks and `ctx.before_commit` callbacks;
  a CONNECT's certificate and policy reads (when the identity is not
  cached) and its persistent session's write before the CONNACK
  (localiot.broker.connection);
  a handler's body reads loop-owned state only (the broker's admission table,
  `is_connected`), single dictionary lookups the GIL keeps whole;
- on the loop, after the COMMIT: everything `committed()` does (the events
  to the bus, the commit listeners, `ctx.after_commit` callbacks: broker
  deliveries, DeleteConnection's disconnect, the asyncio tasks of audits, OTA
  updates and Device Advisor runs, the fabric's commit events). A worker
  commits and queues that with `loop.call_soon_threadsafe` under one lock
  (`commit_order`), so the loop hears commits in the order PostgreSQL made
  them, and before the call that committed answers (the loop runs callbacks
  in the order they were queued; the call's result is queued after).

Several worker threads, not one: two units of work of one node now run at
the same time, exactly as two nodes' do, and the store's per-document
advisory locks already make those safe (localiot.store.postgresql). What
must keep its order does: a device's requests on its door topics run one
after the other in the order it sent them (`in_order`, keyed by client), and
its PUBACK waits for its unit of work.

The broker's own store work runs here too (localiot.broker.persistence):
the group commit of QoS 1 messages, one at a time, while the output written
before it (PUBACKs among it) waits (localiot.broker.durable); a session's
saves, parks, deletes and queue reads in that session's lane, each after the
group commit holding its earlier messages; retained messages in their
account's lane (a device's retained PUBLISH is routed and acknowledged once
stored: localiot.broker.retaining). So do the presence records
(localiot.services.presence), the fabric's session moves and QoS 1 requeues,
custom-authorizer reads, units of work of asyncio tasks and async periodic
jobs (`unit_of_work.in_unit` / `run_off_loop`), Fleet Hub's pages. The PostgreSQL store counts
any use from the loop's thread (`storeOnLoop` in health, with the places);
tests/test_store_on_loop.py keeps it at zero for all of the above.

Still on the loop: cached reads made by a scope's first message (the AWS IoT
logging level, the rules engine's compiled rules), the TLS trust store's
refresh after a CA or certificate registration, the broker's session restore
at start-up and the test-only /_localiot admin calls.

`LOCALIOT_STORE_THREADS` sets the number of threads (default 4); health
reports them (`state`).

Stopping: work on the workers that may be dropped (nothing waits for it and
nobody was told it is stored: the presence records of localiot.services.presence)
asks `stopping()` between its steps and ends once the node has been stopping for
`STOP_GRACE` seconds (`stop_soon`, the first thing the node's stop does); a
statement it waits on in PostgreSQL then (a lock another session holds, up to
the store's lock_timeout of 30 s) is cancelled (`droppable`). Why: `close`
waits for the threads, and a node that stops right after 16,000 of its
clients went at once (or that drops them itself as it stops) took 77 s to
write their records first; records waiting on a lock held elsewhere made it
wait the lock_timeout per unit. A SIGKILL would lose those records too. Units
of work whose callers wait (API calls, door requests, the broker's group
commits) run to their end."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable

log = logging.getLogger("localiot.cluster")

DEFAULT_THREADS = 4
STOP_GRACE = 3.0  # seconds droppable work goes on once the node stops (see `stopping`)
_current = threading.local()  # .pool: the Workers of a worker thread


def threads_from_env() -> int:
    try:
        return max(1, int(os.environ.get("LOCALIOT_STORE_THREADS", DEFAULT_THREADS)))
    except ValueError:
        return DEFAULT_THREADS


class Workers:
    def __init__(self, loop: asyncio.AbstractEventLoop, threads: int = DEFAULT_THREADS):
        self.loop = loop
        self.threads = threads
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="localiot-unit", initializer=self._mark)
        # Held from a worker's COMMIT until its after-commit work is queued on the loop.
        self.commit_order = threading.Lock()
        self._lanes: dict = {}
        self.busy = 0  # units of work submitted and not finished (health)
        self.running = 0  # ... of which a thread runs now (the others are queued)
        self._count = threading.Lock()
        self.stop_at: float | None = None  # time.monotonic() after which droppable work ends
        self._droppable: dict[int, object] = {}  # worker thread -> its store connection, during droppable work
        self._drop_timer: asyncio.TimerHandle | None = None

    def _mark(self) -> None:
        self._local.worker = True
        _current.pool = self

    def stop_soon(self, grace: float = STOP_GRACE) -> None:
        """The node stops: droppable work (`stopping`) ends `grace` seconds from now."""
        deadline = time.monotonic() + grace
        if self.stop_at is None or deadline < self.stop_at:
            self.stop_at = deadline
            if self._drop_timer is not None:
                self._drop_timer.cancel()
            self._drop_timer = self.loop.call_later(grace, self._drop)

    def _drop(self) -> None:
        """The grace is over: cancel what droppable work waits on in PostgreSQL (each unit then
        fails and is rolled back: nothing of it was acknowledged)."""
        self._drop_timer = None
        with self._count:
            connections = list(self._droppable.values())
        for conn in connections:  # a cancel request is a connection of its own: off the loop
            threading.Thread(target=_cancel, args=(conn,), name="localiot-unit-cancel", daemon=True).start()

    def on_worker(self) -> bool:
        """Is the calling thread one of these workers?"""
        return getattr(self._local, "worker", False)

    def call(self, fn: Callable, *args) -> asyncio.Future:
        """`fn(*args)` on a worker thread; await the result on the loop."""
        self.busy += 1
        future = asyncio.wrap_future(self._pool.submit(self._run, fn, args), loop=self.loop)
        future.add_done_callback(self._done)
        return future

    def _run(self, fn: Callable, args: tuple):
        with self._count:
            self.running += 1
        try:
            return fn(*args)
        finally:
            with self._count:
                self.running -= 1

    def _done(self, _future) -> None:
        self.busy -= 1

    def state(self) -> dict:
        """For /_localiot/health: threads, units running on them, units waiting for one."""
        running = self.running
        return {"threads": self.threads, "busy": running, "queued": max(0, self.busy - running)}

    def in_order(self, key, fn: Callable, *args) -> asyncio.Task:
        """`fn(*args)` on a worker once every earlier `in_order` call with the same `key`
        has finished (call on the loop). Its failure is logged and raised to awaiters."""
        previous = self._lanes.get(key)

        async def run():
            if previous is not None:
                await asyncio.wait([previous])
            try:
                return await self.call(fn, *args)
            except Exception:
                log.exception("unit of work for %s failed", key)
                raise

        task = self.loop.create_task(run())
        self._lanes[key] = task

        def forget(done, key=key):
            if self._lanes.get(key) is done:
                del self._lanes[key]
            if not done.cancelled():
                done.exception()  # retrieved: logged above already

        task.add_done_callback(forget)
        return task

    async def drain(self) -> None:
        """Until the door requests queued so far (every lane) have run (call on the loop)."""
        pending = list(self._lanes.values())
        if pending:
            await asyncio.wait(pending)

    def after_commit(self, fn: Callable, *args) -> None:
        """From a worker holding `commit_order` right after its COMMIT: `fn(*args)` on the loop."""
        self.loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        """Once the units of work running or queued have ended (droppable work ends now)."""
        self.stop_soon(0.0)
        self._drop()  # (the loop waits below: its timer would not fire)
        self._pool.shutdown(wait=True)


@contextmanager
def droppable(store):
    """Around droppable work on a worker thread (see `stopping`): once the node has been stopping
    for its grace, the statement the thread waits on, on its `store` connection, is cancelled."""
    pool = getattr(_current, "pool", None)
    if pool is None:  # not on a worker (SQLite: the loop runs it)
        yield
        return
    thread = threading.get_ident()
    with pool._count:
        pool._droppable[thread] = store.connection()
    try:
        yield
    finally:
        with pool._count:
            pool._droppable.pop(thread, None)


def _cancel(conn) -> None:
    try:
        conn.cancel_safe(timeout=5.0)
    except Exception as error:  # the connection is gone already: nothing runs on it
        log.info("could not cancel a statement of a stopping worker: %s", error)


def stopping() -> bool:
    """On a worker thread: has its node been stopping for longer than its grace? Work that
    may be dropped (nothing waits for it) checks this between steps and ends when it is."""
    pool = getattr(_current, "pool", None)
    stop_at = pool.stop_at if pool is not None else None
    return stop_at is not None and time.monotonic() >= stop_at


def start(runtime) -> Workers | None:
    """The workers of a node whose store is PostgreSQL (None for SQLite: the loop runs all)."""
    if getattr(runtime.store, "dsn", None) is None:  # SQLite: one connection, the loop's
        return None
    workers = Workers(asyncio.get_running_loop(), threads_from_env())
    runtime.workers = workers
    return workers


def stop_soon(runtime) -> None:
    """The node begins to stop (see `stopping`); nothing to do without workers (SQLite)."""
    workers = getattr(runtime, "workers", None)
    if workers is not None:
        workers.stop_soon()


def stop(runtime) -> None:
    workers = getattr(runtime, "workers", None)
    if workers is not None:
        runtime.workers = None
        workers.close()
