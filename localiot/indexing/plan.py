"""Which index entries can narrow a query's candidates (pure).

Every value of an indexed field has a text entry (field -> evaluate.text(value));
every value that reads as a number also has an ordered numeric entry
(numeric_key(field) -> sortable(number)), whose string order is the numbers'
order, so a numeric range is a range of entries; every text entry of a field
that takes wildcards also has a reversed entry (reversed_key(field) -> the
text backwards), so a wildcard whose literal end is longer than its literal
start, or 3 characters or more (`*abc`, `?b*abc`, `thing-0?4321`), reads the
range of reversed entries starting with that end backwards (a prefix of the
reversed texts) instead of every entry the start selects; every text of a
field that rarely changes (a thing's or group's name, attributes.*: not the
shadow, so a shadow update writes none) also has its trigrams (grams_key(field)
-> each run of 3 characters at an even offset), so an infix wildcard (`*abcd*`,
`*abcd*?`) whose longest literal run has 4 characters or more, and more than its literal start,
reads the names holding every trigram of that run instead of every entry of
the field (checked afterwards: the trigrams may sit apart). `lookups` returns
index look-ups whose union holds every document the query matches (None: the
query needs a scan); the caller checks each candidate against the whole
query, so a plan only ever narrows, except where `exact` says the look-up
reads exactly the matches.

Kinds of look-up:
  term     exact text value: read in name order, page by page
  prefix   text (or reversed text) values starting with `value`, read in name order, page by
           page (on the name field: a key range of the documents)
  range    values within [low, high] of `field` (a text key, or a numeric key with sortable bounds)
  grams    names holding the rarer trigrams of the literal `value` under `field` (a grams key),
           or `fallback` (a pattern) when every one is common
  pattern  text (or reversed text) values matching a GLOB pattern (`low`/`high` bound its literal start)
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
REVERSED = "\x1fr"  # suffix of a field's reversed text entries
GRAMS = "\x1ft"  # suffix of a field's trigram entries
_TOP = "\U0010ffff"
# What an index's entries hold, by format (settings.ENTRIES): 1 text entries only,
# 2 also numeric entries, 3 also reversed entries, 4 also trigram entries. The planner
# uses what is there.
NUMERIC_FORMAT, REVERSED_FORMAT, GRAMS_FORMAT = 2, 3, 4
FORMAT = GRAMS_FORMAT
GRAM = 3
MAX_GRAMS = 8  # of a longer literal, this many (first and last included) narrow enough


def numeric_key(field: str) -> str:
    return field + NUMERIC


def reversed_key(field: str) -> str:
    return field + REVERSED


def grams_key(field: str) -> str:
    return field + GRAMS


def has_grams(field: str) -> bool:
    """Whether `field` has trigram entries: the names, set once (a shadow update, the
    most frequent write, changes none; each CreateThing writes ~15 more entries:
    bench/README.md, indexing, fifth pass)."""
    return field in ("thingName", "thingGroupName")


def grams(text: str) -> set[str]:
    """The trigrams a text is indexed by: those starting at even offsets (half the entries
    of every trigram; see some_grams for why a literal of 4 or more still finds it)."""
    return {text[i:i + GRAM] for i in range(0, len(text) - GRAM + 1, STRIDE)}


STRIDE = 2
MIN_LITERAL = GRAM + STRIDE - 1  # the shortest literal every text holding it is found by


def some_grams(literal: str) -> list[list[str]]:
    """Trigrams of `literal` to look up, one list per alignment: a text holding `literal`
    at offset o is indexed by the trigrams of `literal` at offsets j with j + o even, so it
    holds every trigram of one of the two lists (each non-empty when the literal has
    MIN_LITERAL characters or more); at most MAX_GRAMS of each, spread over it."""
    out = []
    for start in range(STRIDE):
        every = [literal[i:i + GRAM] for i in range(start, len(literal) - GRAM + 1, STRIDE)]
        if len(every) > MAX_GRAMS:
            step = (len(every) - 1) / (MAX_GRAMS - 1)
            every = [every[round(i * step)] for i in range(MAX_GRAMS)]
        out.append(sorted(set(every)))
    return out


def sortable(number) -> str:
    """A fixed-width string whose order is the numbers' order (IEEE 754 bits, sign-flipped)."""
    bits = struct.unpack(">Q", struct.pack(">d", float(number) + 0.0))[0]
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return f"{bits:016x}"


