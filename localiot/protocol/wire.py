"""An API reply written to the connection as one buffer, without aiohttp's Response.

aiohttp's web.Response costs a CIMultiDict of headers, a status line and header
block built field by field, a Date and a Server header looked up per request,
and two awaits (prepare, write_eof) through the payload writer: about a tenth
of a DescribeThing's CPU. An API reply needs none of that: its status, its few
headers and its body are known when the engine answers. `respond` writes the
same bytes aiohttp would (same status line, headers in the same order:
the reply's own, Content-Length, Date, Server, and Connection: close when the
connection will not be kept) as one `transport.write` (one writev for a longer body),
at once, and hands aiohttp a shared stand-in with nothing left to write.

Only the common case takes this path: HTTP/1.1, a method and status that carry
a body, a body under 64 KB (larger ones go through aiohttp's writer, which
waits for the socket to drain), header values without CR or LF. Everything
else, and every reply of the server outside the engine, is a web.Response as
before.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11

from localiot.protocol.serializer import Reply

# "HTTP/1.1 200 OK\r\n" as aiohttp writes it (its reason phrases are HTTPStatus's).
_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n" for s in HTTPStatus}
_TAIL = f"\r\nServer: {SERVER_SOFTWARE}\r\n"
_CLOSE = "Connection: close\r\n"
MAX_BODY = 64 * 1024
_JOIN_BELOW = 2048  # bodies shorter than this are copied behind the head (aiohttp's choice too)
_NO_BODY_STATUS = frozenset({204, 304})
# Headers aiohttp writes itself or reads to frame the reply: a reply naming one goes its way.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "date", "server"})
_USUAL = frozenset({"Content-Type", "x-amzn-RequestId", "x-localiot-operation", "x-amzn-ErrorType"})

_second = 0
_date = ""
# Status lines of the statuses this path writes (those with a body: not 1xx, 204 or 304).
_BODY_STATUS_LINES = {status: line for status, line in _STATUS_LINES.items()
                      if status >= 200 and status not in _NO_BODY_STATUS}


def _http_date() -> str:
    """The Date header's value, as aiohttp writes it, formatted once a second."""
    global _second, _date
    now = int(time.time())
    if now != _second:
        _date = formatdate(now, usegmt=True)
        _second = now
    return _date


class WireReply:
    """What aiohttp's request handler needs of a response (prepare, write_eof,
    keep_alive), for bytes already complete: written by `respond` itself (then one
    shared WireReply per keep_alive stands for them), or by `prepare` when `respond`
    found the connection closing (then prepare raises, as aiohttp's writer would)."""

    __slots__ = ("head", "body", "keep_alive")
    __http_exception__ = False  # (aiohttp asks every response; found on the class, not missed)

    def __init__(self, head: bytes | None, body: bytes | None, keep_alive: bool):
        self.head, self.body, self.keep_alive = head, body, keep_alive

    async def prepare(self, request: web.BaseRequest) -> None:
        head, body = self.head, self.body
        if head is None:  # written already
            return
        self.head = self.body = None
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        _write(request, transport, head, body)

    async def write_eof(self, data: bytes = b"") -> None:
        return None


_WRITTEN = {True: WireReply(None, None, True), False: WireReply(None, None, False)}


def _write(request: web.BaseRequest, transport, head: bytes, body: bytes) -> None:
    request.writer.output_size += len(head) + len(body)  # what aiohttp's error handling looks at
    if len(body) < _JOIN_BELOW:
        transport.write(head + body)
    else:  # a page of ListThings: no copy, one writev
        transport.writelines((head, body))


def respond(request: web.BaseRequest, reply: Reply) -> WireReply | web.Response:
    """The reply as the handler's response: written as one buffer where it can be (here,
    at once: aiohttp writes a handler's response only after it returned, and nothing in
    between writes to the connection)."""
    status, body, headers = reply.status, reply.body, reply.headers
    status_line = _BODY_STATUS_LINES.get(status)
    if (status_line is None or len(body) > MAX_BODY or "Content-Type" not in headers or request.method == "HEAD"
            or request.version != HttpVersion11):
        return web.Response(status=status, body=body, headers=headers)
    fields = reply.fields
    if fields is None:
        fields = ""
        for name, value in headers.items():
            if name not in _USUAL and name.lower() in _FRAMING:
                return web.Response(status=status, body=body, headers=headers)  # aiohttp frames it itself
            fields += f"{name}: {value}\r\n"
        if fields.count("\n") != len(headers) or fields.count("\r") != len(headers):
            return web.Response(status=status, body=body, headers=headers)  # aiohttp refuses CR or LF in one
    keep_alive = request.keep_alive
    now = int(time.time())
    date = _date if now == _second else _http_date()
    if keep_alive:
        head = f"{status_line}{fields}Content-Length: {len(body)}\r\nDate: {date}{_TAIL}\r\n".encode()
    else:
        head = f"{status_line}{fields}Content-Length: {len(body)}\r\nDate: {date}{_TAIL}{_CLOSE}\r\n".encode()
    transport = request.transport
    if transport is None or transport.is_closing():
        return WireReply(head, body, keep_alive)  # its prepare answers as aiohttp's writer would
    _write(request, transport, head, body)
    return _WRITTEN[keep_alive]
