"""Provisioning templates: check a template body once, evaluate it per device.

    parsed = validate_template(body)              # raises TemplateError
    plan = evaluate(parsed, {"SerialNumber": "42"}, region=..., account=...)
    plan.thing, plan.certificate, plan.policies, plan.device_configuration

This module is the validation: Parameters (Type, Default, constraints),
Mappings, Conditions, Resources of type AWS::IoT::Thing /
AWS::IoT::Certificate / AWS::IoT::Policy with OverrideSettings,
DeviceConfiguration, and the CloudFormation-style intrinsic functions Ref,
Fn::Join, Fn::Select, Fn::Split, Fn::FindInMap, Fn::Sub, Fn::If, Fn::Equals,
Fn::Not, Fn::And, Fn::Or, checked statically. The grammar and the types are
in `grammar`, evaluation in `evaluation`; no store and no I/O:
`localiot.provisioning.apply` carries a plan out.
"""

from __future__ import annotations

import re

from localiot.protocol import jsontext
from localiot.provisioning.grammar import (
    CERTIFICATE,
    CONDITION_FUNCTIONS,
    FUNCTIONS,
    IGNORED_SECTIONS,
    OVERRIDABLE,
    OVERRIDE_ALIASES,
    PARAMETER_KEYS,
    PARAMETER_TYPES,
    POLICY,
    PROPERTIES,
    PROPERTY_ALIASES,
    RESOURCE_KEYS,
    RESOURCE_TYPES,
    SECTIONS,
    THING,
    _SUB_VARIABLE,
    Parameter,
    ParsedTemplate,
    EvaluationError,
    Resource,
    TemplateError,
    _build_spec,
    _describe,
    _find_in_map,
    _has_intrinsic,
    _intrinsic,
    _is_pseudo,
    _join,
    _parameter_value,
)


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
            doc = jsontext.loads(body)  # refuses nesting past the limit and lone surrogates
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
