"""The relay: local proxies of one tunnel meet here and their frames pass
between them (protocol guides V2/V3: aws.iot.securetunneling-1.0/2.0/3.0).

`Relay.handle(request)` takes an aiohttp request for `GET /tunnel`, whatever
carried it (the API port's plain HTTP, or a TLS listener), and returns the
response: a refusal (4xx with a `channel-id` header) or the WebSocket after
the session ended. One session:

1. handshake checks (handshake.py), the token's admission (the tunnel family's
   `access.admit`: marks the side CONNECTED), the 101 with the subprotocol;
2. a newer connection with the same token and client token replaces an older
   one (the other side gets STREAM_RESET for the active streams);
3. SERVICE_IDS with the tunnel's services (protocol 2 and 3);
4. frames from this side are checked (pipe.py; stream messages by a field
   scanner that steps over the payload, frames.py) and passed to the other side
   as they came, batched into WebSocket messages of at most 131076 bytes, the
   messages of one turn of the loop in one write (Peer.send);
5. when it ends, the other side gets STREAM_RESET for the active streams and
   the side is DISCONNECTED.

Back-pressure: a side's frames are read only as fast as the other side takes
them (a forward waits while the other side's transport is above its
high-water mark), so nothing queues without bound; a side that takes nothing for `send_timeout` seconds is cut
off. Closing, expiring or rotating a tunnel's tokens closes the WebSockets
they admitted (code 1000 with the reason); pings are answered with pongs.
"""

from __future__ import annotations

import itertools
import logging
import uuid

from aiohttp import WSMsgType, web

from localiot.services.tunneling import access
from localiot.services.tunneling.access import Refused
from localiot.services.unit_of_work import run_off_loop
from localiot.tunneling import frames, handshake
from localiot.tunneling.frames import MAX_WS_MESSAGE, SERVICE_IDS, FrameError, FrameReader
from localiot.tunneling.pipe import DROP, Peer, Pipe

log = logging.getLogger("localiot.tunneling")

REASONS = {"closed": "Tunnel closed", "expired": "Tunnel expired", "rotated": "Access token rotated"}


def _refuse(refused: Refused, channel: str) -> web.Response:
    return web.Response(status=refused.status, text=refused.message, headers={"channel-id": channel})


