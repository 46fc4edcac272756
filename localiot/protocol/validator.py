"""Checks every constraint the model states, with AWS's own wording.

AWS answers "N validation errors detected: Value 'x' at 'thingName' failed
to satisfy constraint: Member must ...", one clause per violation.
"""

from __future__ import annotations

from botocore.model import Shape

from localiot.protocol.patterns import compile_pattern


def validate(shape: Shape | None, params: dict) -> list[str]:
    errors: list[str] = []
    if shape is not None:
        _checker(shape)(params, "", errors)
    return errors


def checker(shape: Shape | None):
    """fn(value, where, errors) appending `shape`'s violations to `errors`, as validate
    reports them; None when there is nothing to check."""
    return None if shape is None else _checker(shape)


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


# id(shape) -> (shape, checker or None when nothing in the shape is constrained); the
# shape is kept so its id stays its own. Models are loaded once per process.
_CHECKERS: dict[int, tuple[Shape, object]] = {}


def _checker(shape: Shape):
    """fn(value, where, errors) checking `shape`'s constraints, built once per shape
    from its model (None: nothing to check). Same checks, order and wording as a
    walk of the model would give."""
    hit = _CHECKERS.get(id(shape))
    if hit is not None:
        return hit[1]
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape)
    meta = shape.metadata
    lo, hi = meta.get("min"), meta.get("max")
    fn = None
    if kind in ("string", "blob", "list", "map"):
        inner = key = None
        if kind in ("list", "map"):  # may hold itself: a stand-in while its parts compile
            cell: list = [None]

            def late(value, where, errors, cell=cell):
                if cell[0] is not None:
                    cell[0](value, where, errors)

            _CHECKERS[id(shape)] = (shape, late)
            if kind == "list":
                inner = _checker(shape.member)
            else:
                key, inner = _checker(shape.key), _checker(shape.value)
        enum = shape.enum if kind == "string" else None
        choices = frozenset(enum) if enum else None
        pattern = meta.get("pattern") if kind == "string" else None
        compiled = compile_pattern(pattern) if pattern is not None else None
        if lo is None and hi is None and not choices and compiled is None and inner is None and key is None:
            fn = None
        else:
            def fn(value, where, errors, lo=lo, hi=hi, choices=choices, compiled=compiled, inner=inner, key=key,
                   kind=kind, enum=enum, pattern=pattern):
                size = len(value)
                if lo is not None and size < lo:
                    _fail(errors, value, where, f"Member must have length greater than or equal to {lo}")
                if hi is not None and size > hi:
                    _fail(errors, value, where, f"Member must have length less than or equal to {hi}")
                if choices is not None:
                    if value not in choices:
                        _fail(errors, value, where, f"Member must satisfy enum value set: [{', '.join(enum)}]")
                elif compiled is not None and compiled.fullmatch(value) is None:
                    _fail(errors, value, where, f"Member must satisfy regular expression pattern: {pattern}")
                if kind == "list":
                    if inner is not None:
                        for i, item in enumerate(value):
                            if item is not None:
                                inner(item, f"{where}.{i + 1}.member", errors)
                elif kind == "map":
                    for k, v in value.items():
                        if key is not None:
                            key(k, f"{where}.key", errors)
                        if v is not None and inner is not None:
                            inner(v, f"{where}.{k}", errors)
        if kind in ("list", "map"):
            cell[0] = fn
        elif fn is not None and kind == "string" and choices is None:
            fn = _text_checker(fn, lo, hi, compiled)
    elif kind in ("integer", "long", "float", "double") and (lo is not None or hi is not None):
        def fn(value, where, errors, lo=lo, hi=hi):
            if lo is not None and value < lo:
                _fail(errors, value, where, f"Member must have value greater than or equal to {lo}")
            if hi is not None and value > hi:
                _fail(errors, value, where, f"Member must have value less than or equal to {hi}")
    _CHECKERS[id(shape)] = (shape, fn)
    return fn


def _text_checker(full, lo, hi, compiled):
    """A text member's checker (length bounds, pattern): the usual valid value passes in
    one test; any other is reported by `full`, which words every violation."""
    lo = 0 if lo is None else lo
    hi = float("inf") if hi is None else hi
    if compiled is None:
        def text(value, where, errors):
            if not lo <= len(value) <= hi:
                full(value, where, errors)
        return text
    fullmatch = compiled.fullmatch

    def text(value, where, errors):
        if not lo <= len(value) <= hi or fullmatch(value) is None:
            full(value, where, errors)
    return text


def _structure(shape: Shape):
    members: dict = {}

    def late(value, where, errors):  # stands in while the members compile: shapes may be recursive
        return check(value, where, errors)

    _CHECKERS[id(shape)] = (shape, late)
    for name, member in shape.members.items():
        fn = _checker(member)
        if fn is not None:
            members[name] = fn
    required = tuple(shape.required_members)

    def check(value, where, errors):
        prefix = where + "." if where else ""
        for name in required:
            if value.get(name) is None:
                _fail(errors, None, prefix + name, "Member must not be null")
        for name, member_value in value.items():
            fn = members.get(name)
            if fn is not None and member_value is not None:
                fn(member_value, prefix + name, errors)

    _CHECKERS[id(shape)] = (shape, check)
    return check
