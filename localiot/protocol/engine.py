"""The protocol engine: route -> parse -> validate -> handler -> serialize.

It knows nothing of IoT: `invoke(route, params, account, region)` is given by
the application and returns the output dict or raises ServiceError.
"""

from __future__ import annotations

import itertools
import logging
import os
from typing import Callable

from multidict import istr

from localiot.protocol import jsontext, parser, serializer, sigv4, validator
from localiot.protocol.errors import ServiceError
from localiot.protocol.models import Service
from localiot.protocol.router import Route, Router
from localiot.protocol.serializer import Reply

log = logging.getLogger("localiot.protocol")


def _request_ids():
    """(prefix, counter) of request ids shaped as random (version 4) UUIDs, as str(uuid.uuid4()) writes them.
    A request id only has to be unique: the first 20 hex digits are drawn once per
    process (os.urandom), the last 12 count the process's requests from a random start."""
    h = os.urandom(16).hex()
    prefix = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-"
    # Counted with bit 48 set, so hex() writes "0x1" and then the 12 digits (the count,
    # from a random start below 2**47: at least 2**47 requests before a 13th digit).
    return prefix, itertools.count((1 << 48) | int(h[20:], 16) >> 1).__next__


_ID_PREFIX, _id_count = _request_ids()


def request_id() -> str:
    return _ID_PREFIX + hex(_id_count())[3:]  # (Engine.handle writes this out: one call less per request)


# (route, input, account, region) -> the output dict, or ServiceError
Invoke = Callable[[Route, dict, str, str], dict]

# multidict keeps an istr's case-folded form: a CIMultiDict looks it up without folding
# the name on every request (a str key like any other to a dict).
_TARGET = istr("X-Amz-Target")


class Steps:
    """What the engine does with one operation's input and output, read from its model
    once (at the operation's first call): the parser, the constraint checker (None when
    its input states no constraint), the serializer, and whether the serializer's replies
    carry no header but the Content-Type it chose (then the engine writes their header block)."""

    __slots__ = ("parse", "check", "serialize", "content_type_only", "label_field")

    def __init__(self, route: Route):
        operation = route.operation
        self.label_field = f"\r\nx-localiot-operation: {route.label}\r\n"  # the header block's last field
        if route.protocol == "json":
            self.parse = lambda labels, query, headers, body: parser.parse_json_protocol(operation, body)
            self.serialize = lambda output: serializer.serialize_json(operation, output)
            self.content_type_only = True
        else:
            self.parse = parser.rest_parser(operation, [member for _, member in route.labels])
            self.serialize = serializer.rest_serializer(operation)
            self.content_type_only = getattr(self.serialize, "content_type_only", False)
        self.check = validator.checker(operation.input_shape)


def _steps(route: Route) -> Steps:
    route.steps = Steps(route)
    return route.steps


def _refused(route: Route, refused: jsontext.JsonRefused) -> ServiceError:
    """The service's validation error for an input holding text no later step could encode
    (lone surrogates, from a JSON escape or a non-UTF-8 header) or JSON nested beyond
    jsontext.MAX_DEPTH: refused once, where the input is read."""
    if not refused.where:
        message = f"The request body nests JSON deeper than {jsontext.MAX_DEPTH} levels"
    else:
        rule = (f"Member must nest at most {jsontext.MAX_DEPTH} levels" if refused.too_deep
                else "Member must be valid Unicode text (no lone UTF-16 surrogates)")
        message = f"1 validation error detected: Value at '{refused.where}' failed to satisfy constraint: {rule}"
    return ServiceError(route.validation_error, message)


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
        # Marks this engine's memos on shared sigv4 Scopes (a mark, not the engine: scopes
        # outlive engines in sigv4's module-level cache).
        self._memo_mark = object()
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
        rid = _ID_PREFIX + hex(_id_count())[3:]  # request_id()
        route = None
        try:
            scope = sigv4.read_scope(headers, query)
            if scope is None:
                services, account, region = None, self.default_account, self.default_region
            else:
                # read once per scope (shared by every request signed under the same
                # Authorization head): the region's check, the services, the account
                memo = scope.engine_memo
                if memo is None or memo[0] is not self._memo_mark:
                    memo = scope.engine_memo = self._read_scope(scope)
                services, account, region = memo[1], memo[2], scope.region
            route, labels = self._route(method, raw_path, query, headers, services)
            if self.strict:
                sigv4.verify(scope, method, host, raw_path_qs, headers, body, self.secrets)
            elif scope is None and log.isEnabledFor(logging.DEBUG):
                log.debug("accepted %s %s unsigned (not --strict-signatures): %s; answering as account %s, region %s",
                          method, raw_path, sigv4.why_unsigned(headers, query), self.default_account,
                          self.default_region)
            steps = route.steps or _steps(route)
            try:  # the operation's input
                params = steps.parse(labels, query, headers, body)
                jsontext.check(params)
            except jsontext.JsonRefused as refused:
                raise _refused(route, refused) from None
            if steps.check is not None:
                errors: list[str] = []
                steps.check(params, "", errors)
                if errors:
                    raise ServiceError(route.validation_error, validator.message(errors))
            reply = steps.serialize(self.invoke(route, params, account, region) or {})
            if steps.content_type_only:  # its headers are ours: the header block at once
                own = reply.headers
                own["x-amzn-RequestId"] = rid
                own["x-localiot-operation"] = route.label
                reply.fields = f"Content-Type: {own['Content-Type']}\r\nx-amzn-RequestId: {rid}{steps.label_field}"
                return reply
        except ServiceError as error:
            reply = self._error(error, route, headers)
        except Exception:  # a bug of ours: answer like AWS does, keep the traceback in the log
            log.exception("internal failure in %s", route.name if route else raw_path)
            failure = ServiceError("InternalFailureException", "An internal error occurred.", status=500)
            reply = self._error(failure, route, headers)
        reply_headers = reply.headers
        reply_headers["x-amzn-RequestId"] = rid
        if route is not None:
            reply_headers["x-localiot-operation"] = route.label
        return reply

    def _read_scope(self, scope) -> tuple:
        """(this engine's mark, the services `scope`'s signing name names, the account):
        ServiceError for a scope whose region is no region name."""
        sigv4.check_region(scope)
        return (self._memo_mark, self._by_signing_name.get(scope.service.lower()),
                sigv4.account_for(scope.access_key, self.default_account))

    def _route(self, method, raw_path, query, headers, services) -> tuple[Route, dict]:
        target = headers.get(_TARGET)
        if target:
            route = self.router.by_target(target)
            if route is None:
                raise ServiceError("UnknownOperationException", f"Unknown operation {target}", status=400)
            return route, {}
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
