"""DescribeEndpoint: where a device or SDK reaches this localiot.

AWS answers with a host name only (identifier.iot.region.amazonaws.com), and
every tutorial and SDK sample passes it on as is (`mosquitto_pub -h "$(aws iot
describe-endpoint ...)" -p 8883`, the Device SDKs' `endpoint`). localiot does
the same for every endpoint type: the answer is `localiot.config.endpoint_host(config)`:

- `--endpoint-host` / LOCALIOT_ENDPOINT_HOST when given (it is added to the
  broker's server certificate);
- otherwise "localhost" when the server listens on loopback or on every
  address (0.0.0.0, ::), else the listen host.

The port follows from the endpoint type, as on AWS: iot:Data-ATS and iot:Data
are MQTT over TLS (`--mqtt-tls-port`, 8883 like AWS) and the ALPN port
(`--mqtt-alpn-port`, AWS's 443); iot:CredentialProvider and iot:Jobs are
HTTPS on the ALPN port. `runtime.listeners` names each bound port.

The endpoint types are matched case-insensitively; any other type is an
InvalidRequestException.
"""

from __future__ import annotations

from localiot.config import endpoint_host
from localiot.protocol.errors import invalid
from localiot.services import operation

ENDPOINT_TYPES = ("iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs")
_CANONICAL = {t.lower(): t for t in ENDPOINT_TYPES}


def canonical_type(endpoint_type: str | None) -> str:
    if endpoint_type is None:
        return "iot:Data"
    found = _CANONICAL.get(endpoint_type.strip().lower())
    if found is None:
        raise invalid(
            f"Endpoint type {endpoint_type} is not valid; valid types are {', '.join(ENDPOINT_TYPES)}."
        )
    return found


def endpoint_address(runtime, endpoint_type: str | None) -> str:
    canonical_type(endpoint_type)
    return endpoint_host(runtime.config)


@operation("iot")
def DescribeEndpoint(ctx, req):
    return {"endpointAddress": endpoint_address(ctx.runtime, req.get("endpointType"))}
