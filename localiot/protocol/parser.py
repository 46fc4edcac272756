"""Turns an HTTP request into the operation's input dict, coerced to model types.

Input locations: uri labels (already captured by the router), querystring,
header, headers (prefix map), payload and the JSON body. Values arrive as
strings outside the body and are coerced by shape type; JSON body values are
checked against their shape type (SerializationException otherwise, as AWS).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from botocore.model import Shape
from multidict import istr

from localiot.protocol import jsontext, timestamps
from localiot.protocol.errors import ServiceError


def _serialization_error(message: str) -> ServiceError:
    return ServiceError("SerializationException", message, status=400)


def coerce_text(shape: Shape, text: str, location: str, where: str) -> Any:
    """A string from the URI, query or a header, as the shape's type."""
    kind = shape.type_name
    if kind == "string" and location != "header":  # most labels and query values: the text itself
        return text
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
        if kind == "boolean":
            lowered = text.lower()
            if lowered not in ("true", "false"):
                raise ValueError(text)
            return lowered == "true"
        if kind == "timestamp":
            default = "rfc822" if location == "header" else "iso8601"
            return timestamps.parse(text, shape.serialization.get("timestampFormat", default))
        if kind == "blob":
            return base64.b64decode(text)
        if kind == "string" and location == "header" and shape.serialization.get("jsonvalue"):
            return jsontext.loads(base64.b64decode(text))
    except jsontext.JsonRefused as refused:
        refused.where = where
        raise
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise _serialization_error(f"Value '{text}' at '{where}' could not be read as {kind}")
    return text


_REST_INPUTS: dict[int, tuple[object, tuple | None]] = {}


def _rest_input(operation):
    """(members as (name, location, wire name, shape), payload member name), read
    from the model once per operation; None when the operation takes no input."""
    hit = _REST_INPUTS.get(id(operation))
    if hit is not None:
        return hit[1]
    shape = operation.input_shape
    plan = None
    if shape is not None:
        members = [(name, member.serialization.get("location"), member.serialization.get("name", name), member)
                   for name, member in shape.members.items()]
        plan = (members, shape.serialization.get("payload"))
    _REST_INPUTS[id(operation)] = (operation, plan)
    return plan


def rest_parser(operation, label_members):
    """fn(labels, query, headers, body) -> the input of `operation` (rest protocols). When
    every input member is a text label of the path and the router reads every label
    (`label_members`), the router's labels are the input."""
    plan = _rest_input(operation)
    if plan is None:
        return lambda labels, query, headers, body: {}
    members, payload_name = plan
    if (payload_name is None and {name for name, *_ in members} == set(label_members)
            and all(location == "uri" and member.type_name == "string" for _, location, _, member in members)):
        return lambda labels, query, headers, body: labels
    # Text labels, then text query parameters (GetThingShadow's shadowName), in the model's
    # order: the router's labels with the query's values added, as the general parser builds them.
    queried = [(name, wire) for name, location, wire, _ in members if location == "querystring"]
    if (payload_name is None and [name for name, *_ in members] == [*label_members, *(n for n, _ in queried)]
            and all(member.type_name == "string" and location in ("uri", "querystring")
                    for _, location, _, member in members)):
        def labels_and_query(labels, query, headers, body):
            if query:
                for name, wire in queried:
                    value = query.get(wire)
                    if value is not None:
                        labels[name] = value
            return labels

        return labels_and_query
    return _compiled_rest_parser(members, payload_name, operation.input_shape)


