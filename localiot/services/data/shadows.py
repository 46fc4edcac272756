"""GetThingShadow, UpdateThingShadow, DeleteThingShadow, ListNamedShadowsForThing.

Thin doors onto `localiot.shadows.service`: the payload member is a blob
holding the shadow document, and a ShadowError becomes the modelled iot-data
error for its status code, its body carrying the shadow error document
(`code`, `message`, `clientToken`) as AWS's does.
"""

from __future__ import annotations

from localiot.protocol.errors import ServiceError
from localiot.services import operation
from localiot.shadows import service
from localiot.shadows.document import ShadowError, dumps

ERROR_TYPES = {
    400: "InvalidRequestException",
    401: "UnauthorizedException",
    403: "ForbiddenException",
    404: "ResourceNotFoundException",
    405: "MethodNotAllowedException",
    409: "ConflictException",
    413: "RequestEntityTooLargeException",
    415: "UnsupportedDocumentEncodingException",
    429: "ThrottlingException",
    503: "ServiceUnavailableException",
}


def service_error(error: ShadowError) -> ServiceError:
    error_type = ERROR_TYPES.get(error.code, "InternalFailureException")
    failure = ServiceError(error_type, error.message, status=error.code if error.code in ERROR_TYPES else 500)
    # `code` is also ServiceError's first argument, so the body's fields go in directly.
    failure.fields.update(code=error.code, clientToken=error.client_token)
    return failure


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ShadowError as error:
        raise service_error(error) from None


@operation("iot-data")
def GetThingShadow(ctx, req):
    try:  # (_call's, written out, as UpdateThingShadow's)
        return {"payload": service.get_shadow_json(ctx, req["thingName"], req.get("shadowName"))}
    except ShadowError as error:
        raise service_error(error) from None


@operation("iot-data")
def UpdateThingShadow(ctx, req):
    try:  # (_call's, written out: every update comes through here)
        return {"payload": service.update_shadow(ctx, req["thingName"], req.get("shadowName"),
                                                 req.get("payload") or b"", as_bytes=True, names_checked=True)}
    except ShadowError as error:
        raise service_error(error) from None


@operation("iot-data")
def DeleteThingShadow(ctx, req):
    return {"payload": dumps(_call(service.delete_shadow, ctx, req["thingName"], req.get("shadowName")))}


@operation("iot-data")
def ListNamedShadowsForThing(ctx, req):
    return _call(service.list_named_shadows, ctx, req["thingName"], req.get("nextToken"), req.get("pageSize"))
