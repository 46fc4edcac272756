"""Time-driven work (command timeouts, bulk registration, job rollouts ...) as
periodic tasks on the server's own loop: the store's one connection is used
from that loop only, so nothing here runs on another thread while it touches
the store. Each job is `fn(store, runtime)`, sync or async; a failing run is
logged and retried on the next period.

A family registers its time-driven work where it defines it:

    @periodic("jobs")
    def tick(store, runtime): ...

and `registered()` lists what every loaded family registered; nothing else
lists them."""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from typing import Callable

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
    def __init__(self, store, runtime, jobs: list[Periodic], period: float):
        self.period = period
        self.store = store
        self.runtime = runtime
        self.jobs = jobs
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        if self.period <= 0:
            return
        for job in self.jobs:
            self._tasks.append(asyncio.get_running_loop().create_task(self._loop(job), name=job.name))

    async def run_once(self) -> None:
        """Run every job once now (tests call this after moving the clock)."""
        for job in self.jobs:
            await self._run(job)

    async def _run(self, job: Periodic) -> None:
        try:
            result = job.fn(self.store, self.runtime)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("background job %s failed", job.name)

    async def _loop(self, job: Periodic) -> None:
        while True:
            await asyncio.sleep(self.period)
            await self._run(job)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
