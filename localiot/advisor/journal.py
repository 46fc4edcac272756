"""What the device under test did during a run, in order, with the loop's
monotonic time: TLS handshakes (done or refused) and every MQTT packet in
both directions. Test cases wait on it (`wait`) and read it back (`since`).

Times are real wall time (`loop.time()`): backoff intervals and keep-alives
are chosen by the device in real time, so they are measured, never moved by
the injectable clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from localiot.timeouts import within

# kinds of events
HANDSHAKE, HANDSHAKE_FAILED, CLOSED = "handshake", "handshake-failed", "closed"
REFUSED = "refused"  # a connection that may be the device's was refused (a WebSocket upgrade, another account)
CONNECT, CONNACK, SUBSCRIBE, SUBACK, UNSUBSCRIBE = "connect", "connack", "subscribe", "suback", "unsubscribe"
PUBLISH, PUBACK, PUBLISH_OUT, PUBACK_OUT = "publish", "puback", "publish-out", "puback-out"
PINGREQ, PINGRESP, DISCONNECT = "pingreq", "pingresp", "disconnect"


@dataclass
class Event:
    t: float
    kind: str
    conn: int  # the connection's number within the run (0: before one was known)
    data: dict = field(default_factory=dict)

    def __getitem__(self, key):
        return self.data[key]

    def get(self, key, default=None):
        return self.data.get(key, default)


class Journal:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.events: list[Event] = []
        self._waiters: list[tuple[Callable[[Event], bool], asyncio.Future]] = []

    def mark(self) -> int:
        return len(self.events)

    def add(self, kind: str, conn: int = 0, **data) -> Event:
        event = Event(self.loop.time(), kind, conn, data)
        self.events.append(event)
        if self._waiters:
            keep = []
            for predicate, future in self._waiters:
                if future.done():
                    continue
                if predicate(event):
                    future.set_result(event)
                else:
                    keep.append((predicate, future))
            self._waiters = keep
        return event

    def since(self, mark: int = 0, *kinds: str) -> list[Event]:
        return [e for e in self.events[mark:] if not kinds or e.kind in kinds]

    def find(self, mark: int, predicate: Callable[[Event], bool]) -> Event | None:
        for event in self.events[mark:]:
            if predicate(event):
                return event
        return None

    async def wait(self, predicate: Callable[[Event], bool], since: int | None = None,
                   timeout: float | None = None) -> Event | None:
        """The first event from `since` (default: from now) that matches; None after `timeout` seconds."""
        if since is not None:
            found = self.find(since, predicate)
            if found is not None:
                return found
        future = self.loop.create_future()
        self._waiters.append((predicate, future))
        try:
            return await within(future, timeout)
        except TimeoutError:
            return None
        finally:
            if not future.done():
                future.cancel()


def kind_is(*kinds: str) -> Callable[[Event], bool]:
    return lambda e: e.kind in kinds
