"""The aiohttp server in front of the engine, for requests that never reach it.

A header over aiohttp's 8 KB line limit, a request line that is not HTTP or
a body over the size limit are refused by aiohttp itself, which answers in
plain text and logs a traceback. Here they get the service's JSON error
format (x-amzn-ErrorType, {"message": ...}) and one log line.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from localiot.protocol.serializer import Reply

log = logging.getLogger("localiot.protocol")

# (status, error type, message, request headers) -> the reply the engine would give
Refuse = Callable[[int, str, str, object], Reply]

# AWS's error types for what the front end refuses (iot-data models the 413 one).
ERROR_TYPES = {413: "RequestEntityTooLargeException", 431: "InvalidRequestException", 400: "InvalidRequestException"}


def _response(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, body=reply.body, headers=reply.headers)


class _Handler(RequestHandler):
    refuse: Refuse

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: too late for another answer
            return super().handle_error(request, status, exc, message)
        if status >= 500:
            # Not the client's doing: keep the traceback, answer like AWS.
            self.log_exception("internal failure handling a request from %s", request.remote, exc_info=exc)
            reply = self.refuse(500, "InternalFailureException", "An internal error occurred.", request.headers)
        else:
            reason = message or getattr(exc, "message", None) or str(exc or "") or "Bad Request"
            reason = " ".join(reason.split())[:200]
            log.info("refused a malformed HTTP request from %s: %s", request.remote, reason)
            reply = self.refuse(status, ERROR_TYPES.get(status, "InvalidRequestException"),
                                f"Malformed HTTP request: {reason}", request.headers)
        response = _response(reply)
        response.force_close()
        return response


def too_large(request: web.BaseRequest, refuse: Refuse) -> web.Response:
    """The reply to a request whose body is over the size limit (aiohttp raises
    HTTPRequestEntityTooLarge while the handler reads it)."""
    log.info("refused a request body over %s bytes from %s", request.client_max_size, request.remote)
    return _response(refuse(413, "RequestEntityTooLargeException",
                            f"The request body exceeds the maximum size of {request.client_max_size} bytes",
                            request.headers))


class ApiServer(Server):
    """aiohttp's low-level Server whose refusals are AWS errors in JSON.

    `guards_itself`: the handler answers HTTPRequestEntityTooLarge with `too_large`
    itself (the API's: one coroutine less per request), so it is not wrapped."""

    def __init__(self, handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]], refuse: Refuse, *,
                 guards_itself: bool = False, **kwargs):
        async def guarded(request: web.BaseRequest) -> web.StreamResponse:
            try:
                return await handler(request)
            except web.HTTPRequestEntityTooLarge:
                return too_large(request, refuse)

        super().__init__(handler if guards_itself else guarded, **kwargs)
        self._refuse = refuse

    def __call__(self) -> RequestHandler:
        handler = _Handler(self, loop=self._loop, **self._kwargs)
        handler.refuse = self._refuse
        return handler
