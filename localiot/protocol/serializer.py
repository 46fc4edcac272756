"""Turns a handler's output dict, or an error, into the HTTP response botocore expects."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import partial

import orjson
from botocore.model import Shape

from localiot.protocol import timestamps
from localiot.protocol.errors import DEFAULT_STATUS, ServiceError


class JsonText:
    """A value a handler passes as its JSON text, exactly as json writes it here
    (separators (",", ":"), ensure_ascii): spliced into the reply as it is (an orjson
    Fragment) instead of converted and serialized again: a list member's value, or
    one item of it. ListThings' page of summaries."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def _fragment(value):
    """orjson's `default`: JsonText is spliced; anything else orjson does not write is json's job."""
    if value.__class__ is JsonText:
        return orjson.Fragment(value.text)
    raise TypeError


@dataclass(slots=True, init=False)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]
    # The header block ("Name: value\r\n" each, in the order of `headers`) when whoever
    # wrote the headers knows them to be neither framing headers nor to hold CR or LF
    # (the engine's own, for a reply its serializer wrote): wire.respond writes it as is.
    fields: str | None

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                 fields: str | None = None):  # (written out: the dataclass's default_factory per reply)
        self.status, self.body, self.fields = status, body, fields
        self.headers = {} if headers is None else headers


# Kinds whose JSON form is the value itself; lists and maps of them are too.
_AS_IS = frozenset({"string", "integer", "long", "boolean", "float", "double", "document"})
# (id(shape), default timestamp format) -> (shape, converter or None for "as is");
# the shape is kept so its id stays its own. Models are loaded once per process.
_CONVERTERS: dict[tuple[int, str], tuple[Shape, object]] = {}


def _converter(shape: Shape, fmt_default: str):
    """value -> JSON form for `shape`, compiled once per shape; None when the value
    is its own JSON form (so a read can pass it through without a copy)."""
    key = (id(shape), fmt_default)
    hit = _CONVERTERS.get(key)
    if hit is not None:
        return hit[1]
    kind = shape.type_name
    fn = None
    if kind == "structure":
        return _structure(shape, key, fmt_default)
    if kind == "list":
        inner = _converter(shape.member, fmt_default)
        if inner is not None:
            def fn(value, inner=inner):  # JsonText (the list, or an item) is already in its JSON form
                if value.__class__ is JsonText:
                    return value
                return [None if item is None else item if item.__class__ is JsonText else inner(item)
                        for item in value]
    elif kind == "map":
        inner = _converter(shape.value, fmt_default)
        if inner is not None:
            def fn(value, inner=inner):
                return {k: None if v is None else inner(v) for k, v in value.items()}
    elif kind == "timestamp":
        fmt = shape.serialization.get("timestampFormat", fmt_default)

        def fn(value, fmt=fmt):
            return timestamps.format(value, fmt)
    elif kind == "blob":
        def fn(value):
            return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()
    elif kind not in _AS_IS:
        fn = None
    _CONVERTERS[key] = (shape, fn)
    return fn


def _structure(shape: Shape, key, fmt_default: str):
    """A structure's converter, generated as straight-line code over its members
    (ListThings runs it 100 times a page)."""
    members = list(shape.members.items())
    converters: list = [None] * len(members)

    def late(value):  # stands in for the generated code while members compile
        return generated(value)

    _CONVERTERS[key] = (shape, late)  # before the members: shapes may be recursive
    for i, (_, member) in enumerate(members):
        converters[i] = _converter(member, fmt_default)
    lines = ["def convert(value):", "    out = {}", "    get = value.get"]
    for i, (name, member) in enumerate(members):
        wire = member.serialization.get("name", name)
        lines.append(f"    item = get({name!r})")
        lines.append("    if item is not None:")
        lines.append(f"        out[{wire!r}] = " + ("item" if converters[i] is None else f"c{i}(item)"))
    lines.append("    return out")
    scope = {f"c{i}": c for i, c in enumerate(converters) if c is not None}
    exec("\n".join(lines), scope)  # noqa: S102 (names and wire names come from the service model)
    generated = scope["convert"]
    _CONVERTERS[key] = (shape, generated)
    return generated


