"""The syntax tree of AWS IoT SQL and its evaluation.

Every expression node has `eval(env) -> value` (see `values` for the value
representation). `Env` carries the message: the injected `EvalContext`, the
numeric rules of the statement's SQL version, the current scope (the payload,
or an array element inside a nested SELECT) and the raw payload bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localiot.iotsql import values as v
from localiot.iotsql.errors import SqlEvaluationError
from localiot.iotsql.values import UNDEFINED, Binary

V1 = "2015-10-08"
V2 = "2016-03-23"
BETA = "beta"
VERSIONS = (V1, V2, BETA)


class Env:
    __slots__ = ("_now_ms", "ctx", "is_json", "numbers", "raw", "scope", "top", "version")

    def __init__(self, ctx: Any, version: str, scope: Any, raw: bytes | None, is_json: bool,
                 numbers: v.Numbers | None = None, now_ms: int | None = None, top: bool = True) -> None:
        self.ctx = ctx
        self.top = top
        self.version = version
        self.numbers = numbers or v.Numbers(version != V1)
        self.scope = scope
        self.raw = raw
        self.is_json = is_json
        self._now_ms = now_ms

    @classmethod
    def for_payload(cls, ctx: Any, version: str, payload: Any) -> Env:
        numbers = v.Numbers(version != V1)
        if isinstance(payload, (bytes, bytearray, memoryview)):
            raw = bytes(payload)
            is_json, value = v.parse_json_bytes(raw, numbers)
            scope = value if is_json else Binary(raw)
        elif isinstance(payload, Binary):
            raw, is_json, scope = payload.data, False, payload
        else:
            scope = v.from_python(payload, numbers)
            raw, is_json = v.dumps(scope).encode("utf-8"), True
        return cls(ctx, version, scope, raw, is_json, numbers)

    def child(self, scope: Any) -> Env:
        return Env(self.ctx, self.version, scope, self.raw, self.is_json, self.numbers, self.now_ms, top=False)

    @property
    def v2(self) -> bool:
        return self.version != V1

    @property
    def now_ms(self) -> int:
        """timestamp(): one value for the whole evaluation of a message."""
        if self._now_ms is None:
            stamp = getattr(self.ctx, "timestamp_ms", None)
            if callable(stamp):
                stamp = stamp()
            self._now_ms = int(stamp) if stamp is not None else int(time.time() * 1000)
        return self._now_ms


class Node:
    __slots__ = ("pos",)

    def eval(self, env: Env) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def output_name(self) -> str | None:
        """The key an unaliased SELECT item gets in the output object."""
        return None


class Literal(Node):
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def eval(self, env: Env) -> Any:
        return self.value


class Star(Node):
    """`*`: the whole payload (or the current element inside a nested SELECT)."""

    __slots__ = ()

    def eval(self, env: Env) -> Any:
        return env.scope


class Attribute(Node):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def eval(self, env: Env) -> Any:
        scope = env.scope
        if isinstance(scope, dict):
            return scope.get(self.name, UNDEFINED)
        return UNDEFINED

    @property
    def output_name(self) -> str:
        return self.name


class Member(Node):
    """`expr.name`"""

    __slots__ = ("name", "target")

    def __init__(self, target: Node, name: str) -> None:
        self.target, self.name = target, name

    def eval(self, env: Env) -> Any:
        target = self.target.eval(env)
        if isinstance(target, dict):
            return target.get(self.name, UNDEFINED)
        return UNDEFINED

    @property
    def output_name(self) -> str:
        return self.name


class Index(Node):
    """`expr[index]`: 0-based; out of bounds, or not an array, is Undefined."""

    __slots__ = ("index", "target")

    def __init__(self, target: Node, index: Node) -> None:
        self.target, self.index = target, index

    def eval(self, env: Env) -> Any:
        target = self.target.eval(env)
        if not isinstance(target, list):
            return UNDEFINED
        index = v.to_int(self.index.eval(env))
        if index is None or not 0 <= index < len(target):
            return UNDEFINED
        return target[index]

    @property
    def output_name(self) -> str | None:
        return self.target.output_name


class Negate(Node):
    __slots__ = ("operand",)

    def __init__(self, operand: Node) -> None:
        self.operand = operand

    def eval(self, env: Env) -> Any:
        return v.negate(self.operand.eval(env), env.numbers)


class Not(Node):
    __slots__ = ("operand",)

    def __init__(self, operand: Node) -> None:
        self.operand = operand

    def eval(self, env: Env) -> Any:
        return v.sql_not(self.operand.eval(env))


def _arith(op: str) -> Callable[[Any, Any, Env], Any]:
    return lambda a, b, env: v.arithmetic(op, a, b, env.numbers)


def _cmp(op: str) -> Callable[[Any, Any, Env], Any]:
    return lambda a, b, env: v.compare(op, a, b)


BINARY_OPERATORS: dict[str, Callable[[Any, Any, Env], Any]] = {
    "AND": lambda a, b, env: v.sql_and(a, b),
    "OR": lambda a, b, env: v.sql_or(a, b),
    "=": lambda a, b, env: v.equal(a, b),
    "<>": lambda a, b, env: v.not_equal(a, b),
    "!=": lambda a, b, env: v.not_equal(a, b),
    "<": _cmp("<"), "<=": _cmp("<="), ">": _cmp(">"), ">=": _cmp(">="),
    "IN": lambda a, b, env: v.contained_in(a, b),
    "CONTAINS": lambda a, b, env: v.contains(a, b),
    "+": _arith("+"), "-": _arith("-"), "*": _arith("*"), "/": _arith("/"), "%": _arith("%"),
}


class BinaryOp(Node):
    __slots__ = ("fn", "left", "op", "right")

    def __init__(self, op: str, left: Node, right: Node) -> None:
        self.op, self.left, self.right = op, left, right
        self.fn = BINARY_OPERATORS[op]

    def eval(self, env: Env) -> Any:
        left = self.left.eval(env)
        right = self.right.eval(env)
        if isinstance(left, Binary) or isinstance(right, Binary):
            return UNDEFINED
        return self.fn(left, right, env)


class Case(Node):
    """CASE v WHEN t THEN r ... ELSE e END, and the searched CASE WHEN cond THEN r ... END."""

    __slots__ = ("default", "subject", "whens")

    def __init__(self, subject: Node | None, whens: list[tuple[Node, Node]], default: Node | None) -> None:
        self.subject, self.whens, self.default = subject, whens, default

    def eval(self, env: Env) -> Any:
        if self.subject is not None:
            subject = self.subject.eval(env)
            if subject is UNDEFINED:
                return UNDEFINED
            for test, result in self.whens:
                if v.equal(subject, test.eval(env)) is True:
                    return result.eval(env)
        else:
            for test, result in self.whens:
                if v.truthy(test.eval(env)):
                    return result.eval(env)
        return self.default.eval(env) if self.default is not None else UNDEFINED


class ArrayLiteral(Node):
    __slots__ = ("items",)

    def __init__(self, items: list[Node]) -> None:
        self.items = items

    def eval(self, env: Env) -> Any:
        out = []
        for item in self.items:
            value = item.eval(env)
            if isinstance(value, Binary):
                raise SqlEvaluationError("a binary payload cannot be placed in an array")
            if value is not UNDEFINED:
                out.append(value)
        return out


class ObjectLiteral(Node):
    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Node]]) -> None:
        self.pairs = pairs

    def eval(self, env: Env) -> Any:
        out = {}
        for key, node in self.pairs:
            value = node.eval(env)
            if isinstance(value, Binary):
                raise SqlEvaluationError("a binary payload cannot be placed in an object")
            if value is not UNDEFINED:
                out[key] = value
        return out


class Call(Node):
    __slots__ = ("args", "name", "spec")

    def __init__(self, name: str, spec: Any, args: list[Node]) -> None:
        self.name, self.spec, self.args = name, spec, args

    def eval(self, env: Env) -> Any:
        if self.spec.lazy:
            return self.spec.impl(env, self.args)
        return self.spec.impl(env, [arg.eval(env) for arg in self.args])

    @property
    def output_name(self) -> str:
        return self.name


@dataclass(slots=True)
class SelectItem:
    expr: Node
    alias: list[str] | None      # dotted alias, split
    key: list[str]               # where the value goes in the output object
    pos: int = 0

    @property
    def merges(self) -> bool:
        """A bare `*` (or `path.*`): its object's members are copied into the output."""
        return self.alias is None and isinstance(self.expr, (Star, MemberStar))


