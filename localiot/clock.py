"""An injectable clock, so tests move time instead of sleeping."""

from __future__ import annotations

import time


class Clock:
    """Wall-clock time plus an offset that tests (or /_localiot/clock) can move."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.now()

    def set(self, epoch_seconds: float) -> float:
        self.offset = epoch_seconds - time.time()
        return self.now()

    def reset(self) -> None:
        self.offset = 0.0
