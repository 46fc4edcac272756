"""The fleet indexing query language: a Lucene subset, parsed by luqum
(a maintained Lucene query parser) and checked into localiot.indexing.ast.

    parse("thingName:sensor* AND attributes.floor>=3", "AWS_Things", custom)

Supported: field terms, bare terms (the index's name field), `*` and `?`
wildcards, `field:*`, quoted phrases, backslash escapes, ranges `[a TO b]`,
`{a TO b}` (and mixed), comparisons `>`, `>=`, `<`, `<=` written AWS's way
(`field>3`, `field > 3`) or Lucene's (`field:>3`), AND / OR / NOT, `-term`,
`+term`, implicit AND, parentheses and field groups `field:(a OR b)`.
Anything else (fuzzy, proximity, boosts, regular expressions, unknown
fields, a range whose type does not fit the field) is a QueryError whose
message says what is wrong; SearchIndex answers it as InvalidQueryException.
"""

from __future__ import annotations

import re
from functools import lru_cache

from luqum import tree as lt
from luqum.exceptions import ParseError
from luqum.parser import parser

from localiot.indexing import fields, geo
from localiot.indexing.ast import All, And, Not, Or, Range, Term

MAX_CLAUSES = 1024  # Lucene's default maxClauseCount
MAX_DEPTH = 64


class QueryError(ValueError):
    pass


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_COMPARE = re.compile(r"(?<=[\w\]\*?.\-])\s*(>=|<=|>|<)\s*(?=[^\s)])")
_NEGATIVE = re.compile(r":(>=|<=|>|<)(-(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?=[\s)]|$)")
_AS_RANGE = {">": "{{{} TO *]", ">=": "[{} TO *]", "<": "[* TO {}}}", "<=": "[* TO {}]"}
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def is_number(text: str) -> bool:
    return bool(_NUMBER.match(text))


def _compare(text: str) -> str:
    text = _COMPARE.sub(r":\1", text)
    # luqum reads `field:<-3` as a syntax error: a comparison with a negative number is its range
    return _NEGATIVE.sub(lambda m: ":" + _AS_RANGE[m.group(1)].format(m.group(2)), text)


