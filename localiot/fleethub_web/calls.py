"""The dashboard reads and changes the fleet through localiot's own API
operations: the same handlers, validated against the same botocore models,
each run as one unit of work in the application's account and region. The
pages therefore see exactly what boto3 would, and no other account's data."""

from __future__ import annotations

import json
from dataclasses import dataclass

from localiot.protocol import validator
from localiot.protocol.errors import ServiceError
from localiot.protocol.serializer import plain
from localiot.services.unit_of_work import unit_of_work


@dataclass(frozen=True)
class Scope:
    """Where one application's fleet lives."""

    account: str
    region: str
    application: dict


def call(app, scope: Scope, service: str, name: str, params: dict) -> dict:
    """`service` `name`(params) as the application's account would call it, or ServiceError."""
    handler = app.handlers.get((service, name))
    if handler is None:
        raise ServiceError("NotImplementedException", f"localiot does not implement {service} {name} yet.", 501)
    model = next(s for s in app.services if s.name == service)
    errors = validator.validate(model.operations[name].input_shape, params)
    if errors:
        raise ServiceError(model.validation_error, validator.message(errors))
    with unit_of_work(app.runtime, scope.account, scope.region, service, name) as ctx:
        return plain(handler(ctx, params))  # a list page may be spliced reply text (serializer.JsonText)


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
