"""Devices under test (DeviceUnderTest): a thing ARN, a certificate ARN and a
device role ARN, checked against the registry of the caller's account and
region.

The registry's records are read by their store kinds ("thing", "cert" and
the "thing-principal" links), not through the registry's modules: families
do not import each other.
"""

from __future__ import annotations

import re

from localiot.protocol.errors import ServiceError

THING_KIND, CERT_KIND = "thing", "cert"
PRINCIPALS = "thing-principal"  # links: thing name -> principal ARN (the registry's)
_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


def _error(code: str, message: str) -> ServiceError:
    return ServiceError(code, message)


def _iot_resource(ctx, arn: str, resource_type: str, label: str, code: str) -> str:
    """The resource id of an AWS IoT ARN of the caller's scope, or an error."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iot" or not parts[5].startswith(f"{resource_type}/"):
        raise _error("ValidationException", f"Invalid {label} ARN: {arn}")
    _, _, _, region, account, resource = parts
    resource_id = resource.split("/", 1)[1]
    if not resource_id or "/" in resource_id:
        raise _error("ValidationException", f"Invalid {label} ARN: {arn}")
    if (region, account) != (ctx.region, ctx.account):
        raise _error(code, f"The {label} {arn} does not exist in this account and region.")
    return resource_id


def check_role(arn: str | None, label: str = "device role") -> None:
    if arn is not None and not _ROLE.match(arn):
        raise _error("ValidationException", f"Invalid {label} ARN: {arn}")


def resolve(ctx, device: dict, *, missing: str = "ValidationException", need_identity: bool = True) -> dict:
    """The device with what the registry says of it:
    {thingName, thingArn, certificateId, certificateArn, deviceRoleArn}.

    `missing` is the error type for a thing or certificate that does not exist;
    `need_identity`: a thing ARN or a certificate ARN is required (a run's primary
    device, GetEndpoint), else a device role ARN alone will do (a suite's devices)."""
    thing_arn, cert_arn, role_arn = device.get("thingArn"), device.get("certificateArn"), device.get("deviceRoleArn")
    if not thing_arn and not cert_arn and (need_identity or not role_arn):
        wanted = ("a thing ARN or a certificate ARN" if need_identity
                  else "a thing ARN, certificate ARN or device role ARN")
        raise _error("ValidationException", f"A device under test requires {wanted}.")
    check_role(role_arn)
    found = {"thingName": None, "thingArn": thing_arn, "certificateId": None, "certificateArn": cert_arn,
             "deviceRoleArn": role_arn}
    if thing_arn:
        name = _iot_resource(ctx, thing_arn, "thing", "thing", missing)
        if ctx.tx.get(THING_KIND, name) is None:
            raise _error(missing, f"The thing {thing_arn} does not exist.")
        found["thingName"] = name
    if cert_arn:
        cert_id = _iot_resource(ctx, cert_arn, "cert", "certificate", missing).lower()
        if ctx.tx.get(CERT_KIND, cert_id) is None:
            raise _error(missing, f"The certificate {cert_arn} does not exist.")
        found["certificateId"] = cert_id
        found["certificateArn"] = ctx.arn(f"cert/{cert_id}")
    if found["thingName"] and not found["certificateId"]:
        # the thing's certificate: the first one attached to it
        for principal in ctx.tx.linked(PRINCIPALS, found["thingName"]):
            if ":cert/" in principal:
                found["certificateArn"] = principal
                found["certificateId"] = principal.rsplit("/", 1)[1]
                break
    elif found["certificateId"] and not found["thingName"]:
        things = ctx.tx.linked_to(PRINCIPALS, found["certificateArn"], limit=1)
        if things:
            found["thingName"] = things[0]
            found["thingArn"] = ctx.arn(f"thing/{things[0]}")
    return found


def as_given(device: dict) -> dict:
    """The DeviceUnderTest members the caller sent (what Get/List answer)."""
    return {k: device[k] for k in ("thingArn", "certificateArn", "deviceRoleArn") if device.get(k)}