def _normalize(query: str) -> str:
    """AWS writes comparisons as `field>3`; Lucene (and luqum) as `field:>3`."""
    out, last = [], 0
    for match in _QUOTED.finditer(query):
        out.append(_compare(query[last:match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_compare(query[last:]))
    return "".join(out)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _glob(ch: str) -> str:
    return f"[{ch}]" if ch in "*?[" else ch


def _wildcard(text: str) -> tuple[str, str, str] | None:
    """(anchored regex, literal prefix, GLOB pattern) when `text` holds an unescaped * or ?."""
    parts, globbed, prefix, wild, i = [], [], None, False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            parts.append(re.escape(text[i + 1]))
            globbed.append(_glob(text[i + 1]))
            i += 2
            continue
        if ch in "*?":
            if prefix is None:
                prefix = _unescape(text[:i])
            wild = True
            parts.append(".*" if ch == "*" else ".")
            globbed.append(ch)
        else:
            parts.append(re.escape(ch))
            globbed.append(_glob(ch))
        i += 1
    if not wild:
        return None
    # (\Z, not $: $ also matches before a final newline, which the GLOB over the entries does not)
    return "^" + "".join(parts) + r"\Z", prefix or "", "".join(globbed)


class _Checker:
    def __init__(self, index: str, custom: dict[str, str]):
        self.index = index
        self.custom = custom
        self.clauses = 0

    def field_name(self, raw: str) -> str:
        name = _unescape(raw)
        if not fields.known(self.index, name) and name not in self.custom:
            raise QueryError(f"Unknown field {name!r} in query for index {self.index}.")
        return name

    def leaf(self):
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise QueryError(f"The query has more than {MAX_CLAUSES} clauses.")

    def convert(self, node, field: str | None, depth: int = 0):
        if depth > MAX_DEPTH:
            raise QueryError(f"The query is nested deeper than {MAX_DEPTH} levels.")
        depth += 1
        if isinstance(node, lt.SearchField):
            if field is not None:
                raise QueryError(f"Field {node.name!r} cannot be nested inside field {field!r}.")
            return self.convert(node.expr, self.field_name(node.name), depth)
        if isinstance(node, (lt.Group, lt.FieldGroup)):
            return self.convert(node.expr, field, depth)
        if isinstance(node, (lt.AndOperation, lt.UnknownOperation)):
            return _and(tuple(self.convert(c, field, depth) for c in node.children))
        if isinstance(node, lt.OrOperation):
            return Or(tuple(self.convert(c, field, depth) for c in node.children))
        if (field is not None and isinstance(node, lt.Prohibit) and isinstance(node.a, lt.Word)
                and is_number(node.a.value)):
            self.leaf()
            return self.term(field, "-" + node.a.value)  # field:-3.5 is a negative number
        if isinstance(node, (lt.Not, lt.Prohibit)):
            return Not(self.convert(node.a, field, depth))
        if isinstance(node, lt.Plus):
            return self.convert(node.a, field, depth)
        field = field or fields.DEFAULT_FIELD[self.index]
        if isinstance(node, lt.Word):
            self.leaf()
            return self.word(field, node.value)
        if isinstance(node, lt.Phrase):
            self.leaf()
            return self.term(field, _unescape(node.value[1:-1]))
        if isinstance(node, lt.Range):
            self.leaf()
            return self.range(field, self.bound(node.low), self.bound(node.high), node.include_low, node.include_high)
        if isinstance(node, lt.From):
            self.leaf()
            return self.range(field, self.bound(node.a), None, node.include, True)
        if isinstance(node, lt.To):
            self.leaf()
            return self.range(field, None, self.bound(node.a), True, node.include)
        what = {lt.Fuzzy: "Fuzzy queries (~)", lt.Proximity: "Proximity queries (~)", lt.Boost: "Boosts (^)",
                lt.Regex: "Regular expressions"}.get(type(node), f"{type(node).__name__} clauses")
        raise QueryError(f"{what} are not supported by fleet indexing queries.")

    def bound(self, node) -> str | None:
        if isinstance(node, lt.Prohibit) and isinstance(node.a, lt.Word) and is_number(node.a.value):
            return "-" + node.a.value  # [-5 TO 0]: luqum reads the sign as a prohibition
        if isinstance(node, lt.Word):
            return None if node.value == "*" else _unescape(node.value)
        if isinstance(node, lt.Phrase):
            return _unescape(node.value[1:-1])
        raise QueryError("A range bound must be a term or a quoted phrase.")

    def word(self, field: str, value: str):
        if value == "*":
            return Term(field, "", "exists")
        if fields.field_type(self.index, field, self.custom) == "Geo" and geo.is_geo_query(value):
            try:
                geo.compile_geo(value)
            except geo.GeoError as exc:
                raise QueryError(f"Invalid geoquery on {field}: {exc}") from None
            return Term(field, value, "geo")
        wildcard = _wildcard(value)
        if wildcard is not None:
            kind = fields.field_type(self.index, field, self.custom)
            if kind in ("Number", "Boolean"):
                raise QueryError(f"Wildcards cannot be used on {kind} field {field}.")
            return Term(field, wildcard[0], "wildcard", wildcard[1], wildcard[2])
        return self.term(field, _unescape(value))

    def term(self, field: str, value: str):
        kind = fields.field_type(self.index, field, self.custom)
        if kind == "Number" and not is_number(value):
            raise QueryError(f"Value {value!r} is not a number, but field {field} is of type Number.")
        if kind == "Boolean" and value not in ("true", "false"):
            raise QueryError(f"Value {value!r} is not true or false, but field {field} is of type Boolean.")
        return Term(field, value)

    def range(self, field, low, high, include_low, include_high):
        kind = fields.field_type(self.index, field, self.custom)
        if kind == "Boolean":
            raise QueryError(f"A range cannot be used on Boolean field {field}.")
        bounds = [b for b in (low, high) if b is not None]
        if not bounds:
            raise QueryError(f"A range on field {field} needs at least one bound.")
        if kind == "Number" and not all(is_number(b) for b in bounds):
            raise QueryError(f"The range on Number field {field} has a bound that is not a number.")
        if kind == "String" and all(is_number(b) for b in bounds):
            raise QueryError(f"A numeric range cannot be used on String field {field}.")
        return Range(field, low, high, bool(include_low), bool(include_high))


def _and(items: tuple):
    return items[0] if len(items) == 1 else And(items)


def parse(query: str, index: str = fields.THINGS, custom: dict[str, str] | None = None):
    """The checked tree of `query`, or QueryError."""
    return _parse(query, index, tuple(sorted((custom or {}).items())))


@lru_cache(maxsize=512)
def _parse(query: str, index: str, custom: tuple):
    if not query.strip():
        raise QueryError("The query string is empty.")
    if len(query.split()) > 3 * MAX_CLAUSES:
        raise QueryError(f"The query has more than {MAX_CLAUSES} clauses.")
    if query.count("(") > MAX_DEPTH * 8:
        raise QueryError(f"The query is nested deeper than {MAX_DEPTH} levels.")
    try:
        tree = parser.parse(_normalize(query))
    except ParseError as exc:
        raise QueryError(f"Syntax error in query {query!r}: {exc}") from None
    except RecursionError:
        raise QueryError(f"The query is nested deeper than {MAX_DEPTH} levels.") from None
    node = _Checker(index, dict(custom)).convert(tree, None)
    return _anchor(node)


def _anchor(node):
    """A query made only of NOT clauses matches everything but them."""
    if isinstance(node, Not):
        return And((All(), node))
    if isinstance(node, And) and all(isinstance(i, Not) for i in node.items):
        return And((All(), *node.items))
    return node
