"""GetSuiteRunReport: a download URL, served by localiot on its API port, for
the report of a suite run.

AWS answers a presigned URL to a signed qualification report; localiot
answers http://<api host:port>/deviceadvisor/reports/<token>, valid for
REPORT_URL_SECONDS on the server's clock (the injectable one). The token is
kept as an "advisor-report" record of the run's account and region, so any
node sharing the store serves it. The report (a JSON document, served as an
attachment) lists every test case of the run with its group, test id,
status, start and end times, failure and warnings, plus the run's status,
device and pass/fail counts. It reflects the run when downloaded: a report of
a run still in progress says so.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

from localiot.config import endpoint_host
from localiot.services import operation
from localiot.services.deviceadvisor.model import RUN_KIND, SERVICE, get_run

REPORT_KIND = "advisor-report"
URL_PREFIX = "/deviceadvisor/reports/"
REPORT_URL_SECONDS = 3600


def report_url(runtime, token: str) -> str:
    """On the API listener: its address, or the configured endpoint host (--endpoint-host)
    with its port, or localhost when it listens on every address."""
    address = runtime.listeners.get("api") or f"{runtime.config.host}:{runtime.config.port}"
    host, _, port = address.rpartition(":")
    if (runtime.config.endpoint_host or "").strip() or host in ("0.0.0.0", "::", "[::]", ""):
        address = f"{endpoint_host(runtime.config)}:{port}"
    return f"http://{address}{URL_PREFIX}{token}"


@operation(SERVICE)
def GetSuiteRunReport(ctx, req):
    run = get_run(ctx, req["suiteDefinitionId"], req["suiteRunId"])
    now = ctx.now()
    for token, old in ctx.tx.find(REPORT_KIND, "run", run["suiteRunId"]):
        if old["expiresAt"] <= now:
            ctx.tx.delete(REPORT_KIND, token)
    token = secrets.token_urlsafe(32)
    ctx.tx.put(REPORT_KIND, token, {"suiteDefinitionId": run["suiteDefinitionId"], "suiteRunId": run["suiteRunId"],
                                    "expiresAt": now + REPORT_URL_SECONDS},
               {"token": token, "run": run["suiteRunId"]})
    return {"qualificationReportDownloadUrl": report_url(ctx.runtime, token)}


def _time(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, timezone.utc).isoformat().replace("+00:00", "Z")


def document(run: dict, now: float) -> dict:
    """The report of one run (its record as the engine left it)."""
    cases = run.get("_cases", {})
    rows = []
    for group in run["testResult"]["groups"]:
        for test in group["tests"]:
            case = cases.get(test["testCaseRunId"], {})
            rows.append({
                "group": group["groupName"],
                "groupId": group["groupId"],
                "name": test["testCaseDefinitionName"],
                "testCaseDefinitionId": test["testCaseDefinitionId"],
                "testId": case.get("testId"),
                "testCaseRunId": test["testCaseRunId"],
                "status": test["status"],
                "startTime": _time(test.get("startTime")),
                "endTime": _time(test.get("endTime")),
                "failure": test.get("failure"),
                "warnings": test.get("warnings"),
                "logUrl": test.get("logUrl"),
            })
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    suite, device = run.get("_suite", {}), run.get("_device", {})
    return {
        "report": "AWS IoT Core Device Advisor suite run report (localiot)",
        "generatedAt": _time(now),
        "suiteDefinitionId": run["suiteDefinitionId"],
        "suiteDefinitionName": suite.get("suiteDefinitionName"),
        "suiteDefinitionVersion": run["suiteDefinitionVersion"],
        "intendedForQualification": suite.get("intendedForQualification"),
        "suiteRunId": run["suiteRunId"],
        "suiteRunArn": run["suiteRunArn"],
        "device": {k: device.get(k) for k in ("thingArn", "certificateArn", "protocol")},
        "status": run["status"],
        "startTime": _time(run.get("startTime")),
        "endTime": _time(run.get("endTime")),
        "errorReason": run.get("errorReason"),
        "summary": {"total": len(rows), "byStatus": counts},
        "testCases": rows,
    }


def find_report(tx, token: str, now: float) -> tuple[int, dict]:
    """(HTTP status, body) for a download of `token` in the transaction's scope."""
    found = tx.get(REPORT_KIND, token)
    if found is None:
        return 404, {"message": "No report has this address."}
    if found["expiresAt"] <= now:
        return 403, {"message": "The report URL has expired; ask GetSuiteRunReport for a new one."}
    run = tx.get(RUN_KIND, found["suiteRunId"])
    if run is None:
        return 404, {"message": f"Suite run {found['suiteRunId']} no longer exists."}
    return 200, document(run, now)
