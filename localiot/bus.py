"""The in-process bus: topics flow from services and the broker to subscribers.

Subscribers are plain callables taking (account, region, topic, payload bytes).
The broker, the rules engine and Device Defender subscribe here; services
publish events only after their transaction committed.
"""

from __future__ import annotations

import logging
from typing import Callable

log = logging.getLogger("localiot.bus")

Subscriber = Callable[[str, str, str, bytes], None]


class Bus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def publish(self, account: str, region: str, topic: str, payload: bytes) -> None:
        for fn in list(self._subscribers):
            try:
                fn(account, region, topic, payload)
            except Exception:  # one broken subscriber must not stop the others
                log.exception("bus subscriber failed for topic %s", topic)
