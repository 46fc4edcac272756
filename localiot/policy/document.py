"""Parse and grammar-check an AWS IoT policy document.

An IoT policy is an IAM-style JSON document:

    {"Version": "2012-10-17",
     "Statement": [{"Sid": "...", "Effect": "Allow" | "Deny",
                    "Action" | "NotAction": "iot:Publish" | [...],
                    "Resource" | "NotResource": "arn:aws:iot:..." | [...],
                    "Condition": {"StringEquals": {"iot:ClientId": "a"}}}]}

`parse_policy(text)` returns a `PolicyDocument` or raises `PolicyError` (a
ValueError) whose message says what is wrong; the API handlers turn it into
MalformedPolicyException. The size limit is the API's: at least 1 and at
most 2048 characters once whitespace is removed.

Only the structure is checked here. Condition values are compared at
evaluation time, where a value of the wrong type simply does not match (as
IAM evaluates them); policy variables (`${iot:ClientId}`) are resolved at
evaluation time as well, and only for Version 2012-10-17 (for 2008-10-17, or
no Version, IAM treats `${...}` as literal text).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_SIZE = 2048  # characters, whitespace excluded (API reference, CreatePolicy)
VERSIONS = ("2012-10-17", "2008-10-17")
VARIABLES_VERSION = "2012-10-17"

_STRING_OPS = (
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
    "StringLike", "StringNotLike",
)
_NUMERIC_OPS = (
    "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
    "NumericGreaterThan", "NumericGreaterThanEquals",
)
_DATE_OPS = (
    "DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals",
    "DateGreaterThan", "DateGreaterThanEquals",
)
_OTHER_OPS = ("Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike")
# Canonical spelling by lower-case name; `Null` takes no IfExists suffix.
OPERATORS = {op.lower(): op for op in (*_STRING_OPS, *_NUMERIC_OPS, *_DATE_OPS, *_OTHER_OPS)}
QUALIFIERS = {"foranyvalue": "ForAnyValue", "forallvalues": "ForAllValues"}

_ACTION = re.compile(r"^[A-Za-z0-9-]+:[A-Za-z0-9*?_.-]+$")
_WHITESPACE = re.compile(r"\s+")


class PolicyError(ValueError):
    """The document is not a valid policy; the message says why."""


@dataclass(frozen=True)
class Condition:
    operator: str  # canonical base operator: "StringEquals", "Null", ...
    key: str  # condition key as written: "iot:ClientId"
    values: tuple[str, ...]  # policy values as strings ("true", "10", ...)
    qualifier: str | None = None  # "ForAnyValue" | "ForAllValues"
    if_exists: bool = False

    @property
    def label(self) -> str:
        prefix = f"{self.qualifier}:" if self.qualifier else ""
        return f"{prefix}{self.operator}{'IfExists' if self.if_exists else ''}"


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_action: bool = False
    not_resource: bool = False
    conditions: tuple[Condition, ...] = ()
    sid: str | None = None


@dataclass(frozen=True)
class PolicyDocument:
    version: str | None
    statements: tuple[Statement, ...]
    id: str | None = None

    @property
    def variables_enabled(self) -> bool:
        return self.version == VARIABLES_VERSION


def size_of(text: str) -> int:
    """The document's size as AWS counts it: whitespace excluded."""
    return len(_WHITESPACE.sub("", text))


def _reject_constant(value: str):
    raise PolicyError(f"Policy document is not valid JSON: unsupported value {value}")


