"""The Fleet Hub application pages, served by localiot at each application's
applicationUrl (/fleethub/<applicationId>/):

    GET  /fleethub/<id>/                 the dashboard (static/index.html)
    GET  /fleethub/<id>/static/<file>    its script and style sheet
    GET  /fleethub/<id>/api/application  the application
    GET  /fleethub/<id>/api/search?q=&next=   a page of the fleet search
    GET  /fleethub/<id>/api/things/<name>     one device
    GET  /fleethub/<id>/api/jobs, /api/jobs/<jobId>; POST /api/jobs
    GET  /fleethub/<id>/events           live updates (server-sent events)

Only ACTIVE applications are served, each with its own account's and
region's fleet. Data comes from localiot's own API operations (calls.py)."""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

from localiot.fleethub_web import live, views
from localiot.fleethub_web.calls import Scope
from localiot.protocol.errors import DEFAULT_STATUS, ServiceError
from localiot.services.fleethub.model import ACTIVE, KIND, URL_PREFIX

STATIC = Path(__file__).resolve().parent / "static"
FILES = {p.name for p in STATIC.iterdir() if p.is_file()}


def _find(store, application_id: str) -> Scope | None:
    for account, region, _, doc in store.scan_all_scopes(KIND, {"applicationId": application_id}):
        if doc["applicationState"] == ACTIVE:
            return Scope(account, region, doc)
    return None


async def handle(app, request: web.BaseRequest) -> web.StreamResponse:
    """Answer one request under /fleethub/ (app: the running LocalIoT)."""
    rest = request.rel_url.path[len(URL_PREFIX):]
    application_id, slash, sub = rest.partition("/")
    scope = _find(app.store, application_id)
    if scope is None:
        return _page_error(404, "No active Fleet Hub application has this address.")
    if not slash:
        return web.Response(status=301, headers={"Location": f"{URL_PREFIX}{application_id}/"})
    try:
        return await _route(app, request, scope, sub)
    except ServiceError as error:
        return _json({"code": error.code, "message": error.message}, error.status or DEFAULT_STATUS.get(error.code, 400))


async def _route(app, request, scope: Scope, sub: str) -> web.StreamResponse:
    method = request.method
    if sub in ("", "index.html") and method == "GET":
        return _file("index.html")
    if sub.startswith("static/") and method == "GET":
        name = sub[len("static/"):]
        return _file(name) if name in FILES and name != "index.html" else _page_error(404, "No such file.")
    if sub == "events" and method == "GET":
        return await live.stream(request, app.bus, scope.account, scope.region)
    if not sub.startswith("api/"):
        return _page_error(404, "No such page.")
    what, _, arg = sub[len("api/"):].partition("/")
    arg = unquote(arg)
    if method == "GET" and what == "application" and not arg:
        return _json(views.application(app, scope))
    if method == "GET" and what == "search" and not arg:
        return _json(views.search(app, scope, dict(request.rel_url.query)))
    if method == "GET" and what == "things" and arg:
        return _json(views.thing(app, scope, arg))
    if method == "GET" and what == "jobs":
        return _json(views.job(app, scope, arg) if arg else views.jobs(app, scope))
    if method == "POST" and what == "jobs" and not arg:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return _json({"code": "InvalidRequestException", "message": "The body is not JSON."}, 400)
        return _json(views.create_job(app, scope, body if isinstance(body, dict) else {}), 201)
    return _json({"code": "NotFound", "message": f"No dashboard route {method} {sub}."}, 404)


def _file(name: str) -> web.Response:
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return web.Response(body=(STATIC / name).read_bytes(), content_type=content_type,
                        headers={"Cache-Control": "no-cache"})


def _json(document, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(document, default=_plain).encode(),
                        content_type="application/json")


def _plain(value):
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if hasattr(value, "timestamp"):
        return value.timestamp()
    return str(value)


def _page_error(status: int, message: str) -> web.Response:
    body = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Fleet Hub</title></head>"
            f"<body><main><h1>Fleet Hub</h1><p role=alert>{message}</p></main></body></html>")
    return web.Response(status=status, body=body.encode(), content_type="text/html")
