"""API replies written as one buffer (localiot.protocol.wire) are the bytes aiohttp's
web.Response writes for them, on every kind of connection; and the API port keeps
a connection alive across replies written that way."""

import asyncio
import re
import socket

import pytest
from aiohttp import web

from localiot.protocol.serializer import Reply
from localiot.protocol.wire import WireReply, respond
from localiot.testing import make_client
from localiot.timeouts import within

REPLIES = {
    "/ok": Reply(200, b'{"thingName":"t1"}', {"Content-Type": "application/json", "x-amzn-RequestId": "r-1"}),
    "/error": Reply(404, b'{"message":"Thing t cannot be found."}',
                    {"Content-Type": "application/json", "x-amzn-ErrorType": "ResourceNotFoundException"}),
    "/empty": Reply(200, b"", {"Content-Type": "application/json"}),
    "/no-content": Reply(204, b"", {"Content-Type": "application/json"}),
    "/unicode-header": Reply(200, b"{}", {"Content-Type": "application/json", "x-thing": "th\u00efng"}),
    "/page": Reply(200, b"[" + b'{"thingName":"t"},' * 1000 + b"{}]", {"Content-Type": "application/json"}),
    "/big": Reply(200, b"[" + b"1," * 40000 + b"1]", {"Content-Type": "application/json"}),
    "/odd-status": Reply(299, b"{}", {"Content-Type": "application/json"}),
    "/crlf-header": Reply(200, b"{}", {"Content-Type": "application/json", "x-bad": "a\r\nInjected: 1"}),
    "/own-date": Reply(200, b"{}", {"Content-Type": "application/json", "date": "Thu, 01 Jan 2026 00:00:00 GMT"}),
    "/no-type": Reply(200, b"{}", {"x-amzn-RequestId": "r-2"}),
    # as the engine answers an operation: the header block written with the headers
    "/engine": Reply(200, b'{"thingName":"t1"}', {"Content-Type": "application/json", "x-amzn-RequestId": "r-3",
                                                  "x-localiot-operation": "iot.DescribeThing"},
                     "Content-Type: application/json\r\nx-amzn-RequestId: r-3\r\nx-localiot-operation: iot.DescribeThing\r\n"),
}

REQUESTS = [
    b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET %s HTTP/1.0\r\nHost: x\r\n\r\n",
    b"GET %s HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\nGET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"HEAD %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
]


async def _exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        answer = await within(reader.read(), 10)
    finally:
        writer.close()
    dates = re.findall(rb"Date: ([^\r]+)", answer)
    assert all(re.fullmatch(rb"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", d)
               for d in dates), dates
    return re.sub(rb"Date: [^\r]+", b"Date: -", answer)  # the second may differ between the two answers


async def _both(path: str, request: bytes) -> tuple[bytes, bytes, str]:
    kinds = []

    async def wire(req):
        response = respond(req, REPLIES[path])
        kinds.append(type(response).__name__)
        return response

    async def plain(req):
        reply = REPLIES[path]
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    answers = []
    for handler in (wire, plain):
        runner = web.ServerRunner(web.Server(handler, access_log=None), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = site._server.sockets[0].getsockname()[1]
            answers.append(await _exchange(port, request.replace(b"%s", path.encode())))
        finally:
            await runner.cleanup()
    return answers[0], answers[1], kinds[0]


@pytest.mark.parametrize("path", sorted(REPLIES))
@pytest.mark.parametrize("request_index", range(len(REQUESTS)))
def test_the_bytes_are_aiohttps(path, request_index):
    ours, theirs, _ = asyncio.run(_both(path, REQUESTS[request_index]))
    assert ours == theirs
    # aiohttp refuses a CR or LF in a header value: it drops the connection unanswered.
    assert ours.startswith(b"HTTP/1.") or (path == "/crlf-header" and ours == b"")


def test_the_common_case_takes_the_one_buffer_path():
    _, _, kind = asyncio.run(_both("/ok", b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert kind == WireReply.__name__
    _, _, kind = asyncio.run(_both("/page", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert kind == WireReply.__name__  # written as head and body, one writev
    for path in ("/big", "/no-content"):  # over 64 KB; a status without a body: aiohttp's writer
        _, _, kind = asyncio.run(_both(path, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        assert kind == "Response"


def test_the_api_port_keeps_the_connection_across_replies(localiot_server, iot):
    iot.create_thing(thingName="wire-1")
    port = int(localiot_server.endpoint.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /things/wire-1 HTTP/1.1\r\nHost: x\r\n\r\nGET /things/wire-2 HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while answer.count(b"HTTP/1.1 ") < 2 or not answer.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
        sock.sendall(b"GET /things/wire-1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while chunk := sock.recv(65536):
            answer += chunk
    replies = answer.split(b"HTTP/1.1 ")[1:]
    assert [r[:3] for r in replies] == [b"200", b"404", b"200"]
    assert b'"thingName":"wire-1"' in replies[0] and b"Thing wire-2 cannot be found." in replies[1]
    assert b"x-amzn-RequestId: " in replies[0] and b"Connection: close" in replies[2]


def test_the_engines_header_block_is_its_headers(localiot_server, iot):
    """A reply whose header block the engine wrote (Reply.fields) lists exactly its headers."""
    from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

    iot.create_thing(thingName="block-1")
    make_client(localiot_server, "iot-data").update_thing_shadow(thingName="block-1", payload=b'{"state":{"reported":{"on":true}}}')
    no_query, no_headers = MultiDictProxy(MultiDict()), CIMultiDictProxy(CIMultiDict())
    engine = localiot_server.app.engine
    for method, path in (("GET", "/things/block-1"), ("GET", "/things/block-1/shadow"), ("POST", "/topics/block%2F1")):
        reply = localiot_server.call(
            lambda method=method, path=path: engine.handle(method, "", path, path, no_query, no_headers, b"on"))
        assert reply.status == 200, reply.body
        assert reply.fields == "".join(f"{name}: {value}\r\n" for name, value in reply.headers.items())
        assert list(reply.headers) == ["Content-Type", "x-amzn-RequestId", "x-localiot-operation"]
    assert (reply.body, reply.headers["Content-Type"]) == (b"{}", "application/json")  # Publish: no output shape
