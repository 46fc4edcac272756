"""A local proxy written from AWS's protocol guides (V2WebSocketProtocolGuide.md,
V3WebSocketProtocolGuide.md), for the tunneling tests and bench/tunneling.py.

Source mode listens on a local TCP port per service; each accepted connection
becomes a stream (STREAM_START) or, in protocol 3 while the service's stream is
active, a new connection on it (CONNECTION_START). Destination mode connects
each started stream or connection to the service's local port and answers
STREAM_RESET / CONNECTION_RESET when that port refuses. Bytes travel as DATA
frames of at most 63 KiB: a 2-byte big-endian length, then a protobuf Message.
"""

from __future__ import annotations

import asyncio
import itertools
import struct

import aiohttp

from localiot.tunneling.Message_pb2 import Message

T = Message.Type
CHUNK = 63 * 1024
PROTOCOL = "aws.iot.securetunneling-{}.0"


def frame(kind, stream_id=0, service_id="", connection_id=0, payload=b"", ignorable=False) -> bytes:
    body = Message(type=kind, streamId=stream_id, serviceId=service_id, connectionId=connection_id,
                   payload=payload, ignorable=ignorable).SerializeToString()
    return struct.pack(">H", len(body)) + body


class Frames:
    """Splits a byte stream into Messages, whatever the WebSocket message boundaries."""

    def __init__(self):
        self.buffer = b""

    def feed(self, data: bytes):
        self.buffer += data
        while len(self.buffer) >= 2:
            (length,) = struct.unpack_from(">H", self.buffer)
            if len(self.buffer) < 2 + length:
                return
            msg = Message.FromString(self.buffer[2:2 + length])
            self.buffer = self.buffer[2 + length:]
            yield msg


async def connect(endpoint: str, token: str | None, mode: str, version: int = 3, *, session,
                  client_token: str | None = None, headers: dict | None = None, autoping: bool = True,
                  protocols: list[str] | None = None, ssl=None):
    """The WebSocket handshake a local proxy makes (aiohttp raises WSServerHandshakeError on refusal)."""
    url = endpoint.replace("http://", "ws://").replace("https://", "wss://") + f"/tunnel?local-proxy-mode={mode}"
    sent = dict(headers or {})
    if token is not None:
        sent["access-token"] = token
    if client_token:
        sent["client-token"] = client_token
    return await session.ws_connect(url, headers=sent, protocols=[PROTOCOL.format(version)] if protocols is None else protocols, autoping=autoping,
                                    max_msg_size=0, **({"ssl": ssl} if ssl is not None else {}))


