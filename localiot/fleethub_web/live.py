"""Live updates for the dashboard as server-sent events: every topic the bus
carries under $aws/things/ and $aws/events/ in the application's account and
region (a shadow changed, a device connected, a job moved). The page decides
what to reload. A stream ends after STREAM_SECONDS and the browser's
EventSource reconnects (the page reloads its view on each open), so an
open page never holds the server's shutdown.

`messages` streams what one device (the MQTT client whose id is the thing's
name, as AWS IoT binds them) sends and is delivered while its page is open
(localiot.broker.watchers): nothing is recorded for devices nobody watches.
Only the messages of devices connected to this node are seen."""

from __future__ import annotations

import asyncio
import base64
import json

from aiohttp import web

from localiot.broker import watchers
from localiot.timeouts import within

STREAM_SECONDS = 20
KEEPALIVE_SECONDS = 1  # also how soon a stream whose page went away ends
PREFIXES = ("$aws/things/", "$aws/events/")
EXCERPT_BYTES = 1024  # of each payload shown on the device page


async def stream(request: web.BaseRequest, bus, account: str, region: str) -> web.StreamResponse:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)

    def heard(acct: str, reg: str, topic: str, payload: bytes) -> None:
        if acct == account and reg == region and topic.startswith(PREFIXES):
            loop.call_soon_threadsafe(_offer, queue, topic)

    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    unsubscribe = bus.subscribe(heard)
    try:
        await response.write(b"retry: 500\n\n")
        deadline = loop.time() + STREAM_SECONDS
        while (left := deadline - loop.time()) > 0 and not _gone(request):
            try:
                topic = await within(queue.get(), min(left, KEEPALIVE_SECONDS))
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(f"data: {json.dumps({'topic': topic})}\n\n".encode())
    except ConnectionResetError:  # the page went away
        pass
    finally:
        unsubscribe()
    return response


async def messages(request: web.BaseRequest, broker, clock, account: str, region: str,
                   thing: str) -> web.StreamResponse:
    """Server-sent events, one per MQTT message the thing sends or is delivered while the
    stream is open: {direction, topic, at, size, text | base64 (first EXCERPT_BYTES)}."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)

    def heard(direction: str, topic: str, payload: bytes) -> None:  # on the broker's loop
        _offer(queue, json.dumps(_excerpt(direction, topic, payload, clock.now())))

    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    stop = watchers.watch(broker, account, region, thing, heard)
    try:
        await response.write(b"retry: 500\n\n")
        deadline = loop.time() + STREAM_SECONDS
        while (left := deadline - loop.time()) > 0 and not _gone(request):
            try:
                event = await within(queue.get(), min(left, KEEPALIVE_SECONDS))
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(f"data: {event}\n\n".encode())
    except ConnectionResetError:
        pass
    finally:
        stop()
    return response


def _excerpt(direction: str, topic: str, payload: bytes, now: float) -> dict:
    head = payload[:EXCERPT_BYTES]
    out = {"direction": direction, "topic": topic, "at": now, "size": len(payload),
           "truncated": len(payload) > EXCERPT_BYTES}
    try:
        out["text"] = head.decode("utf-8")
    except UnicodeDecodeError:
        out["base64"] = base64.b64encode(head).decode()
    return out


def _gone(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _offer(queue: asyncio.Queue, topic: str) -> None:
    try:
        queue.put_nowait(topic)
    except asyncio.QueueFull:  # a page that stopped reading: it reloads its view when it reconnects
        pass
