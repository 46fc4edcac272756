"""`within(awaitable, seconds)`: asyncio.wait_for without its Python 3.11 race.

On 3.11, asyncio.wait_for loses a cancellation that arrives as the awaited
operation completes (CPython gh-86296, fixed in 3.12 by rebuilding wait_for on
asyncio.timeout): the cancelled task carries on. A background loop that does
that never ends, and stopping the server waits for it forever (seen when the
PostgreSQL lock loop was cancelled mid-statement). asyncio.timeout, new in 3.11,
has no such race, so every timed wait in localiot goes through here."""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar


T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """The awaitable's result, or TimeoutError after `seconds` (None: no limit)."""
    async with asyncio.timeout(seconds):
        return await awaitable
