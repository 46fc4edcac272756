"""What every part of device authentication shares: the kinds of identity,
the `Door` a connection came through, the refusal of an HTTP upgrade, and
reading a region or query parameters from what the transport saw."""

from __future__ import annotations

import re
from urllib.parse import unquote

CERTIFICATE, CUSTOM, SIGV4, OPEN = "certificate", "custom", "sigv4", "open"

_AWS_HOST = re.compile(r"\.iot\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?::\d+)?$")


class Door(str):
    """A listener's name, as ConnectInfo.listener carries it, with what the transport knew."""

    def __new__(cls, name: str, *, sni: str | None = None, alpn: str | None = None, http: dict | None = None,
                sigv4: tuple | None = None):
        door = super().__new__(cls, name)
        door.sni = sni  # TLS server name (SNI)
        door.alpn = alpn  # negotiated ALPN protocol
        door.http = http  # WebSocket upgrade: {"headers": {...}, "queryString": "...", "host": "..."}
        door.sigv4 = sigv4  # (account, region, access key id) of a verified presigned URL
        return door


class AuthFailure(Exception):
    """A request refused before MQTT starts (a WebSocket upgrade): HTTP status and message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def region_in(*names: str | None) -> str | None:
    """The region an AWS IoT endpoint host name (SNI or Host) names, if any."""
    for name in names:
        if name:
            m = _AWS_HOST.search(name.lower())
            if m:
                return m.group(1)
    return None


def query_pairs(text: str) -> list[tuple[str, str]]:
    """A query string's pairs, percent-decoded without turning '+' into a space
    (token signatures are base64)."""
    pairs = []
    for part in text.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs
