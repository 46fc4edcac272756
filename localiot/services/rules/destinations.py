"""Topic rule destinations: HTTP URLs confirmed by a handshake, and VPC destinations.

An HTTP destination starts IN_PROGRESS. Once the creating call has committed,
localiot POSTs AWS's confirmation message to the confirmation URL (off the
event loop); the owner confirms with the token it carries, by
ConfirmTopicRuleDestination (the message's enableUrl is that call) or by
UpdateTopicRuleDestination. Only ENABLED destinations let HTTP actions send.
A confirmation POST that cannot be delivered puts the destination in ERROR.

The token carries the destination's account and region, because AWS's
enableUrl is opened unsigned, in whatever scope the request lands in.

Follow-ups (the confirmation POST, a VPC destination becoming ENABLED) run
on the loop once the creating call has committed and answered, counted as
the engine's pending work so `engine.wait_idle()` covers them; the engine
is the one the runtime holds (`runtime.rules`).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from urllib.parse import quote, urlparse

from localiot.protocol.errors import ServiceError, invalid
from localiot.services import operation
from localiot.services.common import new_id, page
from localiot.services.rules.actions import ActionError, check_role_arn, http_send
from localiot.services.rules.documents import DESTINATION_KIND, changed, rules_using_destination
from localiot.services.unit_of_work import unit_of_work

log = logging.getLogger("localiot.rules")

KIND = DESTINATION_KIND
TOKEN_INDEX = "token"
URL_INDEX = "confirmationUrl"


# documents ----------------------------------------------------------------------
def get(ctx_or_tx, arn: str) -> dict:
    tx = getattr(ctx_or_tx, "tx", ctx_or_tx)
    doc = tx.get(KIND, arn)
    if doc is None:
        raise invalid(f"Topic rule destination {arn} does not exist.")
    return doc


def _save(ctx, doc: dict, tx=None) -> None:
    """Store the destination (through `tx`, another scope's view of ctx.tx, when given)."""
    tx = tx or ctx.tx
    tx.put(KIND, doc["arn"], doc, {TOKEN_INDEX: doc.get("token"), URL_INDEX: doc.get("confirmationUrl")})
    changed(ctx, tx.account, tx.region)


def by_url(tx, url: str) -> dict | None:
    rows = tx.find(KIND, URL_INDEX, url, limit=1)
    return rows[0][1] if rows else None


def _new_token(account: str, region: str, dest_id: str) -> str:
    raw = f"{account}:{region}:{dest_id}:{secrets.token_urlsafe(48)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _token_scope(token: str) -> tuple[str, str] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        account, region, _, _ = raw.split(":", 3)
    except (ValueError, UnicodeDecodeError):
        return None
    return account, region


def _check_url(url: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or "${" in url:
        raise invalid(f"The confirmation URL {url} is not a valid HTTP(S) URL.")


def create_http(ctx, url: str) -> dict:
    """A new HTTP destination, IN_PROGRESS; its confirmation goes out once the call commits."""
    _check_url(url)
    if by_url(ctx.tx, url) is not None:
        raise ServiceError("ResourceAlreadyExistsException", f"A topic rule destination for {url} already exists.")
    dest_id = new_id()
    now = ctx.now()
    doc = {
        "arn": ctx.arn(f"ruledestination/http/{dest_id}"),
        "id": dest_id,
        "type": "http",
        "confirmationUrl": url,
        "status": "IN_PROGRESS",
        "statusReason": None,
        "createdAt": now,
        "lastUpdatedAt": now,
    }
    _challenge(ctx, doc)
    return doc


def _challenge(ctx, doc: dict) -> None:
    """A fresh token and a confirmation message, sent after the transaction commits."""
    doc["token"] = _new_token(ctx.account, ctx.region, doc["id"])
    doc["status"] = "IN_PROGRESS"
    doc["statusReason"] = f"Awaiting confirmation. A confirmation message is being sent to {doc['confirmationUrl']}."
    doc["lastUpdatedAt"] = ctx.now()
    _save(ctx, doc)
    _follow_up(ctx, _send_confirmation, ctx.account, ctx.region, doc["arn"], doc["token"], doc["confirmationUrl"])


def _follow_up(ctx, fn, *args) -> None:
    """`fn(engine, *args)` on the loop once the unit of work committed (never if it
    rolled back), after the API call answered; pending work of the engine until done."""
    runtime = ctx.runtime

    def schedule():
        engine = runtime.rules
        if engine is None:
            log.warning("no rules engine is running: %s is not done", fn.__name__)
            return
        engine.on_loop(fn, engine, *args)

    ctx.after_commit(schedule)


def _current(engine, account, region, arn, token) -> dict | None:
    with engine.store.transaction(account, region, write=False) as tx:
        doc = tx.get(KIND, arn)
    return doc if doc is not None and doc.get("token") == token else None


def enable_url(runtime, token: str) -> str:
    api = runtime.listeners.get("api") or f"{runtime.config.host}:{runtime.config.port}"
    return f"http://{api}/confirmdestination/{quote(token, safe='')}"


def _send_confirmation(engine, account: str, region: str, arn: str, token: str, url: str) -> None:
    doc = _current(engine, account, region, arn, token)
    if doc is None or doc["status"] != "IN_PROGRESS":
        return  # deleted or re-challenged since
    message = {"arn": arn, "confirmationToken": token, "enableUrl": enable_url(engine.runtime, token),
               "messageType": "DestinationConfirmation"}
    target = url + ("&" if "?" in url else "?") + "confirmationToken=" + quote(token, safe="")
    headers = {"Content-Type": "application/json", "x-amz-rules-engine-message-type": "DestinationConfirmation",
               "x-amz-rules-engine-destination-arn": arn}
    body = json.dumps(message).encode()

    def post():
        try:
            http_send("POST", target, body, headers)
        except ActionError as error:
            log.warning("confirmation message for %s not delivered: %s", arn, error.message)
            engine.on_loop(_mark_error, engine, account, region, arn, token, error.message)

    engine.background(post)


def _mark_error(engine, account, region, arn, token, reason: str) -> None:
    with unit_of_work(engine.runtime, account, region, "iot", "TopicRuleDestinationConfirmationFailed") as ctx:
        doc = ctx.tx.get(KIND, arn)
        if doc is None or doc.get("token") != token or doc["status"] != "IN_PROGRESS":
            return
        doc.update(status="ERROR", statusReason=f"The confirmation message could not be delivered: {reason}",
                   lastUpdatedAt=ctx.now())
        _save(ctx, doc)


def _vpc_ready(engine, account: str, region: str, arn: str) -> None:
    """AWS creates the VPC's network interfaces, then enables the destination."""
    with unit_of_work(engine.runtime, account, region, "iot", "TopicRuleDestinationVpcReady") as ctx:
        doc = ctx.tx.get(KIND, arn)
        if doc is not None and doc["status"] == "IN_PROGRESS":
            doc.update(status="ENABLED", statusReason=None, lastUpdatedAt=ctx.now())
            _save(ctx, doc)


# views ------------------------------------------------------------------------
def _vpc_view(doc: dict) -> dict:
    vpc = doc["vpc"]
    return {"subnetIds": vpc["subnetIds"], "securityGroups": vpc.get("securityGroups"), "vpcId": vpc["vpcId"],
            "roleArn": vpc["roleArn"]}


def describe(doc: dict) -> dict:
    out = {"arn": doc["arn"], "status": doc["status"], "createdAt": doc["createdAt"],
           "lastUpdatedAt": doc["lastUpdatedAt"], "statusReason": doc.get("statusReason")}
    if doc["type"] == "http":
        out["httpUrlProperties"] = {"confirmationUrl": doc["confirmationUrl"]}
    else:
        out["vpcProperties"] = _vpc_view(doc)
    return out


def summary(doc: dict) -> dict:
    out = {"arn": doc["arn"], "status": doc["status"], "createdAt": doc["createdAt"],
           "lastUpdatedAt": doc["lastUpdatedAt"], "statusReason": doc.get("statusReason")}
    if doc["type"] == "http":
        out["httpUrlSummary"] = {"confirmationUrl": doc["confirmationUrl"]}
    else:
        out["vpcDestinationSummary"] = _vpc_view(doc)
    return out


# handlers ---------------------------------------------------------------------
@operation("iot")
def CreateTopicRuleDestination(ctx, req):
    config = req["destinationConfiguration"]
    http = config.get("httpUrlConfiguration")
    vpc = config.get("vpcConfiguration")
    if (http is None) == (vpc is None):
        raise invalid("Specify exactly one of httpUrlConfiguration and vpcConfiguration.")
    if http is not None:
        return {"topicRuleDestination": describe(create_http(ctx, http["confirmationUrl"]))}
    check_role_arn(vpc["roleArn"], "vpcConfiguration.roleArn")
    if not vpc.get("subnetIds"):
        raise invalid("vpcConfiguration.subnetIds must name at least one subnet.")
    if not vpc.get("vpcId"):
        raise invalid("vpcConfiguration.vpcId is required.")
    dest_id = new_id()
    now = ctx.now()
    doc = {
        "arn": ctx.arn(f"ruledestination/vpc/{dest_id}"),
        "id": dest_id,
        "type": "vpc",
        "vpc": {"subnetIds": list(vpc["subnetIds"]), "securityGroups": list(vpc.get("securityGroups") or []),
                "vpcId": vpc["vpcId"], "roleArn": vpc["roleArn"]},
        "status": "IN_PROGRESS",
        "statusReason": None,
        "createdAt": now,
        "lastUpdatedAt": now,
    }
    _save(ctx, doc)
    _follow_up(ctx, _vpc_ready, ctx.account, ctx.region, doc["arn"])
    return {"topicRuleDestination": describe(doc)}


@operation("iot")
def GetTopicRuleDestination(ctx, req):
    return {"topicRuleDestination": describe(get(ctx, req["arn"]))}


@operation("iot")
def ListTopicRuleDestinations(ctx, req):
    def fetch(after, limit):
        return ctx.tx.scan(KIND, after=after, limit=limit)

    rows, token = page(fetch, req, default_size=1000)
    return {"destinationSummaries": [summary(doc) for _, doc in rows], "nextToken": token}


# status -> statuses UpdateTopicRuleDestination may move it to
_HTTP_MOVES = {
    "IN_PROGRESS": {"IN_PROGRESS", "ENABLED"},
    "ENABLED": {"ENABLED", "DISABLED", "IN_PROGRESS"},
    "DISABLED": {"DISABLED", "ENABLED", "IN_PROGRESS"},
    "ERROR": {"IN_PROGRESS"},
}
_VPC_MOVES = {
    "IN_PROGRESS": set(),
    "ENABLED": {"ENABLED", "DISABLED"},
    "DISABLED": {"DISABLED", "ENABLED"},
    "ERROR": set(),
}


@operation("iot")
def UpdateTopicRuleDestination(ctx, req):
    doc = get(ctx, req["arn"])
    status = req["status"]
    moves = (_HTTP_MOVES if doc["type"] == "http" else _VPC_MOVES).get(doc["status"], set())
    if status not in moves:
        raise invalid(f"The topic rule destination {doc['arn']} can't go from {doc['status']} to {status}.")
    if status == "IN_PROGRESS":
        _challenge(ctx, doc)  # a new token and a new confirmation message
        return {}
    if status != doc["status"]:
        doc.update(status=status, statusReason=None, lastUpdatedAt=ctx.now())
        if status == "ENABLED":
            doc["token"] = None  # the outstanding challenge is answered
        _save(ctx, doc)
    return {}


@operation("iot")
def ConfirmTopicRuleDestination(ctx, req):
    token = req["confirmationToken"]
    scope = _token_scope(token)
    rows = ctx.tx.scope(*scope).find(KIND, TOKEN_INDEX, token, limit=1) if scope else []
    if not rows:
        raise invalid("The confirmation token is not valid.")
    tx = ctx.tx.scope(*scope)
    doc = rows[0][1]
    if doc["status"] != "IN_PROGRESS":
        raise invalid(f"The topic rule destination {doc['arn']} is not awaiting confirmation.")
    doc.update(status="ENABLED", statusReason=None, lastUpdatedAt=ctx.now(), token=None)
    _save(ctx, doc, tx)
    return {}


@operation("iot")
def DeleteTopicRuleDestination(ctx, req):
    doc = get(ctx, req["arn"])
    if doc["type"] == "vpc":
        users = rules_using_destination(ctx.tx, doc["arn"])
        if users:
            raise invalid(f"The topic rule destination {doc['arn']} is used by the rules {', '.join(users)}.")
    ctx.tx.delete(KIND, doc["arn"])
    changed(ctx)
    return {}
