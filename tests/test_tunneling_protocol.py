"""The relay's side of the protocol guides, frame by frame: handshake refusals,
client tokens, keep-alive, rotation / close / expiry closing the WebSockets,
bad frames closing only the offending connection, and a side that stops
reading being cut off instead of buffered for."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import urllib.error
import urllib.request
import uuid

import aiohttp
import pytest

from localiot.testing import advance, make_client, wait_until
from tunneling_localproxy import T, Frames, connect, frame

CLIENT_TOKEN = str(uuid.uuid4())


@pytest.fixture
def tunnels(localiot_server):
    return make_client(localiot_server, "iotsecuretunneling")


def open_tunnel(tunnels, services=("SSH",), minutes=None):
    extra = {"timeoutConfig": {"maxLifetimeTimeoutMinutes": minutes}} if minutes else {}
    return tunnels.open_tunnel(destinationConfig={"thingName": "pump", "services": list(services)}, **extra)


def refusal(server, token, mode="source", **kw) -> int:
    async def attempt():
        async with aiohttp.ClientSession() as session:
            try:
                ws = await connect(server.endpoint, token, mode, session=session, **kw)
            except aiohttp.WSServerHandshakeError as error:
                assert error.headers.get("channel-id")
                return error.status
            await ws.close()
            return 101

    return asyncio.run(attempt())


async def receive_frames(ws, count=1, timeout=5.0):
    """The next `count` Messages from the relay."""
    frames, got = Frames(), []
    while len(got) < count:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        got.extend(frames.feed(msg.data))
    return got


async def closed_with(ws, timeout=5.0) -> int:
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return msg.data if msg.type == aiohttp.WSMsgType.CLOSE else ws.close_code


def state(tunnels, tunnel_id, side):
    return tunnels.describe_tunnel(tunnelId=tunnel_id)["tunnel"][f"{side}ConnectionState"]["status"]


def test_handshake_refusals(localiot_server, tunnels):
    opened = open_tunnel(tunnels)
    source = opened["sourceAccessToken"]
    assert refusal(localiot_server, None) == 400
    assert refusal(localiot_server, "not-a-token") == 401
    assert refusal(localiot_server, source, "destination") == 400  # the token's mode is source
    assert refusal(localiot_server, source, "sideways") == 400
    assert refusal(localiot_server, source, protocols=["mqtt"]) == 400
    assert refusal(localiot_server, source, headers={"Cookie": f"awsiot-tunnel-token={source}"}) == 400
    assert refusal(localiot_server, source, client_token="short") == 400
    # none of these used the token: it still opens the tunnel once ...
    assert refusal(localiot_server, None, headers={"Cookie": f"awsiot-tunnel-token={source}"}) == 101
    # ... and, without a client token, only once (asked once the relay saw that connection end:
    # while it is still connected the answer is 409)
    assert wait_until(lambda: state(tunnels, opened["tunnelId"], "source") == "DISCONNECTED")
    assert refusal(localiot_server, source) == 401


def test_a_plain_get_is_refused(localiot_server, tunnels):
    token = open_tunnel(tunnels)["sourceAccessToken"]
    request = urllib.request.Request(localiot_server.endpoint + "/tunnel?local-proxy-mode=source",
                                     headers={"access-token": token,
                                              "Sec-WebSocket-Protocol": "aws.iot.securetunneling-3.0"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request)
    assert info.value.code == 400 and info.value.read() == b"Expected a WebSocket upgrade"
    assert refusal(localiot_server, token) == 101  # the refused request did not use the token


def test_second_client_and_client_tokens(localiot_server, tunnels):
    opened = open_tunnel(tunnels)

    async def scenario():
        async with aiohttp.ClientSession() as session:
            first = await connect(localiot_server.endpoint, opened["sourceAccessToken"], "source", session=session)
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await connect(localiot_server.endpoint, opened["sourceAccessToken"], "source", session=session)
            assert info.value.status == 409
            await first.close()
            # the destination binds its token to a client token: only that client token reconnects
            dest = opened["destinationAccessToken"]
            one = await connect(localiot_server.endpoint, dest, "destination", session=session,
                                client_token=CLIENT_TOKEN)
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await connect(localiot_server.endpoint, dest, "destination", session=session,
                              client_token=str(uuid.uuid4()))
            assert info.value.status == 401
            two = await connect(localiot_server.endpoint, dest, "destination", session=session,
                                client_token=CLIENT_TOKEN)
            assert await closed_with(one) == 1000  # replaced by the reconnection
            assert (await receive_frames(two))[0].type == T.SERVICE_IDS
            assert await asyncio.to_thread(state, tunnels, opened["tunnelId"], "destination") == "CONNECTED"
            await two.close()

    asyncio.run(scenario())


def test_service_ids_keep_alive_and_start_without_a_destination(localiot_server, tunnels):
    opened = open_tunnel(tunnels, ("SSH", "VNC"))

    async def scenario():
        async with aiohttp.ClientSession() as session:
            ws = await connect(localiot_server.endpoint, opened["sourceAccessToken"], "source", session=session,
                               autoping=False)
            (ids,) = await receive_frames(ws)
            assert ids.type == T.SERVICE_IDS and list(ids.availableServiceIds) == ["SSH", "VNC"]
            await ws.ping(b"are you there")
            pong = await asyncio.wait_for(ws.receive(), 5)
            assert pong.type == aiohttp.WSMsgType.PONG and pong.data == b"are you there"
            await ws.send_bytes(frame(T.STREAM_START, 7, "VNC", 1))  # nobody at the destination
            (reset,) = await receive_frames(ws)
            assert (reset.type, reset.streamId, reset.serviceId) == (T.STREAM_RESET, 7, "VNC")
            await ws.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("bad, code", [
    (b"\x00\x03\xff\xff\xff", 1002),  # not a protobuf Message
    (frame(T.DATA, 1, "SSH", 1, b"x"), 1002),  # DATA for a stream never started
    (frame(42, 1, "SSH", 1), 1002),  # an unknown type that is not ignorable
    (frame(T.STREAM_START, 1, "FTP", 1), 1002),  # not one of the tunnel's services
    (frame(T.STREAM_START, 0, "SSH", 1), 1002),  # stream id 0
    (frame(T.SESSION_RESET), 1002),  # only the service sends it
    (frame(T.DATA, 1, "SSH", 1, b"x" * 64513), 1009),  # over the 63 KB payload limit
    (b"\x00\x02\x08\x01" + b"\x40\x05", 1002),  # a field the schema does not have
    # connection ids (V3 guide): the first STREAM_START's format holds for the whole session
    ((frame(T.STREAM_START, 1, "SSH", 1), frame(T.DATA, 1, "SSH", 0, b"x")), 1002),
    ((frame(T.STREAM_START, 1, "SSH", 0), frame(T.DATA, 1, "SSH", 2, b"x")), 1002),
    ((frame(T.STREAM_START, 1, "SSH", 0), frame(T.CONNECTION_START, 1, "SSH", 0)), 1002),
    ((frame(T.STREAM_START, 1, "SSH", 1), frame(T.STREAM_START, 2, "SSH", 0)), 1002),
])
def test_a_bad_frame_closes_only_its_sender(localiot_server, tunnels, bad, code):
    opened, bystander = open_tunnel(tunnels), open_tunnel(tunnels)
    if bad == b"\x00\x02\x08\x01\x40\x05":
        bad = b"\x00\x04\x08\x01\x40\x05"
    sent = bad if isinstance(bad, tuple) else (bad,)  # frames that are fine, then the bad one

    async def scenario():
        async with aiohttp.ClientSession() as session:
            dest = await connect(localiot_server.endpoint, opened["destinationAccessToken"], "destination",
                                 session=session)
            other = await connect(localiot_server.endpoint, bystander["sourceAccessToken"], "source",
                                  session=session)
            src = await connect(localiot_server.endpoint, opened["sourceAccessToken"], "source", session=session)
            for ws in (dest, other, src):
                await receive_frames(ws)  # SERVICE_IDS
            for part in sent:
                await src.send_bytes(part)
            assert await closed_with(src) == code
            assert not dest.closed and not other.closed
            await dest.ping()
            await other.ping()
            await dest.close()
            await other.close()

    asyncio.run(scenario())


def test_ignorable_unknown_types_are_dropped_and_text_closes(localiot_server, tunnels):
    opened = open_tunnel(tunnels)

    async def scenario():
        async with aiohttp.ClientSession() as session:
            dest = await connect(localiot_server.endpoint, opened["destinationAccessToken"], "destination",
                                 session=session)
            src = await connect(localiot_server.endpoint, opened["sourceAccessToken"], "source", session=session)
            await receive_frames(dest)
            await receive_frames(src)
            # frames need not align with WebSocket messages: split one start across two sends
            start = frame(T.STREAM_START, 5, "SSH", 1)
            await src.send_bytes(frame(42, 1, "SSH", ignorable=True) + start[:3])
            await src.send_bytes(start[3:] + frame(T.DATA, 5, "SSH", 1, b"hi"))
            got = await receive_frames(dest, 2)
            assert [(m.type, m.streamId, m.payload) for m in got] == [(T.STREAM_START, 5, b""), (T.DATA, 5, b"hi")]
            await dest.send_bytes(frame(T.DATA, 5, "SSH", 1, b"back"))
            assert (await receive_frames(src))[0].payload == b"back"
            await dest.send_str("hello")
            assert await closed_with(dest) == 1003
            (reset,) = await receive_frames(src)  # its peer left: the active stream ends
            assert (reset.type, reset.streamId) == (T.STREAM_RESET, 5)
            await src.close()

    asyncio.run(scenario())


def lifecycle(localiot_server, tunnels, opened, act, expect_closed: dict):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            sides = {mode: await connect(localiot_server.endpoint, opened[f"{mode}AccessToken"], mode,
                                         session=session) for mode in ("source", "destination")}
            for ws in sides.values():
                await receive_frames(ws)
            await asyncio.to_thread(act)
            for mode, closed in expect_closed.items():
                if closed:
                    assert await closed_with(sides[mode]) == 1000
                else:
                    await sides[mode].ping()
                    assert not sides[mode].closed
            for ws in sides.values():
                await ws.close()

    asyncio.run(scenario())


def test_rotation_disconnects_the_rotated_side(localiot_server, tunnels):
    opened = open_tunnel(tunnels)
    rotated = {}
    lifecycle(localiot_server, tunnels, opened,
              lambda: rotated.update(tunnels.rotate_tunnel_access_token(tunnelId=opened["tunnelId"],
                                                                        clientMode="SOURCE")),
              {"source": True, "destination": False})
    assert refusal(localiot_server, opened["sourceAccessToken"]) == 401
    assert refusal(localiot_server, rotated["sourceAccessToken"]) == 101


def test_close_disconnects_both(localiot_server, tunnels):
    opened = open_tunnel(tunnels)
    lifecycle(localiot_server, tunnels, opened, lambda: tunnels.close_tunnel(tunnelId=opened["tunnelId"]),
              {"source": True, "destination": True})
    assert state(tunnels, opened["tunnelId"], "source") == "DISCONNECTED"
    assert state(tunnels, opened["tunnelId"], "destination") == "DISCONNECTED"
    assert refusal(localiot_server, opened["destinationAccessToken"], "destination") == 401


def test_reset_disconnects_both(localiot_server, tunnels):
    opened = open_tunnel(tunnels)

    def reset():
        request = urllib.request.Request(localiot_server.endpoint + "/_localiot/reset", method="POST", data=b"")
        urllib.request.urlopen(request).close()

    lifecycle(localiot_server, tunnels, opened, reset, {"source": True, "destination": True})
    assert refusal(localiot_server, opened["sourceAccessToken"]) == 401  # the tunnel is gone with the reset


def test_expiry_disconnects_both(localiot_server, tunnels):
    opened = open_tunnel(tunnels, minutes=5)

    lifecycle(localiot_server, tunnels, opened, lambda: advance(localiot_server, 301),
              {"source": True, "destination": True})
    assert tunnels.describe_tunnel(tunnelId=opened["tunnelId"])["tunnel"]["status"] == "CLOSED"


def raw_websocket(port: int, token: str, mode: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /tunnel?local-proxy-mode={mode} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Protocol: aws.iot.securetunneling-3.0\r\naccess-token: {token}\r\n\r\n").encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(1)
    assert reply.startswith(b"HTTP/1.1 101"), reply
    return sock


def test_a_side_that_stops_reading_is_cut_off(localiot_server, tunnels):
    from localiot.tunneling import relay_for

    relay = relay_for(localiot_server.app.runtime)
    opened = open_tunnel(tunnels)
    port = int(localiot_server.endpoint.rsplit(":", 1)[1])
    sleeper = raw_websocket(port, opened["destinationAccessToken"], "destination")
    localiot_server.call(setattr, relay, "send_timeout", 0.5)
    try:
        async def scenario():
            async with aiohttp.ClientSession() as session:
                src = await connect(localiot_server.endpoint, opened["sourceAccessToken"], "source",
                                    session=session)
                await receive_frames(src)
                await src.send_bytes(frame(T.STREAM_START, 1, "SSH", 1))

                async def flood():
                    chunk = frame(T.DATA, 1, "SSH", 1, b"z" * 64000)
                    for _ in range(4000):  # far more than the socket buffers hold
                        await src.send_bytes(chunk)

                pusher = asyncio.create_task(flood())
                (reset,) = await receive_frames(src, timeout=20)
                assert (reset.type, reset.streamId) == (T.STREAM_RESET, 1)
                pusher.cancel()
                await src.close()

        asyncio.run(scenario())
        assert state(tunnels, opened["tunnelId"], "destination") == "DISCONNECTED"
    finally:
        localiot_server.call(setattr, relay, "send_timeout", 30.0)
        sleeper.close()
