"""Turns a handler's output dict, or an error, into the HTTP response botocore expects."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from botocore.model import Shape

from localiot.protocol import timestamps
from localiot.protocol.errors import DEFAULT_STATUS, ServiceError


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def to_json(shape: Shape, value, fmt_default: str = "unixTimestamp"):
    kind = shape.type_name
    if value is None:
        return None
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                out[member.serialization.get("name", name)] = to_json(member, value[name], fmt_default)
        return out
    if kind == "list":
        return [to_json(shape.member, item, fmt_default) for item in value]
    if kind == "map":
        return {k: to_json(shape.value, v, fmt_default) for k, v in value.items()}
    if kind == "timestamp":
        return timestamps.format(value, shape.serialization.get("timestampFormat", fmt_default))
    if kind == "blob":
        data = value.encode() if isinstance(value, str) else value
        return base64.b64encode(data).decode()
    return value


def _dumps(document) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def serialize_rest(operation, output: dict) -> Reply:
    status = operation.http.get("responseCode", 200)
    shape = operation.output_shape
    if shape is None:
        return Reply(status, b"{}", {"Content-Type": "application/json"})
    headers = {"Content-Type": "application/json"}
    body_doc = {}
    payload_name = shape.serialization.get("payload")
    payload_bytes = None
    for name, member in shape.members.items():
        value = output.get(name)
        if value is None:
            continue
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "statusCode":
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
                payload_bytes = _dumps(to_json(member, value))
        else:
            body_doc[wire] = to_json(member, value)
    if payload_name:
        return Reply(status, payload_bytes or b"", headers)
    return Reply(status, _dumps(body_doc), headers)


def serialize_json(operation, output: dict) -> Reply:
    shape = operation.output_shape
    document = to_json(shape, output) if shape is not None else {}
    return Reply(200, _dumps(document), {"Content-Type": "application/x-amz-json-1.1"})


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
    return Reply(status, _dumps(document), headers)