def to_json(shape: Shape, value, fmt_default: str = "unixTimestamp"):
    if value is None:
        return None
    convert = _converter(shape, fmt_default)
    return value if convert is None else convert(value)


_dumps = json.JSONEncoder(separators=(",", ":")).encode


# orjson writes a reply ~20x faster than json. Its bytes are used only where they
# are exactly json's (separators=(",", ":"), ensure_ascii): for outputs whose model
# holds no float, double or document (orjson writes 1e-05 as 0.00001, NaN as null),
# when the bytes are pure ASCII with no escape json would write differently
# (\u00XX, DEL); anything else, and whatever orjson refuses, is written by json.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _dump(document, fast: bool = False) -> bytes:
    """The reply body. `document` may hold JsonText: spliced by orjson, parsed again for json."""
    if fast:
        try:
            out = orjson.dumps(document, default=_fragment, option=_ORJSON_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError too
            pass
        else:
            # bytes.find, not `in` (which first tries the needle as an integer, raising and
            # clearing a TypeError); a reply without a backslash holds no \u escape
            if out.isascii() and (out.find(b"\\") < 0 or out.find(b"\\u") < 0) and out.find(b"\x7f") < 0:
                return out
    try:
        return _dumps(document).encode()
    except TypeError:  # json cannot write JsonText: the same text, as values
        return _dumps(plain(document)).encode()


def plain(value):
    """A handler's output with every JsonText read back as values: what an in-process
    caller of a handler (Fleet Hub's pages, Device Advisor's cases) works with."""
    cls = value.__class__
    if cls is JsonText:
        return json.loads(value.text)
    if cls is dict:
        return {k: plain(v) for k, v in value.items()}
    if cls is list:
        return [plain(v) for v in value]
    return value


def _without_floats(shape: Shape | None, seen: set | None = None) -> bool:
    """Whether no float, double or document can appear in `shape`'s JSON form."""
    if shape is None:
        return True
    seen = set() if seen is None else seen
    if id(shape) in seen:
        return True
    seen.add(id(shape))
    kind = shape.type_name
    if kind in ("float", "double", "document"):
        return False
    if kind == "structure":
        return all(_without_floats(m, seen) for m in shape.members.values())
    if kind == "list":
        return _without_floats(shape.member, seen)
    if kind == "map":
        return _without_floats(shape.value, seen)
    return True


@dataclass
class _RestOutput:
    """What serialize_rest needs of an operation, read from the model once."""
    status: int
    payload: str | None
    fast: bool  # the body may be written by orjson (no floats in the model)
    # (name, location, wire name, member shape, converter)
    members: list
    # The output's own structure converter when every member goes in the body (most
    # operations): the body is that converter's result, no per-member dispatch.
    body: object = None


_REST_OUTPUTS: dict[int, tuple[object, _RestOutput | None]] = {}


def _rest_output(operation) -> _RestOutput | None:
    hit = _REST_OUTPUTS.get(id(operation))
    if hit is not None:
        return hit[1]
    shape = operation.output_shape
    plan = None
    if shape is not None:
        plan = _RestOutput(operation.http.get("responseCode", 200), shape.serialization.get("payload"),
                           _without_floats(shape), [
            (name, member.serialization.get("location"), member.serialization.get("name", name), member,
             _converter(member, "unixTimestamp"))
            for name, member in shape.members.items()
        ])
        if plan.payload is None and all(location is None for _, location, *_ in plan.members):
            plan.body = _converter(shape, "unixTimestamp")
    _REST_OUTPUTS[id(operation)] = (operation, plan)
    return plan


def rest_serializer(operation):
    """fn(output) -> Reply for `operation` (rest protocols), as serialize_rest writes it,
    with the common shapes' steps chosen once: an output all in the body (its
    structure's converter), or a blob payload alone (GetThingShadow's document).
    `fn.content_type_only`: its replies' only header is a Content-Type it chose."""
    plan = _rest_output(operation)
    if plan is None:  # no output shape (iot-data Publish): always the same reply
        status = operation.http.get("responseCode", 200)

        def empty(output: dict) -> Reply:
            return Reply(status, b"{}", {"Content-Type": "application/json"})

        empty.content_type_only = True
        return empty
    if plan.body is not None:
        status, convert, fast = plan.status, plan.body, plan.fast

        def body(output: dict) -> Reply:
            return Reply(status, _dump(convert(output), fast), {"Content-Type": "application/json"})

        body.content_type_only = True
        return body
    if len(plan.members) == 1 and plan.members[0][0] == plan.payload:
        name, location, _, member, _ = plan.members[0]
        if location is None and member.type_name == "blob":
            status = plan.status

            def payload(output: dict) -> Reply:
                value = output.get(name)
                if value is None:
                    return Reply(status, b"", {"Content-Type": "application/json"})
                return Reply(status, value if isinstance(value, bytes) else value.encode(),
                             {"Content-Type": "application/octet-stream"})

            payload.content_type_only = True
            return payload
    return partial(serialize_rest, operation)


def serialize_rest(operation, output: dict) -> Reply:
    plan = _rest_output(operation)
    if plan is None:
        return Reply(operation.http.get("responseCode", 200), b"{}", {"Content-Type": "application/json"})
    if plan.body is not None:
        return Reply(plan.status, _dump(plan.body(output), plan.fast), {"Content-Type": "application/json"})
    status = plan.status
    headers = {"Content-Type": "application/json"}
    body_doc = {}
    payload_name = plan.payload
    payload_bytes = None
    for name, location, wire, member, convert in plan.members:
        value = output.get(name)
        if value is None:
            continue
        if location is None and name != payload_name:
            body_doc[wire] = value if convert is None else convert(value)
        elif location == "statusCode":
            status = int(value)
        elif location == "header":
            headers[wire] = _header_value(member, value)
        elif location == "headers":
            for k, v in value.items():
                headers[wire + k] = str(v)
        elif name == payload_name:
            if member.type_name == "blob":
                payload_bytes = value if isinstance(value, bytes) else value.encode()
                headers["Content-Type"] = "application/octet-stream"
            elif member.type_name == "string":
                payload_bytes = value.encode()
            else:
                payload_bytes = _dump(to_json(member, value))
        else:
            body_doc[wire] = to_json(member, value)
    if payload_name:
        return Reply(status, payload_bytes or b"", headers)
    return Reply(status, _dump(body_doc, plan.fast), headers)


def serialize_json(operation, output: dict) -> Reply:
    shape = operation.output_shape
    document = to_json(shape, output) if shape is not None else {}
    return Reply(200, _dump(document), {"Content-Type": "application/x-amz-json-1.1"})


def _header_value(member: Shape, value) -> str:
    if member.type_name == "timestamp":
        return str(timestamps.format(value, member.serialization.get("timestampFormat", "rfc822")))
    if member.type_name == "boolean":
        return "true" if value else "false"
    if member.serialization.get("jsonvalue"):
        return base64.b64encode(json.dumps(value).encode()).decode()
    return str(value)


def serialize_error(error: ServiceError, protocol: str, error_shapes: dict) -> Reply:
    shape = error_shapes.get(error.code)
    status = error.status
    if status is None and shape is not None:
        status = shape.metadata.get("error", {}).get("httpStatusCode")
    if status is None:
        status = DEFAULT_STATUS.get(error.code, 400)
    message_key = "Message" if shape is not None and "Message" in shape.members else "message"
    document = {message_key: error.message}
    document.update({k: v for k, v in error.fields.items() if v is not None})
    if protocol == "json":
        document["__type"] = error.code
        content_type = "application/x-amz-json-1.1"
    else:
        content_type = "application/json"
    headers = {"Content-Type": content_type, "x-amzn-ErrorType": error.code}
    return Reply(status, _dump(document), headers)
