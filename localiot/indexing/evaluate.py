"""Evaluate a checked query against flattened documents, and plan which
index entries can narrow the candidates first.

A flattened document maps each field to the list of its scalar values
(str, int/float, bool); arrays contribute every element, as in Lucene.
Typing follows AWS: a declared or managed Number field compares numerically,
a String field as text; an undeclared field compares numerically when both
the value and the bound are numbers and as text otherwise."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

from localiot.indexing import fields, geo
from localiot.indexing.ast import All, And, Not, Or, Range, Term
from localiot.indexing.query import is_number

Doc = dict[str, list]


def text(value) -> str:
    """The string an index entry holds for a scalar value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return canonical_number(value)
    return str(value)


def canonical_number(value) -> str:
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def as_number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and is_number(value):
        return float(value)
    return None


def compile_query(node, index: str = fields.THINGS, custom: dict | None = None) -> Callable[[Doc], bool]:
    return _compile(node, index, tuple(sorted((custom or {}).items())))


@lru_cache(maxsize=1024)
def _compile(node, index: str, custom: tuple):
    types = dict(custom)

    def build(n):
        if isinstance(n, All):
            return lambda doc: True
        if isinstance(n, And):
            parts = [build(i) for i in n.items]
            return lambda doc: all(p(doc) for p in parts)
        if isinstance(n, Or):
            parts = [build(i) for i in n.items]
            return lambda doc: any(p(doc) for p in parts)
        if isinstance(n, Not):
            inner = build(n.item)
            return lambda doc: not inner(doc)
        if isinstance(n, Term):
            return _term(n)
        if isinstance(n, Range):
            return _range(n, fields.field_type(index, n.field, types))
        raise TypeError(n)

    return build(node)


def _term(n: Term):
    field = n.field
    if n.kind == "exists":
        return lambda doc: bool(doc.get(field))
    if n.kind == "geo":
        inside, key = geo.compile_geo(n.value), geo.field_key(field)
        return lambda doc: any(inside(geo.decode(v)) for v in doc.get(key, ()))
    if n.kind == "wildcard":
        pattern = re.compile(n.value, re.DOTALL)
        return lambda doc: any(pattern.match(text(v)) for v in doc.get(field, ()))
    wanted, number = n.value, as_number(n.value)

    def match(doc):
        for v in doc.get(field, ()):
            if isinstance(v, bool):
                if wanted == ("true" if v else "false"):
                    return True
            elif isinstance(v, (int, float)):
                if number is not None and float(v) == number:
                    return True
            elif v == wanted:
                return True
        return False

    return match


def _range(n: Range, declared: str | None):
    field = n.field
    numeric_bounds = all(is_number(b) for b in (n.low, n.high) if b is not None)
    low_n = float(n.low) if n.low is not None and numeric_bounds else None
    high_n = float(n.high) if n.high is not None and numeric_bounds else None

    def within(value, low, high) -> bool:
        if low is not None and (value < low or (value == low and not n.include_low)):
            return False
        if high is not None and (value > high or (value == high and not n.include_high)):
            return False
        return True

    def match(doc):
        for v in doc.get(field, ()):
            if isinstance(v, bool):
                continue
            if declared != "String" and numeric_bounds:
                number = as_number(v)
                if number is not None and within(number, low_n, high_n):
                    return True
                if number is not None or declared == "Number":
                    continue
            if declared != "Number" and within(text(v), n.low, n.high):
                return True
        return False

    return match