def _tokens(pattern: str) -> list[tuple[bool, str]]:
    """A wildcard's GLOB pattern (query._wildcard: `*`, `?`, and a literal *, ? or [
    written as a one-character class) as (wild, character) tokens."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "[":  # [x]: the literal x
            out.append((False, pattern[i + 1]))
            i += 3
        else:
            out.append((pattern[i] in "*?", pattern[i]))
            i += 1
    return out


def _glob(tokens) -> str:
    return "".join(c if wild or c not in "*?[" else f"[{c}]" for wild, c in tokens)


def _longest_literal(tokens) -> str:
    runs, run = [], []
    for wild, c in tokens:
        if wild:
            runs.append("".join(run))
            run = []
        else:
            run.append(c)
    runs.append("".join(run))
    return max(runs, key=len)


def _literal_end(tokens) -> str:
    """The literal characters after the last wildcard."""
    end = len(tokens)
    while end and not tokens[end - 1][0]:
        end -= 1
    return "".join(c for _, c in tokens[end:])


@dataclass(frozen=True)
class Lookup:
    kind: str  # term | prefix | range | pattern | exists
    field: str
    value: str = ""
    low: str | None = None
    high: str | None = None
    include_low: bool = True
    include_high: bool = True
    fallback: "Lookup | None" = None  # grams: the pattern look-up to take when every trigram is common


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


# A literal end this long reads the reversed entries even after a longer literal start:
# names and ids share their starts (thing-0..., sensor-...) far more than their ends.
ENOUGH = 3


def _wildcard(node: Term, entry_format: int) -> list[Lookup]:
    tokens = _tokens(node.pattern)
    end = _literal_end(tokens)
    if entry_format >= REVERSED_FORMAT and len(end) >= min(len(node.prefix) + 1, ENOUGH):  # by its end, backwards
        field, backwards = reversed_key(node.field), end[::-1]
        if tokens[0] == (True, "*") and sum(wild for wild, _ in tokens) == 1:  # *abc
            return [Lookup("prefix", field, backwards)]
        return [Lookup("pattern", field, _glob(tokens[::-1]), backwards, backwards + _TOP)]
    if node.pattern == _glob((False, c) for c in node.prefix) + "*":
        return [Lookup("prefix", node.field, node.prefix)]
    low = node.prefix or None
    pattern = Lookup("pattern", node.field, node.pattern, low, node.prefix + _TOP if low else None)
    inner = _longest_literal(tokens)
    if entry_format >= GRAMS_FORMAT and has_grams(node.field) and len(inner) >= max(MIN_LITERAL, len(node.prefix) + 1):
        return [Lookup("grams", grams_key(node.field), inner, fallback=pattern)]
    return [pattern]


def _term(node: Term, entry_format: int = FORMAT) -> list[Lookup] | None:
    if node.kind == "term":
        found = [Lookup("term", node.field, node.value)]
        if is_number(node.value) and canonical_number(node.value) != node.value:
            found.append(Lookup("term", node.field, canonical_number(node.value)))  # 20.0 is indexed as 20
        return found
    if node.kind == "exists":
        return [Lookup("exists", node.field)]
    if node.kind == "wildcard":
        return _wildcard(node, entry_format)
    if node.kind == "geo":  # the band of latitudes it can match, from the latitude's numeric entries
        low, high = geo.latitude_band(node.value)
        return [Lookup("range", numeric_key(geo.latitude_key(node.field)), "", sortable(low), sortable(high))]
    return None


_COST = {"term": 0, "prefix": 1, "range": 2, "grams": 3, "pattern": 4, "exists": 5}


def lookups(node, declared=lambda field: None, entry_format: int = FORMAT) -> list[Lookup] | None:
    """Look-ups whose union holds every match of `node`, or None when it needs a scan.
    `declared(field)` is the field's declared or managed type (None: inferred per value);
    `entry_format` what the index's entries hold (an index built by an older version
    has no numeric or reversed entries until it is upgraded)."""
    if isinstance(node, Term):
        found = _term(node, entry_format)
    elif isinstance(node, Range):
        found = _range(node, declared(node.field))
    elif isinstance(node, And):
        options = [found for found in (lookups(i, declared, entry_format) for i in node.items) if found is not None]
        if not options:
            return None
        return min(options, key=lambda found: (max(_COST[f.kind] for f in found), len(found)))
    elif isinstance(node, Or):
        union = []
        for item in node.items:
            found = lookups(item, declared, entry_format)
            if found is None:
                return None
            union += found
        return union
    else:
        return None
    if found is not None and entry_format < NUMERIC_FORMAT and any(f.field.endswith(NUMERIC) for f in found):
        return None  # not there yet: scanned
    return found


def exact(node, plan) -> bool:
    """Whether `plan` (lookups(node)) reads exactly the documents `node` matches, so a
    candidate need not be checked again: one text term that is not a number (its
    entry is the value's text, and only a number's text can equal a number's), or one
    wildcard read as one prefix of text or reversed entries (`abc*`, `*abc`: a
    document matches when the text of one of its values, which is its entry, starts
    or ends with the literal) or as one GLOB pattern over them (`thing-0?4321`: the
    wildcard itself, or its reverse over reversed texts; GLOB's `*` and `?` are the
    query's, and its literal `[x]` classes the query's escapes)."""
    if not isinstance(node, Term) or not plan:
        return False
    if node.kind == "term":
        return not is_number(node.value)
    return node.kind == "wildcard" and len(plan) == 1 and plan[0].kind in ("prefix", "pattern")
