"""What the HTTP side of the ALPN port shares: answers shaped like the AWS IoT
data endpoint's, and the request details custom authorizers are given."""

from __future__ import annotations

import json
import uuid

from aiohttp import web


def reply(status: int, message: str) -> web.Response:
    """An answer shaped like the AWS IoT data endpoint's: {"message", "traceId"}."""
    body = json.dumps({"message": message, "traceId": str(uuid.uuid4())}).encode()
    return web.Response(status=status, body=body, content_type="application/json")


def http_context(request: web.BaseRequest) -> dict:
    """The request as a custom authorizer sees it: headers, query string, host."""
    return {"headers": dict(request.headers), "queryString": request.rel_url.raw_query_string,
            "host": request.host}