class MemberStar(Node):
    """`path.*`: the members of an inner object, copied into the output."""

    __slots__ = ("target",)

    def __init__(self, target: Node) -> None:
        self.target = target

    def eval(self, env: Env) -> Any:
        return self.target.eval(env)


@dataclass(slots=True)
class Select:
    items: list[SelectItem]
    value: bool                        # SELECT VALUE
    source: Node | None                # nested SELECT: what it iterates
    where: Node | None
    topic_filter: str | None = None    # top-level SELECT: the FROM topic filter
    nested: bool = False
    functions: set[str] = field(default_factory=set)
    dynamodb_calls: int = 0

    def project(self, env: Env) -> Any:
        """The SELECT list evaluated in `env`: a value (VALUE), or an object."""
        if self.value:
            return self.items[0].expr.eval(env)
        if len(self.items) == 1 and isinstance(self.items[0].expr, Star) and self.items[0].merges:
            return env.scope
        out: dict[str, Any] = {}
        for item in self.items:
            value = item.expr.eval(env)
            if item.merges:
                if isinstance(value, dict):
                    out.update(value)
                elif isinstance(value, Binary):
                    if value.data:
                        raise SqlEvaluationError(
                            "attributes cannot be added to a binary payload: use SELECT * alone, "
                            "or encode(*, 'base64')")
                elif isinstance(item.expr, Star) and not self.nested and value is not UNDEFINED:
                    raise SqlEvaluationError("attributes cannot be added to a payload that is not a "
                                             f"JSON object (got {v.kind(value)})")
                continue
            if value is UNDEFINED:
                continue
            if isinstance(value, Binary):
                raise SqlEvaluationError("a binary payload can only be selected as SELECT * "
                                         "or through encode(*, 'base64')")
            if isinstance(value, v.Decimal) and not value.is_finite():
                continue
            _assign(out, item.key, value)
        return out

    def run(self, env: Env) -> list[Any]:
        """A nested SELECT: FROM an array, one projection per element that passes
        WHERE (an Array); FROM an object, its projection (an Object, Undefined when
        WHERE does not hold)."""
        source = self.source.eval(env) if self.source is not None else UNDEFINED
        if isinstance(source, dict):
            # FROM an object: that one object, projected (an object, not an array of one).
            inner = env.child(source)
            if self.where is not None and not v.truthy(self.where.eval(inner)):
                return UNDEFINED
            return self.project(inner)
        if not isinstance(source, list):
            return UNDEFINED
        out = []
        for element in source:
            inner = env.child(element)
            if self.where is not None and not v.truthy(self.where.eval(inner)):
                continue
            value = self.project(inner)
            if value is not UNDEFINED:
                out.append(value)
        return out


def _assign(out: dict, key: list[str], value: Any) -> None:
    target = out
    for part in key[:-1]:
        inner = target.get(part)
        # Copy on the way down: the object may be shared with the payload or another item.
        inner = target[part] = dict(inner) if isinstance(inner, dict) else {}
        target = inner
    target[key[-1]] = value


class SubQuery(Node):
    """`(SELECT ... FROM expr WHERE ...)` (2016-03-23 and later): an Array, or an
    Object when FROM names an object."""

    __slots__ = ("select",)

    def __init__(self, select: Select) -> None:
        self.select = select

    def eval(self, env: Env) -> Any:
        return self.select.run(env)
