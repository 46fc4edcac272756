"""A parsed topic-rule statement: which topics it listens to, and what it makes of a message."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from localiot.iotsql import nodes as n
from localiot.iotsql.context import EvalContext
from localiot.iotsql.errors import SqlEvaluationError
from localiot.iotsql.parser import check_version, parse_select
from localiot.iotsql.values import UNDEFINED, Binary, dumps, truthy
from localiot.topics import matches

DEFAULT_VERSION = n.V1


@dataclass(frozen=True)
class Result:
    """What a rule sends to its actions: a JSON value (`dict` for a SELECT list;
    any JSON value for SELECT VALUE) or, for `SELECT *` of a binary payload, bytes.
    Decimal numbers are `decimal.Decimal`."""

    value: Any

    @property
    def is_binary(self) -> bool:
        return isinstance(self.value, (bytes, bytearray))

    def to_payload(self) -> bytes:
        if self.is_binary:
            return bytes(self.value)
        return dumps(self.value).encode("utf-8")


class Query:
    def __init__(self, sql: str, version: str, select: n.Select) -> None:
        self.sql = sql
        self.version = version
        self.select = select
        self.topic_filter: str = select.topic_filter or ""
        self.functions = frozenset(select.functions)
        self._dynamodb_calls = select.dynamodb_calls

    @property
    def select_value(self) -> bool:
        return self.select.value

    def __repr__(self) -> str:
        return f"Query({self.sql!r}, version={self.version!r})"

    def matches_topic(self, topic: str) -> bool:
        return matches(self.topic_filter, topic)

    def evaluate(self, payload: bytes | str, context: EvalContext | None = None) -> list[Result]:
        """[] when the WHERE clause is not true (false or Undefined); else the one result.
        Raises SqlEvaluationError when the rule fails (reported through the errorAction)."""
        if self._dynamodb_calls > 1:
            raise SqlEvaluationError("get_dynamodb() can be called at most once per SQL statement")
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        env = n.Env.for_payload(context if context is not None else EvalContext(), self.version, payload)
        try:
            if self.select.where is not None and not truthy(self.select.where.eval(env)):
                return []
            value = self.select.project(env)
        except RecursionError:
            raise SqlEvaluationError("the statement nests too deeply to evaluate") from None
        if value is UNDEFINED or isinstance(value, Decimal) and not value.is_finite():
            return []
        if isinstance(value, Binary):
            return [Result(value.data)]
        if self.select.value and isinstance(value, list) and self.version == n.V1:
            raise SqlEvaluationError("SELECT VALUE of an array needs SQL version 2016-03-23 or later")
        return [Result(value)]


def parse(sql: str, version: str = DEFAULT_VERSION) -> Query:
    """Parse a topic rule's SQL statement; raises SqlParseError."""
    check_version(version)
    if not isinstance(sql, str):
        raise TypeError("sql must be a str")
    return Query(sql, version, parse_select(sql, version))
