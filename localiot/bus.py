"""The in-process bus: topics flow from services and the broker to subscribers.

Subscribers are plain callables taking (account, region, topic, payload bytes).
The broker, the rules engine and Device Defender subscribe here; services
publish events only after their transaction committed.

A message carries its origin: a subscriber that also publishes (the broker)
subscribes with `origin=itself` and publishes with the same origin, and the
bus does not hand it its own messages back.

A subscriber may also say which topics it could do anything with (`wants`: the
broker, any MQTT subscription or stored session's filter matching; the rules
engine, any enabled rule's FROM filter), so a publisher whose messages cost to
build (a shadow update's `/update/documents`) asks `bus.wants(...)` first and
builds none that nobody would receive. A subscriber that gives no `wants` is
taken to want every topic its prefix lets through.

The bus keeps the answers by (account, region, topic) (an update of a shadow asks two
or three questions; asking the subscribers cost more than the rest of its events'
work): a subscriber whose answers may have changed (a subscription made or dropped, a
stored session gone, rules changed) says so with `wants_changed()`, which forgets them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable

log = logging.getLogger("localiot.bus")

Subscriber = Callable[[str, str, str, bytes], None]
# A device's publish also says who sent it: publisher = (client id, principal), None for
# anything else. Subscribers that ask for it (`subscribe(fn, publisher=True)`, the rules
# engine's clientid() / principal() / traceid()) get it as a fifth argument.
Publisher = tuple[str, str] | None


# Answers kept at most (topics of one thing's shadow are unique to it: a fleet's would grow without end).
ANSWERS_KEPT = 10_000
_ONE_CLIENTS = "$aws/events/"  # topics of one client's lifecycle events (asked once each: not kept)


class Bus:
    def __init__(self) -> None:
        # a tuple, replaced (not changed) on subscribe/unsubscribe: publish iterates it without a copy
        self._subscribers: tuple[tuple[Callable, object, bool, str], ...] = ()
        # (prefix, wants) of every subscriber, for `wants`
        self._wanting: tuple[tuple[str, Callable | None], ...] = ()
        # `wants`' answers by (account, region, topic), and a count of `wants_changed` calls:
        # an answer worked out while a subscriber's changed is not kept (a worker thread asks
        # with PostgreSQL while the loop's broker takes a SUBSCRIBE)
        self._answers: dict[tuple[str, str, str], bool] = {}
        self._changes = 0
        self._answers_lock = threading.Lock()

    def subscribe(self, fn: Callable, *, origin: object = None, publisher: bool = False,
                  prefix: str = "", wants: Callable[[str, str, str], bool] | None = None) -> Callable[[], None]:
        """`fn(account, region, topic, payload)`, or with `publisher=True`
        `fn(account, region, topic, payload, publisher)`; with `prefix`, only for
        topics that start with it (the bus checks it, without calling `fn`).
        `wants(account, region, topic)`: False when `fn` would do nothing with a
        message on `topic` published now (None: it may do something with any)."""
        entry = (fn, origin, publisher, prefix)
        wanting = (prefix, wants)
        self._subscribers = (*self._subscribers, entry)
        self._wanting = (*self._wanting, wanting)
        self.wants_changed()

        def unsubscribe() -> None:
            self._subscribers = tuple(e for e in self._subscribers if e is not entry)
            self._wanting = tuple(w for w in self._wanting if w is not wanting)
            self.wants_changed()
        return unsubscribe

    def wants_changed(self) -> None:
        """A subscriber's `wants` may answer differently from now on: the answers kept go."""
        with self._answers_lock:
            self._changes += 1
            self._answers = {}

    def wants(self, account: str, region: str, topic: str) -> bool:
        """Whether any subscriber could receive a message on `topic` published now. A
        subscriber joining after the answer may miss a message left unbuilt, as it
        would miss one published just before it joined."""
        key = (account, region, topic)
        answer = self._answers.get(key)
        if answer is not None:
            return answer
        changes = self._changes
        answer = self._ask(account, region, topic)
        if topic.startswith(_ONE_CLIENTS):
            return answer  # (a lifecycle event names its client: keeping it would only push the others out)
        with self._answers_lock:
            if self._changes == changes:  # (else it may be an answer from before the change)
                answers = self._answers
                if len(answers) >= ANSWERS_KEPT:
                    answers = self._answers = {}
                answers[key] = answer
        return answer

    def _ask(self, account: str, region: str, topic: str) -> bool:
        for prefix, wants in self._wanting:
            if prefix and not topic.startswith(prefix):
                continue
            if wants is None:
                return True
            try:
                if wants(account, region, topic):
                    return True
            except Exception:  # a broken answer must not fail the publisher: build the message
                log.exception("bus subscriber's wants failed for topic %s", topic)
                return True
        return False

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
