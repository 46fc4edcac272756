"""Presence events to the store: one unit of work per account and region per
window of events (`WINDOW`) for everyone who keeps a record of them.

The broker tells this process's `Presence` of every connection's connected
and disconnected event (`heard`, a localiot.broker.lifecycle.PresenceEvent:
its fields, not the `$aws/events/presence/...` message, which the broker
builds only when a subscriber, a rule or another node would receive it).
Two families keep a record of them: the audit's connection history
(localiot.services.defender.history) and the connectivity log behind
GetThingConnectivityData and the fleet index
(localiot.services.data.connectivity). Each used to hear the bus, parse the
event and write it in its own transaction; a connect + disconnect cost four
transactions. Here each event is handed to every recorder at once (`hear`,
for what they answer before the write), and written at most every `WINDOW`
seconds in one unit of work per (account, region) in which every recorder
writes its part (`write(ctx)`): the fleet index follows the connectivity
records in that same unit, as before. The window, not one
loop iteration, is what makes a burst of connections cheap: with 16-32
clients connecting at once an iteration held two events, so every
connection paid a transaction of its own (about 0.1 ms of the ~0.3 ms a
plain connect cost), and a connection that ends inside the window is one
record, not two writes. Nothing waits for these writes (no CONNACK, no
PUBACK): a server killed inside the window loses that window's records, as
it lost an iteration's before; a reader calls `flush(runtime)` first, and
the listeners' stop writes what is pending (with PostgreSQL, for the workers'
STOP_GRACE: localiot.cluster.workers).

    presence.install(runtime).register(recorder)   # recorder.hear(account, region, event), .write(ctx, everything)
    presence.flush(runtime)                          # write everything pending now (an audit does)

A recorder may also keep records back for a while (the connection history
holds an open connection's record until it ends or is `HOLD` s old, so a
short connection costs one write): it calls `later(account, region, delay)`
to have its scope flushed again then, and `flush(runtime)` (what a reader
such as the audit calls first) asks every recorder for everything it holds
(`write(ctx, everything=True)`; `held()` names the scopes).

A recorder that fails is logged and rolls back the unit of its scope (the
records of that iteration are lost, as a failed write lost them before).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque

from localiot.broker.lifecycle import PresenceEvent
from localiot.cluster.workers import droppable, stopping
from localiot.services.unit_of_work import unit_of_work

log = logging.getLogger("localiot.presence")

WRITE_WAIT = 10.0  # seconds a reader waits for the records being written
# Seconds of presence events written together (in one unit of work per scope): short
# enough that the fleet index follows a connection within issue 13's 100 ms.
WINDOW = 0.02
CHUNK = 200  # records of each recorder per unit of work (see Presence._units)


class Presence:
    def __init__(self, runtime):
        self.runtime = runtime
        self.recorders: list = []
        self.dirty: set[tuple[str, str]] = set()  # scopes with something to write
        self.waiting: set[tuple[str, str]] = set()  # scopes to flush when the timer fires
        self._timer: asyncio.TimerHandle | None = None  # a recorder's hold (`later`)
        self._window: asyncio.TimerHandle | None = None  # the write of the events heard since the last one
        self._writing = 0  # scopes' records taken on the loop and being written on a worker
        self._writes = threading.Condition()
        self._queue: deque = deque()  # (account, region, what the recorders took), to write in order
        self._draining = False  # a worker is writing the queue
        self.unstored = 0  # records dropped because the node stopped (see _units)

    def register(self, recorder) -> None:
        if recorder not in self.recorders:
            self.recorders.append(recorder)

    def heard(self, account: str, region: str, event: PresenceEvent) -> None:
        """A presence event of this process's broker (on its loop; by hand in a test)."""
        wrote = False
        for recorder in self.recorders:
            if recorder.hear(account, region, event) is not False:
                wrote = True
        if wrote:
            self.dirty.add((account, region))
            self._soon()

    def _soon(self) -> None:
        """Write the dirty scopes at the end of the window (at once with no running loop)."""
        if self._window is not None:
            return
        try:
            self._window = asyncio.get_running_loop().call_later(WINDOW, self._window_ends)
        except RuntimeError:  # the bus driven by hand
            self.flush()

    def _window_ends(self) -> None:
        self._window = None
        self.flush()

    def later(self, account: str, region: str, delay: float) -> None:
        """Flush the scope again in `delay` seconds (a recorder holds records until then)."""
        self.waiting.add((account, region))
        if self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(delay, self._wake)
            except RuntimeError:  # no loop (the bus driven by hand): at the next flush(runtime)
                pass

    def _wake(self) -> None:
        self._timer = None
        self.dirty |= self.waiting
        self.waiting = set()
        self._soon()

    def flush(self, everything: bool = False) -> None:
        """Write what every recorder has pending (with `everything`, also what they hold back):
        one unit of work per scope. With PostgreSQL the loop's flush takes the records
        (`recorder.take`) and writes them on a worker; a reader's flush (`everything`, or
        from a worker) first waits for those writes."""
        workers = getattr(self.runtime, "workers", None)
        on_loop = _on_loop()
        if workers is not None and (everything or not on_loop):
            with self._writes:  # a reader: what the loop took is stored first
                self._writes.wait_for(lambda: not self._writing, timeout=WRITE_WAIT)
        dirty, self.dirty = self.dirty, set()
        if everything:
            for recorder in self.recorders:
                dirty.update(recorder.held() if hasattr(recorder, "held") else ())
        if not dirty or self.runtime.store is None:
            return
        if workers is not None and on_loop and not everything:
            for account, region in dirty:
                taken = [(recorder, recorder.take(account, region)) for recorder in self.recorders]
                with self._writes:  # written in order (a record rewritten later is not overtaken)
                    self._queue.append((account, region, taken))
                    self._writing += 1
                    start, self._draining = not self._draining, True
                if start:  # one worker writes the queue (without the loop: a reader may block it)
                    workers.call(self._drain)
            return
        for account, region in dirty:
            taken = [(recorder, recorder.take(account, region, everything)) for recorder in self.recorders]
            self._units(account, region, taken)


    def _drain(self) -> None:
        while True:
            with self._writes:
                if not self._queue:
                    self._draining = False
                    return
                account, region, taken = self._queue.popleft()
            self._store(account, region, taken)

    def _store(self, account: str, region: str, taken: list) -> None:
        """On a worker: the records the loop took for one scope."""
        try:
            self._units(account, region, taken)
        finally:
            with self._writes:
                self._writing -= 1
                self._writes.notify_all()

    def _units(self, account: str, region: str, taken: list) -> None:
        """Store what the recorders took for one scope: one unit of work per CHUNK records.
        Why not one for all: with PostgreSQL every document a unit writes holds an advisory
        lock until commit, and a mass disconnect (16,700 clients of one node at once,
        bench/held_connections.py) in one unit ran out of the server's shared lock table
        ("out of shared memory"), losing every record of it. A node that has been stopping for
        its grace (localiot.cluster.workers.stopping) stores no more: a SIGKILL loses them too."""
        total, done = _count(taken), 0  # done: stored, or lost to a failed unit (logged)
        for part in _chunks(taken):
            if stopping():
                break
            try:
                with droppable(self.runtime.store), unit_of_work(self.runtime, account, region, "iot",
                                                                 "PresenceEvent") as ctx:
                    for recorder, records in part:
                        recorder.store(ctx, records)
            except Exception:
                if stopping():  # (cancelled because the node stops: counted below)
                    break
                log.exception("could not store the presence records of %s/%s", account, region)
            done += _count(part)
        else:
            return
        # the node stopped before every part was stored
        left = total - done  # (counted before: a recorder may forget what was stored from `taken`)
        self.unstored += left
        (log.warning if self.unstored == left else log.debug)(
            "the node stops: %d presence records of %s/%s not stored (%d in all so far)",
            left, account, region, self.unstored)


def _count(taken: list) -> int:
    return sum(len(records) for _, records in taken if records)


def _chunks(taken: list):
    """`taken` ((recorder, {name: record} or None) per recorder) in parts of at most CHUNK
    records of each recorder; as it is when it is that small already."""
    if all(records is None or len(records) <= CHUNK for _, records in taken):
        yield taken
        return
    items = [(recorder, list(records.items()) if records else []) for recorder, records in taken]
    for start in range(0, max(len(pairs) for _, pairs in items), CHUNK):
        yield [(recorder, dict(pairs[start:start + CHUNK])) for recorder, pairs in items]


def _on_loop() -> bool:
    return asyncio._get_running_loop() is not None


def install(runtime) -> Presence:
    presence = getattr(runtime, "presence", None)
    if presence is None:
        presence = runtime.presence = Presence(runtime)
    return presence


def flush(runtime) -> None:
    """Write everything the recorders have pending or hold back (before reading their records)."""
    presence = getattr(runtime, "presence", None)
    if presence is not None:
        presence.flush(everything=True)
