"""The protocol engine: route -> parse -> validate -> handler -> serialize.

It knows nothing of IoT: `invoke(route, params, account, region)` is given by
the application and returns the output dict or raises ServiceError.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Callable

from localiot.protocol import jsontext, parser, serializer, sigv4, validator
from localiot.protocol.errors import ServiceError
from localiot.protocol.models import Service
from localiot.protocol.router import Route, Router
from localiot.protocol.serializer import Reply

log = logging.getLogger("localiot.protocol")


class Call:
    __slots__ = ("route", "params", "account", "region", "access_key")

    def __init__(self, route: Route, params: dict, account: str, region: str, access_key: str | None):
        self.route, self.params, self.account, self.region, self.access_key = route, params, account, region, access_key


_bits = random.Random(os.urandom(32)).getrandbits
# The variant digit of a version 4 UUID (10xx) for each hex digit drawn there.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def request_id() -> str:
    """A random (version 4) UUID as text, as str(uuid.uuid4()) writes it: a request id
    only has to be unique, so its bits come from a seeded generator, not a system call."""
    h = "%032x" % _bits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


Invoke = Callable[[Call], dict]


class Engine:
    def __init__(self, services: list[Service], invoke: Invoke, *, default_account: str, default_region: str,
                 secrets: dict[str, str] | None = None, strict: bool = False):
        self.services = services
        self.router = Router(services)
        self.invoke = invoke
        self.default_account = default_account
        self.default_region = default_region
        self.secrets = secrets or {}
        self.strict = strict
        self._by_signing_name: dict[str, set[str]] = {}
        for service in services:
            self._by_signing_name.setdefault(service.signing_name.lower(), set()).add(service.name)
        # For errors before routing: the first service's shape of each error type wins (iot's wording).
        self._all_errors: dict = {}
        for service in services:
            for code, shape in service.error_shapes.items():
                self._all_errors.setdefault(code, shape)

    def handle(self, method: str, host: str, raw_path: str, raw_path_qs: str, query, headers, body: bytes) -> Reply:
        """Answer one HTTP request. Never raises: every failure is an AWS error reply."""
        rid = request_id()
        route = None
        try:
            scope = sigv4.read_scope(headers, query)
            sigv4.check_region(scope)
            route, labels = self._route(method, raw_path, query, headers, scope)
            if self.strict:
                sigv4.verify(scope, method, host, raw_path_qs, headers, body, self.secrets)
            elif scope is None and log.isEnabledFor(logging.DEBUG):
                log.debug("accepted %s %s unsigned (not --strict-signatures): %s; answering as account %s, region %s",
                          method, raw_path, sigv4.why_unsigned(headers, query), self.default_account,
                          self.default_region)
            params = self._parse(route, labels, query, headers, body)
            errors = validator.validate(route.operation.input_shape, params)
            if errors:
                raise ServiceError(route.validation_error, validator.message(errors))
            account = sigv4.account_for(scope.access_key, self.default_account) if scope else self.default_account
            region = scope.region if scope else self.default_region
            output = self.invoke(Call(route, params, account, region, scope.access_key if scope else None))
            if route.protocol == "json":
                reply = serializer.serialize_json(route.operation, output or {})
            else:
                reply = serializer.serialize_rest(route.operation, output or {})
        except ServiceError as error:
            reply = self._error(error, route, headers)
        except Exception:  # a bug of ours: answer like AWS does, keep the traceback in the log
            log.exception("internal failure in %s", route.name if route else raw_path)
            failure = ServiceError("InternalFailureException", "An internal error occurred.", status=500)
            reply = self._error(failure, route, headers)
        reply.headers["x-amzn-RequestId"] = rid
        if route is not None:
            reply.headers["x-localiot-operation"] = route.label
        return reply

    @staticmethod
    def _parse(route: Route, labels, query, headers, body: bytes) -> dict:
        """The operation's input. Text no later step could encode (lone surrogates,
        from a JSON escape or a non-UTF-8 header) and JSON nested beyond
        jsontext.MAX_DEPTH are refused here, once, with the service's validation error."""
        try:
            if route.protocol == "json":
                params = parser.parse_json_protocol(route.operation, body)
            else:
                params = parser.parse_rest(route.operation, labels, query, headers, body)
            jsontext.check(params)
        except jsontext.JsonRefused as refused:
            if not refused.where:
                message = f"The request body nests JSON deeper than {jsontext.MAX_DEPTH} levels"
            else:
                rule = (f"Member must nest at most {jsontext.MAX_DEPTH} levels" if refused.too_deep
                        else "Member must be valid Unicode text (no lone UTF-16 surrogates)")
                message = f"1 validation error detected: Value at '{refused.where}' failed to satisfy constraint: {rule}"
            raise ServiceError(route.validation_error, message) from None
        return params

    def _route(self, method, raw_path, query, headers, scope) -> tuple[Route, dict]:
        target = headers.get("X-Amz-Target")
        if target:
            route = self.router.by_target(target)
            if route is None:
                raise ServiceError("UnknownOperationException", f"Unknown operation {target}", status=400)
            return route, {}
        services = self._by_signing_name.get(scope.service.lower()) if scope else None
        found = self.router.match(method, raw_path, query, services)
        if found is None and services is not None:
            found = self.router.match(method, raw_path, query, None)
        if found is None:
            raise ServiceError("UnknownOperationException", f"No operation matches {method} {raw_path}", status=404)
        return found

    def refusal(self, status: int, code: str, message: str, headers) -> Reply:
        """The error reply for a request refused before it could be routed."""
        reply = self._error(ServiceError(code, message, status=status), None, headers)
        reply.headers["x-amzn-RequestId"] = request_id()
        return reply

    def _error(self, error: ServiceError, route: Route | None, headers) -> Reply:
        if route is not None:
            return serializer.serialize_error(error, route.service.protocol, route.service.error_shapes)
        protocol = "json" if headers.get("X-Amz-Target") else "rest-json"
        return serializer.serialize_error(error, protocol, self._all_errors)
