"""Live updates for the dashboard as server-sent events: every topic the bus
carries under $aws/things/ and $aws/events/ in the application's account and
region (a shadow changed, a device connected, a job moved). The page decides
what to reload. A stream ends after STREAM_SECONDS and the browser's
EventSource reconnects (the page reloads its view on each open), so an
open page never holds the server's shutdown."""

from __future__ import annotations

import asyncio
import json

from localiot.timeouts import within

from aiohttp import web

STREAM_SECONDS = 20
KEEPALIVE_SECONDS = 1  # also how soon a stream whose page went away ends
PREFIXES = ("$aws/things/", "$aws/events/")


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


def _gone(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _offer(queue: asyncio.Queue, topic: str) -> None:
    try:
        queue.put_nowait(topic)
    except asyncio.QueueFull:  # a page that stopped reading: it reloads its view when it reconnects
        pass