def _compiled_rest_parser(members: list, payload_name: str | None, shape: Shape):
    """The parser of an operation's rest input, generated as straight-line code over its
    members in the model's order (Publish, CreateThing, UpdateThingShadow: every request),
    reading what a walk of the members would read, in the same order, with the same errors.
    Header names are istr constants: multidict then compares them without folding their case."""
    env: dict = {"coerce_text": coerce_text, "_parse_query_member": _parse_query_member,
                 "_prefixed": _prefixed, "_text": _text, "_load_json": _load_json, "from_json": from_json,
                 "_serialization_error": _serialization_error}
    lines = ["def parse(labels, query, headers, body):", "    params = {}"]
    body_members = []

    def text_member(i: int, name: str, kind: str, location: str, plain: bool) -> list[str]:
        """Lines setting member i from `value`, text read from its location, as coerce_text reads it."""
        if plain:
            return [f"        params[{name!r}] = value"]
        coerce = f"params[{name!r}] = coerce_text(m{i}, value, {location!r}, {name!r})"
        if kind in ("integer", "long"):  # int() inline; what it refuses, coerce_text refuses with its error
            return ["        try:", f"            params[{name!r}] = int(value)", "        except ValueError:",
                    f"            {coerce}"]
        return [f"        {coerce}"]

    for i, (name, location, wire, member) in enumerate(members):
        env[f"m{i}"], env[f"w{i}"] = member, wire
        kind = member.type_name
        if location == "uri":
            lines += [f"    value = labels.get({name!r})", "    if value is not None:",
                      *text_member(i, name, kind, "uri", kind == "string")]
        elif location == "querystring":
            if kind in ("map", "list"):
                lines.append(f"    _parse_query_member(params, {name!r}, m{i}, w{i}, query)")
            else:  # (query values are text: a name present has a value)
                lines += [f"    value = query.get(w{i})", "    if value is not None:",
                          *text_member(i, name, kind, "querystring", kind == "string")]
        elif location == "header":
            env[f"w{i}"] = istr(wire)
            plain = kind == "string" and not member.serialization.get("jsonvalue")
            lines += [f"    value = headers.get(w{i})", "    if value is not None:",
                      *text_member(i, name, kind, "header", plain)]
        elif location == "headers":
            env[f"w{i}"] = wire.lower()
            lines += [f"    found = _prefixed(headers, w{i})", "    if found:", f"        params[{name!r}] = found"]
        elif name != payload_name:
            body_members.append((name, member.serialization.get("name", name), member))
    if payload_name:
        member = env["payload_member"] = shape.members[payload_name]
        kind = member.type_name
        lines.append("    if body:")
        lines.append(f"        params[{payload_name!r}] = " + (
            "body" if kind == "blob" else "_text(body)" if kind == "string" else
            f"from_json(payload_member, _load_json(body), {payload_name!r})"))
    elif body_members:
        env["body_members"] = tuple(body_members)
        lines += ["    if body:", "        document = _load_json(body)", "        if not isinstance(document, dict):",
                  "            raise _serialization_error('The request body must be a JSON object')",
                  "        if document:",
                  "            for name, wire, member in body_members:",
                  "                value = document.get(wire)",
                  "                if value is not None:",
                  "                    params[name] = from_json(member, value, name)"]
    lines.append("    return params")
    exec("\n".join(lines), env)  # noqa: S102 (names and wire names come from the service model)
    return env["parse"]


def _prefixed(headers, prefix: str) -> dict:
    """The headers whose (case-folded) name starts with `prefix` (lower case), by the rest of their name."""
    return {k[len(prefix):]: v for k, v in headers.items() if k.lower().startswith(prefix)}


def parse_json_protocol(operation, body: bytes) -> dict:
    shape = operation.input_shape
    if shape is None:
        return {}
    document = _load_json(body) if body else {}
    if not isinstance(document, dict):
        raise _serialization_error("The request body must be a JSON object")
    return from_json(shape, document, "")


def _parse_query_member(params, name, member, wire, query) -> None:
    if member.type_name == "map":
        # A map bound to the query string takes every parameter not otherwise bound.
        values = {k: query.getall(k) if member.value.type_name == "list" else query.get(k) for k in query}
        if values:
            params[name] = values
    elif member.type_name == "list":
        if wire in query:
            params[name] = [coerce_text(member.member, v, "querystring", name) for v in query.getall(wire)]
    elif wire in query:
        params[name] = coerce_text(member, query.get(wire), "querystring", name)


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise _serialization_error("The request body is not UTF-8 text") from None


def _load_json(body: bytes):
    """The body as JSON. Nesting beyond jsontext.MAX_DEPTH and lone surrogates
    raise JsonRefused, which the engine answers with the service's validation error."""
    if body == b"{}":  # what an SDK sends for an operation called with no body member
        return {}
    try:
        # Lone surrogates pass here: the engine checks the parsed input, naming the member.
        return jsontext.loads(body, surrogates=True)
    except jsontext.JsonRefused:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise _serialization_error(f"Could not parse the request body as JSON: {exc}")


_JSON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
    "list": (list,),
    "map": (dict,),
    "structure": (dict,),
}


def from_json(shape: Shape, value, where: str):
    kind = shape.type_name
    if kind == "timestamp":
        try:
            return timestamps.parse(value, shape.serialization.get("timestampFormat"))
        except (ValueError, TypeError):
            raise _serialization_error(f"Value at '{where}' is not a valid timestamp")
    if kind == "blob":
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise _serialization_error(f"Value at '{where}' is not valid base64")
    if kind == "document":
        return value
    expected = _JSON_TYPES.get(kind)
    if expected and (not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected)):
        raise _serialization_error(f"Value at '{where}' must be of type {kind}")
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            if wire in value and value[wire] is not None:
                out[name] = from_json(member, value[wire], f"{where}.{name}" if where else name)
        return out
    if kind == "list":
        return [from_json(shape.member, item, f"{where}.member") for item in value]
    if kind == "map":
        return {
            from_json(shape.key, k, f"{where}.key"): from_json(shape.value, v, f"{where}.{k}")
            for k, v in value.items()
        }
    if kind in ("float", "double"):
        return float(value)
    return value
