"""Checks every constraint the model states, with AWS's own wording.

AWS answers "N validation errors detected: Value 'x' at 'thingName' failed
to satisfy constraint: Member must ...", one clause per violation.
"""

from __future__ import annotations

from botocore.model import Shape

from localiot.protocol.patterns import matches


def validate(shape: Shape | None, params: dict) -> list[str]:
    errors: list[str] = []
    if shape is not None:
        _check_structure(shape, params, "", errors)
    return errors


def message(errors: list[str]) -> str:
    noun = "error" if len(errors) == 1 else "errors"
    return f"{len(errors)} validation {noun} detected: " + "; ".join(errors)


def _show(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, (bytes, bytearray)):
        return "java.nio.HeapByteBuffer"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fail(errors, value, where, constraint):
    errors.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: {constraint}"
                  if value is not None else
                  f"Value null at '{where}' failed to satisfy constraint: {constraint}")


def _check_structure(shape, value: dict, prefix, errors):
    for name in shape.required_members:
        if value.get(name) is None:
            _fail(errors, None, prefix + name, "Member must not be null")
    for name, member_value in value.items():
        member = shape.members.get(name)
        if member is not None and member_value is not None:
            _check(member, member_value, prefix + name, errors)


def _check(shape: Shape, value, where: str, errors) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        _check_structure(shape, value, where + ".", errors)
        return
    if kind in ("string", "blob", "list", "map"):
        size = len(value)
        if "min" in meta and size < meta["min"]:
            _fail(errors, value, where, f"Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and size > meta["max"]:
            _fail(errors, value, where, f"Member must have length less than or equal to {meta['max']}")
    elif kind in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"]:
            _fail(errors, value, where, f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            _fail(errors, value, where, f"Member must have value less than or equal to {meta['max']}")
    if kind == "string":
        if shape.enum and value not in shape.enum:
            _fail(errors, value, where, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        elif "pattern" in meta and not matches(meta["pattern"], value):
            _fail(errors, value, where, f"Member must satisfy regular expression pattern: {meta['pattern']}")
    elif kind == "list":
        for i, item in enumerate(value):
            if item is not None:
                _check(shape.member, item, f"{where}.{i + 1}.member", errors)
    elif kind == "map":
        for k, v in value.items():
            _check(shape.key, k, f"{where}.key", errors)
            if v is not None:
                _check(shape.value, v, f"{where}.{k}", errors)
