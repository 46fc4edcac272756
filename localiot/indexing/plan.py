"""Which index entries can narrow a query's candidates (pure).

Every value of an indexed field has a text entry (field -> evaluate.text(value));
every value that reads as a number also has an ordered numeric entry
(numeric_key(field) -> sortable(number)), whose string order is the numbers'
order, so a numeric range is a range of entries. `lookups` returns index
look-ups whose union holds every document the query matches (None: the
query needs a scan); the caller still checks each candidate against the
whole query, so a plan only ever narrows.

Kinds of look-up:
  term     exact text value: read in name order, page by page
  prefix   text values starting with `value` (on the name field: a key range of the documents)
  range    values within [low, high] of `field` (a text key, or a numeric key with sortable bounds)
  pattern  text values matching a GLOB pattern (`low`/`high` bound its literal prefix)
  exists   any value of the field
A geoquery reads the band of latitudes it can match (geo.latitude_band).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from localiot.indexing import geo
from localiot.indexing.ast import And, Or, Range, Term
from localiot.indexing.evaluate import canonical_number
from localiot.indexing.query import is_number

NUMERIC = "\x1fn"  # suffix of a field's numeric entries (no field name holds a control character)
_TOP = "\U0010ffff"


def numeric_key(field: str) -> str:
    return field + NUMERIC


def sortable(number) -> str:
    """A fixed-width string whose order is the numbers' order (IEEE 754 bits, sign-flipped)."""
    bits = struct.unpack(">Q", struct.pack(">d", float(number) + 0.0))[0]
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return f"{bits:016x}"


@dataclass(frozen=True)
class Lookup:
    kind: str  # term | prefix | range | pattern | exists
    field: str
    value: str = ""
    low: str | None = None
    high: str | None = None
    include_low: bool = True
    include_high: bool = True


def _range(node: Range, declared: str | None) -> list[Lookup]:
    bounds = [b for b in (node.low, node.high) if b is not None]
    numeric = all(is_number(b) for b in bounds)
    found = []
    if numeric and declared != "String":
        found.append(Lookup("range", numeric_key(node.field), "",
                            None if node.low is None else sortable(node.low),
                            None if node.high is None else sortable(node.high), node.include_low, node.include_high))
    if declared != "Number":  # text comparison (String fields, and values that are not numbers)
        found.append(Lookup("range", node.field, "", node.low, node.high, node.include_low, node.include_high))
    return found


def _term(node: Term) -> list[Lookup] | None:
    if node.kind == "term":
        found = [Lookup("term", node.field, node.value)]
        if is_number(node.value) and canonical_number(node.value) != node.value:
            found.append(Lookup("term", node.field, canonical_number(node.value)))  # 20.0 is indexed as 20
        return found
    if node.kind == "exists":
        return [Lookup("exists", node.field)]
    if node.kind == "wildcard":
        if node.pattern == "".join(f"[{c}]" if c in "*?[" else c for c in node.prefix) + "*":
            return [Lookup("prefix", node.field, node.prefix)]
        low = node.prefix or None
        return [Lookup("pattern", node.field, node.pattern, low, node.prefix + _TOP if low else None)]
    if node.kind == "geo":  # the band of latitudes it can match, from the latitude's numeric entries
        low, high = geo.latitude_band(node.value)
        return [Lookup("range", numeric_key(geo.latitude_key(node.field)), "", sortable(low), sortable(high))]
    return None


_COST = {"term": 0, "prefix": 1, "range": 2, "pattern": 3, "exists": 4}


def lookups(node, declared=lambda field: None) -> list[Lookup] | None:
    """Look-ups whose union holds every match of `node`, or None when it needs a scan.
    `declared(field)` is the field's declared or managed type (None: inferred per value)."""
    if isinstance(node, Term):
        return _term(node)
    if isinstance(node, Range):
        return _range(node, declared(node.field))
    if isinstance(node, And):
        options = [found for found in (lookups(i, declared) for i in node.items) if found is not None]
        if not options:
            return None
        return min(options, key=lambda found: (max(_COST[f.kind] for f in found), len(found)))
    if isinstance(node, Or):
        union = []
        for item in node.items:
            found = lookups(item, declared)
            if found is None:
                return None
            union += found
        return union
    return None


def exact(node, name_field: str) -> bool:
    """Whether `lookups(node)` reads exactly the documents `node` matches, so a
    candidate need not be checked again: one text term that is not a number
    (its entry is the value's text, and only a number's text can equal a
    number's), or a literal prefix of the name field (a key range of the
    document names, each document's one name value)."""
    if not isinstance(node, Term):
        return False
    if node.kind == "term":
        return not is_number(node.value)
    if node.kind == "wildcard" and node.field == name_field:
        return _term(node) == [Lookup("prefix", node.field, node.prefix)]
    return False
