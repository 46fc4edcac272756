"""The per-case logs of suite runs: kept in the store (kind "advisor-log",
by testCaseRunId) when a case ends, and served as text on the API port at
the case's logUrl: GET /_localiot/deviceadvisor/{account}/{region}/logs/{testCaseRunId}.
"""

from __future__ import annotations

import re

from localiot.config import endpoint_host
from localiot.services.unit_of_work import run_off_loop, unit_of_work

LOG = "advisor-log"
PREFIX = "/_localiot/deviceadvisor/"
_PATH = re.compile(r"^/_localiot/deviceadvisor/(\d{12})/([a-z0-9-]+)/logs/([0-9a-f-]{36})$")


def api_base(runtime) -> str:
    """The API listener's address, or the configured endpoint host (--endpoint-host) with its port,
    or localhost when it listens on every address (as the report URLs of GetSuiteRunReport)."""
    address = runtime.listeners.get("api") or f"{runtime.config.host}:{runtime.config.port}"
    host, _, port = address.rpartition(":")
    if (runtime.config.endpoint_host or "").strip() or host in ("0.0.0.0", "::", "[::]", ""):
        address = f"{endpoint_host(runtime.config)}:{port}"
    return f"http://{address}"


def log_url(runtime, account: str, region: str, case_run_id: str) -> str:
    return f"{api_base(runtime)}{PREFIX}{account}/{region}/logs/{case_run_id}"


def store(runtime, account: str, region: str, case_run_id: str, lines: list[str]) -> None:
    with unit_of_work(runtime, account, region, "iotdeviceadvisor", "DeviceAdvisorLog") as ctx:
        ctx.tx.put(LOG, case_run_id, {"lines": list(lines)})


def read(runtime, account: str, region: str, case_run_id: str) -> list[str] | None:
    with unit_of_work(runtime, account, region, "iotdeviceadvisor", "DeviceAdvisorLog", write=False) as ctx:
        doc = ctx.tx.get(LOG, case_run_id)
    return None if doc is None else doc["lines"]


async def serve(app, request, path: str):
    """The log of one test case run as text/plain, or 404."""
    from aiohttp import web

    found = _PATH.match(path)
    lines = None
    if found and request.method == "GET":  # read on a worker with PostgreSQL
        lines = await run_off_loop(app.runtime, read, app.runtime, *found.groups())
    if lines is None:
        return web.json_response({"message": f"No test case log at {path}."}, status=404)
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")
