"""The coordinator of one process alone (SQLite store): it holds every job,
runs are never contended, and the clock is its own."""

from __future__ import annotations

from contextlib import asynccontextmanager


class Solo:
    mode = "single-node"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def holds(self, name: str) -> bool:
        return True

    @asynccontextmanager
    async def running(self, name: str, *, wait: bool):
        yield True

    async def clock_moved(self, offset: float) -> None:
        return None

    async def reset(self) -> None:
        """A POST /_localiot/reset: alone, nobody else to tell."""
        return None

    def describe(self) -> dict:
        return {"mode": self.mode, "held": "all"}
