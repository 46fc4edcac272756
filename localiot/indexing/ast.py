"""The checked query tree SearchIndex, aggregations and dynamic groups evaluate."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """field:value (exact), field:pat*tern (wildcard), field:* (exists) or
    field:geo_distance,... / geo_bounding_box,... on a location field (geo)."""

    field: str
    value: str  # the literal (term), an anchored regular expression (wildcard), "" (exists)
    kind: str = "term"  # "term" | "wildcard" | "exists" | "geo"
    prefix: str = ""  # wildcard: the literal text before the first * or ?
    pattern: str = ""  # wildcard: the same as a GLOB pattern (for the store's index)


@dataclass(frozen=True)
class Range:
    field: str
    low: str | None  # None: unbounded
    high: str | None
    include_low: bool = True
    include_high: bool = True


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


@dataclass(frozen=True)
class Not:
    item: object


@dataclass(frozen=True)
class All:
    """Matches every document (a query of only NOT clauses starts from it)."""
