"""Evaluate AWS IoT policies: is `action` on `resource` allowed for this connection?

    policies = compile_policies([("devices", text), ...])     # once per principal
    policies.is_allowed("iot:Publish", topic_arn, variables)   # hot path: bool
    policies.evaluate("iot:Publish", topic_arn, variables)     # Decision with details

Semantics, as AWS IoT (IAM policy language):

* Default deny; a matching Deny statement beats any Allow.
* Actions match case-insensitively, with `*` and `?` wildcards (`iot:*`, `iot:Pub*`).
* Resources match case-sensitively against the whole ARN, with `*` (any run of
  characters, `/` and `:` included) and `?` (one character). MQTT's `+` and `#`
  are ordinary characters, so `topicfilter/a/+` only matches the filter `a/+`.
* NotAction / NotResource: the statement applies to everything *but* these.
* Policy variables (`${iot:ClientId}`, `${iot:Connection.Thing.Attributes[x]}`,
  `${iot:Certificate.Subject.CommonName}`, ...) are substituted in Resource,
  NotResource and condition values, for Version 2012-10-17 only. `${*}`, `${?}`
  and `${$}` are the literal characters. Substituted values are literal text (a
  client id `*` is not a wildcard). A resource entry whose variable cannot be
  resolved matches nothing; a NotResource or condition that cannot be resolved
  makes the statement not apply; either way the name lands in `missing`.
* Conditions: every operator block and every key must hold (AND); the values of
  one key are alternatives (OR; for negated operators: none may match). A key
  absent from `variables` fails the condition, except for negated operators
  (StringNotEquals, ...: true), `...IfExists` (true), `Null` and
  `ForAllValues:` (true). Keys and variable names are case-insensitive, except
  what is inside brackets (`Attributes[Name]`).

`variables` maps names (as used in policies, e.g. "iot:ClientId",
"aws:SourceIp") to a string, bool, number or list of strings.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Iterable, Mapping

from localiot.policy.document import Condition, PolicyDocument, Statement, parse_policy

ALLOW, DENY = "Allow", "Deny"


# variables -------------------------------------------------------------------
def normalize_name(name: str) -> str:
    """Variable and condition key names are case-insensitive outside brackets."""
    if "[" not in name:
        return name.lower()
    head, sep, rest = name.partition("[")
    return head.lower() + sep + rest


class Variables(dict):
    """Variables keyed by their normalized name. Build it once per connection."""

    def __init__(self, values: Mapping[str, object] | None = None):
        super().__init__()
        for name, value in (values or {}).items():
            if value is not None:
                self[normalize_name(name)] = value


def _prepared(variables) -> Variables:
    if isinstance(variables, Variables):
        return variables
    return Variables(variables)


def _as_list(value) -> list[str]:
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_as_text(v) for v in value]
    return [_as_text(value)]


def _as_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _scalar(value) -> str | None:
    """A variable's value for substitution: one string, or None if it has none or several."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        return _as_text(next(iter(value))) if len(value) == 1 else None
    return _as_text(value)


# templates: text with wildcards, escapes and variables ---------------------------
_LITERAL, _STAR, _QMARK, _VAR = 0, 1, 2, 3
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


def _tokens(text: str, variables_enabled: bool) -> tuple[tuple[int, str], ...]:
    out: list[tuple[int, str]] = []
    buf: list[str] = []

    def flush():
        if buf:
            out.append((_LITERAL, "".join(buf)))
            buf.clear()

    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if variables_enabled and ch == "$" and text.startswith("${", i):
            end = text.find("}", i + 2)
            if end != -1:
                name = text[i + 2:end]
                if name in _ESCAPES:
                    buf.append(_ESCAPES[name])
                else:
                    flush()
                    out.append((_VAR, name))
                i = end + 1
                continue
        if ch == "*":
            flush()
            out.append((_STAR, ""))
        elif ch == "?":
            flush()
            out.append((_QMARK, ""))
        else:
            buf.append(ch)
        i += 1
    flush()
    return tuple(out)


