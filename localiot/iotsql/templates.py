"""Substitution templates: `${expression}` in rule action fields.

    substitute("${topic()}/republish", context, payload)   # -> "a/b/republish"

The expression language is the SELECT clause's, evaluated against the
original message (an alias from the SELECT clause cannot be referenced).
Strings are inserted as they are; other values with the standard string
conversion (objects and arrays as JSON); Undefined and Null as nothing.
`$$` writes one `$`: the escape AWS documents for republishing to a reserved
topic (`$$aws/things/t/shadow/update` -> `$aws/things/t/shadow/update`); so
`$${x}` is the literal text `${x}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from localiot.iotsql import nodes as n
from localiot.iotsql.errors import SqlParseError
from localiot.iotsql.parser import check_version, parse_expression_at
from localiot.iotsql.values import Binary, to_string

DEFAULT_TEMPLATE_VERSION = n.V2


@dataclass(frozen=True)
class Template:
    text: str
    version: str
    parts: tuple[str | n.Node, ...]
    functions: frozenset[str]

    @property
    def has_expressions(self) -> bool:
        return any(not isinstance(part, str) for part in self.parts)

    def render(self, context: Any, payload_value: Any) -> str:
        if not self.has_expressions:
            return "".join(self.parts)  # the text with its $$ escapes written
        env = n.Env.for_payload(context, self.version, payload_value)
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = part.eval(env)
            text = None if isinstance(value, Binary) else to_string(value)
            out.append(text if text is not None else "")
        return "".join(out)


def parse_template(template: str, version: str = DEFAULT_TEMPLATE_VERSION) -> Template:
    """Check a template (at CreateTopicRule time); raises SqlParseError."""
    return _parse_template(template, check_version(version))


@lru_cache(maxsize=1024)
def _parse_template(template: str, version: str) -> Template:
    parts: list[str | n.Node] = []
    functions: set[str] = set()
    literal: list[str] = []
    i = 0
    while i < len(template):
        start = template.find("$", i)
        if start < 0:
            literal.append(template[i:])
            break
        literal.append(template[i:start])
        if template.startswith("$$", start):
            literal.append("$")
            i = start + 2
            continue
        if not template.startswith("${", start):
            literal.append("$")
            i = start + 1
            continue
        node, end, called = parse_expression_at(template, start + 2, version)
        if end >= len(template) or template[end] != "}":
            found = repr(template[end]) if end < len(template) else "the end of the template"
            raise SqlParseError(f"expected '}}' to close the substitution template but found {found}",
                                end, template)
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(node)
        functions.update(called)
        i = end + 1
    if literal and "".join(literal):
        parts.append("".join(literal))
    return Template(template, version, tuple(parts), frozenset(functions))


def substitute(template: str, context: Any, payload_value: Any,
               version: str = DEFAULT_TEMPLATE_VERSION) -> str:
    """Expand every `${expression}` of `template`. `payload_value` is the original
    message: its raw bytes, or an already parsed JSON value."""
    return parse_template(template, version).render(context, payload_value)
