"""Provisioning templates: check a template body once, evaluate it per device.

    parsed = validate_template(body)              # raises TemplateError
    plan = evaluate(parsed, {"SerialNumber": "42"}, region=..., account=...)
    plan.thing, plan.certificate, plan.policies, plan.device_configuration

No store and no I/O: `localiot.provisioning.apply` carries a plan out.

The grammar is the AWS IoT Developer Guide's "Provisioning templates" chapter:
Parameters (Type, Default), Mappings, Conditions, Resources of type
AWS::IoT::Thing / AWS::IoT::Certificate / AWS::IoT::Policy with
OverrideSettings, DeviceConfiguration, and the CloudFormation-style intrinsic
functions Ref, Fn::Join, Fn::Select, Fn::Split, Fn::FindInMap, Fn::Sub,
Fn::If, Fn::Equals, Fn::Not, Fn::And, Fn::Or.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

THING = "AWS::IoT::Thing"
CERTIFICATE = "AWS::IoT::Certificate"
POLICY = "AWS::IoT::Policy"
RESOURCE_TYPES = (THING, CERTIFICATE, POLICY)

SECTIONS = ("Parameters", "Mappings", "Conditions", "Resources", "DeviceConfiguration")
# Sections a template may carry that do not change what gets provisioned.
IGNORED_SECTIONS = ("AWSTemplateFormatVersion", "Version", "Description", "Metadata", "Outputs")

# Filled by the service from the device's certificate (JITP, fleet provisioning);
# a template may reference them without declaring them.
CERTIFICATE_PARAMETER_PREFIX = "AWS::IoT::Certificate::"
CERTIFICATE_PARAMETERS = (
    "AWS::IoT::Certificate::Id",
    "AWS::IoT::Certificate::CommonName",
    "AWS::IoT::Certificate::Country",
    "AWS::IoT::Certificate::Organization",
    "AWS::IoT::Certificate::OrganizationalUnit",
    "AWS::IoT::Certificate::DistinguishedNameQualifier",
    "AWS::IoT::Certificate::StateName",
    "AWS::IoT::Certificate::SerialNumber",
)
NO_VALUE = "AWS::NoValue"
PSEUDO_PARAMETERS = ("AWS::Region", "AWS::AccountId", "AWS::Partition", NO_VALUE)

PARAMETER_TYPES = ("String", "Number", "CommaDelimitedList", "List<Number>")
PARAMETER_KEYS = (
    "Type", "Default", "Description", "AllowedValues", "AllowedPattern", "MinLength", "MaxLength",
    "MinValue", "MaxValue", "ConstraintDescription", "NoEcho",
)
RESOURCE_KEYS = ("Type", "Properties", "OverrideSettings", "Condition")
PROPERTIES = {
    THING: ("ThingName", "AttributePayload", "ThingTypeName", "ThingGroups", "BillingGroup", "PackageVersions"),
    CERTIFICATE: ("CertificateId", "CertificatePem", "CACertificatePem", "CertificateSigningRequest", "Status"),
    POLICY: ("PolicyName", "PolicyDocument"),
}
# Older pages of the guide spell these differently; both mean the same property.
PROPERTY_ALIASES = {CERTIFICATE: {"CertificateID": "CertificateId"}}

DO_NOTHING, REPLACE, FAIL, MERGE = "DO_NOTHING", "REPLACE", "FAIL", "MERGE"
OVERRIDABLE = {
    THING: {"AttributePayload": (DO_NOTHING, REPLACE, FAIL, MERGE),
            "ThingTypeName": (DO_NOTHING, REPLACE, FAIL),
            "ThingGroups": (DO_NOTHING, REPLACE, FAIL, MERGE)},
    CERTIFICATE: {"Status": (DO_NOTHING, REPLACE, FAIL)},
}
OVERRIDE_ALIASES = {
    "ATTRIBUTE_PAYLOAD": "AttributePayload",
    "THING_TYPE_NAME": "ThingTypeName",
    "THING_GROUPS": "ThingGroups",
    "STATUS": "Status",
}
CERTIFICATE_STATUSES = ("ACTIVE", "INACTIVE")

FUNCTIONS = (
    "Fn::Join", "Fn::Select", "Fn::Split", "Fn::FindInMap", "Fn::Sub",
    "Fn::If", "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or",
)
CONDITION_FUNCTIONS = ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or")
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_CERTIFICATE_ID = re.compile(r"^(0x)?[a-fA-F0-9]{64}$")


class TemplateError(ValueError):
    """The template body is not a valid provisioning template."""


class EvaluationError(TemplateError):
    """The template cannot be evaluated with the given parameters."""


# parsed template -------------------------------------------------------------
@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any = None
    has_default: bool = False
    constraints: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: dict
    override_settings: dict
    condition: str | None = None


@dataclass(frozen=True)
class ParsedTemplate:
    body: dict
    parameters: dict[str, Parameter]
    mappings: dict
    conditions: dict
    resources: dict[str, Resource]
    device_configuration: Any
    referenced_parameters: frozenset[str]


# plan ------------------------------------------------------------------------
@dataclass
class ThingSpec:
    logical_id: str
    thing_name: str
    attributes: dict[str, str] | None = None
    thing_type_name: str | None = None
    thing_groups: list[str] | None = None
    billing_group: str | None = None
    package_versions: Any = None
    overrides: dict[str, str] = field(default_factory=dict)
    type: str = THING

    def override(self, prop: str) -> str:
        """What to do with `prop` when the thing already exists (default: leave it)."""
        return self.overrides.get(prop, DO_NOTHING)


@dataclass
class CertificateSpec:
    logical_id: str
    certificate_id: str | None = None
    certificate_pem: str | None = None
    ca_certificate_pem: str | None = None
    certificate_signing_request: str | None = None
    status: str = "ACTIVE"
    overrides: dict[str, str] = field(default_factory=dict)
    type: str = CERTIFICATE

    def override(self, prop: str) -> str:
        """What to do with `prop` of an existing certificate (default: apply the template)."""
        return self.overrides.get(prop, REPLACE)


@dataclass
class PolicySpec:
    logical_id: str
    policy_name: str
    policy_document: str | None = None
    named: bool = True  # False: the name is the hash of the document
    type: str = POLICY


@dataclass
class ProvisioningPlan:
    resources: list
    device_configuration: dict
    parameters: dict[str, Any]

    @property
    def thing(self) -> ThingSpec | None:
        return next((r for r in self.resources if r.type == THING), None)

    @property
    def certificate(self) -> CertificateSpec | None:
        return next((r for r in self.resources if r.type == CERTIFICATE), None)

    @property
    def policies(self) -> list[PolicySpec]:
        return [r for r in self.resources if r.type == POLICY]


# helpers ---------------------------------------------------------------------
def _intrinsic(node, conditions: bool = False) -> str | None:
    """The function name if `node` is an intrinsic function call."""
    if isinstance(node, dict) and len(node) == 1:
        (key,) = node
        if key == "Ref" or key.startswith("Fn::") or (conditions and key == "Condition"):
            return key
    return None


def _has_intrinsic(node) -> bool:
    if isinstance(node, dict):
        return _intrinsic(node) is not None or any(_has_intrinsic(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_intrinsic(v) for v in node)
    return False


def _is_pseudo(name: str) -> bool:
    return name in PSEUDO_PARAMETERS or name.startswith(CERTIFICATE_PARAMETER_PREFIX)


def _scalar_text(value, path: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str):
        return value
    raise EvaluationError(f"{path}: expected a string, got {_describe(value)}")


def _describe(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


# validation ------------------------------------------------------------------
class _Checker:
    """Static checks of one template body; collects the parameters it references."""

    def __init__(self, parameters: dict, mappings: dict, conditions: dict):
        self.parameters = parameters
        self.mappings = mappings
        self.conditions = conditions
        self.referenced: set[str] = set()
        self.condition_refs: dict[str, set[str]] = {}

    def ref(self, name, path: str) -> None:
        if not isinstance(name, str):
            raise TemplateError(f"{path}: Ref takes a parameter name, got {_describe(name)}")
        if name in self.parameters or _is_pseudo(name):
            self.referenced.add(name)
            return
        if name.startswith("AWS::"):
            raise TemplateError(f"{path}: unknown pseudo parameter '{name}'")
        raise TemplateError(f"{path}: Ref to undefined parameter '{name}'")

    def condition_name(self, name, path: str, owner: str | None = None) -> None:
        if not isinstance(name, str):
            raise TemplateError(f"{path}: a condition name must be a string, got {_describe(name)}")
        if name not in self.conditions:
            raise TemplateError(f"{path}: undefined condition '{name}'")
        if owner is not None:
            self.condition_refs.setdefault(owner, set()).add(name)

    def value(self, node, path: str, owner: str | None = None, conditions: bool = False) -> None:
        """Check a value that may contain intrinsic functions.

        `owner` names the condition being checked (to find cycles); `conditions`
        is True where {"Condition": name} is a function (inside condition functions).
        """
        if isinstance(node, list):
            for i, item in enumerate(node):
                self.value(item, f"{path}[{i}]", owner)
            return
        if not isinstance(node, dict):
            return
        fn = _intrinsic(node, conditions)
        if fn is None:
            for key, item in node.items():
                if isinstance(key, str) and key.startswith("Fn::"):
                    raise TemplateError(f"{_join(path, key)}: an intrinsic function must be the only key of its object")
                self.value(item, _join(path, key), owner)
            return
        arg = node[fn]
        where = _join(path, fn)
        if fn == "Ref":
            self.ref(arg, where)
        elif fn == "Condition":
            self.condition_name(arg, where, owner)
        elif fn not in FUNCTIONS:
            raise TemplateError(f"{where}: unsupported intrinsic function '{fn}'; supported: Ref, {', '.join(FUNCTIONS)}")
        else:
            getattr(self, "fn_" + fn[4:].lower())(arg, where, owner)

    def _args(self, arg, where: str, fn: str, count: int | tuple[int, int]) -> list:
        low, high = (count, count) if isinstance(count, int) else count
        if not isinstance(arg, list) or not low <= len(arg) <= high:
            wanted = str(low) if low == high else f"{low} to {high}"
            raise TemplateError(f"{where}: {fn} takes a list of {wanted} arguments")
        return arg

    def fn_join(self, arg, where, owner):
        delimiter, values = self._args(arg, where, "Fn::Join", 2)
        if not isinstance(delimiter, str):
            raise TemplateError(f"{where}: the Fn::Join delimiter must be a string")
        if not isinstance(values, list) and _intrinsic(values) is None:
            raise TemplateError(f"{where}: Fn::Join takes a list of values to join")
        self.value(values, f"{where}[1]", owner)

    def fn_select(self, arg, where, owner):
        index, values = self._args(arg, where, "Fn::Select", 2)
        if _intrinsic(index) is None and not (
            (isinstance(index, int) and not isinstance(index, bool)) or (isinstance(index, str) and index.isdigit())
        ):
            raise TemplateError(f"{where}: the Fn::Select index must be a non-negative integer")
        if not isinstance(values, list) and _intrinsic(values) is None:
            raise TemplateError(f"{where}: Fn::Select takes a list to select from")
        self.value(index, f"{where}[0]", owner)
        self.value(values, f"{where}[1]", owner)

    def fn_split(self, arg, where, owner):
        delimiter, source = self._args(arg, where, "Fn::Split", 2)
        if not isinstance(delimiter, str) or not delimiter:
            raise TemplateError(f"{where}: the Fn::Split delimiter must be a non-empty string")
        self.value(source, f"{where}[1]", owner)

    def fn_findinmap(self, arg, where, owner):
        keys = self._args(arg, where, "Fn::FindInMap", 3)
        for i, key in enumerate(keys):
            self.value(key, f"{where}[{i}]", owner)
        if all(isinstance(k, str) for k in keys):
            _find_in_map(self.mappings, keys, where, TemplateError)
        elif isinstance(keys[0], str) and keys[0] not in self.mappings:
            raise TemplateError(f"{where}: undefined mapping '{keys[0]}'")

    def fn_sub(self, arg, where, owner):
        if isinstance(arg, str):
            text, variables = arg, {}
        else:
            text, variables = self._args(arg, where, "Fn::Sub", 2)
            if not isinstance(text, str) or not isinstance(variables, dict):
                raise TemplateError(f"{where}: Fn::Sub takes a string, or a string and an object of variables")
        for name, value in variables.items():
            self.value(value, f"{where}[1].{name}", owner)
        for name in _SUB_VARIABLE.findall(text):
            if name.startswith("!") or name in variables:
                continue
            if "." in name and not _is_pseudo(name):
                raise TemplateError(f"{where}: '${{{name}}}' refers to a resource attribute; only parameters can be substituted")
            self.ref(name, where)

    def fn_if(self, arg, where, owner):
        name, when_true, when_false = self._args(arg, where, "Fn::If", 3)
        self.condition_name(name, f"{where}[0]", owner)
        self.value(when_true, f"{where}[1]", owner)
        self.value(when_false, f"{where}[2]", owner)

    def fn_equals(self, arg, where, owner):
        for i, item in enumerate(self._args(arg, where, "Fn::Equals", 2)):
            self.value(item, f"{where}[{i}]", owner)

    def _condition_args(self, arg, where, owner, fn, count):
        for i, item in enumerate(self._args(arg, where, fn, count)):
            self.condition(item, f"{where}[{i}]", owner)

    def fn_not(self, arg, where, owner):
        self._condition_args(arg, where, owner, "Fn::Not", 1)

    def fn_and(self, arg, where, owner):
        self._condition_args(arg, where, owner, "Fn::And", (2, 10))

    def fn_or(self, arg, where, owner):
        self._condition_args(arg, where, owner, "Fn::Or", (2, 10))

    def condition(self, node, path: str, owner: str | None) -> None:
        """A condition expression: a condition function or {"Condition": name}."""
        fn = _intrinsic(node, conditions=True)
        if fn not in CONDITION_FUNCTIONS + ("Condition",):
            raise TemplateError(
                f"{path}: a condition must be Fn::Equals, Fn::Not, Fn::And, Fn::Or or {{\"Condition\": name}}"
            )
        self.value(node, path, owner, conditions=True)


def _find_in_map(mappings: dict, keys: list, where: str, error=EvaluationError):
    map_name, top, second = keys
    if map_name not in mappings:
        raise error(f"{where}: undefined mapping '{map_name}'")
    if top not in mappings[map_name]:
        raise error(f"{where}: mapping '{map_name}' has no key '{top}'")
    if second not in mappings[map_name][top]:
        raise error(f"{where}: mapping '{map_name}' has no key '{second}' under '{top}'")
    return mappings[map_name][top][second]


def _parse_parameters(section) -> dict[str, Parameter]:
    if not isinstance(section, dict):
        raise TemplateError("Parameters must be an object")
    parameters = {}
    for name, decl in section.items():
        path = f"Parameters.{name}"
        if not name:
            raise TemplateError("Parameters: a parameter name must not be empty")
        if not isinstance(decl, dict):
            raise TemplateError(f"{path} must be an object with a Type")
        unknown = [k for k in decl if k not in PARAMETER_KEYS]
        if unknown:
            raise TemplateError(f"{path}: unknown parameter attribute '{unknown[0]}'")
        kind = decl.get("Type")
        if kind not in PARAMETER_TYPES:
            raise TemplateError(
                f"{path}.Type: " + (f"unsupported parameter type {kind!r}" if "Type" in decl else "is required")
                + f"; supported: {', '.join(PARAMETER_TYPES)}"
            )
        constraints = {k: decl[k] for k in ("AllowedValues", "AllowedPattern", "MinLength", "MaxLength",
                                              "MinValue", "MaxValue") if k in decl}
        if "AllowedValues" in constraints and not isinstance(constraints["AllowedValues"], list):
            raise TemplateError(f"{path}.AllowedValues must be a list")
        if "AllowedPattern" in constraints:
            try:
                re.compile(constraints["AllowedPattern"])
            except (re.error, TypeError) as e:
                raise TemplateError(f"{path}.AllowedPattern is not a valid pattern: {e}") from None
        for key in ("MinLength", "MaxLength", "MinValue", "MaxValue"):
            if key in constraints and (isinstance(constraints[key], bool) or not isinstance(constraints[key], (int, float))):
                raise TemplateError(f"{path}.{key} must be a number")
        param = Parameter(name, kind, decl.get("Default"), "Default" in decl, constraints)
        if param.has_default:
            if _has_intrinsic(param.default) or isinstance(param.default, (dict, bool)) or param.default is None:
                raise TemplateError(f"{path}.Default must be a literal value")
            try:
                _parameter_value(param, param.default)
            except EvaluationError as e:
                raise TemplateError(f"{path}.Default: {e}") from None
        parameters[name] = param
    return parameters


def _parse_mappings(section) -> dict:
    if not isinstance(section, dict):
        raise TemplateError("Mappings must be an object")
    for name, table in section.items():
        if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
            raise TemplateError(f"Mappings.{name} must be a two-level map of keys to named values")
        if _has_intrinsic(table):
            raise TemplateError(f"Mappings.{name}: intrinsic functions are not allowed in the Mappings section")
    return section


def _normalize_overrides(resource_type: str, settings, path: str) -> dict[str, str]:
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise TemplateError(f"{path} must be an object")
    allowed = OVERRIDABLE.get(resource_type)
    if allowed is None:
        raise TemplateError(f"{path}: OverrideSettings are not available for {resource_type} resources")
    out = {}
    for key, action in settings.items():
        prop = OVERRIDE_ALIASES.get(key, key)
        if prop not in allowed:
            raise TemplateError(
                f"{path}.{key}: {resource_type} supports OverrideSettings for {', '.join(allowed)} only"
            )
        if action not in allowed[prop]:
            raise TemplateError(f"{path}.{key}: invalid override {action!r}; valid: {', '.join(allowed[prop])}")
        out[prop] = action
    return out


def _parse_resource(logical_id: str, decl, checker: _Checker) -> Resource:
    path = f"Resources.{logical_id}"
    if not isinstance(decl, dict):
        raise TemplateError(f"{path} must be an object with a Type")
    unknown = [k for k in decl if k not in RESOURCE_KEYS]
    if unknown:
        raise TemplateError(f"{path}: unknown resource attribute '{unknown[0]}'")
    kind = decl.get("Type")
    if kind not in RESOURCE_TYPES:
        raise TemplateError(
            f"{path}.Type: " + (f"unsupported resource type {kind!r}" if "Type" in decl else "is required")
            + f"; supported: {', '.join(RESOURCE_TYPES)}"
        )
    props = decl.get("Properties", {})
    if not isinstance(props, dict):
        raise TemplateError(f"{path}.Properties must be an object")
    aliases = PROPERTY_ALIASES.get(kind, {})
    props = {aliases.get(k, k): v for k, v in props.items()}
    for key, value in props.items():
        if key not in PROPERTIES[kind]:
            raise TemplateError(f"{path}.Properties: unknown {kind} property '{key}'; valid: {', '.join(PROPERTIES[kind])}")
        checker.value(value, f"{path}.Properties.{key}")
    _check_resource_shape(kind, props, f"{path}.Properties")
    overrides = _normalize_overrides(kind, decl.get("OverrideSettings"), f"{path}.OverrideSettings")
    condition = decl.get("Condition")
    if condition is not None:
        checker.condition_name(condition, f"{path}.Condition")
    resource = Resource(logical_id, kind, props, overrides, condition)
    # Literal values are checked now, so a bad template fails when it is created.
    literal = {k: v for k, v in props.items() if not _has_intrinsic(v)}
    try:
        _build_spec(kind, logical_id, literal, overrides, partial=True)
    except EvaluationError as e:
        raise TemplateError(str(e)) from None
    return resource


def _check_resource_shape(kind: str, props: dict, path: str) -> None:
    if kind == THING and "ThingName" not in props:
        raise TemplateError(f"{path}: an AWS::IoT::Thing needs a ThingName")
    if kind == CERTIFICATE:
        given = [k for k in ("CertificateId", "CertificatePem", "CertificateSigningRequest") if k in props]
        if len(given) != 1:
            raise TemplateError(
                f"{path}: an AWS::IoT::Certificate needs exactly one of CertificateId, CertificatePem "
                f"or CertificateSigningRequest" + (f" (got {', '.join(given)})" if given else "")
            )
        if "CACertificatePem" in props and "CertificatePem" not in props:
            raise TemplateError(f"{path}: CACertificatePem can only be given with CertificatePem")
    if kind == POLICY and not ("PolicyName" in props or "PolicyDocument" in props):
        raise TemplateError(f"{path}: an AWS::IoT::Policy needs a PolicyName or a PolicyDocument")


def _condition_cycles(checker: _Checker) -> None:
    state: dict[str, int] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            loop = chain[chain.index(name):] + [name]
            raise TemplateError(f"Conditions: circular condition reference {' -> '.join(loop)}")
        state[name] = 1
        for dep in sorted(checker.condition_refs.get(name, ())):
            visit(dep, chain + [name])
        state[name] = 2

    for name in checker.conditions:
        visit(name, [])


def validate_template(body: str) -> ParsedTemplate:
    """Parse and check a template body. Raises TemplateError saying what is wrong and where."""
    if isinstance(body, (str, bytes)):
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise TemplateError(f"The template body is not valid JSON: {e}") from None
    else:
        doc = body
    if not isinstance(doc, dict):
        raise TemplateError("The template body must be a JSON object")
    for key in doc:
        if key not in SECTIONS and key not in IGNORED_SECTIONS:
            raise TemplateError(f"Unknown template section '{key}'; valid sections: {', '.join(SECTIONS)}")
    parameters = _parse_parameters(doc.get("Parameters", {}))
    mappings = _parse_mappings(doc.get("Mappings", {}))
    conditions = doc.get("Conditions", {})
    if not isinstance(conditions, dict):
        raise TemplateError("Conditions must be an object")
    checker = _Checker(parameters, mappings, conditions)
    for name, expr in conditions.items():
        checker.condition(expr, f"Conditions.{name}", owner=name)
    _condition_cycles(checker)
    section = doc.get("Resources")
    if section is None:
        raise TemplateError("The template has no Resources section")
    if not isinstance(section, dict) or not section:
        raise TemplateError("Resources must be an object declaring at least one resource")
    resources = {logical_id: _parse_resource(logical_id, decl, checker) for logical_id, decl in section.items()}
    unconditional = [r.type for r in resources.values() if r.condition is None]
    for kind in (THING, CERTIFICATE):
        if unconditional.count(kind) > 1:
            raise TemplateError(f"Resources: a template can declare only one {kind} resource")
    device_configuration = doc.get("DeviceConfiguration")
    if device_configuration is not None:
        if not isinstance(device_configuration, dict):
            raise TemplateError("DeviceConfiguration must be an object")
        checker.value(device_configuration, "DeviceConfiguration")
    return ParsedTemplate(
        body=doc,
        parameters=parameters,
        mappings=mappings,
        conditions=conditions,
        resources=resources,
        device_configuration=device_configuration,
        referenced_parameters=frozenset(checker.referenced),
    )


# values and resource specs shared by validation and evaluation -------------
def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise EvaluationError(f"Parameter '{name}' must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise EvaluationError(f"Parameter '{name}' must be a finite number, got {text!r}")
    return value


def _parameter_value(param: Parameter, raw) -> Any:
    """The value a Ref to `param` resolves to, after type and constraint checks."""
    text = _scalar_text(raw, f"Parameter '{param.name}'") if not isinstance(raw, list) else ",".join(
        _scalar_text(v, f"Parameter '{param.name}'") for v in raw
    )
    c = param.constraints
    if "AllowedValues" in c and text not in [_scalar_text(v, "AllowedValues") for v in c["AllowedValues"]]:
        raise EvaluationError(f"Parameter '{param.name}' must be one of {c['AllowedValues']}, got {text!r}")
    if "AllowedPattern" in c and not re.fullmatch(c["AllowedPattern"], text):
        raise EvaluationError(f"Parameter '{param.name}' must match pattern {c['AllowedPattern']!r}, got {text!r}")
    if "MinLength" in c and len(text) < c["MinLength"]:
        raise EvaluationError(f"Parameter '{param.name}' must be at least {c['MinLength']} characters long")
    if "MaxLength" in c and len(text) > c["MaxLength"]:
        raise EvaluationError(f"Parameter '{param.name}' must be at most {c['MaxLength']} characters long")
    if param.type == "Number" or "MinValue" in c or "MaxValue" in c:
        number = _number(text, param.name)
        if "MinValue" in c and number < c["MinValue"]:
            raise EvaluationError(f"Parameter '{param.name}' must be at least {c['MinValue']}, got {text}")
        if "MaxValue" in c and number > c["MaxValue"]:
            raise EvaluationError(f"Parameter '{param.name}' must be at most {c['MaxValue']}, got {text}")
    if param.type == "CommaDelimitedList":
        return text.split(",")
    if param.type == "List<Number>":
        items = text.split(",")
        for item in items:
            _number(item, param.name)
        return items
    return text


def _optional_text(props: dict, key: str, path: str) -> str | None:
    if props.get(key) is None:
        return None
    text = _scalar_text(props[key], f"{path}.{key}")
    return text or None


def _attributes(value, path: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise EvaluationError(f"{path}: AttributePayload must be an object of attribute names and values")
    # Accept the API's nesting ({"attributes": {...}}) as well as the guide's flat form.
    if len(value) == 1:
        (key,) = value
        if key in ("attributes", "Attributes") and isinstance(value[key], dict):
            value = value[key]
    return {str(k): _scalar_text(v, f"{path}.{k}") for k, v in value.items()}


def _groups(value, path: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise EvaluationError(f"{path}: ThingGroups must be a list of thing group names")
    out: list[str] = []
    for i, item in enumerate(value):
        name = _scalar_text(item, f"{path}[{i}]")
        if name and name not in out:
            out.append(name)
    return out


def policy_name_for(document: str) -> str:
    """AWS names a policy declared only by its document after the document's hash."""
    return hashlib.sha1(document.encode()).hexdigest().upper()


