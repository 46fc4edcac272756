"""Time-driven work (command timeouts, bulk registration, job rollouts ...) as
periodic tasks on the server's own loop: SQLite's one connection is used
from that loop only, so nothing here runs on another thread while it touches
the store. With PostgreSQL a synchronous job runs on the node's worker
threads instead (localiot.cluster.workers), so the loop never waits on it;
an async job runs its store work there itself (`unit_of_work.in_unit`,
`run_off_loop`). Each job is `fn(store, runtime)`, sync or async; a failing
run is logged and retried on the next period.

A family registers its time-driven work where it defines it:

    @periodic("jobs")
    def tick(store, runtime): ...

and `registered()` lists what every loaded family registered; nothing else
lists them.

Nodes sharing a PostgreSQL store run each job on one node at a time
(localiot.cluster.locks); a clock move is shared by every node."""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from typing import Callable

from localiot.cluster import Solo

log = logging.getLogger("localiot.background")


@dataclass
class Periodic:
    name: str
    fn: Callable


_REGISTERED: dict[str, Periodic] = {}


def periodic(name: str):
    """Register `fn(store, runtime)` (sync or async) as time-driven work called `name`."""

    def register(fn: Callable) -> Callable:
        if name in _REGISTERED and _REGISTERED[name].fn is not fn:
            raise RuntimeError(f"two periodic jobs named {name}")
        _REGISTERED[name] = Periodic(name, fn)
        return fn

    return register


def registered() -> list[Periodic]:
    """Every job the loaded families registered (load them first: localiot.services.load_all)."""
    return list(_REGISTERED.values())


class Background:
    """Runs the registered jobs. `coordinator` (localiot.cluster) says which jobs
    this node runs on its timers and keeps two runs of a job from overlapping
    across nodes sharing a PostgreSQL store; alone (SQLite) it is `Solo`: every
    job, no locks."""

    def __init__(self, store, runtime, jobs: list[Periodic], period: float, coordinator=None):
        self.period = period
        self.store = store
        self.runtime = runtime
        self.jobs = jobs
        self.coordinator = coordinator or Solo()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        await self.coordinator.start()
        if self.period <= 0:
            return
        for job in self.jobs:
            self._tasks.append(asyncio.get_running_loop().create_task(self._loop(job), name=job.name))

    async def run_once(self) -> None:
        """Run every job once now (tests call this after moving the clock): on this
        node, each while no other node runs it."""
        for job in self.jobs:
            async with self.coordinator.running(job.name, wait=True) as mine:
                if mine:
                    await self._run(job)

    async def clock_moved(self) -> None:
        """The clock was moved here: every node adopts the new time, then every job
        runs once on this node before the move answers."""
        await self.coordinator.clock_moved(self.runtime.clock.offset)
        await self.run_once()

    async def _run(self, job: Periodic) -> None:
        try:
            workers = self.runtime.workers
            if workers is not None and not inspect.iscoroutinefunction(job.fn):
                await workers.call(job.fn, self.store, self.runtime)  # PostgreSQL: off the loop
                return
            result = job.fn(self.store, self.runtime)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("background job %s failed", job.name)

    async def _loop(self, job: Periodic) -> None:
        while True:
            await asyncio.sleep(self.period)
            if not self.coordinator.holds(job.name):
                continue
            async with self.coordinator.running(job.name, wait=False) as mine:
                if mine:
                    await self._run(job)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.coordinator.stop()