class LocalProxy:
    """One local proxy. `services`: service id -> local port (destination: where to
    connect; source: where to listen, 0 for any free port). '' is the v1-style
    unnamed service."""

    def __init__(self, endpoint: str, token: str, mode: str, services: dict[str, int], version: int = 3,
                 client_token: str | None = None, ssl=None):
        self.ssl = ssl  # an SSLContext for a wss:// endpoint (the ALPN port)
        self.endpoint, self.token, self.mode, self.version = endpoint, token, mode, version
        self.services, self.client_token = dict(services), client_token
        self.ports: dict[str, int] = {}
        self.service_ids: list[str] | None = None
        self.closed = asyncio.Event()
        self.resets: list[Message] = []
        self._ids = itertools.count(1)
        self._streams: dict[str, int] = {}  # service -> active stream id
        self._conns: dict[tuple[str, int], tuple[int, asyncio.StreamWriter]] = {}
        self._next_conn: dict[str, itertools.count] = {}
        self._servers, self._tasks = [], set()
        self._lock = asyncio.Lock()

    async def start(self) -> "LocalProxy":
        self.session = aiohttp.ClientSession()
        try:
            self.ws = await connect(self.endpoint, self.token, self.mode, self.version, session=self.session,
                                    client_token=self.client_token, ssl=self.ssl)
        except BaseException:
            await self.session.close()
            raise
        self._reader = asyncio.create_task(self._read())
        if self.mode == "source":
            for service, port in self.services.items():
                server = await asyncio.start_server(lambda r, w, s=service: self._accepted(s, r, w),
                                                    "127.0.0.1", port)
                self._servers.append(server)
                self.ports[service] = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for _, writer in list(self._conns.values()):
            writer.close()
        await self.ws.close()
        await self.session.close()
        self._reader.cancel()
        for task in list(self._tasks):
            task.cancel()

    async def send(self, data: bytes) -> None:
        async with self._lock:
            await self.ws.send_bytes(data)

    # the tunnel -> local TCP ----------------------------------------------------------
    async def _read(self) -> None:
        frames = Frames()
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    continue
                for m in frames.feed(msg.data):
                    await self._handle(m)
        finally:
            self.closed.set()
            for _, writer in list(self._conns.values()):
                writer.close()

    async def _handle(self, m: Message) -> None:
        conn_id = m.connectionId or 1
        if m.type == T.SERVICE_IDS:
            self.service_ids = list(m.availableServiceIds)
        elif m.type in (T.STREAM_START, T.CONNECTION_START) and self.mode == "destination":
            if m.type == T.STREAM_START:
                for key in [k for k in self._conns if k[0] == m.serviceId]:
                    self._conns.pop(key)[1].close()
                self._streams[m.serviceId] = m.streamId
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.services[m.serviceId])
            except OSError:
                kind = T.STREAM_RESET if m.type == T.STREAM_START else T.CONNECTION_RESET
                await self.send(frame(kind, m.streamId, m.serviceId, m.connectionId))
                return
            self._conns[(m.serviceId, conn_id)] = (m.streamId, writer)
            self._spawn(self._pump(m.serviceId, m.streamId, conn_id, reader, writer))
        elif m.type == T.DATA:
            found = self._conns.get((m.serviceId, conn_id))
            if found and found[0] == m.streamId:  # stale stream ids are dropped, as the guide says
                found[1].write(m.payload)
                await found[1].drain()
        elif m.type == T.STREAM_RESET:
            self.resets.append(m)
            if self._streams.get(m.serviceId) == m.streamId:
                del self._streams[m.serviceId]
                for key in [k for k in self._conns if k[0] == m.serviceId]:
                    self._conns.pop(key)[1].close()
        elif m.type == T.CONNECTION_RESET:
            self.resets.append(m)
            found = self._conns.get((m.serviceId, conn_id))
            if found and found[0] == m.streamId:
                self._conns.pop((m.serviceId, conn_id))[1].close()
        elif m.type == T.SESSION_RESET:
            for key in list(self._conns):
                self._conns.pop(key)[1].close()
            self._streams.clear()

    # local TCP -> the tunnel ----------------------------------------------------------
    async def _accepted(self, service: str, reader, writer) -> None:
        v3 = self.version >= 3
        if v3 and service in self._streams:
            stream, conn = self._streams[service], next(self._next_conn[service])
            await self.send(frame(T.CONNECTION_START, stream, service, conn))
        else:
            stream, conn = next(self._ids), 1
            self._streams[service] = stream
            self._next_conn[service] = itertools.count(2)
            await self.send(frame(T.STREAM_START, stream, service, conn if v3 else 0))
        self._conns[(service, conn)] = (stream, writer)
        await self._pump(service, stream, conn, reader, writer)

    async def _pump(self, service, stream, conn, reader, writer) -> None:
        conn_field = conn if self.version >= 3 else 0
        try:
            while data := await reader.read(CHUNK):
                await self.send(frame(T.DATA, stream, service, conn_field, data))
        except (ConnectionError, OSError):
            pass
        finally:
            if self._conns.get((service, conn), (None,))[0] == stream and not self.ws.closed:
                del self._conns[(service, conn)]
                kind = T.CONNECTION_RESET if self.version >= 3 else T.STREAM_RESET
                try:
                    await self.send(frame(kind, stream, service, conn_field))
                except (ConnectionError, RuntimeError):
                    pass
            writer.close()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def echo_server():
    """A TCP echo server on a free loopback port: (server, port)."""

    async def echo(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def round_trip(port: int, data: bytes, timeout: float = 60) -> bytes:
    """Send `data` to the local port and read back as many bytes (writes and reads overlap)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async def write():
            for i in range(0, len(data), 1 << 20):
                writer.write(data[i:i + (1 << 20)])
                await writer.drain()

        sender = asyncio.create_task(write())
        got = await asyncio.wait_for(reader.readexactly(len(data)), timeout)
        await sender
        return got
    finally:
        writer.close()
