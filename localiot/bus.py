"""The in-process bus: topics flow from services and the broker to subscribers.

Subscribers are plain callables taking (account, region, topic, payload bytes).
The broker, the rules engine and Device Defender subscribe here; services
publish events only after their transaction committed.

A message carries its origin: a subscriber that also publishes (the broker)
subscribes with `origin=itself` and publishes with the same origin, and the
bus does not hand it its own messages back.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Callable

log = logging.getLogger("localiot.bus")

Subscriber = Callable[[str, str, str, bytes], None]

# The MQTT client whose publish the bus is delivering, as (client id, principal): the
# broker sets it around `publish` for device publishes, so subscribers (the rules
# engine's clientid() / principal() / traceid()) know who sent it; None otherwise.
PUBLISHER: ContextVar[tuple[str, str] | None] = ContextVar("localiot_bus_publisher", default=None)


class Bus:
    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, object]] = []

    def subscribe(self, fn: Subscriber, *, origin: object = None) -> Callable[[], None]:
        entry = (fn, origin)
        self._subscribers.append(entry)
        return lambda: self._subscribers.remove(entry)

    def publish(self, account: str, region: str, topic: str, payload: bytes, origin: object = None) -> None:
        for fn, own in list(self._subscribers):
            if own is not None and own is origin:
                continue  # the subscriber's own message
            try:
                fn(account, region, topic, payload)
            except Exception:  # one broken subscriber must not stop the others
                log.exception("bus subscriber failed for topic %s", topic)
