"""Functions that read the message context or call out through EvalContext hooks."""

from __future__ import annotations

import base64
import json
from typing import Any

from localiot.iotsql import values as v
from localiot.iotsql.errors import SqlEvaluationError
from localiot.iotsql.registry import call_hook, fn, literal_string
from localiot.iotsql.values import UNDEFINED, Binary
from localiot.protocol import jsontext

U = UNDEFINED


def _optional(value: Any) -> Any:
    return U if value is None else value


@fn("accountid", 0)
def _accountid(env: Any, args: list[Any]) -> Any:
    return _optional(env.ctx.account)


@fn("clientid", 0)
def _clientid(env: Any, args: list[Any]) -> Any:
    return env.ctx.client_id if env.ctx.client_id is not None else "n/a"


@fn("principal", 0)
def _principal(env: Any, args: list[Any]) -> Any:
    return _optional(env.ctx.principal)


@fn("traceid", 0)
def _traceid(env: Any, args: list[Any]) -> Any:
    return _optional(env.ctx.trace_id)


@fn("sourceip", 0, v2=True)
def _sourceip(env: Any, args: list[Any]) -> Any:
    return _optional(env.ctx.source_ip)


@fn("timestamp", 0)
def _timestamp(env: Any, args: list[Any]) -> Any:
    return env.now_ms


@fn("newuuid", 0)
def _newuuid(env: Any, args: list[Any]) -> Any:
    return str(env.ctx.uuid_factory())


@fn("rand", 0)
def _rand(env: Any, args: list[Any]) -> Any:
    return env.numbers.from_float(float(env.ctx.random()))


@fn("sql_version", 0)
def _sql_version(env: Any, args: list[Any]) -> Any:
    return env.version


@fn("topic", 0, 1)
def _topic(env: Any, args: list[Any]) -> Any:
    topic = env.ctx.topic
    if not topic:
        return U
    if not args:
        return topic
    index = v.to_int(args[0])
    levels = topic.split("/")
    if index is None or not 1 <= index <= len(levels):
        return U
    return levels[index - 1]


MQTT_PROPERTIES = ("content_type", "format_indicator", "response_topic", "correlation_data")


@fn("get_mqtt_property", 1, v2=True, check=literal_string(0, MQTT_PROPERTIES))
def _get_mqtt_property(env: Any, args: list[Any]) -> Any:
    ctx, name = env.ctx, args[0]
    if name == "format_indicator":
        indicator = ctx.mqtt_property("payload_format_indicator")
        if indicator is None:
            return U
        return "UTF8_DATA" if indicator == 1 else "UNSPECIFIED_BYTES"
    if name == "correlation_data":
        data = ctx.mqtt_property("correlation_data")
        if data is None:
            return U
        if isinstance(data, str):
            data = data.encode("utf-8")
        return base64.b64encode(bytes(data)).decode("ascii")
    return _optional(ctx.mqtt_property(name))     # content_type, response_topic


@fn("get_user_properties", 1, v2=True)
def _get_user_properties(env: Any, args: list[Any]) -> Any:
    key = v.to_string(args[0]) if not isinstance(args[0], Binary) else None
    if key is None:
        return U
    found = [value for name, value in env.ctx.user_property_pairs() if name == key]
    return found if found else U


@fn("get_or_default", 1, 2, v2=True, lazy=True)
def _get_or_default(env: Any, nodes: list[Any]) -> Any:
    try:
        value = nodes[0].eval(env)
    except SqlEvaluationError:
        value = U
    if value is U or value is None:
        return nodes[1].eval(env) if len(nodes) == 2 else U
    return value


@fn("transform", 3, v2=True)
def _transform(env: Any, args: list[Any]) -> Any:
    mode, attributes, array = args
    if mode != "enrichArray" or not isinstance(attributes, dict) or not isinstance(array, list):
        return U
    return [{**element, **attributes} if isinstance(element, dict) else element for element in array]


# ---------------------------------------------------------------------------
# Hooks
# ---------------------------------------------------------------------------


def _text(value: Any, function: str, what: str) -> str:
    text = None if isinstance(value, Binary) else v.to_string(value)
    if text is None:
        raise SqlEvaluationError(f"{function}(): {what} must be a string, got {v.kind(value)}")
    return text


