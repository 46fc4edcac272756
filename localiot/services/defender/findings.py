"""Audit findings: list (by task, check, resource, time range, suppressed or
not), describe, and their related resources."""

from __future__ import annotations

from localiot.protocol.errors import invalid, not_found
from localiot.services import operation
from localiot.services.common import paginate
from localiot.services.defender.audits import FINDING
from localiot.services.defender.suppressions import resource_key

FIELDS = ("findingId", "taskId", "checkName", "taskStartTime", "findingTime", "severity", "nonCompliantResource",
          "relatedResources", "reasonForNonCompliance", "reasonForNonComplianceCode", "isSuppressed")


def public(doc: dict) -> dict:
    return {k: doc[k] for k in FIELDS if doc.get(k) is not None}


def get(ctx, finding_id: str) -> dict:
    doc = ctx.tx.get(FINDING, finding_id)
    if doc is None:
        raise not_found(f"Audit finding {finding_id} does not exist.")
    return doc


@operation("iot")
def ListAuditFindings(ctx, req):
    by_time = req.get("startTime") is not None or req.get("endTime") is not None
    if req.get("taskId") and by_time:
        raise invalid("Specify either taskId or startTime and endTime, not both.")
    if by_time and (req.get("startTime") is None or req.get("endTime") is None):
        raise invalid("startTime and endTime must be specified together.")
    tx = ctx.tx
    if req.get("taskId"):
        rows = tx.find(FINDING, "task", req["taskId"])
    elif req.get("resourceIdentifier"):
        rows = tx.find(FINDING, "resource", resource_key(req["resourceIdentifier"]))
    elif req.get("checkName"):
        rows = tx.find(FINDING, "check", req["checkName"])
    else:
        rows = tx.scan(FINDING)
    wanted = resource_key(req["resourceIdentifier"]) if req.get("resourceIdentifier") else None
    docs = [d for _, d in rows
            if (not req.get("checkName") or d["checkName"] == req["checkName"])
            and (wanted is None or resource_key(d["nonCompliantResource"]["resourceIdentifier"]) == wanted)
            and (not req.get("taskId") or d["taskId"] == req["taskId"])
            and (not by_time or req["startTime"] <= d["findingTime"] <= req["endTime"])
            and (req.get("listSuppressedFindings") is None or d["isSuppressed"] == req["listSuppressedFindings"])]
    docs.sort(key=lambda d: (d["findingTime"], d["findingId"]))
    found, extra = paginate(ctx, req, docs, key=lambda d: (d["findingTime"], d["findingId"]))
    return {"findings": [public(d) for d in found], **extra}


@operation("iot")
def DescribeAuditFinding(ctx, req):
    return {"finding": public(get(ctx, req["findingId"]))}


@operation("iot")
def ListRelatedResourcesForAuditFinding(ctx, req):
    related = list(enumerate(get(ctx, req["findingId"]).get("relatedResources") or []))
    found, extra = paginate(ctx, req, related, key=lambda row: row[0])
    return {"relatedResources": [r for _, r in found], **extra}
