"""The Fleet Hub application pages, served by localiot at each application's
applicationUrl (/fleethub/<applicationId>/):

    GET  /fleethub/<id>/                 the dashboard (static/index.html)
    GET  /fleethub/<id>/static/<file>    its script and style sheet
    GET  /fleethub/<id>/api/application  the application
    GET  /fleethub/<id>/api/search?q=&next=   a page of the fleet search
    GET  /fleethub/<id>/api/things/<name>     one device
    GET  /fleethub/<id>/api/jobs, /api/jobs/<jobId>; POST /api/jobs
    GET  /fleethub/<id>/api/alarms       Device Defender violations and fleet metric values
    GET  /fleethub/<id>/events           live updates (server-sent events)
    GET  /fleethub/<id>/things/<name>/messages  a device's MQTT messages while watched (server-sent events)
    GET  /fleethub/<id>/signin?X-Amz-... sign in with a presigned URL (strict signatures, signin.py)

Only ACTIVE applications are served, each with its own account's and
region's fleet. Data comes from localiot's own API operations (calls.py),
run on a worker thread with PostgreSQL (the loop never waits on the database).
With strict signatures every route but /signin needs the session cookie
/signin gives. The same pages are served over https on the TLS (ALPN) port."""

from __future__ import annotations

import html
import json
import mimetypes
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

from localiot.fleethub_web import live, signin, views
from localiot.fleethub_web.calls import Scope
from localiot.protocol.errors import DEFAULT_STATUS, ServiceError
from localiot.services.fleethub.model import ACTIVE, KIND, URL_PREFIX
from localiot.services.unit_of_work import run_off_loop

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
    scope = await run_off_loop(app.runtime, _find, app.store, application_id)  # PostgreSQL: on a worker
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
    application_id = scope.application["applicationId"]
    if sub == "signin" and method == "GET":
        return _signed_in(app, request, scope)
    if app.config.strict_signatures and not signin.session_ok(app.config, scope, request.cookies.get(signin.COOKIE),
                                                              app.clock.now()):
        if sub in ("", "index.html"):
            return _page_error(401, "Sign in first: open a presigned sign-in URL of this application "
                                    f"(localiot fleethub-signin-url {application_id}).")
        return _json({"code": "UnauthorizedException", "message": "Sign in to this Fleet Hub application first."}, 401)
    if sub in ("", "index.html") and method == "GET":
        return _file("index.html")
    if sub.startswith("static/") and method == "GET":
        name = sub[len("static/"):]
        return _file(name) if name in FILES and name != "index.html" else _page_error(404, "No such file.")
    if sub == "events" and method == "GET":
        return await live.stream(request, app.bus, scope.account, scope.region)
    if sub.startswith("things/") and sub.endswith("/messages") and method == "GET":
        thing = unquote(sub[len("things/"):-len("/messages")])
        if getattr(app.runtime, "broker", None) is None:
            return _json({"code": "NotFound", "message": "This server runs no MQTT broker."}, 404)
        return await live.messages(request, app.runtime.broker, app.clock, scope.account, scope.region, thing)
    if not sub.startswith("api/"):
        return _page_error(404, "No such page.")
    what, _, arg = sub[len("api/"):].partition("/")
    arg = unquote(arg)
    if method == "GET" and what == "application" and not arg:
        return _json(await run_off_loop(app.runtime, views.application, app, scope))
    if method == "GET" and what == "search" and not arg:
        return _json(await run_off_loop(app.runtime, views.search, app, scope, dict(request.rel_url.query)))
    if method == "GET" and what == "alarms" and not arg:
        return _json(await run_off_loop(app.runtime, views.alarms, app, scope))
    if method == "GET" and what == "things" and arg:
        return _json(await run_off_loop(app.runtime, views.thing, app, scope, arg))
    if method == "GET" and what == "jobs":
        return _json(await (run_off_loop(app.runtime, views.job, app, scope, arg) if arg
                                 else run_off_loop(app.runtime, views.jobs, app, scope)))
    if method == "POST" and what == "jobs" and not arg:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return _json({"code": "InvalidRequestException", "message": "The body is not JSON."}, 400)
        body = body if isinstance(body, dict) else {}
        return _json(await run_off_loop(app.runtime, views.create_job, app, scope, body), 201)
    return _json({"code": "NotFound", "message": f"No dashboard route {method} {sub}."}, 404)


def _signed_in(app, request, scope: Scope) -> web.Response:
    """/signin: a presigned URL becomes this application's session cookie (strict signatures)."""
    home = f"{URL_PREFIX}{scope.application['applicationId']}/"
    response = web.Response(status=303, headers={"Location": home})
    if not app.config.strict_signatures:
        return response  # development mode: nothing to sign in to
    try:
        access_key = signin.verify_signin(request, app.config, scope, app.clock.now())
    except ServiceError as error:
        return _page_error(error.status or 403, f"Sign-in refused: {error.message}")
    value, expiry = signin.session_cookie(app.config, scope.application["applicationId"], access_key, app.clock.now())
    response.set_cookie(signin.COOKIE, value, path=home, max_age=max(0, int(expiry - app.clock.now())),
                        httponly=True, samesite="Strict", secure=request.secure)
    return response


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
            f"<body><main><h1>Fleet Hub</h1><p role=alert id=page-error>{html.escape(message)}</p></main></body></html>")
    return web.Response(status=status, body=body.encode(), content_type="text/html")
