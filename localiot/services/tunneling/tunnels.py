"""The Secure Tunneling API: OpenTunnel, DescribeTunnel, ListTunnels,
CloseTunnel, RotateTunnelAccessToken, and tunnel expiry on the clock.

Opening a tunnel with a destination thing, or rotating its destination token,
sends the thing `$aws/things/{thing}/tunnels/notify` after the commit (the
broker delivers it to the thing's subscribed clients under their policies).
Closing, expiring or rotating tells the relay (through `access.revoked`) to
close the WebSockets whose token stopped working.
"""

from __future__ import annotations

from localiot.background import periodic
from localiot.protocol.errors import ServiceError, invalid
from localiot.services import operation
from localiot.services.common import new_id, page_list
from localiot.services.tunneling import access
from localiot.services.unit_of_work import unit_of_work
from localiot.services.tunneling.model import (DEFAULT_LIFETIME_MINUTES, DESTINATION, DISCONNECTED, KIND,
                                               MAX_OPEN_TUNNELS, MAX_SERVICES, MODES, OPEN, SOURCE, TUNNEL, close,
                                               new_grant, new_token, save, state)
from localiot.services.tunneling.tags import tags_in, tags_out, tag_tunnel

SERVICE = "iotsecuretunneling"
NOTIFY_TOPIC = "$aws/things/{thing}/tunnels/notify"


def _destination(req_config: dict | None) -> dict | None:
    if not req_config:
        return None
    services = req_config["services"]
    if len(services) > MAX_SERVICES:
        raise invalid(f"A tunnel can have at most {MAX_SERVICES} services.")
    if len(set(services)) != len(services):
        raise invalid("Service IDs in destinationConfig must be unique.")
    config = {"services": list(services)}
    if req_config.get("thingName"):
        config["thingName"] = req_config["thingName"]
    return config


def _notify(ctx, doc: dict, token: str) -> None:
    """Tell the destination thing its token, as AWS does, once the call committed."""
    config = doc.get("destinationConfig") or {}
    if config.get("thingName"):
        ctx.publish(NOTIFY_TOPIC.format(thing=config["thingName"]), {
            "clientAccessToken": token,
            "clientMode": DESTINATION,
            "region": ctx.region,
            "services": config.get("services", []),
        })


@operation(SERVICE)
def OpenTunnel(ctx, req):
    if ctx.tx.count(KIND, "status", OPEN) >= MAX_OPEN_TUNNELS:
        raise ServiceError("LimitExceededException",
                           f"The number of open tunnels has reached the limit of {MAX_OPEN_TUNNELS}.")
    tunnel_id, now = new_id(), ctx.now()
    minutes = (req.get("timeoutConfig") or {}).get("maxLifetimeTimeoutMinutes") or DEFAULT_LIFETIME_MINUTES
    tokens = {mode: new_token() for mode in MODES}
    doc = {
        "tunnelId": tunnel_id,
        "tunnelArn": TUNNEL.arn(ctx, tunnel_id),
        "status": OPEN,
        "timeoutConfig": {"maxLifetimeTimeoutMinutes": minutes},
        "createdAt": now,
        "lastUpdatedAt": now,
        "expiresAt": now + minutes * 60,
        "sourceConnectionState": {"status": DISCONNECTED, "lastUpdatedAt": now},
        "destinationConnectionState": {"status": DISCONNECTED, "lastUpdatedAt": now},
        "grants": {mode: new_grant(tokens[mode]) for mode in MODES},
    }
    if req.get("description"):
        doc["description"] = req["description"]
    destination = _destination(req.get("destinationConfig"))
    if destination:
        doc["destinationConfig"] = destination
    save(ctx, doc)
    if req.get("tags"):
        tag_tunnel(ctx, doc["tunnelArn"], tags_in(req["tags"]))
    _notify(ctx, doc, tokens[DESTINATION])
    return {"tunnelId": tunnel_id, "tunnelArn": doc["tunnelArn"],
            "sourceAccessToken": tokens[SOURCE], "destinationAccessToken": tokens[DESTINATION]}