class Relay:
    def __init__(self, runtime):
        self.runtime = runtime
        self.pipes: dict[tuple[str, str, str], Pipe] = {}
        self._order = itertools.count()
        self.send_timeout = 30.0  # seconds a side may take nothing before it is cut off
        access.listen(runtime, self.revoked)

    # the session ---------------------------------------------------------------
    async def handle(self, request) -> web.StreamResponse:
        channel = uuid.uuid4().hex
        ws = web.WebSocketResponse(protocols=handshake.PROTOCOLS, autoping=True, compress=False,
                                   max_msg_size=MAX_WS_MESSAGE, timeout=2.0)
        ws.headers["channel-id"] = channel
        try:
            hello = handshake.read(request)
            if not ws.can_prepare(request).ok:
                raise Refused(400, "Expected a WebSocket upgrade")
            admission = await run_off_loop(self.runtime, access.admit, self.runtime, hello.token, hello.mode,
                                           hello.client_token)
        except Refused as refused:
            return _refuse(refused, channel)
        try:
            await ws.prepare(request)
        except BaseException:
            await run_off_loop(self.runtime, access.left, self.runtime, admission)
            raise
        peer = Peer(ws, request.transport, request.protocol, hello.mode, handshake.version(ws.ws_protocol),
                    admission, channel)
        peer.order = next(self._order)  # upgrade order: a later connection of the client wins, whatever the workers
        if not await run_off_loop(self.runtime, access.still_valid, self.runtime, admission):  # closed or rotated
            await peer.close(1000, "Tunnel closed")
            return ws
        key = (admission.account, admission.region, admission.tunnel_id)
        pipe = self.pipes.setdefault(key, Pipe())
        if not await self._attach(pipe, peer):
            await peer.closer
            return ws
        try:
            await self._serve(pipe, peer)
        finally:
            await self._detach(key, pipe, peer)
            if peer.closer is not None:  # let the closing handshake finish before the connection ends
                await peer.closer
        return ws

    async def _attach(self, pipe: Pipe, peer: Peer) -> bool:
        """Make `peer` its pipe's side; False (and closed) when a later connection of the same
        client attached first (the validity checks before attaching run on workers with PostgreSQL)."""
        old = pipe.peers[peer.mode]
        if old is not None and old.order > peer.order:
            peer.close_soon(1000, "Replaced by a new connection")
            return False
        pipe.services = peer.admission.services
        pipe.peers[peer.mode] = peer
        if old is not None:  # the same client reconnected: the old connection and its streams end
            old.close_soon(1000, "Replaced by a new connection")
            other, resets = pipe.other(peer), pipe.reset_all()
            if other is not None and resets:
                await other.send(resets, self.send_timeout)
        if peer.version >= 2 and pipe.services:
            await peer.send(frames.message(SERVICE_IDS, services=pipe.services), self.send_timeout)
        return True

    async def _detach(self, key, pipe: Pipe, peer: Peer) -> None:
        peer.gone = True
        if pipe.peers[peer.mode] is not peer:
            return  # replaced: the new connection took over
        pipe.peers[peer.mode] = None
        if not any(pipe.peers.values()) and self.pipes.get(key) is pipe:
            del self.pipes[key]
        try:  # its side is DISCONNECTED (PostgreSQL: on a worker) before the other side hears of it
            await run_off_loop(self.runtime, access.left, self.runtime, peer.admission)
        finally:
            other, resets = pipe.other(peer), pipe.reset_all()
            if other is not None and resets:
                await other.send(resets, self.send_timeout)

    async def _serve(self, pipe: Pipe, peer: Peer) -> None:
        reader = FrameReader()
        while not peer.gone:
            msg = await peer.ws.receive()
            if msg.type == WSMsgType.BINARY:
                error = await self._relay(pipe, peer, reader, msg.data)
                if error is not None:
                    log.info("tunnel %s: closing the %s (%s)", peer.admission.tunnel_id, peer.mode, error)
                    await peer.close(error.code, str(error))
                    return
            elif msg.type == WSMsgType.TEXT:  # the protocol is binary only
                await peer.close(1003, "Text frames are not part of the protocol")
                return
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return

    async def _relay(self, pipe: Pipe, peer: Peer, reader: FrameReader, data: bytes) -> FrameError | None:
        """Check the frames in `data` and pass them on; the FrameError that ends the session, if any.
        Consecutive frames that pass go on as one slice of the bytes received (no copy when it is
        all of them), in WebSocket messages of at most MAX_WS_MESSAGE bytes."""
        runs, replies, error = [], [], None  # runs: [start, end) of frames to forward
        try:
            buffer, parsed = reader.feed(data)
            for start, end, msg in parsed:
                if pipe.check(peer, msg) == DROP:
                    continue
                if pipe.other(peer) is None:
                    reply = pipe.refusal(msg)
                    if reply:
                        replies.append(reply)
                    continue
                if runs and runs[-1][1] == start and end - runs[-1][0] <= MAX_WS_MESSAGE:
                    runs[-1][1] = end
                else:
                    runs.append([start, end])
        except FrameError as failure:
            error = failure
        if runs:
            view = memoryview(buffer)
            for start, end in runs:
                other = pipe.other(peer)
                if other is None:
                    break
                await other.send(buffer if (start, end) == (0, len(buffer)) else view[start:end],
                                 self.send_timeout)
        if replies:
            await peer.send(b"".join(replies), self.send_timeout)
        return error

    # the tunnel's lifecycle ------------------------------------------------------
    async def close_all(self, reason: str) -> None:
        """Close every connected side (a reset wiped the tunnels) and wait for the closes."""
        peers = [peer for pipe in list(self.pipes.values()) for peer in pipe.peers.values()
                 if peer is not None and not peer.gone]
        for peer in peers:
            peer.close_soon(1000, REASONS.get(reason, reason))
        for peer in peers:
            if peer.closer is not None:
                await peer.closer

    def revoked(self, account: str, region: str, tunnel_id: str, modes, reason: str) -> None:
        """A committed close, expiry or rotation: close the connections those tokens admitted."""
        pipe = self.pipes.get((account, region, tunnel_id))
        if pipe is None:
            return
        for mode in modes:
            peer = pipe.peers.get(mode)
            if peer is not None and not peer.gone:
                peer.close_soon(1000, REASONS.get(reason, reason))
