"""A lean transport for the plain MQTT listener: non-blocking sockets on one
epoll of the listener's own, which the event loop watches as a single reader.

Why not the event loop's TCP transport (`create_server`): uvloop keeps a
transport object, a libuv TCP handle, a weak reference and its buffers per
connection, about 1.2 KB that an idle MQTT connection holds for hours; a
`loop.add_reader` per socket still costs ~0.6 KB (a poll handle and its
callback handle; measured with 4,000 idle sockets). Here a connection is its
file descriptor, a `PlainTransport` of a few slots and one entry in the
listener's fd table (~0.2 KB): the loop sees one file descriptor, the epoll,
and `_ready` gives each ready socket its turn (at most `_EVENTS` per loop
iteration, so timers and other readers run between batches).

Reads land in one buffer shared by every connection of the listener and are
copied out at their length; writes go to the socket at once, and only what
the kernel refuses is kept (then the socket is watched for writability). The
application sees an asyncio transport: `write`, `close` (after what was
written), `abort`, `pause_reading` / `resume_reading`, `get_write_buffer_size`
with the usual flow control (`pause_writing` above the high-water mark,
`resume_writing` below the low one, 64 / 16 KiB as uvloop's), and
`get_extra_info` ("peername", "sockname"). `connection_lost` follows a close
in a later callback, as with asyncio's transports.

Linux only (epoll); elsewhere `serve` gives the loop's own server.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import select
import socket
import sys

log = logging.getLogger("localiot.listeners")

_EVENTS = 256  # ready sockets handled per loop iteration
_ACCEPTS = 128  # connections accepted per loop iteration
_READ = 256 * 1024  # bytes read per recv (what uvloop reads at most per read too)
_HIGH, _LOW = 64 * 1024, 16 * 1024  # write buffer flow control
_IN, _OUT = select.EPOLLIN if hasattr(select, "EPOLLIN") else 1, select.EPOLLOUT if hasattr(select, "EPOLLOUT") else 4
_GONE = (select.EPOLLERR | select.EPOLLHUP) if hasattr(select, "EPOLLERR") else 0x18
_AGAIN = (BlockingIOError, InterruptedError)
_ACCEPT_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_PAUSED, _CLOSING, _WRITING_PAUSED = 1, 2, 4  # PlainTransport.flags
_readv, _write = os.readv, os.write
try:
    from fcntl import F_SETFL as _SETFL, fcntl as _fcntl
except ImportError:  # (not POSIX: `available()` is False there, the loop's own server runs)
    _fcntl = _SETFL = None
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def available() -> bool:
    return hasattr(select, "epoll")


async def serve(protocol_factory, host: str, port: int, ssl_context=None, backlog: int = 1024):
    """A server on host:port; each accepted connection gets `protocol_factory()` as its protocol.
    Plain TCP on one address runs on PlainServer; TLS, a host naming several addresses (the loop
    listens on each) or a platform without epoll on the loop's own server."""
    loop = asyncio.get_running_loop()
    if ssl_context is None and available():
        infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        if len({info[4] for info in infos}) == 1:
            family, type_, proto, _, address = infos[0]
            sock = socket.socket(family, type_, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # Linux: accepted sockets inherit it
                sock.bind(address)
                sock.listen(backlog)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            return PlainServer(loop, protocol_factory, sock)
    return await loop.create_server(protocol_factory, host, port, ssl=ssl_context, backlog=backlog)


class PlainServer:
    """One listening socket and the connections it accepted (the `asyncio.Server` calls the
    listeners use: `sockets`, `close`, `wait_closed`). Closing stops accepting; accepted
    connections go on until they close (the broker drops them as it stops)."""

    def __init__(self, loop, protocol_factory, sock: socket.socket):
        self.loop = loop
        self.sockets = [sock]
        self._factory = protocol_factory
        self._sock = sock
        self._epoll = select.epoll()
        # Every connection's reads land here. One per listener, not per process: a process may
        # run several servers, each on its loop thread (localiot.testing), and os.readv lets go
        # of the GIL, so a buffer shared between loops would take another loop's bytes.
        buffer = bytearray(_READ)
        self.read_into, self.read_view = [buffer], memoryview(buffer)
        self.connections: dict[int, PlainTransport] = {}  # by file descriptor
        self._serving = True
        loop.add_reader(sock.fileno(), self._accept)
        loop.add_reader(self._epoll.fileno(), self._ready)

    # accepting ----------------------------------------------------------------------
    def _accept(self) -> None:
        listening = self._sock
        for _ in range(_ACCEPTS):
            try:  # the fd alone: socket.accept() wraps each one in a socket object (~4 us of CPU, then detached)
                fd, address = listening._accept()
            except _AGAIN:
                return
            except ConnectionAbortedError:
                continue
            except OSError as e:
                if e.errno in _ACCEPT_RESOURCES:  # out of file descriptors ...: accept again in a second
                    log.warning("plain MQTT listener: cannot accept (%s); pausing for 1 s", e)
                    self.loop.remove_reader(listening.fileno())
                    self.loop.call_later(1.0, self._accept_again)
                    return
                log.warning("plain MQTT listener: accept failed: %s", e)
                return  # (called again while the listening socket is readable)
            try:
                # one fcntl, not set_blocking's two: an accepted socket has no other status flag to keep
                # (close-on-exec from accept4; TCP_NODELAY from the listening socket)
                _fcntl(fd, _SETFL, _NONBLOCK)
                self._epoll.register(fd, _IN)
            except OSError as e:
                log.warning("plain MQTT listener: cannot watch an accepted connection: %s", e)
                os.close(fd)
                continue
            transport = PlainTransport(self, fd, sys.intern(address[0]), address[1])
            self.connections[fd] = transport
            try:
                protocol = transport.protocol = self._factory()
                protocol.connection_made(transport)
            except Exception:
                log.exception("plain MQTT listener: the connection's protocol failed")
                transport.abort()

    def _accept_again(self) -> None:
        if self._serving:
            self.loop.add_reader(self._sock.fileno(), self._accept)

    # the ready sockets ------------------------------------------------------------------
    def _ready(self) -> None:
        try:
            events = self._epoll.poll(0, _EVENTS)
        except InterruptedError:
            return
        connections = self.connections
        for fd, mask in events:
            transport = connections.get(fd)
            if transport is None:  # closed by an earlier one of this batch
                continue
            if mask & _OUT:
                transport._write_ready()
            if mask & _IN:
                transport._read_ready()
            elif mask & _GONE and not mask & _OUT:
                transport._hung_up()  # an error or hang-up reported while not reading (epoll always reports them)

    def _watch(self, transport: "PlainTransport") -> None:
        """The socket's events follow the transport: reading unless paused, writing while bytes wait."""
        mask = (0 if transport.flags & _PAUSED else _IN) | (_OUT if transport.buffer is not None else 0)
        if transport.fd < 0:
            return
        try:
            self._epoll.modify(transport.fd, mask)
        except (OSError, ValueError):  # (the epoll closed with the server's last connection)
            pass

    def _forget(self, transport: "PlainTransport") -> None:
        # (no epoll_ctl: closing the fd, which is never duplicated, takes it out of the epoll)
        self.connections.pop(transport.fd, None)
        if not self._serving and not self.connections:
            self._close_epoll()

    # closing ------------------------------------------------------------------------------
    def close(self) -> None:
        if not self._serving:
            return
        self._serving = False
        try:
            self.loop.remove_reader(self._sock.fileno())
        except (OSError, ValueError):
            pass
        self._sock.close()
        if not self.connections:
            self._close_epoll()

    def _close_epoll(self) -> None:
        if not self._epoll.closed:
            self.loop.remove_reader(self._epoll.fileno())
            self._epoll.close()

    def is_serving(self) -> bool:
        return self._serving

    async def wait_closed(self) -> None:
        return None


class PlainTransport(asyncio.Transport):
    """One accepted TCP connection of a PlainServer: its file descriptor (the socket object is
    let go after accept: the fd is all the reads and writes need) and a few slots."""

    __slots__ = ("server", "fd", "host", "port", "protocol", "buffer", "flags", "limits")

    def __init__(self, server: PlainServer, fd: int, host: str, port: int):
        self.server = server
        self.fd = fd  # -1 once closed
        self.host = host  # the peer's address (interned: one string per client address) and port
        self.port = port
        self.protocol = None
        self.buffer: bytearray | None = None  # what the kernel did not take yet
        self.flags = 0  # _PAUSED | _CLOSING | _WRITING_PAUSED
        self.limits = None  # (low, high) of set_write_buffer_limits; None: _LOW, _HIGH

    # events ----------------------------------------------------------------------------
    def _read_ready(self) -> None:
        if self.flags & _PAUSED or self.fd < 0:
            return
        try:
            n = _readv(self.fd, self.server.read_into)
        except _AGAIN:
            return
        except OSError as e:
            self._finish(e)
            return
        if n:
            try:
                self.protocol.data_received(self.server.read_view[:n].tobytes())
            except Exception:
                log.exception("plain MQTT: data_received failed")
                self.abort()
            return
        # end of file: the peer closed its side (an MQTT client sends nothing more)
        keep_open = False
        try:
            keep_open = self.protocol.eof_received()
        except Exception:
            log.exception("plain MQTT: eof_received failed")
        if not keep_open:
            self.close()
        elif not self.flags & _PAUSED:
            self.flags |= _PAUSED  # (half-closed: nothing more to read)
            self.server._watch(self)

    def _hung_up(self) -> None:
        """An error or hang-up while not reading (epoll reports them whatever was asked)."""
        if self.fd < 0:
            return
        if not self.flags & _PAUSED:
            self._read_ready()  # the read says what happened
            return
        sock = socket.socket(fileno=self.fd)
        try:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except OSError as e:
            code = e.errno or 0
        finally:
            sock.detach()
        self._finish(ConnectionResetError(code, os.strerror(code)) if code else ConnectionResetError("hung up"))

    def _write_ready(self) -> None:
        buffer, fd = self.buffer, self.fd
        if buffer is None or fd < 0:
            return
        try:
            n = _write(fd, buffer)
        except _AGAIN:
            return
        except OSError as e:
            self._finish(e)
            return
        del buffer[:n]
        if buffer:
            if self.flags & _WRITING_PAUSED and len(buffer) <= (_LOW if self.limits is None else self.limits[0]):
                self._resume_protocol()
            return
        self.buffer = None
        if self.flags & _WRITING_PAUSED:
            self._resume_protocol()
        if self.flags & _CLOSING:
            self._finish(None)
        else:
            self.server._watch(self)

    def _resume_protocol(self) -> None:
        self.flags &= ~_WRITING_PAUSED
        try:
            self.protocol.resume_writing()
        except Exception:
            log.exception("plain MQTT: resume_writing failed")

    # the transport ----------------------------------------------------------------------
    def write(self, data) -> None:
        if self.flags & _CLOSING or self.fd < 0 or not data:
            return
        buffer = self.buffer
        if buffer is not None:
            buffer += data
        else:
            try:
                n = _write(self.fd, data)
            except _AGAIN:
                n = 0
            except OSError as e:
                self._finish(e)
                return
            if n == len(data):
                return
            buffer = self.buffer = bytearray(memoryview(data)[n:])
            self.server._watch(self)
        if not self.flags & _WRITING_PAUSED and len(buffer) > (_HIGH if self.limits is None else self.limits[1]):
            self.flags |= _WRITING_PAUSED
            try:
                self.protocol.pause_writing()
            except Exception:
                log.exception("plain MQTT: pause_writing failed")

    def writelines(self, list_of_data) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        """Stop reading; close once what was written has left (connection_lost follows)."""
        if self.flags & _CLOSING or self.fd < 0:
            return
        self.flags |= _CLOSING
        if self.buffer is None:
            self._finish(None)
        elif not self.flags & _PAUSED:
            self.flags |= _PAUSED
            self.server._watch(self)

    def abort(self) -> None:
        self._finish(None)

    def _finish(self, exc) -> None:
        fd = self.fd
        if fd < 0:
            return
        self.flags |= _CLOSING
        self.server._forget(self)
        self.fd = -1
        self.buffer = None
        os.close(fd)
        self.server.loop.call_soon(self._lost, exc)

    def _lost(self, exc) -> None:
        protocol, self.protocol = self.protocol, None
        if protocol is not None:
            try:
                protocol.connection_lost(exc)
            except Exception:
                log.exception("plain MQTT: connection_lost failed")

    def is_closing(self) -> bool:
        return bool(self.flags & _CLOSING) or self.fd < 0

    def pause_reading(self) -> None:
        if not self.flags & (_PAUSED | _CLOSING) and self.fd >= 0:
            self.flags |= _PAUSED
            self.server._watch(self)

    def resume_reading(self) -> None:
        if self.flags & _PAUSED and not self.flags & _CLOSING and self.fd >= 0:
            self.flags &= ~_PAUSED
            self.server._watch(self)

    def is_reading(self) -> bool:
        return not self.flags & (_PAUSED | _CLOSING) and self.fd >= 0

    def get_write_buffer_size(self) -> int:
        buffer = self.buffer
        return len(buffer) if buffer is not None else 0

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        if high is None:
            high = _HIGH if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self.limits = (low, high)

    def get_write_buffer_limits(self):
        return (_LOW, _HIGH) if self.limits is None else self.limits

    def set_protocol(self, protocol) -> None:
        self.protocol = protocol

    def get_protocol(self):
        return self.protocol

    def get_extra_info(self, name, default=None):
        if name == "peername":  # (made when asked: the broker asks once per connection)
            return self.host, self.port
        if name == "sockname" and self.fd >= 0:
            sock = socket.socket(fileno=self.fd)
            try:
                return sock.getsockname()
            except OSError:
                return default
            finally:
                sock.detach()
        return default
