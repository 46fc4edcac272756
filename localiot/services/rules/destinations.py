"""Topic rule destinations: HTTP URLs confirmed by a handshake, and VPC destinations.

An HTTP destination starts IN_PROGRESS. Once the creating call has committed,
localiot POSTs AWS's confirmation message to the confirmation URL (off the
event loop); the owner confirms with the token it carries, by
ConfirmTopicRuleDestination (the message's enableUrl is that call) or by
UpdateTopicRuleDestination. Only ENABLED destinations let HTTP actions send.
A confirmation POST that cannot be delivered puts the destination in ERROR.

The token carries the destination's account and region, because AWS's
enableUrl is opened unsigned, in whatever scope the request lands in.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import threading
from urllib.parse import quote, urlparse

from localiot.protocol.errors import ServiceError, invalid
from localiot.services import operation
from localiot.services.common import new_id, page

log = logging.getLogger("localiot.rules")

KIND = "ruledestination"
GENERATION_KIND = "rules-generation"
TOKEN_INDEX = "token"
URL_INDEX = "confirmationUrl"


# Scopes whose rules changed since an engine last compiled them: engines trust
# their in-memory compilation of every other scope, so a message costs no
# store read (a rolled-back change only causes one needless recompilation).
STALE: set[tuple[str, str]] = set()


def changed(tx) -> None:
    """Tell every engine that this scope's rules or destinations changed."""
    tx.put(GENERATION_KIND, "current", {"token": new_id()})
    STALE.add((tx.account, tx.region))


def generation(tx) -> str | None:
    doc = tx.get(GENERATION_KIND, "current")
    return doc["token"] if doc else None


# documents ----------------------------------------------------------------------
def get(ctx_or_tx, arn: str) -> dict:
    tx = getattr(ctx_or_tx, "tx", ctx_or_tx)
    doc = tx.get(KIND, arn)
    if doc is None:
        raise invalid(f"Topic rule destination {arn} does not exist.")
    return doc


def _save(tx, doc: dict) -> None:
    tx.put(KIND, doc["arn"], doc, {TOKEN_INDEX: doc.get("token"), URL_INDEX: doc.get("confirmationUrl")})
    changed(tx)


def by_url(tx, url: str) -> dict | None:
    rows = tx.find(KIND, URL_INDEX, url, limit=1)
    return rows[0][1] if rows else None


def enabled_urls(tx) -> tuple[str, ...]:
    return tuple(doc["confirmationUrl"] for _, doc in tx.scan(KIND)
                 if doc["type"] == "http" and doc["status"] == "ENABLED")


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
    _save(ctx.tx, doc)
    _after_commit(ctx, _send_confirmation, ctx.account, ctx.region, doc["arn"], doc["token"],
                  doc["confirmationUrl"])


def _after_commit(ctx, fn, *args) -> None:
    """Once the unit of work committed (never if it rolled back), schedule
    `fn(runtime, *args)` on the loop: it runs after the API call answered."""
    ctx.after_commit(lambda: _soon(ctx.runtime, fn, *args))


def _soon(runtime, fn, *args) -> None:
    engine = _engine(runtime)
    if engine is not None:
        engine.hold()  # counted from now, so wait_idle() covers it

    def run():
        try:
            fn(runtime, *args)
        except Exception:
            log.exception("rule destination follow-up failed")
        finally:
            if engine is not None:
                engine.release()

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        loop.call_soon(run)
    elif engine is not None:  # called off the loop: the store belongs to the loop's thread
        engine.loop.call_soon_threadsafe(run)
    else:
        threading.Timer(0.05, run).start()


def _engine(runtime):
    from localiot.services.rules.engine import engine_for

    return engine_for(runtime)


def _current(engine, account, region, arn, token) -> dict | None:
    with engine.store.transaction(account, region, write=False) as tx:
        doc = tx.get(KIND, arn)
    return doc if doc is not None and doc.get("token") == token else None


def enable_url(runtime, token: str) -> str:
    api = runtime.listeners.get("api") or f"{runtime.config.host}:{runtime.config.port}"
    return f"http://{api}/confirmdestination/{quote(token, safe='')}"


def _send_confirmation(runtime, account: str, region: str, arn: str, token: str, url: str) -> None:
    engine = _engine(runtime)
    if engine is not None:
        doc = _current(engine, account, region, arn, token)
        if doc is None or doc["status"] != "IN_PROGRESS":
            return  # rolled back, deleted or re-challenged since
    message = {"arn": arn, "confirmationToken": token, "enableUrl": enable_url(runtime, token),
               "messageType": "DestinationConfirmation"}
    target = url + ("&" if "?" in url else "?") + "confirmationToken=" + quote(token, safe="")
    headers = {"Content-Type": "application/json", "x-amz-rules-engine-message-type": "DestinationConfirmation",
               "x-amz-rules-engine-destination-arn": arn}
    body = json.dumps(message).encode()

    def post():
        from localiot.services.rules.actions import ActionError, http_send

        try:
            http_send("POST", target, body, headers)
        except ActionError as error:
            log.warning("confirmation message for %s not delivered: %s", arn, error.message)
            if engine is not None:
                engine.on_loop(_mark_error, engine, account, region, arn, token, error.message)

    if engine is not None:
        engine.background(post)
    else:  # no engine yet: still send, but nobody records a failure
        threading.Thread(target=post, name="localiot-rule-confirmation", daemon=True).start()


def _mark_error(engine, account, region, arn, token, reason: str) -> None:
    with engine.store.transaction(account, region) as tx:
        doc = tx.get(KIND, arn)
        if doc is None or doc.get("token") != token or doc["status"] != "IN_PROGRESS":
            return
        doc.update(status="ERROR", statusReason=f"The confirmation message could not be delivered: {reason}",
                   lastUpdatedAt=engine.runtime.clock.now())
        _save(tx, doc)


def _vpc_ready(runtime, account: str, region: str, arn: str) -> None:
    """AWS creates the VPC's network interfaces, then enables the destination."""
    engine = _engine(runtime)
    if engine is None:
        return
    with engine.store.transaction(account, region) as tx:
        doc = tx.get(KIND, arn)
        if doc is not None and doc["status"] == "IN_PROGRESS":
            doc.update(status="ENABLED", statusReason=None, lastUpdatedAt=engine.runtime.clock.now())
            _save(tx, doc)


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
    from localiot.services.rules.actions import check_role_arn

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
    _save(ctx.tx, doc)
    _after_commit(ctx, _vpc_ready, ctx.account, ctx.region, doc["arn"])
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
        _save(ctx.tx, doc)
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
    _save(tx, doc)
    return {}


@operation("iot")
def DeleteTopicRuleDestination(ctx, req):
    doc = get(ctx, req["arn"])
    if doc["type"] == "vpc":
        from localiot.services.rules.topic_rules import rules_using_destination

        users = rules_using_destination(ctx.tx, doc["arn"])
        if users:
            raise invalid(f"The topic rule destination {doc['arn']} is used by the rules {', '.join(users)}.")
    ctx.tx.delete(KIND, doc["arn"])
    changed(ctx.tx)
    return {}
