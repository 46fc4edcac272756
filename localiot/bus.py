"""The in-process bus: topics flow from services and the broker to subscribers.

Subscribers are plain callables taking (account, region, topic, payload bytes).
The broker, the rules engine and Device Defender subscribe here; services
publish events only after their transaction committed.

A message carries its origin: a subscriber that also publishes (the broker)
subscribes with `origin=itself` and publishes with the same origin, and the
bus does not hand it its own messages back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

log = logging.getLogger("localiot.bus")

Subscriber = Callable[[str, str, str, bytes], None]
# A device's publish also says who sent it: publisher = (client id, principal), None for
# anything else. Subscribers that ask for it (`subscribe(fn, publisher=True)`, the rules
# engine's clientid() / principal() / traceid()) get it as a fifth argument.
Publisher = tuple[str, str] | None


class Bus:
    def __init__(self) -> None:
        # a tuple, replaced (not changed) on subscribe/unsubscribe: publish iterates it without a copy
        self._subscribers: tuple[tuple[Callable, object, bool, str], ...] = ()

    def subscribe(self, fn: Callable, *, origin: object = None, publisher: bool = False,
                  prefix: str = "") -> Callable[[], None]:
        """`fn(account, region, topic, payload)`, or with `publisher=True`
        `fn(account, region, topic, payload, publisher)`; with `prefix`, only for
        topics that start with it (the bus checks it, without calling `fn`)."""
        entry = (fn, origin, publisher, prefix)
        self._subscribers = (*self._subscribers, entry)

        def unsubscribe() -> None:
            self._subscribers = tuple(e for e in self._subscribers if e is not entry)
        return unsubscribe

    def publish(self, account: str, region: str, topic: str, payload: bytes, origin: object = None,
                publisher: Publisher = None) -> None:
        for fn, own, wants_publisher, prefix in self._subscribers:
            if own is not None and own is origin:
                continue  # the subscriber's own message
            if prefix and not topic.startswith(prefix):
                continue
            try:
                if wants_publisher:
                    fn(account, region, topic, payload, publisher)
                else:
                    fn(account, region, topic, payload)
            except Exception:  # one broken subscriber must not stop the others
                log.exception("bus subscriber failed for topic %s", topic)


class OncePerIteration:
    """Coalesce requests to run `fn()` into one call per event-loop iteration, for
    subscribers that batch what they heard into one store write. With no running
    loop (a test driving the bus by hand) `fn` runs at once."""

    def __init__(self, fn: Callable[[], None]):
        self.fn = fn
        self.scheduled = False

    def request(self) -> None:
        if self.scheduled:
            return
        self.scheduled = True
        try:
            asyncio.get_running_loop().call_soon(self.run)
        except RuntimeError:
            self.run()

    def run(self) -> None:
        self.scheduled = False
        self.fn()
