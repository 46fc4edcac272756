"""Evaluating a validated provisioning template for one device: parameters
with their defaults and constraints, intrinsic functions, conditions, and the
ProvisioningPlan that `localiot.provisioning.apply` carries out. Pure: no
store and no I/O. The grammar and the plan's types live in `grammar`."""

from __future__ import annotations

import re
from typing import Any

from localiot.provisioning.grammar import (
    _build_spec,
    _parameter_value,
    CERTIFICATE,
    CONDITION_FUNCTIONS,
    EvaluationError,
    NO_VALUE,
    ParsedTemplate,
    ProvisioningPlan,
    THING,
    _SUB_VARIABLE,
    _describe,
    _find_in_map,
    _intrinsic,
    _join,
    _scalar_text,
)
from localiot.provisioning.template import validate_template


# evaluation ------------------------------------------------------------------
class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_REMOVED = _NoValue()


class _Evaluator:
    def __init__(self, template: ParsedTemplate, values: dict[str, Any]):
        self.template = template
        self.values = values
        self._conditions: dict[str, bool] = {}

    def param(self, name: str, path: str):
        if name == NO_VALUE:
            return _REMOVED
        if name not in self.values:
            raise EvaluationError(f"{path}: parameter '{name}' is required but was not provided")
        return self.values[name]

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self.test(self.template.conditions[name], f"Conditions.{name}")
        return self._conditions[name]

    def test(self, node, path: str) -> bool:
        fn = _intrinsic(node, conditions=True)
        arg = node[fn]
        where = _join(path, fn)
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::Equals":
            left, right = (self.resolve(v, f"{where}[{i}]") for i, v in enumerate(arg))
            return _comparable(left) == _comparable(right)
        if fn == "Fn::Not":
            return not self.test(arg[0], f"{where}[0]")
        if fn == "Fn::And":
            return all(self.test(v, f"{where}[{i}]") for i, v in enumerate(arg))
        return any(self.test(v, f"{where}[{i}]") for i, v in enumerate(arg))  # Fn::Or

    def resolve(self, node, path: str):
        if isinstance(node, list):
            items = (self.resolve(v, f"{path}[{i}]") for i, v in enumerate(node))
            return [v for v in items if v is not _REMOVED]
        if not isinstance(node, dict):
            return node
        fn = _intrinsic(node)
        if fn is None:
            items = ((k, self.resolve(v, _join(path, k))) for k, v in node.items())
            return {k: v for k, v in items if v is not _REMOVED}
        arg = node[fn]
        where = _join(path, fn)
        if fn == "Ref":
            return self.param(arg, where)
        if fn in CONDITION_FUNCTIONS:
            return self.test(node, path)
        return getattr(self, "fn_" + fn[4:].lower())(arg, where)

    def _list(self, node, where: str) -> list:
        value = self.resolve(node, where)
        if not isinstance(value, list):
            raise EvaluationError(f"{where}: expected a list, got {_describe(value)}")
        return value

    def fn_join(self, arg, where):
        values = self._list(arg[1], f"{where}[1]")
        return arg[0].join(_scalar_text(v, f"{where}[1][{i}]") for i, v in enumerate(values))

    def fn_select(self, arg, where):
        raw = self.resolve(arg[0], f"{where}[0]")
        try:
            index = int(_scalar_text(raw, f"{where}[0]"))
        except ValueError:
            raise EvaluationError(f"{where}[0]: the Fn::Select index must be an integer, got {raw!r}") from None
        values = self._list(arg[1], f"{where}[1]")
        if not 0 <= index < len(values):
            raise EvaluationError(f"{where}: index {index} is out of bounds for a list of {len(values)} values")
        if values[index] is None:
            raise EvaluationError(f"{where}: the selected value is null")
        return values[index]

    def fn_split(self, arg, where):
        return _scalar_text(self.resolve(arg[1], f"{where}[1]"), f"{where}[1]").split(arg[0])

    def fn_findinmap(self, arg, where):
        keys = [_scalar_text(self.resolve(k, f"{where}[{i}]"), f"{where}[{i}]") for i, k in enumerate(arg)]
        return _find_in_map(self.template.mappings, keys, where)

    def fn_sub(self, arg, where):
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        bound = {name: self.resolve(v, f"{where}[1].{name}") for name, v in variables.items()}

        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            value = bound[name] if name in bound else self.param(name, where)
            return _scalar_text(value, f"{where} ${{{name}}}")

        return _SUB_VARIABLE.sub(substitute, text)

    def fn_if(self, arg, where):
        chosen = 1 if self.condition(arg[0]) else 2
        return self.resolve(arg[chosen], f"{where}[{chosen}]")


def _comparable(value):
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, (str, int, float, bool)):
        return _scalar_text(value, "Fn::Equals")
    return value


def evaluate(
    template: ParsedTemplate | str,
    parameters: dict | None = None,
    *,
    region: str | None = None,
    account: str | None = None,
    partition: str = "aws",
) -> ProvisioningPlan:
    """Resolve a template against parameter values into a plan of resources.

    `parameters` are the caller's values (RegisterThing's map, a device's
    request, AWS::IoT::Certificate::* from the device certificate); declared
    defaults fill the gaps. A Ref to a parameter that has no value raises
    EvaluationError naming it. `region` / `account` give AWS::Region and
    AWS::AccountId.
    """
    if not isinstance(template, ParsedTemplate):
        template = validate_template(template)
    values: dict[str, Any] = {}
    given = dict(parameters or {})
    for name, raw in given.items():
        if name in template.parameters:
            continue
        values[name] = raw if isinstance(raw, (list, dict)) else _scalar_text(raw, f"Parameter '{name}'")
    for name, param in template.parameters.items():
        if given.get(name) is not None:
            values[name] = _parameter_value(param, given[name])
        elif param.has_default:
            values[name] = _parameter_value(param, param.default)
    values["AWS::Partition"] = partition
    if region:
        values["AWS::Region"] = region
    if account:
        values["AWS::AccountId"] = account

    evaluator = _Evaluator(template, values)
    specs = []
    for logical_id, resource in template.resources.items():
        if resource.condition is not None and not evaluator.condition(resource.condition):
            continue
        props = evaluator.resolve(resource.properties, f"Resources.{logical_id}.Properties")
        specs.append(_build_spec(resource.type, logical_id, props, resource.override_settings))
    for kind in (THING, CERTIFICATE):
        chosen = [s.logical_id for s in specs if s.type == kind]
        if len(chosen) > 1:
            raise EvaluationError(f"Resources: only one {kind} can be provisioned, got {', '.join(chosen)}")
    device_configuration = {}
    if template.device_configuration is not None:
        device_configuration = evaluator.resolve(template.device_configuration, "DeviceConfiguration")
    provided = {k: v for k, v in values.items() if k not in ("AWS::Partition", "AWS::Region", "AWS::AccountId")}
    return ProvisioningPlan(resources=specs, device_configuration=device_configuration, parameters=provided)
