"""The command resource: CreateCommand, GetCommand, UpdateCommand, DeleteCommand, ListCommands.

What AWS documents and this follows:

- namespace `AWS-IoT` (the default) takes exactly one of a static `payload`
  (any bytes up to 32 KB, `contentType` in type/subtype form, default
  `application/octet-stream`) or a dynamic `payloadTemplate` (valid JSON with
  at least one `${aws:iot:commandexecution::...}` placeholder, which needs a
  `preprocessor`); `roleArn` is refused there. `AWS-IoT-FleetWise` needs a
  `roleArn`.
- mandatory parameters: unique names, a `value`/`defaultValue` holds exactly
  one typed member matching `type`; value conditions are refused on BOOLEAN
  and BINARY, STRING takes only EQUALS, NOT_EQUALS, IN_SET and NOT_IN_SET.
  Conditions are evaluated when an execution starts (executions.py).
- the payload can't change; UpdateCommand edits displayName and description
  and deprecates or restores. A deprecated command can't be edited (restore
  it in the same call) nor start executions.
- DeleteCommand: a command deprecated for longer than the maximum execution
  timeout (12 hours) goes at once (204); otherwise it is pending deletion
  (202) and goes 12 hours after it was deprecated, or after the delete call
  when it was not deprecated. ListCommands leaves pending deletions out;
  GetCommand still shows them. Deleting a missing command answers 204.
"""

from __future__ import annotations

import base64
import json
import re
from decimal import Decimal, InvalidOperation

from localiot.protocol.errors import ServiceError, not_found
from localiot.services import operation
from localiot.services.common import apply_tags, page_list, tags_to_dict
from localiot.services.tagging import taggable

KIND = "command"
NAMESPACES = ("AWS-IoT", "AWS-IoT-FleetWise")
DEFAULT_NAMESPACE = "AWS-IoT"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_PAYLOAD_BYTES = 32 * 1024
MAX_TIMEOUT_SECONDS = 12 * 3600  # the maximum execution timeout, also the deletion delay
DEFAULT_PAGE_SIZE = 25

# CommandParameterType -> the CommandParameterValue member holding it.
TYPE_KEYS = {"STRING": "S", "INTEGER": "I", "LONG": "L", "DOUBLE": "D", "UNSIGNEDLONG": "UL",
             "BOOLEAN": "B", "BINARY": "BIN"}
KEY_TYPES = {v: k for k, v in TYPE_KEYS.items()}
NUMERIC_TYPES = ("INTEGER", "LONG", "DOUBLE", "UNSIGNEDLONG")
STRING_OPERATORS = ("EQUALS", "NOT_EQUALS", "IN_SET", "NOT_IN_SET")
SCALAR_OPERATORS = ("EQUALS", "NOT_EQUALS", "LESS_THAN", "LESS_THAN_EQUALS", "GREATER_THAN", "GREATER_THAN_EQUALS")
SET_OPERATORS = ("IN_SET", "NOT_IN_SET")
RANGE_OPERATORS = ("IN_RANGE", "NOT_IN_RANGE")

PLACEHOLDER = re.compile(r"\$\{aws:iot:commandexecution::([^}]*)\}")
TIMEOUT_PLACEHOLDER = "executionTimeoutSec"
PARAMETER_PREFIX = "parameter:"
CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$")

# Every command and execution registers its (account, region) here, so the
# timer can reach them all (the same cross-account scope certificates use).
GLOBAL = ("global", "global")
SCOPES = "command-scopes"


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def conflict(message: str, resource_id: str | None = None) -> ServiceError:
    return ServiceError("ConflictException", message, resourceId=resource_id)


def register_scope(tx) -> None:
    tx.scope(*GLOBAL).link(SCOPES, "all", f"{tx.account}/{tx.region}")


