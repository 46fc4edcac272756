"""One tunnel on the relay: its two sides (`Peer`s) and the streams between
them, and the rules a frame from one side must pass before it reaches the
other (from the V2/V3 protocol guides).

A frame that breaks a rule the guide says the service enforces (type UNKNOWN,
a client sending SESSION_RESET or SERVICE_IDS, a destination sending
STREAM_START or CONNECTION_START, stream id 0, a service id the tunnel does
not have, switching between messages with and without service ids, DATA for a
service no stream was ever started on, a non-ignorable type its protocol
version does not know) raises FrameError and the sender's WebSocket is closed.
An ignorable unknown type is dropped. A stream started while the other side
is absent is answered with STREAM_RESET (CONNECTION_RESET for a connection).

Connection ids (V3 guide, "Backward compatibility between V2 and V3"): a
source's first STREAM_START decides its message format for the session. With
a connection id (protocol 3 format) every later STREAM_START, CONNECTION_START,
DATA and CONNECTION_RESET it sends must carry one; without (protocol 2
format) none may, and CONNECTION_START / CONNECTION_RESET are errors ("Any
attempts [to send a previous version message format in the middle of an
active websocket session] will be rejected"). STREAM_RESET never carries one.
The destination is exempt: it answers in whatever format the source used.
"""

from __future__ import annotations

import asyncio
import struct

from localiot.timeouts import within
from localiot.services.tunneling.model import DESTINATION, SOURCE
from localiot.tunneling import frames
from localiot.tunneling.frames import (CONNECTION_RESET, CONNECTION_START, DATA, SERVICE_IDS, SESSION_RESET,
                                       STREAM_RESET, STREAM_START, FrameError)

KNOWN = {1: {DATA, STREAM_START, STREAM_RESET, SESSION_RESET},
         2: {DATA, STREAM_START, STREAM_RESET, SESSION_RESET, SERVICE_IDS},
         3: {DATA, STREAM_START, STREAM_RESET, SESSION_RESET, SERVICE_IDS, CONNECTION_START, CONNECTION_RESET}}
SERVER_ONLY = {SESSION_RESET, SERVICE_IDS}
STREAM_TYPES = {DATA, STREAM_START, STREAM_RESET, CONNECTION_START, CONNECTION_RESET}
CONNECTION_TYPES = {DATA, STREAM_START, CONNECTION_START, CONNECTION_RESET}  # those that carry connection ids
FORWARD, DROP = "forward", "drop"
_SHORT, _MEDIUM, _LONG = struct.Struct(">BB").pack, struct.Struct(">BBH").pack, struct.Struct(">BBQ").pack
CLOSE_TIMEOUT = 2.0
FLUSH_AT = 262144  # bytes queued for one peer that are written at once, without waiting for the loop's turn


class Peer:
    """One connected local proxy: its WebSocket, mode, protocol version and admission."""

    def __init__(self, ws, transport, protocol, mode: str, version: int, admission, channel: str):
        self.ws, self.transport, self.mode, self.version = ws, transport, mode, version
        self.protocol = protocol  # the transport's aiohttp protocol: writing_paused, _drain_helper()
        self.admission, self.channel = admission, channel
        self.with_service_ids: bool | None = None  # decided by its first stream message
        self.with_connection_ids: bool | None = None  # a source's: decided by its first STREAM_START
        self.gone = False
        self._pending: list = []  # frames (header, body, ...) for one write at the end of the loop's turn
        self._pending_size, self._flush_soon = 0, False
        self.closer: asyncio.Task | None = None  # a close started by another task (close, rotation ...)
        self.order = 0  # the relay's count of upgrades when this one was made

    async def send(self, data, timeout: float) -> bool:
        """Send `data` as one binary WebSocket message; a peer that does not take it within
        `timeout` (it stopped reading) is cut off. False when it is gone.

        Messages sent in one turn of the loop (the frames of every WebSocket message that
        arrived in one read) reach the transport in one write at the end of the turn, or
        as soon as FLUSH_AT bytes wait: one system call and full TLS records for all of
        them (aiohttp's writer made two writes per message: header, then body). Only a
        transport above its high-water mark is waited for: no timer per message. aiohttp
        writes whole frames too (pongs, the close), so frames never interleave, and
        nothing is written after a close frame (`ws.closed`)."""
        if self.gone:
            return False
        if self.ws.closed or self.transport is None or self.transport.is_closing():
            self.gone = True
            return False
        size = len(data)
        self._pending.append(_SHORT(0x82, size) if size < 126 else
                             _MEDIUM(0x82, 126, size) if size < 65536 else _LONG(0x82, 127, size))
        self._pending.append(data)
        self._pending_size += size
        if self._pending_size >= FLUSH_AT:
            self.flush()
        elif not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self.flush)
        if not self.protocol.writing_paused:
            return True
        try:
            await within(self.protocol._drain_helper(), timeout)  # aiohttp's wait for resume_writing
            return not self.gone
        except asyncio.TimeoutError:
            self.abort()
        except (ConnectionError, RuntimeError):
            self.gone = True
        return False

    def flush(self) -> None:
        """Write what `send` queued (dropped once the connection is closing or closed)."""
        pending, self._pending, self._pending_size, self._flush_soon = self._pending, [], 0, False
        if pending and not self.ws.closed and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(pending))

    def abort(self) -> None:
        self.gone = True
        self._pending, self._pending_size = [], 0
        if self.transport is not None:
            self.transport.abort()

    def close_soon(self, code: int, reason: str) -> None:
        """Close from outside the session's task; the session waits for it before it ends."""
        if self.closer is None:
            self.closer = asyncio.get_running_loop().create_task(self.close(code, reason))

    async def close(self, code: int, reason: str) -> None:
        self.gone = True
        self.flush()  # what was sent before the close goes before the close frame
        try:  # a client that stopped reading cannot take the close frame either
            await within(self.ws.close(code=code, message=reason.encode()), CLOSE_TIMEOUT)
        except Exception:
            self.abort()


