"""MQTT over WebSocket on the ALPN port: `GET /mqtt` with the subprotocol
`mqtt`, authenticated by a SigV4-presigned URL (checked at the upgrade) or a
custom authorizer (from the upgrade's headers and query string). Each binary
frame carries MQTT bytes to a broker Connection, whose output goes back as
binary frames through `WebSocketTransport`.
"""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

from localiot.broker.connection import Connection
from localiot.device_auth import AuthFailure, Door, verify_presigned
from localiot.listeners.http import http_context, reply
from localiot.listeners.tls import sni_of

WS_CLOSE_TIMEOUT = 2.0  # how long a closing WebSocket waits for the client's close frame
WS_HIGH_WATER = 1024 * 1024  # queued bytes that pause a WebSocket client's output


async def serve_websocket(request: web.BaseRequest, broker, config, clock, *, connection=Connection,
                          refused=None) -> web.StreamResponse:
    """Run one MQTT connection over the WebSocket this upgrade request opens: `connection(broker, door)`
    (a broker Connection unless told) takes its MQTT bytes; `refused(status, message)`, if given, hears
    of an upgrade refused for its presigned URL (the Device Advisor test endpoint journals it)."""
    sigv4 = None
    query = [(k, v) for k, v in request.rel_url.query.items()]
    if any(k == "X-Amz-Credential" for k, _ in query):
        try:
            sigv4 = verify_presigned(
                "GET", request.rel_url.raw_path, query, request.headers, secrets=config.credential_map(),
                strict=config.strict_signatures, now=clock.now(), default_account=config.default_account,
            )
        except AuthFailure as e:
            if refused is not None:
                refused(e.status, e.message)
            return reply(e.status, e.message)
    door = Door("wss", sni=sni_of(request.transport), http=http_context(request), sigv4=sigv4)
    ws = web.WebSocketResponse(protocols=("mqtt",), autoping=True, compress=False, timeout=WS_CLOSE_TIMEOUT,
                               max_msg_size=broker.max_packet * 2)
    if not ws.can_prepare(request).ok:
        return reply(400, "Expected a WebSocket upgrade.")
    await ws.prepare(request)
    loop = asyncio.get_running_loop()
    transport = WebSocketTransport(ws, request.transport, loop)
    conn = connection(broker, door)
    transport.set_protocol(conn)
    conn.connection_made(transport)
    try:
        while True:
            if not transport.reading.is_set():
                await transport.reading.wait()
            msg = await ws.receive()
            if transport.is_closing():  # like a socket transport: nothing more after close()
                break
            if msg.type == WSMsgType.BINARY:
                conn.data_received(msg.data)
            elif msg.type == WSMsgType.TEXT:  # MQTT over WebSocket is binary only
                conn.drop("CLIENT_ERROR")
                break
            else:
                break
    finally:
        if conn.transport is not None:
            conn.connection_lost(None)
        transport.close()
        await transport.wait_closed()
    return ws


class WebSocketTransport(asyncio.Transport):
    """What a broker Connection writes to, for MQTT over WebSocket: bytes become binary frames."""

    def __init__(self, ws: web.WebSocketResponse, base, loop):
        super().__init__()
        self._ws, self._base, self._loop = ws, base, loop
        self._out: list[bytes] = []
        self._size = 0  # bytes queued, not yet handed to the WebSocket
        self._paused = False  # the protocol was told to pause writing
        self._writer: asyncio.Task | None = None
        self._closing = False
        self._protocol = None
        self.reading = asyncio.Event()
        self.reading.set()

    def get_extra_info(self, name, default=None):
        if name in ("ssl_object", "peercert"):
            return None  # authenticated by its URL or authorizer, never by a client certificate
        return self._base.get_extra_info(name, default) if self._base is not None else default

    def set_protocol(self, protocol) -> None:
        self._protocol = protocol

    def get_protocol(self):
        return self._protocol

    def write(self, data) -> None:
        if self._closing or not data:
            return
        self._out.append(bytes(data))
        self._size += len(data)
        if not self._paused and self._size > WS_HIGH_WATER and self._protocol is not None:
            self._paused = True
            self._protocol.pause_writing()
        if self._writer is None:
            self._writer = self._loop.create_task(self._write_loop())

    async def _write_loop(self) -> None:
        try:
            while self._out:
                data = b"".join(self._out)
                self._out.clear()
                self._size = 0
                await self._ws.send_bytes(data)
                if self._paused and self._size < WS_HIGH_WATER // 4 and self._protocol is not None:
                    self._paused = False
                    self._protocol.resume_writing()
            if self._closing:
                await self._ws.close()
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            self._out.clear()
            self._size = 0
            self._closing = True
        finally:
            self._writer = None

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.reading.set()  # the reading loop must see the end, even while paused
        if self._writer is None:
            self._writer = self._loop.create_task(self._write_loop())

    async def wait_closed(self) -> None:
        writer = self._writer
        if writer is not None:
            await asyncio.shield(writer)

    def abort(self) -> None:
        self._out.clear()
        self.close()

    def is_closing(self) -> bool:
        return self._closing

    def pause_reading(self) -> None:
        self.reading.clear()

    def resume_reading(self) -> None:
        self.reading.set()

    def is_reading(self) -> bool:
        return self.reading.is_set()

    def get_write_buffer_size(self) -> int:
        base = self._base.get_write_buffer_size() if self._base is not None else 0
        return self._size + base
