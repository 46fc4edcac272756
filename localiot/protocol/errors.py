"""Errors that handlers raise and the serializer turns into AWS error responses."""

from __future__ import annotations

# Status codes for error types that a model may not declare for an operation
# (the model's own httpStatusCode wins when the shape exists).
DEFAULT_STATUS = {
    "InvalidRequestException": 400,
    "ValidationException": 400,
    "SerializationException": 400,
    "ResourceNotFoundException": 404,
    "ResourceAlreadyExistsException": 409,
    "ConflictException": 409,
    "VersionConflictException": 409,
    "DeleteConflictException": 409,
    "LimitExceededException": 410,
    "UnauthorizedException": 401,
    "ForbiddenException": 403,
    "AccessDeniedException": 403,
    "InvalidSignatureException": 403,
    "UnrecognizedClientException": 403,
    "MissingAuthenticationTokenException": 403,
    "UnknownOperationException": 404,
    "NotImplementedException": 501,
    "InternalFailureException": 500,
}


class ServiceError(Exception):
    """An AWS error: `code` is the error type, `fields` extra members (resourceId...)."""

    def __init__(self, code: str, message: str, status: int | None = None, **fields):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields


def not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidRequestException", message)


def conflict(code: str, message: str, **fields) -> ServiceError:
    return ServiceError(code, message, **fields)
