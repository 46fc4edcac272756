"""GetEndpoint: where the device under test connects during a suite run.

AWS answers a host name (an account-level endpoint, or a device-level one for
a thing or certificate); localiot answers the host name DescribeEndpoint
answers (`localiot.config.endpoint_host`), host only as AWS does. The port is
the Device Advisor test listener's (`--device-advisor-port`, see localiot.advisor),
which serves whichever device has a run in progress. X509ClientCertificate
devices connect with their certificate; SignatureVersion4 ones over MQTT over
WebSocket on the same host and port (`wss://<endpoint>:<port>/mqtt`, the URL
presigned with SigV4 as for AWS IoT's wss endpoint): AWS answers a host name
for either method (the model's `endpoint` is a bare host of 45 to 75
characters), so the answer is the same host. The device role is not checked
against the credentials the device signs with (IAM roles are not modelled);
their account and region must be the run's (localiot.advisor.websocket).
"""

from __future__ import annotations

from localiot.config import endpoint_host
from localiot.protocol.errors import ServiceError
from localiot.services import operation
from localiot.services.deviceadvisor import devices
from localiot.services.deviceadvisor.model import SERVICE

X509, SIGV4 = "X509ClientCertificate", "SignatureVersion4"


def test_endpoint(ctx) -> str:
    return endpoint_host(ctx.config)


@operation(SERVICE)
def GetEndpoint(ctx, req):
    method = req.get("authenticationMethod") or X509
    if method == SIGV4 and not req.get("deviceRoleArn"):
        raise ServiceError("ValidationException", "deviceRoleArn is required when authenticationMethod is "
                                                  "SignatureVersion4.")
    devices.check_role(req.get("deviceRoleArn"))
    if req.get("thingArn") or req.get("certificateArn"):
        devices.resolve(ctx, req, missing="ResourceNotFoundException")
    return {"endpoint": test_endpoint(ctx)}