@operation(SERVICE)
def DescribeTunnel(ctx, req):
    doc = TUNNEL.get(ctx, req["tunnelId"])
    tunnel = {key: doc[key] for key in ("tunnelId", "tunnelArn", "status", "description", "destinationConfig",
                                        "timeoutConfig", "createdAt", "lastUpdatedAt",
                                        "sourceConnectionState", "destinationConnectionState") if key in doc}
    tags = ctx.tx.get_tags(doc["tunnelArn"])
    if tags:
        tunnel["tags"] = tags_out(tags)
    return {"tunnel": tunnel}


def _url_token(token: str | None) -> str | None:
    # ListTunnels' nextToken pattern is [a-zA-Z0-9_=-]: the URL-safe alphabet.
    return token.replace("+", "-").replace("/", "_") if token else None


@operation(SERVICE)
def ListTunnels(ctx, req):
    thing = req.get("thingName")
    rows = [doc for _, doc in (ctx.tx.find(KIND, "thing", thing) if thing else TUNNEL.list(ctx))]
    rows.sort(key=lambda d: (d["createdAt"], d["tunnelId"]), reverse=True)  # newest first, as AWS lists them
    found, token = page_list(rows, req, lambda d: (d["createdAt"], d["tunnelId"]), descending=True)
    summaries = [{key: doc[key] for key in ("tunnelId", "tunnelArn", "status", "description", "createdAt",
                                            "lastUpdatedAt") if key in doc} for doc in found]
    out = {"tunnelSummaries": summaries}
    if token:
        out["nextToken"] = _url_token(token)
    return out


@operation(SERVICE)
def CloseTunnel(ctx, req):
    doc = TUNNEL.get(ctx, req["tunnelId"])
    if doc["status"] == OPEN:
        close(doc, ctx.now())
        save(ctx, doc)
        access.revoked(ctx, doc["tunnelId"], MODES, "closed")
    if req.get("delete"):
        TUNNEL.delete(ctx, doc["tunnelId"])
    return {}


@operation(SERVICE)
def RotateTunnelAccessToken(ctx, req):
    doc = TUNNEL.get(ctx, req["tunnelId"])
    mode = req["clientMode"]
    if mode == "SOURCE" and req.get("destinationConfig"):
        raise invalid("You can not use DestinationConfig with source clientMode.")
    if doc["status"] != OPEN:
        raise invalid(f"Tunnel {doc['tunnelId']} is closed.")
    modes = MODES if mode == "ALL" else (mode.lower(),)
    tokens = {m: new_token() for m in modes}
    for m, token in tokens.items():
        doc["grants"][m] = new_grant(token)
        if state(doc, m)["status"] != DISCONNECTED:  # the relay closes what the old token admitted
            doc[f"{m}ConnectionState"] = {"status": DISCONNECTED, "lastUpdatedAt": ctx.now()}
    destination = _destination(req.get("destinationConfig"))
    if destination:
        doc["destinationConfig"] = destination
    doc["lastUpdatedAt"] = ctx.now()
    save(ctx, doc)
    access.revoked(ctx, doc["tunnelId"], modes, "rotated")
    if DESTINATION in tokens:
        _notify(ctx, doc, tokens[DESTINATION])
    out = {"tunnelArn": doc["tunnelArn"]}
    if SOURCE in tokens:
        out["sourceAccessToken"] = tokens[SOURCE]
    if DESTINATION in tokens:
        out["destinationAccessToken"] = tokens[DESTINATION]
    return out


@periodic("tunneling-expiry")
def expire_tunnels(store, runtime):
    """Close every open tunnel whose lifetime ended on the (injectable) clock."""
    now = runtime.clock.now()
    for account, region, name, doc in store.scan_all_scopes(KIND, {"status": OPEN}):
        if doc["expiresAt"] > now:
            continue
        with unit_of_work(runtime, account, region, SERVICE, "ExpireTunnel") as ctx:
            doc = TUNNEL.find(ctx, name)
            if doc is None or doc["status"] != OPEN:
                continue
            close(doc, doc["expiresAt"])
            save(ctx, doc)
            access.revoked(ctx, name, MODES, "expired")
