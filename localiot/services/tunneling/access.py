"""What the relay (`localiot.tunneling`) asks of tunnels, and what tunnels tell it.

- `admit(runtime, token, mode, client_token)`: the handshake's decision. It
  finds the open tunnel holding the token, checks the mode, the lifetime and
  the client-token rules of the protocol guide (without a client token an
  access token works for one handshake; with one, the token is bound to it
  and only the same client token reconnects), marks that side CONNECTED and
  answers an `Admission`, or raises `Refused(status, message)`.
- `left(runtime, admission)`: that side is DISCONNECTED (unless the token was
  rotated or the tunnel closed meanwhile, which already said so).
- `listen(runtime, fn)`: fn(account, region, tunnel_id, modes, reason) is
  called after a unit of work closed, expired or rotated the tokens of
  `modes`; the relay closes those WebSockets. `revoked(ctx, ...)` is what the
  API calls inside its unit of work.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import Callable

from localiot.services.unit_of_work import read_only, unit_of_work
from localiot.services.tunneling.model import (CONNECTED, DISCONNECTED, KIND, MODES, OPEN, TUNNEL, save, state,
                                               token_hash)

SERVICE = "iotsecuretunneling"
CLIENT_TOKEN = re.compile(r"^[a-zA-Z0-9-]{32,128}$")

_LISTENERS: "weakref.WeakKeyDictionary[object, list[Callable]]" = weakref.WeakKeyDictionary()


class Refused(Exception):
    """A refused handshake: the HTTP status and the reason sent with it."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Admission:
    account: str
    region: str
    tunnel_id: str
    mode: str
    grant: str  # the token's hash: which token this connection came in with
    client_token: str | None
    services: tuple[str, ...]


def listen(runtime, fn: Callable) -> Callable[[], None]:
    _LISTENERS.setdefault(runtime, []).append(fn)
    return lambda: _LISTENERS.get(runtime, []).remove(fn)


def revoked(ctx, tunnel_id: str, modes, reason: str) -> None:
    """After this unit of work commits, the relay drops `modes`' connections to the tunnel."""
    modes = tuple(modes)

    def tell():
        for fn in list(_LISTENERS.get(ctx.runtime, ())):
            fn(ctx.account, ctx.region, tunnel_id, modes, reason)

    ctx.after_commit(tell)


def admit(runtime, token: str, mode: str, client_token: str | None) -> Admission:
    if mode not in MODES:
        raise Refused(400, "local-proxy-mode must be source or destination")
    if client_token is not None and not CLIENT_TOKEN.match(client_token):
        raise Refused(400, "client-token must match ^[a-zA-Z0-9-]{32,128}$")
    digest = token_hash(token)
    scopes = runtime.store.scopes_indexing(KIND, "token", digest)
    if not scopes:
        raise Refused(401, "Invalid access token")
    account, region = scopes[0]
    with unit_of_work(runtime, account, region, SERVICE, "ConnectTunnel") as ctx:
        found = ctx.tx.find(KIND, "token", digest)
        if not found:
            raise Refused(401, "Invalid access token")
        _, doc = found[0]
        token_mode = next(m for m in MODES if doc["grants"][m]["hash"] == digest)
        if token_mode != mode:
            raise Refused(400, "local-proxy-mode does not match the access token's mode")
        if doc["status"] != OPEN or doc["expiresAt"] <= ctx.now():
            raise Refused(401, "The tunnel is closed")
        grant = doc["grants"][mode]
        if grant["used"]:
            if grant["clientToken"] is None and state(doc, mode)["status"] == CONNECTED:
                raise Refused(409, "A client is already connected with this access token")
            if grant["clientToken"] is None:
                raise Refused(401, "The access token was already used; supply a client token to reconnect")
            if grant["clientToken"] != client_token:
                raise Refused(401, "The client token does not match the one bound to this access token")
        else:
            if client_token is not None:
                others = [n for n, _ in ctx.tx.find(KIND, "clientToken", client_token) if n != doc["tunnelId"]]
                if others:
                    raise Refused(400, "The client token is in use by another open tunnel")
            grant.update(used=True, clientToken=client_token)
        doc[f"{mode}ConnectionState"] = {"status": CONNECTED, "lastUpdatedAt": ctx.now()}
        save(ctx, doc)
        services = tuple((doc.get("destinationConfig") or {}).get("services", ()))
        return Admission(account, region, doc["tunnelId"], mode, digest, client_token, services)


def left(runtime, admission: Admission) -> None:
    """The connection that `admission` let in ended: its side is DISCONNECTED."""
    with unit_of_work(runtime, admission.account, admission.region, SERVICE, "DisconnectTunnel") as ctx:
        doc = TUNNEL.find(ctx, admission.tunnel_id)
        if doc is None or doc["status"] != OPEN or doc["grants"][admission.mode]["hash"] != admission.grant:
            return
        if state(doc, admission.mode)["status"] != DISCONNECTED:
            doc[f"{admission.mode}ConnectionState"] = {"status": DISCONNECTED, "lastUpdatedAt": ctx.now()}
            save(ctx, doc)


def still_valid(runtime, admission: Admission) -> bool:
    """Whether the tunnel is open and the admitted token not rotated (the relay asks
    once the WebSocket is up, in case a close or rotation came in between)."""
    with read_only(runtime, admission.account, admission.region, SERVICE, "DescribeTunnel") as ctx:
        doc = TUNNEL.find(ctx, admission.tunnel_id)
        return doc is not None and doc["status"] == OPEN and doc["grants"][admission.mode]["hash"] == admission.grant