# blobs in stored documents ---------------------------------------------------
# The store keeps JSON, so bytes (payload content, BIN parameter values) are
# kept as {"$bin": base64} and turned back into bytes on the way out.
def to_store(value):
    if isinstance(value, (bytes, bytearray)):
        return {"$bin": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: to_store(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_store(v) for v in value]
    return value


def from_store(value):
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return base64.b64decode(value["$bin"])
        return {k: from_store(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_store(v) for v in value]
    return value


# commands in the store ---------------------------------------------------------
def arn(ctx, command_id: str) -> str:
    return ctx.arn(f"command/{command_id}")


def _index(command: dict) -> dict:
    return {
        "namespace": command["namespace"],
        "param": [p["name"] for p in command.get("mandatoryParameters") or []],
        "pendingDeletion": "1" if command.get("pendingDeletion") else None,
    }


def save(tx, command: dict) -> None:
    tx.put(KIND, command["commandId"], command, _index(command))


def purge(tx, command: dict) -> None:
    tx.delete(KIND, command["commandId"])
    tx.drop_tags(command["commandArn"])


def load(ctx, command_id: str, now: float | None = None) -> dict | None:
    """The stored command, or None; a pending deletion whose time has come goes now."""
    command = ctx.tx.get(KIND, command_id)
    if command is None:
        return None
    now = ctx.now() if now is None else now
    if command.get("pendingDeletion") and now >= command["deleteAt"]:
        purge(ctx.tx, command)
        return None
    return command


def get(ctx, command_id: str) -> dict:
    command = load(ctx, command_id)
    if command is None:
        raise not_found(f"Command {command_id} does not exist.")
    return command


def finish_deletions(tx, now: float) -> int:
    """Remove the pending deletions whose time has come (the timer calls this)."""
    done = 0
    for _, command in tx.find(KIND, "pendingDeletion", "1"):
        if now >= command["deleteAt"]:
            purge(tx, command)
            done += 1
    return done


taggable("command", lambda tx, command_id: tx.get(KIND, command_id) is not None)


# parameters ------------------------------------------------------------------
def value_type(value: dict) -> str:
    """The CommandParameterType of a CommandParameterValue (exactly one member set)."""
    present = [k for k, v in (value or {}).items() if v is not None]
    if len(present) != 1 or present[0] not in KEY_TYPES:
        raise validation("A command parameter value must have exactly one of S, B, I, L, D, BIN or UL set.")
    return KEY_TYPES[present[0]]


def check_value(name: str, declared: str | None, value: dict) -> str:
    kind = value_type(value)
    if declared and declared != kind:
        raise validation(f"The value of parameter {name} must be of type {declared}, not {kind}.")
    raw = value[TYPE_KEYS[kind]]
    if kind == "INTEGER" and not -2**31 <= raw < 2**31:
        raise validation(f"The value of parameter {name} does not fit a 32-bit integer.")
    if kind == "LONG" and not -2**63 <= raw < 2**63:
        raise validation(f"The value of parameter {name} does not fit a 64-bit integer.")
    if kind == "UNSIGNEDLONG" and (not raw.isdigit() or int(raw) >= 2**64):
        raise validation(f"The value of parameter {name} is not an unsigned 64-bit integer.")
    return kind


def _number(text: str, name: str) -> Decimal:
    try:
        number = Decimal(text)
    except (InvalidOperation, TypeError):
        raise validation(f"The operand {text!r} of parameter {name} is not a number.") from None
    if not number.is_finite():
        raise validation(f"The operand {text!r} of parameter {name} is not a number.")
    return number


def _check_condition(name: str, kind: str | None, condition: dict) -> None:
    op = condition["comparisonOperator"]
    operand = {k: v for k, v in (condition.get("operand") or {}).items() if v is not None}
    if kind is None:
        raise validation(f"Parameter {name} needs a type to have value conditions.")
    if kind in ("BOOLEAN", "BINARY"):
        raise validation(f"Value conditions are not supported for {kind} parameter {name}.")
    if kind == "STRING":
        if op not in STRING_OPERATORS:
            raise validation(f"Comparison operator {op} is not supported for STRING parameter {name}.")
        wanted = "strings" if op in SET_OPERATORS else "string"
    else:
        wanted = "numbers" if op in SET_OPERATORS else "numberRange" if op in RANGE_OPERATORS else "number"
    if set(operand) != {wanted}:
        raise validation(f"Comparison operator {op} of parameter {name} needs exactly the operand {wanted}.")
    if kind != "STRING":
        if wanted == "number":
            _number(operand["number"], name)
        elif wanted == "numbers":
            if not operand["numbers"]:
                raise validation(f"The operand numbers of parameter {name} must not be empty.")
            for text in operand["numbers"]:
                _number(text, name)
        else:
            low = _number(operand["numberRange"]["min"], name)
            high = _number(operand["numberRange"]["max"], name)
            if low > high:
                raise validation(f"The numberRange of parameter {name} has min greater than max.")
    elif wanted == "strings" and not operand["strings"]:
        raise validation(f"The operand strings of parameter {name} must not be empty.")


def _numeric(kind: str, raw) -> Decimal:
    if kind == "DOUBLE":
        return Decimal(repr(float(raw)))
    return Decimal(int(raw))


def satisfies(kind: str, raw, condition: dict) -> bool:
    op = condition["comparisonOperator"]
    operand = condition["operand"]
    if kind == "STRING":
        if op in SET_OPERATORS:
            inside = raw in operand["strings"]
            return inside if op == "IN_SET" else not inside
        return (raw == operand["string"]) if op == "EQUALS" else (raw != operand["string"])
    value = _numeric(kind, raw)
    if op in SET_OPERATORS:
        inside = any(value == Decimal(n) for n in operand["numbers"])
        return inside if op == "IN_SET" else not inside
    if op in RANGE_OPERATORS:
        span = operand["numberRange"]
        inside = Decimal(span["min"]) <= value <= Decimal(span["max"])
        return inside if op == "IN_RANGE" else not inside
    other = Decimal(operand["number"])
    return {
        "EQUALS": value == other, "NOT_EQUALS": value != other,
        "LESS_THAN": value < other, "LESS_THAN_EQUALS": value <= other,
        "GREATER_THAN": value > other, "GREATER_THAN_EQUALS": value >= other,
    }[op]


def _check_parameters(parameters: list[dict]) -> None:
    seen = set()
    for parameter in parameters:
        name = parameter["name"]
        if name in seen:
            raise validation(f"Duplicate parameter name {name} in mandatoryParameters.")
        seen.add(name)
        kind = parameter.get("type")
        for key in ("value", "defaultValue"):
            if parameter.get(key) is not None:
                found = check_value(name, kind, parameter[key])
                kind = kind or found
        for condition in parameter.get("valueConditions") or []:
            _check_condition(name, kind, condition)


# payload templates -------------------------------------------------------------
def placeholders(template: str) -> list[str]:
    """The parameter names a template's placeholders use (validating every placeholder)."""
    names = []
    for match in PLACEHOLDER.finditer(template):
        inner = match.group(1)
        if inner == TIMEOUT_PLACEHOLDER:
            continue
        if inner.startswith(PARAMETER_PREFIX) and inner[len(PARAMETER_PREFIX):]:
            names.append(inner[len(PARAMETER_PREFIX):])
            continue
        raise validation(f"Unsupported placeholder {match.group(0)} in payloadTemplate.")
    return names


def _check_template(template: str, preprocessor: dict | None, parameters: list[dict]) -> None:
    if preprocessor is None or not preprocessor.get("awsJsonSubstitution"):
        raise validation("A preprocessor is required with a payloadTemplate.")
    if len(template.encode()) > MAX_PAYLOAD_BYTES:
        raise validation(f"The payloadTemplate must not exceed {MAX_PAYLOAD_BYTES} bytes.")
    try:
        json.loads(template)
    except ValueError:
        raise validation("The payloadTemplate must be valid JSON.") from None
    if not PLACEHOLDER.search(template):
        raise validation("The payloadTemplate must contain at least one placeholder.")
    declared = {p["name"] for p in parameters}
    for name in placeholders(template):
        if name not in declared:
            raise validation(f"Placeholder parameter {name} of the payloadTemplate is not in mandatoryParameters.")


# handlers ----------------------------------------------------------------------
@operation("iot")
def CreateCommand(ctx, req):
    command_id = req["commandId"]
    if load(ctx, command_id) is not None:
        raise conflict(f"Command {command_id} already exists.", command_id)
    namespace = req.get("namespace") or DEFAULT_NAMESPACE
    payload = req.get("payload")
    template = req.get("payloadTemplate")
    preprocessor = req.get("preprocessor")
    parameters = req.get("mandatoryParameters") or []
    role_arn = req.get("roleArn")
    if namespace == "AWS-IoT":
        if role_arn:
            raise validation("roleArn is not supported for commands in the AWS-IoT namespace.")
        if (payload is None) == (template is None):
            raise validation("Exactly one of payload or payloadTemplate is required in the AWS-IoT namespace.")
    elif not role_arn:
        raise validation("roleArn is required for commands in the AWS-IoT-FleetWise namespace.")
    if payload is not None and template is not None:
        raise validation("Specify either payload or payloadTemplate, not both.")
    if preprocessor is not None and template is None:
        raise validation("A preprocessor can only be used with a payloadTemplate.")
    _check_parameters(parameters)
    stored_payload = None
    if payload is not None:
        content = payload.get("content")
        if content is None:
            raise validation("The payload content is required.")
        if len(content) > MAX_PAYLOAD_BYTES:
            raise validation(f"The payload must not exceed {MAX_PAYLOAD_BYTES} bytes.")
        content_type = payload.get("contentType") or DEFAULT_CONTENT_TYPE
        if not CONTENT_TYPE.match(content_type):
            raise validation(f"The payload contentType {content_type} is not in type/subtype format.")
        stored_payload = {"content": content, "contentType": content_type}
    if template is not None:
        _check_template(template, preprocessor, parameters)
    now = ctx.now()
    command = {
        "commandId": command_id,
        "commandArn": arn(ctx, command_id),
        "namespace": namespace,
        "displayName": req.get("displayName"),
        "description": req.get("description"),
        "payload": stored_payload,
        "payloadTemplate": template,
        "preprocessor": preprocessor,
        "mandatoryParameters": parameters or None,
        "roleArn": role_arn,
        "createdAt": now,
        "lastUpdatedAt": now,
        "deprecated": False,
        "deprecatedAt": None,
        "pendingDeletion": False,
        "deleteAt": None,
    }
    save(ctx.tx, to_store(command))
    register_scope(ctx.tx)
    if req.get("tags"):
        apply_tags(ctx, command["commandArn"], tags_to_dict(req["tags"]))
    return {"commandId": command_id, "commandArn": command["commandArn"]}


@operation("iot")
def GetCommand(ctx, req):
    command = from_store(get(ctx, req["commandId"]))
    keys = ("commandId", "commandArn", "namespace", "displayName", "description", "mandatoryParameters",
            "payload", "payloadTemplate", "preprocessor", "roleArn", "createdAt", "lastUpdatedAt",
            "deprecated", "pendingDeletion")
    return {k: command.get(k) for k in keys}


@operation("iot")
def UpdateCommand(ctx, req):
    command_id = req["commandId"]
    command = get(ctx, command_id)
    if command.get("pendingDeletion"):
        raise conflict(f"Command {command_id} is pending deletion and can't be updated.", command_id)
    deprecated = req.get("deprecated")
    edits = {k: req[k] for k in ("displayName", "description") if req.get(k) is not None}
    if command["deprecated"] and deprecated is not False and edits:
        raise conflict(f"Command {command_id} is deprecated; restore it before editing it.", command_id)
    now = ctx.now()
    changed = False
    for key, value in edits.items():
        if command.get(key) != value:
            command[key] = value
            changed = True
    if deprecated is not None and deprecated != command["deprecated"]:
        command["deprecated"] = deprecated
        command["deprecatedAt"] = now if deprecated else None
        changed = True
    if changed:
        command["lastUpdatedAt"] = now
        save(ctx.tx, command)
    return {k: command.get(k) for k in ("commandId", "displayName", "description", "deprecated", "lastUpdatedAt")}


@operation("iot")
def DeleteCommand(ctx, req):
    command_id = req["commandId"]
    command = load(ctx, command_id)
    if command is None:
        return {"statusCode": 204}
    now = ctx.now()
    if command["deprecated"] and now - command["deprecatedAt"] >= MAX_TIMEOUT_SECONDS:
        purge(ctx.tx, command)
        return {"statusCode": 204}
    if not command.get("pendingDeletion"):
        start = command["deprecatedAt"] if command["deprecated"] else now
        command.update(pendingDeletion=True, deleteAt=start + MAX_TIMEOUT_SECONDS, lastUpdatedAt=now)
        save(ctx.tx, command)
        register_scope(ctx.tx)
    return {"statusCode": 202}


def summary(command: dict) -> dict:
    keys = ("commandArn", "commandId", "displayName", "deprecated", "createdAt", "lastUpdatedAt", "pendingDeletion")
    return {k: command.get(k) for k in keys}


@operation("iot")
def ListCommands(ctx, req):
    namespace = req.get("namespace")
    parameter = req.get("commandParameterName")
    if parameter:
        rows = ctx.tx.find(KIND, "param", parameter)
    elif namespace:
        rows = ctx.tx.find(KIND, "namespace", namespace)
    else:
        rows = ctx.tx.scan(KIND)
    commands = [doc for _, doc in rows
                if not doc.get("pendingDeletion") and (namespace is None or doc["namespace"] == namespace)]
    descending = req.get("sortOrder", "DESCENDING") == "DESCENDING"

    def key(command):
        return (command["createdAt"], command["commandId"])

    commands.sort(key=key, reverse=descending)
    items, token = page_list(commands, req, key, descending=descending, default_size=DEFAULT_PAGE_SIZE)
    return {"commands": [summary(c) for c in items], "nextToken": token}