def parse_policy(text: str | dict) -> PolicyDocument:
    """Parse a policy document (JSON text, or an already-loaded dict)."""
    if isinstance(text, str):
        size = size_of(text)
        if size < 1:
            raise PolicyError("Policy document must not be empty.")
        if size > MAX_SIZE:
            raise PolicyError(
                f"Policy document size {size} exceeds the maximum of {MAX_SIZE} characters (whitespace excluded)."
            )
        try:
            raw = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as error:
            raise PolicyError(f"Policy document is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}.") from None
    else:
        raw = text
    if not isinstance(raw, dict):
        raise PolicyError("Policy document must be a JSON object.")
    unknown = sorted(set(raw) - {"Version", "Id", "Statement"})
    if unknown:
        raise PolicyError(f"Policy document has an unsupported element: {unknown[0]}.")
    version = raw.get("Version")
    if version is not None and version not in VERSIONS:
        raise PolicyError(f"Policy document has an invalid Version {json.dumps(version)}: use one of {', '.join(VERSIONS)}.")
    policy_id = raw.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise PolicyError("Policy Id must be a string.")
    if "Statement" not in raw:
        raise PolicyError("Policy document is missing the required element Statement.")
    statements = raw["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise PolicyError("Statement must be an object or a list of objects.")
    if not statements:
        raise PolicyError("Policy document must contain at least one statement.")
    parsed = tuple(_statement(s, i) for i, s in enumerate(statements))
    return PolicyDocument(version=version, statements=parsed, id=policy_id)


def _statement(raw, index: int) -> Statement:
    where = f"Statement {index + 1}"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be a JSON object.")
    for element in ("Principal", "NotPrincipal"):
        if element in raw:
            raise PolicyError(f"{where}: AWS IoT policies do not support the {element} element.")
    unknown = sorted(set(raw) - {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"})
    if unknown:
        raise PolicyError(f"{where} has an unsupported element: {unknown[0]}.")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(f"{where}: Sid must be a string.")
    if sid:
        where = f"Statement {sid!r}"
    effect = raw.get("Effect")
    if effect is None:
        raise PolicyError(f"{where} is missing the required element Effect.")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"{where}: Effect must be \"Allow\" or \"Deny\", not {json.dumps(effect)}.")
    actions, not_action = _exclusive(raw, "Action", "NotAction", where)
    for action in actions:
        if action != "*" and not _ACTION.match(action):
            raise PolicyError(
                f"{where}: invalid action {json.dumps(action)}: an action is \"*\" or "
                f"\"<service>:<action>\" (for example \"iot:Publish\" or \"iot:*\")."
            )
    resources, not_resource = _exclusive(raw, "Resource", "NotResource", where)
    for resource in resources:
        if resource != "*" and not (resource.startswith("arn:") and resource.count(":") >= 5):
            raise PolicyError(
                f"{where}: resource {json.dumps(resource)} must be \"*\" or an ARN "
                f"(arn:partition:service:region:account:resource)."
            )
    conditions = _conditions(raw.get("Condition"), where) if "Condition" in raw else ()
    return Statement(
        effect=effect, actions=actions, resources=resources, not_action=not_action,
        not_resource=not_resource, conditions=conditions, sid=sid,
    )


def _exclusive(raw: dict, name: str, not_name: str, where: str) -> tuple[tuple[str, ...], bool]:
    if name in raw and not_name in raw:
        raise PolicyError(f"{where} cannot have both {name} and {not_name}.")
    if name not in raw and not_name not in raw:
        raise PolicyError(f"{where} is missing the required element {name} (or {not_name}).")
    element = name if name in raw else not_name
    value = raw[element]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: {element} must be a string or a list of strings.")
    if not value:
        raise PolicyError(f"{where}: {element} must not be empty.")
    if any(not v for v in value):
        raise PolicyError(f"{where}: {element} must not contain an empty string.")
    return tuple(value), element == not_name


def _scalar(value) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    return None


def split_operator(name: str) -> tuple[str | None, str, bool] | None:
    """`ForAnyValue:StringLikeIfExists` -> ("ForAnyValue", "StringLike", True); None if unknown."""
    qualifier = None
    if ":" in name:
        prefix, _, name = name.partition(":")
        qualifier = QUALIFIERS.get(prefix.lower())
        if qualifier is None:
            return None
    lower = name.lower()
    if lower == "null":
        return qualifier, "Null", False
    if_exists = lower.endswith("ifexists")
    if if_exists:
        lower = lower[: -len("ifexists")]
    base = OPERATORS.get(lower)
    if base is None:
        return None
    return qualifier, base, if_exists


def _conditions(raw, where: str) -> tuple[Condition, ...]:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: Condition must be a JSON object of condition operators.")
    out = []
    for op_name, block in raw.items():
        split = split_operator(op_name)
        if split is None:
            raise PolicyError(f"{where}: unknown condition operator {json.dumps(op_name)}.")
        qualifier, base, if_exists = split
        if not isinstance(block, dict) or not block:
            raise PolicyError(f"{where}: condition operator {op_name} must map condition keys to values.")
        for key, values in block.items():
            if not key:
                raise PolicyError(f"{where}: condition operator {op_name} has an empty condition key.")
            if not isinstance(values, list):
                values = [values]
            strings = [_scalar(v) for v in values]
            if not strings or any(s is None for s in strings):
                raise PolicyError(
                    f"{where}: the value of condition key {key} under {op_name} must be a string, "
                    "number, boolean or a non-empty list of them."
                )
            if base == "Null" and any(s.lower() not in ("true", "false") for s in strings):
                raise PolicyError(f"{where}: the Null condition operator takes \"true\" or \"false\".")
            out.append(Condition(operator=base, key=key, values=tuple(strings), qualifier=qualifier, if_exists=if_exists))
    return tuple(out)
