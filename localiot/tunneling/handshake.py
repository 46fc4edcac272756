"""The WebSocket handshake's checks, from the protocol guides: the path, the
`local-proxy-mode` parameter, exactly one access token (the `access-token`
header or the `awsiot-tunnel-token` cookie), at most one `client-token`, a
request of at most 4 KiB, and one of the Secure Tunneling subprotocols.
A failed check is a 400 answer; the token itself is judged by
`localiot.services.tunneling.access.admit`."""

from __future__ import annotations

from dataclasses import dataclass

from localiot.services.tunneling.access import Refused

PATH = "/tunnel"
PROTOCOLS = ("aws.iot.securetunneling-3.0", "aws.iot.securetunneling-2.0", "aws.iot.securetunneling-1.0")
MAX_REQUEST = 4096
TOKEN_COOKIE = "awsiot-tunnel-token"


@dataclass(frozen=True)
class Hello:
    mode: str
    token: str
    client_token: str | None


def _request_size(request) -> int:
    line = len(request.method) + len(request.raw_path) + len("  HTTP/1.1\r\n")
    return line + sum(len(k) + len(v) + 4 for k, v in request.raw_headers) + 2


def _cookie_tokens(request) -> list[str]:
    found = []
    for header in request.headers.getall("Cookie", []):
        for part in header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == TOKEN_COOKIE:
                found.append(value)
    return found


def read(request) -> Hello:
    """What the upgrade request asks for, or Refused(400, why)."""
    if request.rel_url.path != PATH:
        raise Refused(400, f"The path must be {PATH}")
    if _request_size(request) > MAX_REQUEST:
        raise Refused(400, "The handshake request exceeds 4096 bytes")
    modes = request.rel_url.query.getall("local-proxy-mode", [])
    if len(modes) != 1:
        raise Refused(400, "Exactly one local-proxy-mode parameter (source or destination) is required")
    tokens = request.headers.getall("access-token", []) + _cookie_tokens(request)
    if len(tokens) != 1 or not tokens[0]:
        raise Refused(400, "Exactly one access token (access-token header or awsiot-tunnel-token cookie) "
                           "is required")
    client_tokens = request.headers.getall("client-token", [])
    if len(client_tokens) > 1:
        raise Refused(400, "At most one client-token header is allowed")
    offered = [p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", []) for p in h.split(",")]
    if not any(p in PROTOCOLS for p in offered):
        raise Refused(400, "Sec-WebSocket-Protocol must offer " + " or ".join(PROTOCOLS))
    return Hello(modes[0], tokens[0], client_tokens[0] if client_tokens else None)


def version(protocol: str | None) -> int:
    """3, 2 or 1 for the negotiated subprotocol."""
    return int(protocol.rsplit("-", 1)[1].split(".")[0]) if protocol else 0