def plain(value: Any) -> Any:
    """An SQL value as plain JSON-able Python (what a hook receives)."""
    if isinstance(value, Binary):
        raise SqlEvaluationError("a binary payload cannot be passed as JSON: use encode(*, 'base64')")
    if value is U:
        return None
    return json.loads(v.dumps(value))


@fn("aws_lambda", 2, v2=True)
def _aws_lambda(env: Any, args: list[Any]) -> Any:
    arn = _text(args[0], "aws_lambda", "the function ARN")
    result = call_hook(env, "lambda_invoke", "aws_lambda", arn, plain(args[1]))
    return v.from_python(result, env.numbers)


def _dynamodb_check(args: list) -> str | None:
    return None if len(args) in (4, 6) else "takes 4 arguments (partition key only) or 6 (with a sort key)"


@fn("get_dynamodb", 4, 6, v2=True, check=_dynamodb_check)
def _get_dynamodb(env: Any, args: list[Any]) -> Any:
    table = _text(args[0], "get_dynamodb", "tableName")
    key = {_text(args[1], "get_dynamodb", "partitionKeyName"): plain(args[2])}
    if len(args) == 6:
        key[_text(args[3], "get_dynamodb", "sortKeyName")] = plain(args[4])
    role = _text(args[-1], "get_dynamodb", "roleArn")
    if any(value is None for value in key.values()):
        return U
    item = call_hook(env, "get_dynamodb", "get_dynamodb", table, key, role)
    return U if item is None else v.from_python(item, env.numbers)


@fn("get_thing_shadow", 2, 3, v2=True)
def _get_thing_shadow(env: Any, args: list[Any]) -> Any:
    thing = _text(args[0], "get_thing_shadow", "thingName")
    shadow = _text(args[1], "get_thing_shadow", "shadowName") if len(args) == 3 else None
    role = _text(args[-1], "get_thing_shadow", "roleArn")
    document = call_hook(env, "thing_shadow_lookup", "get_thing_shadow", thing, shadow, role)
    return U if document is None else v.from_python(document, env.numbers)


@fn("get_secret", 3, 4, v2=True)
def _get_secret(env: Any, args: list[Any]) -> Any:
    secret_id = _text(args[0], "get_secret", "secretId")
    secret_type = _text(args[1], "get_secret", "secretType")
    if secret_type not in ("SecretString", "SecretBinary"):
        raise SqlEvaluationError("get_secret(): secretType must be 'SecretString' or 'SecretBinary'")
    key = _text(args[2], "get_secret", "key") if len(args) == 4 else None
    role = _text(args[-1], "get_secret", "roleArn")
    secret = call_hook(env, "get_secret", "get_secret", secret_id, secret_type, role)
    if secret is None:
        raise SqlEvaluationError(f"get_secret(): secret {secret_id!r} has no {secret_type}")
    if secret_type == "SecretBinary":
        if key is not None:
            raise SqlEvaluationError("get_secret(): a key can only be read from a SecretString")
        data = secret if isinstance(secret, (bytes, bytearray)) else str(secret).encode("utf-8")
        return base64.b64encode(bytes(data)).decode("ascii")
    text = secret.decode("utf-8") if isinstance(secret, (bytes, bytearray)) else str(secret)
    if key is None:
        return text
    try:
        document = jsontext.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict) or key not in document:
        raise SqlEvaluationError(f"get_secret(): the SecretString of {secret_id!r} is not a JSON object "
                                 f"with the key {key!r}")
    return v.from_python(document[key], env.numbers)


REGISTRY_APIS = ("DescribeThing", "ListThingGroupsForThing")


@fn("get_registry_data", 3, v2=True)
def _get_registry_data(env: Any, args: list[Any]) -> Any:
    api = _text(args[0], "get_registry_data", "registryAPI")
    if api not in REGISTRY_APIS:
        raise SqlEvaluationError(f"get_registry_data(): registryAPI must be one of {', '.join(REGISTRY_APIS)}")
    thing = _text(args[1], "get_registry_data", "thingName")
    role = _text(args[2], "get_registry_data", "roleArn")
    data = call_hook(env, "get_registry_data", "get_registry_data", api, thing, role)
    return U if data is None else v.from_python(data, env.numbers)
