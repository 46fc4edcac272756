"""The report downloads on the API port: GET /deviceadvisor/reports/<token>
(the URLs GetSuiteRunReport answers). The token names its account and region
through the store's index; the read is one read-only unit of work there."""

from __future__ import annotations

import json

from aiohttp import web

from localiot.services.deviceadvisor.model import SERVICE
from localiot.services.deviceadvisor.report import REPORT_KIND, URL_PREFIX, find_report
from localiot.services.unit_of_work import read_only, run_off_loop


def _json(status: int, body: dict, headers: dict | None = None) -> web.Response:
    return web.Response(status=status, body=json.dumps(body, indent=2).encode(), content_type="application/json",
                        headers=headers)


def _report(app, token: str):
    """(status, body) of the report at `token`, or None when no scope holds it."""
    scopes = app.store.scopes_indexing(REPORT_KIND, "token", token)
    if not scopes:
        return None
    account, region = scopes[0]
    with read_only(app.runtime, account, region, SERVICE, "GetSuiteRunReport") as ctx:
        return find_report(ctx.tx, token, ctx.now())


async def handle(app, request: web.BaseRequest) -> web.StreamResponse:
    """Answer one request under /deviceadvisor/reports/ (app: the running LocalIoT)."""
    if request.method not in ("GET", "HEAD"):
        return _json(405, {"message": f"{request.method} is not allowed here."})
    token = request.rel_url.path[len(URL_PREFIX):]
    found = await run_off_loop(app.runtime, _report, app, token) if token and "/" not in token else None
    if found is None:
        return _json(404, {"message": "No report has this address."})
    status, body = found
    headers = None
    if status == 200:
        headers = {"Content-Disposition": f'attachment; filename="device-advisor-report-{body["suiteRunId"]}.json"'}
    return _json(status, body, headers)
