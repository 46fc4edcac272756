"""The broker's plug points for security: who is connecting, and may they do this.

`authenticate(ConnectInfo) -> Identity | Refusal` (or an awaitable of one,
for custom authorizers that call out) decides a CONNECT; `authorize(identity,
action, resource) -> bool` is asked for iot:Connect, iot:Publish,
iot:RetainPublish, iot:Subscribe and iot:Receive with the resource ARNs AWS
IoT policies use. The certificate and policy engine plugs in here; until
then `allow_all()` gives every client the default account and region.

Which `$` topics a device may publish to is not decided here: the broker's
reserved-topic table (localiot.broker.reserved) is built from the doors, and
`Broker.admit` (localiot.broker.admission) asks both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from localiot.broker import codec

CONNECT = "iot:Connect"
PUBLISH = "iot:Publish"
RETAIN_PUBLISH = "iot:RetainPublish"
SUBSCRIBE = "iot:Subscribe"
RECEIVE = "iot:Receive"


@dataclass(slots=True)
class ConnectInfo:
    client_id: str
    username: str | None
    password: bytes | None
    peer_certificate: bytes | None  # DER, from the TLS transport (mutual TLS)
    listener: str  # the listener's name: "tcp", "tls", ...
    protocol_version: int  # 4 (3.1.1) or 5
    remote_address: str | None = None
    properties: dict = field(default_factory=dict)  # MQTT 5 CONNECT properties
    server_name: str | None = None  # TLS SNI, when known


@dataclass(slots=True)
class Identity:
    account: str
    region: str
    principal: str  # certificate id, IAM identity ...; principalIdentifier in lifecycle events
    thing_name: str | None = None
    policy: Any = None  # whatever the authorizer needs (the evaluated IoT policies)
    attributes: dict = field(default_factory=dict)


@dataclass(slots=True)
class Refusal:
    """A refused CONNECT: the MQTT 5 reason code (mapped to a 3.1.1 return code for v3 clients)."""

    reason_code: int = codec.NOT_AUTHORIZED
    message: str | None = None

    @property
    def v3_return_code(self) -> int:
        return {
            codec.UNSUPPORTED_PROTOCOL_VERSION: codec.V3_BAD_VERSION,
            codec.CLIENT_IDENTIFIER_NOT_VALID: codec.V3_ID_REJECTED,
            codec.SERVER_UNAVAILABLE: codec.V3_UNAVAILABLE,
            codec.SERVER_BUSY: codec.V3_UNAVAILABLE,
            codec.BAD_USERNAME_OR_PASSWORD: codec.V3_BAD_CREDENTIALS,
        }.get(self.reason_code, codec.V3_NOT_AUTHORIZED)


Authenticate = Callable[[ConnectInfo], Any]
Authorize = Callable[[Identity, str, str], bool]


def allow_all(account: str, region: str) -> tuple[Authenticate, Authorize]:
    """Development pair for the plain TCP listener: everyone is let in, as `account`/`region`."""

    def authenticate(info: ConnectInfo) -> Identity:
        return Identity(account, region, principal=info.username or "anonymous")

    def authorize(identity: Identity, action: str, resource: str) -> bool:
        return True

    authorize.allows_everything = True  # lets the broker skip the per-message calls
    return authenticate, authorize


def arn(identity: Identity, kind: str, name: str) -> str:
    """arn:aws:iot:{region}:{account}:{client|topic|topicfilter}/{name}"""
    return f"arn:aws:iot:{identity.region}:{identity.account}:{kind}/{name}"


def peer_certificate(transport) -> bytes | None:
    """The DER certificate the client presented over TLS, or None (plain TCP, none sent)."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    try:
        return ssl_object.getpeercert(binary_form=True)
    except Exception:
        return None
