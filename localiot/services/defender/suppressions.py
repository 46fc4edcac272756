"""Audit suppressions: a (check, resource) pair whose findings are marked
suppressed until the suppression expires on the clock (or never).

Kind "audit-suppression", name "<checkName>|<resource key>" (the resource key
is the resource identifier as canonical JSON), index "check".
"""

from __future__ import annotations

import json

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import operation
from localiot.services.common import paginate
from localiot.services.defender import catalog

KIND = "audit-suppression"


def resource_key(identifier: dict) -> str:
    return json.dumps(identifier, sort_keys=True, separators=(",", ":"), default=str)


def _name(check: str, identifier: dict) -> str:
    return f"{check}|{resource_key(identifier)}"


def _live(doc: dict, now: float) -> bool:
    return doc.get("suppressIndefinitely") or (doc.get("expirationDate") or 0) > now


def active_suppressions(ctx) -> set[tuple[str, str]]:
    now = ctx.now()
    return {(d["checkName"], resource_key(d["resourceIdentifier"])) for _, d in ctx.tx.scan(KIND) if _live(d, now)}


def _get(ctx, req) -> tuple[str, dict]:
    name = _name(req["checkName"], req["resourceIdentifier"])
    doc = ctx.tx.get(KIND, name)
    if doc is None or not _live(doc, ctx.now()):
        raise not_found(f"The suppression of {req['checkName']} for this resource does not exist.")
    return name, doc


def _term(ctx, req, doc: dict) -> None:
    expiration, forever = req.get("expirationDate"), req.get("suppressIndefinitely")
    if expiration is not None and forever:
        raise invalid("Specify either expirationDate or suppressIndefinitely, not both.")
    if expiration is not None:
        if expiration <= ctx.now():
            raise invalid("expirationDate must be in the future.")
        doc.update(expirationDate=expiration, suppressIndefinitely=False)
    elif forever is not None:
        doc["suppressIndefinitely"] = bool(forever)
        if forever:
            doc.pop("expirationDate", None)


@operation("iot")
def CreateAuditSuppression(ctx, req):
    catalog.check(req["checkName"])
    if req.get("expirationDate") is None and not req.get("suppressIndefinitely"):
        raise invalid("Specify expirationDate or set suppressIndefinitely.")
    name = _name(req["checkName"], req["resourceIdentifier"])
    existing = ctx.tx.get(KIND, name)
    if existing is not None and _live(existing, ctx.now()):
        raise ServiceError("ResourceAlreadyExistsException",
                           f"A suppression of {req['checkName']} for this resource already exists.")
    doc = {"checkName": req["checkName"], "resourceIdentifier": req["resourceIdentifier"],
           "suppressIndefinitely": False}
    if req.get("description"):
        doc["description"] = req["description"]
    _term(ctx, req, doc)
    ctx.tx.put(KIND, name, doc, {"check": req["checkName"]})
    return {}


@operation("iot")
def DescribeAuditSuppression(ctx, req):
    _, doc = _get(ctx, req)
    return dict(doc)


@operation("iot")
def UpdateAuditSuppression(ctx, req):
    name, doc = _get(ctx, req)
    _term(ctx, req, doc)
    if req.get("description") is not None:
        doc["description"] = req["description"]
    ctx.tx.put(KIND, name, doc, {"check": doc["checkName"]})
    return {}


@operation("iot")
def DeleteAuditSuppression(ctx, req):
    name, _ = _get(ctx, req)
    ctx.tx.delete(KIND, name)
    return {}


@operation("iot")
def ListAuditSuppressions(ctx, req):
    now = ctx.now()
    rows = ctx.tx.find(KIND, "check", req["checkName"]) if req.get("checkName") else ctx.tx.scan(KIND)
    wanted = resource_key(req["resourceIdentifier"]) if req.get("resourceIdentifier") else None
    rows = [(n, d) for n, d in rows if _live(d, now)
            and (wanted is None or resource_key(d["resourceIdentifier"]) == wanted)]
    descending = req.get("ascendingOrder") is False
    rows.sort(key=lambda row: row[0], reverse=descending)
    found, extra = paginate(ctx, req, rows, key=lambda row: row[0], descending=descending)
    return {"suppressions": [dict(d) for _, d in found], **extra}