class Pipe:
    """A tunnel's sides and its active streams (service id -> stream id)."""

    def __init__(self) -> None:
        self.peers: dict[str, Peer | None] = {SOURCE: None, DESTINATION: None}
        self.services: tuple[str, ...] = ()
        self.streams: dict[str, int] = {}
        self.started: set[str] = set()  # service ids some stream was ever started on

    def other(self, peer: Peer) -> Peer | None:
        other = self.peers[DESTINATION if peer.mode == SOURCE else SOURCE]
        return other if other is not None and not other.gone else None

    def check(self, peer: Peer, msg) -> str:
        """FORWARD or DROP `msg` from `peer`, updating the streams; FrameError when it breaks a rule."""
        kind = msg.type
        if kind == 0:
            raise FrameError("a tunnel frame must have a non-zero type")
        if kind not in KNOWN[peer.version]:
            if msg.ignorable:
                return DROP
            raise FrameError(f"message type {kind} is not part of protocol version {peer.version}")
        if kind in SERVER_ONLY:
            raise FrameError("clients may not send SESSION_RESET or SERVICE_IDS")
        if kind in (STREAM_START, CONNECTION_START) and peer.mode == DESTINATION:
            raise FrameError("a destination may not start streams or connections")
        if msg.streamId == 0:
            raise FrameError("stream messages need a non-zero stream id")
        service = msg.serviceId
        if service and service not in self.services:
            raise FrameError(f"service id {service} is not one of the tunnel's services")
        if peer.with_service_ids is None:
            peer.with_service_ids = bool(service)
        elif peer.with_service_ids != bool(service):
            raise FrameError("messages with and without service ids may not be mixed")
        if peer.mode == SOURCE and kind in CONNECTION_TYPES:
            _check_connection_id(peer, msg)
        if kind == STREAM_START:
            self.streams[service] = msg.streamId
            self.started.add(service)
        elif service not in self.started:
            raise FrameError("no stream was ever started for this service")
        elif kind == STREAM_RESET and self.streams.get(service) == msg.streamId:
            del self.streams[service]
        return FORWARD

    def refusal(self, msg) -> bytes | None:
        """What the relay answers a start, or data, sent while the other side is absent."""
        if msg.type in (STREAM_START, DATA):
            self.streams.pop(msg.serviceId, None)
            return frames.message(STREAM_RESET, msg.streamId, service_id=msg.serviceId)
        if msg.type == CONNECTION_START:
            return frames.message(CONNECTION_RESET, msg.streamId, service_id=msg.serviceId,
                                  connection_id=msg.connectionId)
        return None

    def reset_all(self) -> bytes:
        """STREAM_RESET for every active stream (its peer left or was replaced); they end."""
        out = b"".join(frames.message(STREAM_RESET, stream, service_id=service)
                       for service, stream in self.streams.items())
        self.streams.clear()
        return out


def _check_connection_id(peer: Peer, msg) -> None:
    with_id = msg.connectionId != 0
    if peer.with_connection_ids is None:
        if msg.type != STREAM_START:  # nothing started yet: Pipe.check refuses it after this
            return
        peer.with_connection_ids = with_id
    if not peer.with_connection_ids and msg.type in (CONNECTION_START, CONNECTION_RESET):
        raise FrameError("CONNECTION_START and CONNECTION_RESET need streams started with connection ids")
    if with_id != peer.with_connection_ids:
        raise FrameError("messages with and without connection ids may not be mixed")
