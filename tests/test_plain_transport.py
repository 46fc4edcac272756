"""The plain MQTT listener's own transport (localiot.listeners.plain_transport), over real
loopback sockets, on uvloop and on asyncio's loop: what the broker relies on from a
transport (write-side flow control for back-pressure, pausing reads, closing after the
written bytes left, connection_lost on a reset) holds."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
import uvloop

from localiot.timeouts import within
from localiot.listeners.plain_transport import PlainServer, PlainTransport, serve

LOOPS = {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}


class Recorder(asyncio.Protocol):
    def __init__(self):
        self.transport = None
        self.data = bytearray()
        self.paused = 0
        self.resumed = 0
        self.lost = None
        self.gone = asyncio.Event()
        self.made = asyncio.Event()
        self.got = asyncio.Event()

    def connection_made(self, transport):
        self.transport = transport
        self.made.set()

    def data_received(self, data):
        assert isinstance(data, bytes)
        self.data += data
        self.got.set()

    def eof_received(self):
        return False

    def pause_writing(self):
        self.paused += 1

    def resume_writing(self):
        self.resumed += 1

    def connection_lost(self, exc):
        self.lost = exc
        self.gone.set()


def run(loop_name, scenario):
    loop = LOOPS[loop_name]()
    try:
        return loop.run_until_complete(within(scenario(), 20))
    finally:
        loop.close()


async def started():
    protocols = []

    def factory():
        protocols.append(Recorder())
        return protocols[-1]

    server = await serve(factory, "127.0.0.1", 0)
    assert isinstance(server, PlainServer)
    port = server.sockets[0].getsockname()[1]
    return server, port, protocols


async def client(port):
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    return sock


async def until(predicate, timeout=10.0):
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_reads_writes_and_peername(loop_name):
    async def scenario():
        server, port, protocols = await started()
        sock = await client(port)
        await until(lambda: protocols)
        p = protocols[0]
        assert isinstance(p.transport, PlainTransport)
        assert p.transport.get_extra_info("peername") == sock.getsockname()
        assert p.transport.get_extra_info("sockname") == ("127.0.0.1", port)
        accepted = socket.socket(fileno=p.transport.fd)
        try:  # no Nagle delay on the broker's small packets (inherited from the listening socket)
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) and not os.get_blocking(accepted.fileno())
        finally:
            accepted.detach()
        sock.send(b"\x10\x02ab")
        await until(lambda: bytes(p.data) == b"\x10\x02ab")
        p.transport.write(b"hello")
        assert await asyncio.get_running_loop().sock_recv(sock, 100) == b"hello"
        sock.close()  # the peer's EOF: the transport closes and tells its protocol
        await within(p.gone.wait(), 5)
        assert p.lost is None and p.transport.is_closing()
        server.close()
        await server.wait_closed()

    run(loop_name, scenario)


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_a_peer_that_does_not_read_pauses_the_writer_and_close_waits_for_the_bytes(loop_name):
    async def scenario():
        loop = asyncio.get_running_loop()
        server, port, protocols = await started()
        sock = await client(port)
        await until(lambda: protocols)
        p, t = protocols[0], protocols[0].transport
        chunk = bytes(range(256)) * 256  # 64 KB
        sent = 0
        while not p.paused:  # the kernel's buffers fill, then ours passes the high-water mark
            t.write(chunk)
            sent += len(chunk)
            assert sent < 64 * 1024 * 1024, "never paused"
        assert t.get_write_buffer_size() > 64 * 1024
        t.close()  # after what was written has left
        assert t.is_closing() and not p.gone.is_set()
        t.write(b"ignored after close")
        got = bytearray()
        while True:
            data = await loop.sock_recv(sock, 1 << 20)
            if not data:
                break
            got += data
        assert len(got) == sent and got[:len(chunk)] == chunk and got[-len(chunk):] == chunk
        await within(p.gone.wait(), 5)
        assert p.resumed == 1 and p.lost is None and t.get_write_buffer_size() == 0
        sock.close()
        server.close()

    run(loop_name, scenario)


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_paused_reading_holds_the_bytes_until_resumed(loop_name):
    async def scenario():
        server, port, protocols = await started()
        sock = await client(port)
        await until(lambda: protocols)
        p, t = protocols[0], protocols[0].transport
        t.pause_reading()
        assert not t.is_reading()
        sock.send(b"held")
        await asyncio.sleep(0.2)
        assert p.data == b""
        t.resume_reading()
        await until(lambda: p.data == b"held")
        sock.close()
        await within(p.gone.wait(), 5)
        server.close()

    run(loop_name, scenario)


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_a_reset_while_paused_is_connection_lost_with_the_error(loop_name):
    async def scenario():
        server, port, protocols = await started()
        sock = await client(port)
        await until(lambda: protocols)
        p, t = protocols[0], protocols[0].transport
        t.pause_reading()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
        sock.close()
        await within(p.gone.wait(), 5)
        assert isinstance(p.lost, ConnectionResetError)
        server.close()

    run(loop_name, scenario)


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_closing_the_server_stops_accepting_but_keeps_its_connections(loop_name):
    async def scenario():
        loop = asyncio.get_running_loop()
        server, port, protocols = await started()
        sock = await client(port)
        await until(lambda: protocols)
        p, t = protocols[0], protocols[0].transport
        server.close()
        with pytest.raises(OSError):
            await client(port)
        t.write(b"still here")
        assert await loop.sock_recv(sock, 100) == b"still here"
        t.abort()
        await within(p.gone.wait(), 5)
        assert await loop.sock_recv(sock, 100) == b""
        sock.close()
        assert not server.connections

    run(loop_name, scenario)


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_churn_leaves_no_connection_behind(loop_name):
    """Connections that close, reset, or close with bytes unsent: each gets connection_lost once
    and leaves the listener's fd table."""
    async def scenario():
        server, port, protocols = await started()
        for i in range(150):
            sock = await client(port)
            await until(lambda: len(protocols) == i + 1)
            p = protocols[i]
            if i % 3 == 0:
                sock.close()
            elif i % 3 == 1:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()
            else:  # the server writes more than the kernel takes, then the client resets
                while p.transport.get_write_buffer_size() == 0:
                    p.transport.write(bytes(1 << 20))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()
            await within(p.gone.wait(), 5)
        await asyncio.sleep(0.05)
        assert not server.connections
        assert all(p.gone.is_set() and p.transport.is_closing() for p in protocols)
        server.close()

    run(loop_name, scenario)
