"""A small NATS client on an asyncio Protocol: what the fabric needs of the NATS
client protocol (CONNECT, PUB, SUB with queue groups, UNSUB, MSG/HMSG,
PING/PONG, request/reply with no-responders) and nothing more.

Why not nats-py: the broker's publish path is synchronous on the event loop
(`Broker.route`); nats-py's `publish` is a coroutine and every delivery goes
through a per-subscription queue and task. Here `publish` writes to the
transport at once, before the PUBACKs of the same loop iteration leave, and
a message is handed to its callback straight from `data_received`.

    conn = NatsConnection("nats://127.0.0.1:4222", name="localiot-node")
    await conn.connect()
    sid = conn.subscribe("a.>", callback)            # callback(subject, reply, payload)
    conn.publish("a.b", b"hi")
    answer = await conn.request("svc", b"ask", 1.0)  # NoResponders if nobody listens

A lost connection is re-established in the background (every 0.2 s) with
its subscriptions; what is published while it is down is dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import threading
from typing import Callable
from urllib.parse import urlparse

from localiot.timeouts import within

log = logging.getLogger("localiot.fabric")

Callback = Callable[[str, str | None, bytes], None]
_CRLF = b"\r\n"
RECONNECT_WAIT = 0.2


class NoResponders(Exception):
    """A request to a subject that no subscriber listens on (NATS status 503)."""


class NatsConnection(asyncio.Protocol):
    def __init__(self, url: str, name: str = "localiot", echo: bool = True):
        parsed = urlparse(url)
        if parsed.scheme not in ("nats", "tcp", ""):
            raise ValueError(f"unsupported fabric URL {url!r}: nats://host:port")
        self.url = url
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 4222
        self.user, self.password = parsed.username, parsed.password
        self.name = name
        self.echo = echo
        self.transport: asyncio.Transport | None = None
        self.connected = False
        self.closing = False
        self.server_info: dict = {}
        self.on_reconnect: Callable[[], None] | None = None
        self._buf = bytearray()
        self._need: tuple | None = None  # (subject, sid, reply, header bytes, total bytes) of a MSG/HMSG body
        self._sids = itertools.count(1)
        self._subs: dict[int, tuple[str, str | None, Callback]] = {}
        self._pongs: list[asyncio.Future] = []
        self._ready: asyncio.Future | None = None
        self._inbox = f"_INBOX.{secrets.token_hex(8)}"
        self._inbox_sid: int | None = None
        self._requests: dict[str, asyncio.Future] = {}
        self._request_ids = itertools.count(1)
        self._reconnecting: asyncio.Task | None = None
        self.dropped = 0  # messages published while disconnected
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None

    # connection -----------------------------------------------------------------------
    async def connect(self, timeout: float = 5.0) -> "NatsConnection":
        loop = self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._ready = loop.create_future()
        await within(loop.create_connection(lambda: self, self.host, self.port), timeout)
        await within(self._ready, timeout)
        if self._inbox_sid is None:
            self._inbox_sid = self.subscribe(self._inbox + ".*", self._on_reply)
        return self

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._buf.clear()
        self._need = None

    def _on_info(self, info: dict) -> None:
        first = not self.server_info
        self.server_info = info
        if not first and self.connected:
            return  # a later INFO (cluster changes): nothing to do
        options = {"verbose": False, "pedantic": False, "lang": "python", "version": "localiot",
                   "protocol": 1, "name": self.name, "headers": True, "no_responders": True,
                   "echo": self.echo}
        if self.user:
            options.update(user=self.user, **({"pass": self.password} if self.password else {}))
        self.transport.write(b"CONNECT " + json.dumps(options).encode() + _CRLF)
        for sid, (subject, queue, _) in self._subs.items():
            self.transport.write(_sub_line(subject, queue, sid))
        self.transport.write(b"PING\r\n")
        self.connected = True
        if self._ready is not None and not self._ready.done():
            self._pongs.append(self._ready)

    def connection_lost(self, exc) -> None:
        self.transport = None
        was = self.connected
        self.connected = False
        for fut in self._pongs:
            if not fut.done():
                fut.set_exception(ConnectionError("NATS connection lost"))
        self._pongs.clear()
        if self.closing:
            return
        if was:
            log.warning("lost the NATS connection to %s:%s; reconnecting", self.host, self.port)
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.get_event_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.closing and not self.connected:
            await asyncio.sleep(RECONNECT_WAIT)
            try:
                self._ready = loop.create_future()
                await within(loop.create_connection(lambda: self, self.host, self.port), 2.0)
                await within(self._ready, 2.0)
            except (OSError, asyncio.TimeoutError, ConnectionError):
                continue
            log.warning("NATS connection to %s:%s re-established", self.host, self.port)
            if self.on_reconnect is not None:
                self.on_reconnect()

    async def close(self) -> None:
        self.closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self.transport is not None:
            try:
                await self.flush(1.0)
            except (ConnectionError, asyncio.TimeoutError):
                pass
            if self.transport is not None:
                self.transport.close()
        self.connected = False

    async def flush(self, timeout: float = 5.0) -> None:
        """Round trip to the server: everything written before has been processed."""
        if self.transport is None:
            raise ConnectionError("NATS not connected")
        fut = asyncio.get_running_loop().create_future()
        self._pongs.append(fut)
        self.transport.write(b"PING\r\n")
        await within(fut, timeout)

    # publish / subscribe -------------------------------------------------------------
    def publish(self, subject: str, payload: bytes, reply: str | None = None) -> bool:
        """Write one message now (from another thread: on the loop, soon)."""
        if self._thread is not None and threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self.publish, subject, payload, reply)
            return True
        t = self.transport
        if t is None or not self.connected:
            self.dropped += 1
            return False
        head = f"PUB {subject} {reply} {len(payload)}\r\n" if reply else f"PUB {subject} {len(payload)}\r\n"
        t.write(b"".join((head.encode(), payload, _CRLF)))
        return True

    def subscribe(self, subject: str, callback: Callback, queue: str | None = None) -> int:
        sid = next(self._sids)
        self._subs[sid] = (subject, queue, callback)
        if self.transport is not None and self.connected:
            self.transport.write(_sub_line(subject, queue, sid))
        return sid

    def unsubscribe(self, sid: int) -> None:
        if self._subs.pop(sid, None) is not None and self.transport is not None and self.connected:
            self.transport.write(b"UNSUB %d\r\n" % sid)

    async def request(self, subject: str, payload: bytes, timeout: float = 2.0) -> bytes:
        token = str(next(self._request_ids))
        fut = asyncio.get_running_loop().create_future()
        self._requests[token] = fut
        try:
            if not self.publish(subject, payload, f"{self._inbox}.{token}"):
                raise ConnectionError("NATS not connected")
            return await within(fut, timeout)
        finally:
            self._requests.pop(token, None)

    def _on_reply(self, subject: str, reply, payload: bytes, status: int | None = None) -> None:
        fut = self._requests.get(subject.rsplit(".", 1)[1])
        if fut is None or fut.done():
            return
        if status == 503:
            fut.set_exception(NoResponders(subject))
        else:
            fut.set_result(payload)

    # reading ------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        while pos < n:
            need = self._need
            if need is not None:
                total = need[4]
                if n - pos < total + 2:
                    break
                body = bytes(buf[pos:pos + total])
                pos += total + 2
                self._need = None
                self._deliver(need, body)
                continue
            end = buf.find(_CRLF, pos)
            if end < 0:
                break
            line = bytes(buf[pos:end])
            pos = end + 2
            self._control(line)
        del buf[:pos]

    def _control(self, line: bytes) -> None:
        op = line[:4].upper()
        if op == b"MSG ":
            parts = line.split()
            reply = parts[3].decode() if len(parts) == 5 else None
            self._need = (parts[1].decode(), int(parts[2]), reply, 0, int(parts[-1]))
        elif op == b"HMSG":
            parts = line.split()
            reply = parts[3].decode() if len(parts) == 6 else None
            self._need = (parts[1].decode(), int(parts[2]), reply, int(parts[-2]), int(parts[-1]))
        elif op == b"PING":
            if self.transport is not None:
                self.transport.write(b"PONG\r\n")
        elif op == b"PONG":
            if self._pongs:
                fut = self._pongs.pop(0)
                if not fut.done():
                    fut.set_result(None)
        elif op == b"INFO":
            self._on_info(json.loads(line[5:]))
        elif op == b"-ERR":
            log.error("NATS server error: %s", line[5:].decode(errors="replace"))
        # +OK: verbose is off, none come

    def _deliver(self, need: tuple, body: bytes) -> None:
        subject, sid, reply, header_len, _ = need
        entry = self._subs.get(sid)
        if entry is None:
            return
        callback = entry[2]
        try:
            if header_len:
                head = body[:header_len]
                status_line = head.split(_CRLF, 1)[0].split()
                status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else None
                if callback == self._on_reply:
                    self._on_reply(subject, reply, body[header_len:], status)
                    return
                body = body[header_len:]
            callback(subject, reply, body)
        except Exception:
            log.exception("fabric handler failed for %s", subject)


def _sub_line(subject: str, queue: str | None, sid: int) -> bytes:
    return (f"SUB {subject} {queue} {sid}\r\n" if queue else f"SUB {subject} {sid}\r\n").encode()
