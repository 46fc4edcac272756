"""CreateApplication, DescribeApplication, UpdateApplication, DeleteApplication,
ListApplications, and the time-driven CREATING -> ACTIVE and DELETING -> gone.

An application is CREATING when CreateApplication answers and ACTIVE at the
next run of time-driven work (every LOCALIOT_BACKGROUND_PERIOD seconds, or
when a test moves the clock); DeleteApplication turns it DELETING and the next
run removes it. Fleet Hub needs fleet indexing: with thing indexing OFF,
CreateApplication is refused with InvalidRequestException and nothing is kept.
An account has at most APPLICATION_LIMIT applications per region (AWS's
Fleet Hub quota, 100); one more is refused with LimitExceededException (HTTP
410, as the API reference says). Each application gets its own ssoClientId,
the client id of its sign-in: the session cookies of localiot.fleethub_web.signin
are bound to the application they were issued for.
"""

from __future__ import annotations

import secrets

from localiot.background import periodic
from localiot.protocol.errors import ServiceError, invalid
from localiot.services import operation
from localiot.services.common import new_id, paginate
from localiot.services.fleethub.model import (ACTIVE, APPLICATION, CREATING, DELETING, KIND, ROLE_PREFIX, SERVICE,
                                              application_url)
from localiot.services.in_process import call_within
from localiot.services.unit_of_work import unit_of_work

_SUMMARY = ("applicationId", "applicationName", "applicationDescription", "applicationCreationDate",
            "applicationLastUpdateDate", "applicationState")
_DESCRIBED = _SUMMARY + ("applicationArn", "roleArn", "ssoClientId", "errorMessage")
TOKEN_KEY = "clientToken"
APPLICATION_LIMIT = 100


def _fleet_indexing_on(ctx) -> bool:
    # Through the iot operation, so Fleet Hub needs no import of the indexing family.
    config = call_within(ctx, "iot", "GetIndexingConfiguration", {})
    return config["thingIndexingConfiguration"].get("thingIndexingMode", "OFF") != "OFF"


def _check_role(role_arn: str) -> None:
    parts = role_arn.split(":", 5)
    role = parts[5] if len(parts) == 6 else ""
    if parts[:3] != ["arn", "aws", "iam"] or not role.startswith("role/"):
        raise invalid(f"The role ARN {role_arn} is not the ARN of an IAM role.")
    if not role.rsplit("/", 1)[-1].startswith(ROLE_PREFIX):
        raise invalid(f"The name of the role {role_arn} must be in the form {ROLE_PREFIX}random_string.")


def _sso_client_id() -> str:
    """An OIDC-style client id (IAM Identity Center's are 22+ URL-safe characters)."""
    return secrets.token_urlsafe(16).replace("-", "A").replace("_", "z")


def _request_of(req: dict) -> dict:
    return {k: req.get(k) for k in ("applicationName", "applicationDescription", "roleArn", "tags")}


@operation(SERVICE)
def CreateApplication(ctx, req):
    token = req.get(TOKEN_KEY)
    if token:
        for _, doc in ctx.tx.find(KIND, TOKEN_KEY, token):
            if doc["request"] != _request_of(req):
                raise invalid(f"The client token {token} was already used with different parameters.")
            return {"applicationId": doc["applicationId"], "applicationArn": doc["applicationArn"]}
    _check_role(req["roleArn"])
    if not _fleet_indexing_on(ctx):
        raise invalid("Fleet Hub requires fleet indexing: turn on thing indexing "
                      "(UpdateIndexingConfiguration) before you create an application.")
    if len(APPLICATION.list(ctx)) >= APPLICATION_LIMIT:
        raise ServiceError("LimitExceededException",
                           f"A limit has been exceeded: an account can have {APPLICATION_LIMIT} Fleet Hub "
                           f"applications in {ctx.region}.", status=410)
    app_id, now = new_id(), ctx.now()
    doc = {
        "applicationId": app_id,
        "applicationArn": APPLICATION.arn(ctx, app_id),
        "applicationName": req["applicationName"],
        "applicationDescription": req.get("applicationDescription"),
        "roleArn": req["roleArn"],
        "applicationState": CREATING,
        "applicationCreationDate": now,
        "applicationLastUpdateDate": now,
        "ssoClientId": _sso_client_id(),
        "errorMessage": None,
        "request": _request_of(req),
    }
    APPLICATION.create(ctx, app_id, doc, req.get("tags") or {}, index={TOKEN_KEY: token} if token else None)
    return {"applicationId": app_id, "applicationArn": doc["applicationArn"]}


def _view(ctx, doc: dict, keys) -> dict:
    out = {k: doc[k] for k in keys if doc.get(k) is not None}
    out["applicationUrl"] = application_url(ctx.runtime, doc["applicationId"])
    return out


@operation(SERVICE)
def DescribeApplication(ctx, req):
    doc = APPLICATION.get(ctx, req["applicationId"])
    out = _view(ctx, doc, _DESCRIBED)
    out["tags"] = ctx.tx.get_tags(doc["applicationArn"])
    return out


@operation(SERVICE)
def UpdateApplication(ctx, req):
    doc = APPLICATION.get(ctx, req["applicationId"])
    if doc["applicationState"] != ACTIVE:
        raise ServiceError("ConflictException",
                           f"The application {doc['applicationId']} is {doc['applicationState']}: "
                           "only an ACTIVE application can be updated.")
    changed = False
    for key in ("applicationName", "applicationDescription"):
        if req.get(key) is not None and req[key] != doc.get(key):
            doc[key], changed = req[key], True
    if changed:
        doc["applicationLastUpdateDate"] = ctx.now()
        APPLICATION.put(ctx, doc["applicationId"], doc)
    return {}


@operation(SERVICE)
def DeleteApplication(ctx, req):
    doc = APPLICATION.get(ctx, req["applicationId"])
    if doc["applicationState"] != DELETING:
        doc["applicationState"] = DELETING
        doc["applicationLastUpdateDate"] = ctx.now()
        APPLICATION.put(ctx, doc["applicationId"], doc)  # keeps the client-token index until it is gone
    return {}


@operation(SERVICE)
def ListApplications(ctx, req):
    docs = sorted((doc for _, doc in APPLICATION.list(ctx)),
                  key=lambda d: (d["applicationCreationDate"], d["applicationId"]))
    found, extra = paginate(ctx, req, docs, key=lambda d: (d["applicationCreationDate"], d["applicationId"]))
    return {"applicationSummaries": [_view(ctx, d, _SUMMARY) for d in found], **extra}


@periodic("fleethub-applications")
def settle_applications(store, runtime):
    """CREATING applications become ACTIVE; DELETING ones go, with their tags."""
    for state in (CREATING, DELETING):
        for account, region, app_id, _ in store.scan_all_scopes(KIND, {"applicationState": state}):
            with unit_of_work(runtime, account, region, SERVICE, "SettleApplication") as ctx:
                doc = APPLICATION.find(ctx, app_id)
                if doc is None or doc["applicationState"] != state:
                    continue
                if state == CREATING:
                    doc["applicationState"] = ACTIVE
                    doc["applicationLastUpdateDate"] = ctx.now()
                    APPLICATION.put(ctx, app_id, doc)
                else:
                    APPLICATION.delete(ctx, app_id)
