"""Calling an operation's handler from inside localiot, by its name (families
do not import each other), with plain values back.

- `call_in_process`: as the HTTP API runs a call (`server._invoke`): the
  input checked against the operation's botocore model (same checks and
  wording as the protocol engine's), then the handler in a unit of work of
  its own (`unit_of_work.run`) in the given account and region. Fleet Hub's
  pages and Device Advisor's test cases act on the fleet this way, so they see
  and change exactly what boto3 would.
- `call_within`: the handler inside the caller's own unit of work (one
  transaction with the caller's work), for a handler that passes on a
  request it built from its own checked input (OTA updates create and delete
  their jobs through the jobs family; Fleet Hub reads the indexing settings),
  or, `checked=True`, from input it did not check (a provisioning template's
  resources, which RegisterThing applies in its own transaction).

Both return the output with every spliced reply text (`serializer.JsonText`,
e.g. a ListThings or SearchIndex page) read back as values (`serializer.plain`),
so no caller has to remember it.
"""

from __future__ import annotations

from functools import lru_cache

from localiot.protocol import validator
from localiot.protocol.errors import ServiceError
from localiot.protocol.models import Service, service_model
from localiot.protocol.serializer import plain
from localiot.services import HANDLERS
from localiot.services.unit_of_work import run


def call_in_process(runtime, service: str, operation: str, params: dict, *, account: str, region: str) -> dict:
    """`service` `operation`(params) as an API call of (account, region) would run it, or ServiceError."""
    handler = handler_for(service, operation)
    errors = validator.validate(_input_shape(service, operation), params)
    if errors:
        raise ServiceError(_service(service).validation_error, validator.message(errors))
    return plain(run(runtime, account, region, service, operation, handler, params))


def call_within(ctx, service: str, operation: str, params: dict, *, checked: bool = False) -> dict:
    """`service` `operation`(params) in the caller's unit of work `ctx`, or ServiceError.
    `checked`: the input is checked against the model first, as `call_in_process`
    does (for a request built from someone else's input, e.g. a provisioning template)."""
    handler = handler_for(service, operation)
    if checked:
        errors = validator.validate(_input_shape(service, operation), params)
        if errors:
            raise ServiceError(_service(service).validation_error, validator.message(errors))
    return plain(handler(ctx, params))


def handler_for(service: str, operation: str):
    handler = HANDLERS.get((service, operation))
    if handler is None:
        raise ServiceError("NotImplementedException", f"localiot does not implement {service} {operation} yet.",
                           status=501)
    return handler


@lru_cache(maxsize=None)
def _service(name: str) -> Service:
    return Service(name, service_model(name))


@lru_cache(maxsize=None)
def _input_shape(service: str, operation: str):
    return service_model(service).operation_model(operation).input_shape
