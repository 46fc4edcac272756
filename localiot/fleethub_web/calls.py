"""The dashboard reads and changes the fleet through localiot's own API
operations (`localiot.services.in_process`): the same handlers, validated
against the same botocore models, each run as one unit of work in the
application's account and region. The pages therefore see exactly what
boto3 would, and no other account's data."""

from __future__ import annotations

import json
from dataclasses import dataclass

from localiot.protocol.errors import ServiceError
from localiot.services.in_process import call_in_process


@dataclass(frozen=True)
class Scope:
    """Where one application's fleet lives."""

    account: str
    region: str
    application: dict


def call(app, scope: Scope, service: str, name: str, params: dict) -> dict:
    """`service` `name`(params) as the application's account would call it, or ServiceError."""
    return call_in_process(app.runtime, service, name, params, account=scope.account, region=scope.region)


def shadow(app, scope: Scope, thing: str, shadow_name: str | None = None) -> dict | None:
    """A thing's shadow document, or None when it has none."""
    params = {"thingName": thing, **({"shadowName": shadow_name} if shadow_name else {})}
    try:
        return json.loads(call(app, scope, "iot-data", "GetThingShadow", params)["payload"])
    except ServiceError as error:
        if error.code == "ResourceNotFoundException":
            return None
        raise


def optional(app, scope: Scope, service: str, name: str, params: dict, default):
    """An operation whose refusal (not found, not indexed, not implemented) shows as `default`."""
    try:
        return call(app, scope, service, name, params)
    except ServiceError:
        return default