@lru_cache(maxsize=8192)
def _regex(source: str, ignore_case: bool = False) -> re.Pattern:
    return re.compile(source, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_regex(pattern: str, ignore_case: bool = False) -> re.Pattern:
    """`*` and `?` wildcards, everything else literal."""
    return _regex("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), ignore_case)


class Template:
    """A Resource, NotResource or condition value, compiled once."""

    __slots__ = ("text", "tokens", "names", "originals", "wild", "_exact", "_pattern")

    def __init__(self, text: str, variables_enabled: bool):
        self.text = text
        self.tokens = _tokens(text, variables_enabled)
        self.originals = tuple(v for k, v in self.tokens if k == _VAR)
        self.names = tuple(normalize_name(v) for v in self.originals)
        self.wild = any(k in (_STAR, _QMARK) for k, _ in self.tokens)
        self._exact: str | None = None
        self._pattern: re.Pattern | None = None
        if not self.names:
            if self.wild:
                self._pattern = _regex(self._source({}))
            else:
                self._exact = "".join(v for _, v in self.tokens)

    @property
    def match_all(self) -> bool:
        return self.tokens == ((_STAR, ""),)

    def _source(self, values: dict) -> str:
        parts = []
        for kind, value in self.tokens:
            if kind == _LITERAL:
                parts.append(re.escape(value))
            elif kind == _STAR:
                parts.append(".*")
            elif kind == _QMARK:
                parts.append(".")
            else:
                parts.append(re.escape(values[normalize_name(value)]))
        return "".join(parts)

    def _values(self, variables: Variables, missing: set | None) -> dict | None:
        values = {}
        for name, original in zip(self.names, self.originals):
            value = _scalar(variables.get(name))
            if value is None:
                if missing is not None:
                    missing.add(original)
                return None
            values[name] = value
        return values

    def matcher(self, variables: Variables, missing: set | None = None):
        """A `match(text) -> bool`, or None when a variable cannot be resolved."""
        if self._pattern is not None:
            return self._pattern.fullmatch
        if self._exact is not None:
            return self._exact.__eq__
        values = self._values(variables, missing)
        if values is None:
            return None
        if self.wild:
            return _regex(self._source(values)).fullmatch
        return self.literal_from(values).__eq__

    def literal(self, variables: Variables, missing: set | None = None) -> str | None:
        """The text with variables substituted and wildcards as plain characters."""
        if self._exact is not None:
            return self._exact
        values = self._values(variables, missing) if self.names else {}
        if values is None:
            return None
        return self.literal_from(values)

    def literal_from(self, values: dict) -> str:
        out = []
        for kind, value in self.tokens:
            if kind == _LITERAL:
                out.append(value)
            elif kind == _STAR:
                out.append("*")
            elif kind == _QMARK:
                out.append("?")
            else:
                out.append(values[normalize_name(value)])
        return "".join(out)


# actions ---------------------------------------------------------------------
class ActionMatcher:
    __slots__ = ("any", "exact", "patterns")

    def __init__(self, actions: Iterable[str]):
        self.any = False
        self.exact: set[str] = set()
        patterns = []
        for action in actions:
            if action == "*":
                self.any = True
            elif "*" in action or "?" in action:
                patterns.append(glob_regex(action, ignore_case=True))
            else:
                self.exact.add(action.lower())
        self.patterns = tuple(patterns)

    def __call__(self, action_lower: str) -> bool:
        if self.any or action_lower in self.exact:
            return True
        return any(p.fullmatch(action_lower) for p in self.patterns)


# conditions ------------------------------------------------------------------
def _number(text: str) -> float:
    return float(text)


def _date(text: str) -> float:
    text = text.strip()
    try:
        return float(text)  # epoch seconds
    except ValueError:
        pass
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _arn_match(pattern: str, value: str) -> bool:
    want = pattern.split(":", 5)
    have = value.split(":", 5)
    if len(want) != 6 or len(have) != 6:
        return False
    return all(glob_regex(w).fullmatch(h) is not None for w, h in zip(want, have))


def _ip_match(network: str, address: str) -> bool:
    return ipaddress.ip_address(address.strip()) in ipaddress.ip_network(network.strip(), strict=False)


def _binary_equals(policy: str, value: str) -> bool:
    try:
        return base64.b64decode(policy, validate=True) == base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return policy == value


# base operator -> (compare(policy_value, context_value) -> bool, negated, uses wildcards)
_COMPARE = {
    "StringEquals": (lambda p, v: p == v, False, False),
    "StringNotEquals": (lambda p, v: p == v, True, False),
    "StringEqualsIgnoreCase": (lambda p, v: p.casefold() == v.casefold(), False, False),
    "StringNotEqualsIgnoreCase": (lambda p, v: p.casefold() == v.casefold(), True, False),
    "StringLike": (None, False, True),
    "StringNotLike": (None, True, True),
    "NumericEquals": (lambda p, v: _number(v) == _number(p), False, False),
    "NumericNotEquals": (lambda p, v: _number(v) == _number(p), True, False),
    "NumericLessThan": (lambda p, v: _number(v) < _number(p), False, False),
    "NumericLessThanEquals": (lambda p, v: _number(v) <= _number(p), False, False),
    "NumericGreaterThan": (lambda p, v: _number(v) > _number(p), False, False),
    "NumericGreaterThanEquals": (lambda p, v: _number(v) >= _number(p), False, False),
    "DateEquals": (lambda p, v: _date(v) == _date(p), False, False),
    "DateNotEquals": (lambda p, v: _date(v) == _date(p), True, False),
    "DateLessThan": (lambda p, v: _date(v) < _date(p), False, False),
    "DateLessThanEquals": (lambda p, v: _date(v) <= _date(p), False, False),
    "DateGreaterThan": (lambda p, v: _date(v) > _date(p), False, False),
    "DateGreaterThanEquals": (lambda p, v: _date(v) >= _date(p), False, False),
    "Bool": (lambda p, v: p.lower() == v.lower(), False, False),
    "BinaryEquals": (_binary_equals, False, False),
    "IpAddress": (_ip_match, False, False),
    "NotIpAddress": (_ip_match, True, False),
    "ArnEquals": (_arn_match, False, False),
    "ArnLike": (_arn_match, False, False),
    "ArnNotEquals": (_arn_match, True, False),
    "ArnNotLike": (_arn_match, True, False),
}


class CompiledCondition:
    __slots__ = ("condition", "key", "values", "compare", "negated", "wildcards")

    def __init__(self, condition: Condition, variables_enabled: bool):
        self.condition = condition
        self.key = normalize_name(condition.key)
        self.values = tuple(Template(v, variables_enabled) for v in condition.values)
        if condition.operator == "Null":
            self.compare, self.negated, self.wildcards = None, False, False
        else:
            self.compare, self.negated, self.wildcards = _COMPARE[condition.operator]

    def holds(self, variables: Variables, missing: set) -> bool:
        cond = self.condition
        raw = variables.get(self.key)
        present = raw is not None and raw != [] and raw != ()
        if cond.operator == "Null":
            want_null = any(v.text.lower() == "true" for v in self.values)
            return (not present) if want_null else present
        if not present:
            if cond.if_exists or cond.qualifier == "ForAllValues":
                return True
            if cond.qualifier == "ForAnyValue" or not self.negated:
                missing.add(cond.key)
                return False
            return True
        # Policy values, variables substituted; any unresolved one fails the condition.
        tests = []
        for template in self.values:
            if self.wildcards:
                test = template.matcher(variables, missing)
            else:
                literal = template.literal(variables, missing)
                test = None if literal is None else (lambda v, p=literal: self.compare(p, v))
            if test is None:
                return False
            tests.append(test)

        def matches_any(value: str) -> bool:
            for test in tests:
                try:
                    if test(value):
                        return True
                except (ValueError, TypeError):
                    continue
            return False

        values = _as_list(raw)
        if cond.qualifier == "ForAllValues":
            if self.negated:
                return all(not matches_any(v) for v in values)
            return all(matches_any(v) for v in values)
        if self.negated:
            if cond.qualifier == "ForAnyValue":
                return any(not matches_any(v) for v in values)
            return not any(matches_any(v) for v in values)
        return any(matches_any(v) for v in values)


# statements and policies -----------------------------------------------------
@dataclass(frozen=True)
class MatchedStatement:
    policy: str | int  # the policy's name, or its position when compiled without names
    index: int  # position of the statement in the document
    sid: str | None
    effect: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    explicit_deny: bool
    matched: tuple[MatchedStatement, ...] = ()
    missing: tuple[str, ...] = ()  # policy variables / condition keys that had no value

    @property
    def implicit_deny(self) -> bool:
        return not self.allowed and not self.explicit_deny

    @property
    def decision(self) -> str:
        return "ALLOWED" if self.allowed else "EXPLICIT_DENY" if self.explicit_deny else "IMPLICIT_DENY"

    @property
    def allowing_policies(self) -> list:
        return _unique(m.policy for m in self.matched if m.effect == ALLOW)

    @property
    def denying_policies(self) -> list:
        return _unique(m.policy for m in self.matched if m.effect == DENY)


def _unique(items) -> list:
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


class CompiledStatement:
    __slots__ = ("policy", "index", "statement", "effect", "deny", "actions", "not_action",
                 "resources", "not_resource", "match_all", "conditions", "matched")

    def __init__(self, policy, index: int, statement: Statement, variables_enabled: bool):
        self.policy = policy
        self.index = index
        self.statement = statement
        self.effect = statement.effect
        self.deny = statement.effect == DENY
        self.actions = ActionMatcher(statement.actions)
        self.not_action = statement.not_action
        self.resources = tuple(Template(r, variables_enabled) for r in statement.resources)
        self.not_resource = statement.not_resource
        self.match_all = not self.not_resource and any(t.match_all for t in self.resources)
        self.conditions = tuple(CompiledCondition(c, variables_enabled) for c in statement.conditions)
        self.matched = MatchedStatement(policy, index, statement.sid, statement.effect)

    def applies_to_action(self, action_lower: str) -> bool:
        return self.actions(action_lower) != self.not_action

    def applies(self, resource: str, variables: Variables, missing: set) -> bool:
        if not self._resource_matches(resource, variables, missing):
            return False
        for condition in self.conditions:
            if not condition.holds(variables, missing):
                return False
        return True

    def _resource_matches(self, resource: str, variables: Variables, missing: set) -> bool:
        if self.match_all:
            return True
        if self.not_resource:
            for template in self.resources:
                match = template.matcher(variables, missing)
                if match is None or match(resource):
                    return False  # unresolvable: the statement is ignored
            return True
        for template in self.resources:
            match = template.matcher(variables, missing)
            if match is not None and match(resource):
                return True
        return False


def _document(doc) -> PolicyDocument:
    if isinstance(doc, PolicyDocument):
        return doc
    return parse_policy(doc)


class CompiledPolicySet:
    """Policies compiled once; `evaluate` and `is_allowed` are cheap and thread-safe."""

    _CACHE_LIMIT = 512

    def __init__(self, policies: Iterable):
        statements: list[CompiledStatement] = []
        names: list = []
        for position, item in enumerate(policies):
            if isinstance(item, tuple):
                name, doc = item
            else:
                name, doc = position, item
            document = _document(doc)
            names.append(name)
            for index, statement in enumerate(document.statements):
                statements.append(CompiledStatement(name, index, statement, document.variables_enabled))
        self.policy_names = tuple(names)
        self.statements = tuple(statements)
        self._by_action: dict[str, tuple[CompiledStatement, ...]] = {}

    def __len__(self) -> int:
        return len(self.policy_names)

    def _for_action(self, action: str) -> tuple[CompiledStatement, ...]:
        key = action.lower()
        found = self._by_action.get(key)
        if found is None:
            found = tuple(s for s in self.statements if s.applies_to_action(key))
            if len(self._by_action) >= self._CACHE_LIMIT:
                self._by_action.clear()
            self._by_action[key] = found
        return found

    def is_allowed(self, action: str, resource: str, variables=None) -> bool:
        """The decision alone; stops at the first matching Deny."""
        variables = _prepared(variables)
        missing: set = set()
        allowed = False
        for statement in self._for_action(action):
            if statement.deny:
                if statement.applies(resource, variables, missing):
                    return False
            elif not allowed and statement.applies(resource, variables, missing):
                allowed = True
        return allowed

    def evaluate(self, action: str, resource: str, variables=None) -> Decision:
        variables = _prepared(variables)
        missing: set = set()
        matched = []
        allow = deny = False
        for statement in self._for_action(action):
            if statement.applies(resource, variables, missing):
                matched.append(statement.matched)
                if statement.deny:
                    deny = True
                else:
                    allow = True
        return Decision(
            allowed=allow and not deny,
            explicit_deny=deny,
            matched=tuple(matched),
            missing=tuple(sorted(missing)),
        )


def compile_policies(policies: Iterable) -> CompiledPolicySet:
    """`policies`: documents (JSON text, dicts or PolicyDocument) or (name, document) pairs."""
    return CompiledPolicySet(policies)


@lru_cache(maxsize=256)
def _compiled(texts: tuple) -> CompiledPolicySet:
    return CompiledPolicySet(texts)


def evaluate(documents, action: str, resource: str, variables=None) -> Decision:
    """One-shot evaluation; documents given as JSON text are compiled once and cached."""
    if isinstance(documents, CompiledPolicySet):
        return documents.evaluate(action, resource, variables)
    documents = list(documents)
    if all(isinstance(d, str) or (isinstance(d, tuple) and isinstance(d[1], str)) for d in documents):
        return _compiled(tuple(documents)).evaluate(action, resource, variables)
    return CompiledPolicySet(documents).evaluate(action, resource, variables)
