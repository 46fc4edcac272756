"""A lean server-side TLS transport for the TLS listeners (MQTT over TLS on
8883, and the ALPN port, where the first protocol is alpn.AlpnSniffer, which
hands the transport to MQTT or to HTTP/1.1): one object that is the TCP
connection's protocol and the application's transport, with OpenSSL working
on two memory BIOs (`ssl.SSLContext.wrap_bio`).

Why not the event loop's own TLS (`create_server(ssl=...)`): uvloop's SSL
protocol mallocs a 256 KB read buffer per connection (its first pages stay
resident while the connection idles), keeps `getpeercert()`'s parsed dict,
the cipher tuple and two wrapper objects per connection, and waits up to 30 s
for the peer's close_notify after closing. Here socket reads land in the
loop's shared buffer, the certificate is parsed only when someone asks
(`get_extra_info("peercert")`), written bytes are encrypted at once and the
TCP transport's buffer is the only write buffer (its flow control is handed
to the MQTT connection as is), and closing sends close_notify and closes.

What the application (MQTT, or aiohttp's HTTP/1.1 protocol) sees is an
asyncio transport: `write`, `close`, `abort`, `pause_reading`/`resume_reading`,
`get_write_buffer_size`, `set_protocol` (the ALPN port's hand-over),
`get_extra_info` ("ssl_object", "sslcontext", "peercert", "cipher", and the
socket's own keys: "peername" ...). Its `connection_made` comes after the
handshake; a handshake that fails or takes longer than `handshake_timeout`
closes the TCP connection without it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

log = logging.getLogger("localiot.listeners")

_READ = 32 * 1024  # plaintext asked of OpenSSL per read (a TLS record holds at most 16 KB)
_HANDSHAKE, _OPEN, _CLOSED = 0, 1, 2
_AGAIN = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class TlsServerTransport(asyncio.Protocol, asyncio.Transport):
    """Protocol of one accepted TCP connection, transport of its TLS application protocol."""

    __slots__ = ("_app", "_tcp", "_sslobj", "_in", "_out", "_state", "_timer", "_paused", "_loop")

    def __init__(self, context: ssl.SSLContext, app: asyncio.Protocol, loop, handshake_timeout: float):
        self._app = app
        self._tcp = None
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._sslobj = context.wrap_bio(self._in, self._out, server_side=True)
        self._state = _HANDSHAKE
        self._paused = False
        self._loop = loop
        self._timer = loop.call_later(handshake_timeout, self._handshake_timed_out)

    # the TCP connection's protocol ------------------------------------------------
    def connection_made(self, transport) -> None:
        self._tcp = transport

    def data_received(self, data: bytes) -> None:
        self._in.write(data)
        if self._state == _OPEN:
            if not self._paused:
                self._read()
        elif self._state == _HANDSHAKE:
            self._handshake()

    def eof_received(self):
        return False  # a TCP EOF without close_notify: the transport closes, connection_lost follows

    def connection_lost(self, exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        was, self._state = self._state, _CLOSED
        self._tcp = None
        app = self._app
        if app is not None and was != _HANDSHAKE:
            self._app = None
            app.connection_lost(exc)
        self._app = None

    def pause_writing(self) -> None:  # the TCP transport's buffer is the only one: its flow control is ours
        if self._app is not None and self._state != _HANDSHAKE:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        if self._app is not None and self._state != _HANDSHAKE:
            self._app.resume_writing()

    # TLS -----------------------------------------------------------------------------
    def _handshake(self) -> None:
        try:
            self._sslobj.do_handshake()
        except _AGAIN:
            self._send()
            return
        except (ssl.SSLError, OSError) as e:
            log.debug("TLS handshake failed from %s: %s", self._peer(), e)
            self._send()  # the alert, so the client learns why
            self._fail()
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._state = _OPEN
        self._send()
        self._app.connection_made(self)
        if self._state == _OPEN and not self._paused and (self._in.pending or self._sslobj.pending()):
            self._read()  # what came with the client's Finished (a CONNECT, often)

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if self._state == _HANDSHAKE:
            log.debug("TLS handshake from %s took too long", self._peer())
            self._fail()

    def _read(self) -> None:
        sslobj, incoming = self._sslobj, self._in
        first = None
        more = None
        eof = False
        try:
            while incoming.pending or sslobj.pending():
                chunk = sslobj.read(_READ)
                if not chunk:  # the peer's close_notify
                    eof = True
                    break
                if first is None:
                    first = chunk
                elif more is None:
                    more = [first, chunk]
                else:
                    more.append(chunk)
        except _AGAIN:
            pass
        except (ssl.SSLError, OSError) as e:
            log.debug("TLS error from %s: %s", self._peer(), e)
            self._fail()
            return
        if self._out.pending:  # (a key update's answer)
            self._send()
        if first is not None:
            self._app.data_received(first if more is None else b"".join(more))
        if eof and self._state == _OPEN:
            self.close()

    def _send(self) -> None:
        out = self._out
        if out.pending and self._tcp is not None:
            self._tcp.write(out.read())

    def _fail(self) -> None:
        tcp = self._tcp
        if tcp is not None:
            tcp.close()  # what was written (an alert) goes first

    def _peer(self):
        return self._tcp.get_extra_info("peername") if self._tcp is not None else None

    # the application's transport -----------------------------------------------------------
    def write(self, data) -> None:
        if self._state != _OPEN or not data:
            return
        sslobj = self._sslobj
        try:
            n = sslobj.write(data)
            if n < len(data):
                view = memoryview(data)[n:]
                while view:
                    view = view[sslobj.write(view):]
        except (ssl.SSLError, OSError) as e:
            log.debug("TLS write to %s failed: %s", self._peer(), e)
            self._send()
            self._fail()
            return
        self._tcp.write(self._out.read())

    def writelines(self, list_of_data) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        """Send close_notify after what was written, then close (no wait for the peer's)."""
        if self._state != _OPEN:
            if self._state == _HANDSHAKE:
                self._fail()
            return
        self._state = _CLOSED
        try:
            self._sslobj.unwrap()
        except (ssl.SSLError, OSError, ValueError):
            pass  # waiting for the peer's close_notify, which is not waited for
        self._send()
        if self._tcp is not None:
            self._tcp.close()  # its connection_lost tells the application

    def abort(self) -> None:
        if self._tcp is not None:
            self._state = _CLOSED
            self._tcp.abort()

    def is_closing(self) -> bool:
        return self._state != _OPEN

    def pause_reading(self) -> None:
        if not self._paused:
            self._paused = True
            if self._tcp is not None:
                self._tcp.pause_reading()

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            if self._tcp is not None:
                self._tcp.resume_reading()
            if self._in.pending or self._sslobj.pending():  # decrypted what came before the pause, later
                self._loop.call_soon(self._resume_read)

    def _resume_read(self) -> None:
        if self._state == _OPEN and not self._paused:
            self._read()

    def is_reading(self) -> bool:
        return not self._paused

    def get_write_buffer_size(self) -> int:
        return self._tcp.get_write_buffer_size() if self._tcp is not None else 0

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        if self._tcp is not None:
            self._tcp.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self):
        return self._tcp.get_write_buffer_limits() if self._tcp is not None else (0, 0)

    def set_protocol(self, protocol) -> None:
        self._app = protocol

    def get_protocol(self):
        return self._app

    def get_extra_info(self, name, default=None):
        sslobj = self._sslobj
        if name == "ssl_object":
            return sslobj
        if name == "sslcontext":
            return sslobj.context
        if name == "peercert":
            return sslobj.getpeercert() if self._state != _HANDSHAKE else default
        if name == "cipher":
            return sslobj.cipher()
        if name == "compression":
            return sslobj.compression()
        return self._tcp.get_extra_info(name, default) if self._tcp is not None else default
