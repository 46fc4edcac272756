"""The function table the parser checks calls against, and helpers for function bodies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localiot.iotsql.errors import SqlEvaluationError

MANY = 1 << 16


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    min_args: int
    max_args: int
    impl: Callable[..., Any]
    since_v2: bool = False        # "Supported by SQL version 2016-03-23 and later"
    lazy: bool = False            # impl(env, arg_nodes) instead of impl(env, arg_values)
    check: Callable[[list], str | None] | None = None   # parse-time argument check


FUNCTIONS: dict[str, Spec] = {}


def fn(name: str, min_args: int, max_args: int | None = None, *, v2: bool = False, lazy: bool = False,
       check: Callable[[list], str | None] | None = None) -> Callable:
    def register(impl: Callable) -> Callable:
        FUNCTIONS[name.lower()] = Spec(name, min_args, min_args if max_args is None else max_args,
                                       impl, v2, lazy, check)
        return impl
    return register


def hook(env: Any, attribute: str, function: str) -> Callable:
    """A callable of the EvalContext, or an evaluation error naming what is missing."""
    target = getattr(env.ctx, attribute, None)
    if target is None:
        raise SqlEvaluationError(f"{function}() is unavailable: the rules engine provided no "
                                 f"'{attribute}' hook")
    return target


def call_hook(env: Any, attribute: str, function: str, *args: Any) -> Any:
    target = hook(env, attribute, function)
    try:
        return target(*args)
    except SqlEvaluationError:
        raise
    except Exception as exc:  # a hook failing is the rule failing
        raise SqlEvaluationError(f"{function}() failed: {exc}") from exc


def literal_string(index: int, allowed: tuple[str, ...] | None = None) -> Callable[[list], str | None]:
    """A parse-time check that argument `index` is a literal string (optionally one of `allowed`)."""
    def check(args: list) -> str | None:
        if index >= len(args):
            return None
        node = args[index]
        value = getattr(node, "value", None)
        if type(node).__name__ != "Literal" or not isinstance(value, str):
            return f"argument {index + 1} must be a literal string"
        if allowed is not None and value not in allowed:
            return f"argument {index + 1} must be one of {', '.join(repr(a) for a in allowed)}"
        return None
    return check
