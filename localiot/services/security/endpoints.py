"""DescribeEndpoint: where a device or SDK reaches this localiot.

AWS answers with a host name (identifier.iot.region.amazonaws.com). localiot
answers with the "host:port" of its own listener for that endpoint type:

- the entry for the type in `runtime.listeners` (a dict listeners fill in as
  they start, e.g. {"iot:Data-ATS": "127.0.0.1:8883"}); iot:Data (the legacy
  VeriSign endpoint, and the answer when no endpointType is given) uses the
  iot:Data-ATS listener when it has no entry of its own;
- otherwise the HTTP API listener: `runtime.listeners["api"]` when the server
  registered it, else `config.host:config.port` (which is the bound port
  unless the server was started on port 0).

A wildcard bind address (0.0.0.0, ::, empty) is reported as "localhost".
The endpoint types are matched case-insensitively and answered under their
canonical spelling; any other type is an InvalidRequestException.
"""

from __future__ import annotations

from localiot.protocol.errors import invalid
from localiot.services import operation

ENDPOINT_TYPES = ("iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs")
_CANONICAL = {t.lower(): t for t in ENDPOINT_TYPES}
_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def canonical_type(endpoint_type: str | None) -> str:
    if endpoint_type is None:
        return "iot:Data"
    found = _CANONICAL.get(endpoint_type.strip().lower())
    if found is None:
        raise invalid(
            f"Endpoint type {endpoint_type} is not valid; valid types are {', '.join(ENDPOINT_TYPES)}."
        )
    return found


def _address(host: str, port) -> str:
    if host in _WILDCARDS:
        host = "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"{host}:{port}"


def endpoint_address(runtime, endpoint_type: str | None) -> str:
    kind = canonical_type(endpoint_type)
    listeners = getattr(runtime, "listeners", None) or {}
    address = listeners.get(kind)
    if address is None and kind == "iot:Data":
        address = listeners.get("iot:Data-ATS")
    if address is None:
        address = listeners.get("api")
    if address is None:
        return _address(runtime.config.host, runtime.config.port)
    host, sep, port = address.rpartition(":")
    return _address(host.strip("[]") if host.startswith("[") else host, port) if sep else address


@operation("iot")
def DescribeEndpoint(ctx, req):
    return {"endpointAddress": endpoint_address(ctx.runtime, req.get("endpointType"))}
