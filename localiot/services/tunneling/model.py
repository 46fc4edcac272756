"""The tunnel document: what OpenTunnel stores and every other part reads.

A tunnel is stored under its id with index entries for its destination thing
(ListTunnels' filter), its status, and the SHA-256 of each live access token
(so the relay finds a tunnel from the token a local proxy presents without the
store keeping the tokens themselves).
"""

from __future__ import annotations

import hashlib
import secrets

from localiot.services.common import Resource

TUNNEL = Resource(
    "tunnel", "tunnel/{name}",
    not_found="Tunnel {name} not found",
    arn_field="tunnelArn", id_field="tunnelId",
)
KIND = TUNNEL.kind
OPEN, CLOSED = "OPEN", "CLOSED"
CONNECTED, DISCONNECTED = "CONNECTED", "DISCONNECTED"
SOURCE, DESTINATION = "source", "destination"
MODES = (SOURCE, DESTINATION)
DEFAULT_LIFETIME_MINUTES = 720  # AWS's default and maximum (12 hours)
MAX_SERVICES = 3  # "up to 3 services" per tunnel
MAX_OPEN_TUNNELS = 900  # per account and region (AWS's quota)
MAX_TAGS = 200


def new_token() -> str:
    """An opaque client access token (AWS's are long base64url strings)."""
    return secrets.token_urlsafe(96)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_grant(token: str) -> dict:
    """What the document keeps of one mode's token: its hash, whether a handshake
    used it (without a client token it then stops working) and the client token
    it was bound to."""
    return {"hash": token_hash(token), "used": False, "clientToken": None}


def state(doc: dict, mode: str) -> dict:
    return doc[f"{mode}ConnectionState"]


def save(ctx, doc: dict) -> None:
    """Store the tunnel with its index entries (only an open tunnel's tokens are findable)."""
    thing = (doc.get("destinationConfig") or {}).get("thingName")
    live = doc["status"] == OPEN
    tokens = [doc["grants"][m]["hash"] for m in MODES] if live else None
    clients = [doc["grants"][m]["clientToken"] for m in MODES if live and doc["grants"][m]["clientToken"]]
    TUNNEL.put(ctx, doc["tunnelId"], doc,
               {"thing": thing, "status": doc["status"], "token": tokens, "clientToken": clients or None})


def close(doc: dict, now: float) -> None:
    """Mark the tunnel closed: no token opens it any more, both sides are disconnected."""
    doc["status"] = CLOSED
    doc["lastUpdatedAt"] = now
    for mode in MODES:
        if state(doc, mode)["status"] != DISCONNECTED:
            doc[f"{mode}ConnectionState"] = {"status": DISCONNECTED, "lastUpdatedAt": now}