def _policy_document(value, path: str) -> str:
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    text = _scalar_text(value, path)
    try:
        parsed = json.loads(text)
    except ValueError as e:
        raise EvaluationError(f"{path}: PolicyDocument is not valid JSON: {e}") from None
    if not isinstance(parsed, dict):
        raise EvaluationError(f"{path}: PolicyDocument must be a JSON object")
    return text


def _build_spec(kind: str, logical_id: str, props: dict, overrides: dict, partial: bool = False):
    """The spec of one resource from its resolved properties.

    `partial` checks whatever properties are present (validation of literals).
    """
    path = f"Resources.{logical_id}.Properties"
    if kind == THING:
        name = props.get("ThingName")
        if name is None and not partial:
            raise EvaluationError(f"{path}.ThingName: the thing name resolved to no value")
        name = _scalar_text(name, f"{path}.ThingName") if name is not None else ""
        if not partial and not name:
            raise EvaluationError(f"{path}.ThingName: the thing name must not be empty")
        return ThingSpec(
            logical_id=logical_id,
            thing_name=name,
            attributes=_attributes(props["AttributePayload"], f"{path}.AttributePayload")
            if props.get("AttributePayload") is not None else None,
            thing_type_name=_optional_text(props, "ThingTypeName", path),
            thing_groups=_groups(props["ThingGroups"], f"{path}.ThingGroups")
            if props.get("ThingGroups") is not None else None,
            billing_group=_optional_text(props, "BillingGroup", path),
            package_versions=props.get("PackageVersions"),
            overrides=dict(overrides),
        )
    if kind == CERTIFICATE:
        status = (_optional_text(props, "Status", path) or "ACTIVE").upper()
        if status not in CERTIFICATE_STATUSES:
            raise EvaluationError(f"{path}.Status: must be ACTIVE or INACTIVE, got {props['Status']!r}")
        certificate_id = _optional_text(props, "CertificateId", path)
        if certificate_id is not None:
            if not _CERTIFICATE_ID.match(certificate_id):
                raise EvaluationError(f"{path}.CertificateId: {certificate_id!r} is not a certificate ID (64 hex digits)")
            certificate_id = certificate_id.lower().removeprefix("0x")
        if not partial and not any(
            props.get(k) for k in ("CertificateId", "CertificatePem", "CertificateSigningRequest")
        ):
            raise EvaluationError(f"{path}: the certificate resolved to no CertificateId, CertificatePem or CSR")
        return CertificateSpec(
            logical_id=logical_id,
            certificate_id=certificate_id,
            certificate_pem=_optional_text(props, "CertificatePem", path),
            ca_certificate_pem=_optional_text(props, "CACertificatePem", path),
            certificate_signing_request=_optional_text(props, "CertificateSigningRequest", path),
            status=status,
            overrides=dict(overrides),
        )
    document = (
        _policy_document(props["PolicyDocument"], f"{path}.PolicyDocument")
        if props.get("PolicyDocument") is not None else None
    )
    name = _optional_text(props, "PolicyName", path)
    if name is None and document is None and not partial:
        raise EvaluationError(f"{path}: the policy resolved to neither a PolicyName nor a PolicyDocument")
    named = name is not None
    if name is None and document is not None:
        name = policy_name_for(document)
    return PolicySpec(logical_id=logical_id, policy_name=name or "", policy_document=document, named=named)
