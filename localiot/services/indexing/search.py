"""SearchIndex, and the one way every indexing feature finds matching
documents (aggregations, dynamic groups and fleet metrics use `matching`).

The planner (localiot.indexing.plan.lookups) names index look-ups whose
union holds every match. Exact values read the store's (kind, key, value)
index in name order, merged, a page at a time; a prefix of the name field
is a key range of the documents; other prefixes (of text entries, or of
reversed entries: `*abc`) read the documents of the matching entries in name
order, a page at a time; ranges (text, or numeric through the ordered numeric
entries), wildcard patterns and `field:*` collect the names of their
candidates from the index alone, then read the documents in name order.
Queries with no look-up (NOT alone, geoqueries) scan the index in name
order. Every candidate is then checked against the whole query, so the plan
only ever narrows; except where the plan is exact
(one text term, one wildcard read as a prefix: `plan.exact`), whose rows
are the matches."""

from __future__ import annotations

import heapq
from functools import lru_cache
from operator import itemgetter


from localiot.indexing import fields
from localiot.indexing.evaluate import compile_query
from localiot.indexing.plan import exact, lookups, some_grams as plan_grams
from localiot.indexing.query import QueryError, parse
from localiot.protocol.errors import ServiceError, invalid
from localiot.protocol.serializer import JsonText
from localiot.services import operation
from localiot.services.common import decode_token, encode_token
from localiot.services.indexing import replies, settings  # noqa: F401 (replies: the stored reply texts)

QUERY_VERSION = "2017-09-30"
CHUNK = 500
MAX_LOOKUPS = 64
DEFAULT_RESULTS = 100


# Checked queries by (query string, index, declared types, entry format): everything the
# tree, its predicate and its plan depend on, so a configuration that changes any of them
# (custom fields, geolocations, an index rebuilt in another format) finds other entries.
# A repeated query skips parse, compile and plan (three cached calls, each hashing the
# tree again). Cleared when full.
_PREPARED: dict[tuple, tuple] = {}
PREPARED_AT_MOST = 1024


def prepared_query(ctx, req, *, ready: bool = True) -> tuple:
    """(index, config, query tree, predicate, plan, whether the plan is exact) for a
    request's indexName / queryString, or AWS's error."""
    version = req.get("queryVersion")
    if version is not None and version != QUERY_VERSION:
        raise invalid(f"Query version {version} is not supported; use {QUERY_VERSION}.")
    index, config = settings.require_index(ctx, req.get("indexName"), ready=ready)
    custom = settings.custom_types(config, index)
    key = (req["queryString"], index, tuple(sorted(custom.items())) if custom else (),
           settings.entry_format(config, index))
    found = _PREPARED.get(key)
    if found is None:
        try:
            node = parse(key[0], index, custom)
        except QueryError as exc:
            raise ServiceError("InvalidQueryException", str(exc)) from None
        plan = _plan(node, index, key[2], key[3])
        found = (node, compile_query(node, index, custom), plan,
                 plan is not None and len(plan) <= MAX_LOOKUPS and exact(node, plan))
        if len(_PREPARED) >= PREPARED_AT_MOST:
            _PREPARED.clear()
        _PREPARED[key] = found
    return index, config, *found


def checked_query(ctx, req, *, ready: bool = True):
    """(index, config, query tree, predicate) for a request's indexName / queryString, or AWS's error."""
    return prepared_query(ctx, req, ready=ready)[:4]


def _stream(fetch, after, first: int = CHUNK):
    """Rows in key order, read in keyset chunks growing from `first` (a page's size) to CHUNK."""
    cursor, size = after, max(1, min(first, CHUNK))
    while True:
        rows = fetch(cursor, size)
        yield from rows
        if len(rows) < size:
            return
        cursor, size = rows[-1][0], min(size * 4, CHUNK)


def _names_in_order(tx, kind: str, names: set, after: str | None):
    for name in sorted(n for n in names if after is None or n > after):
        doc = tx.get(kind, name)
        if doc is not None:
            yield name, doc


def _candidates(tx, kind: str, plan, name_field: str, after: str | None, first: int, texts: bool = False):
    """Rows of the plan's look-ups in name order (`texts`: (name, stored reply text), for
    plans of terms and prefixes only)."""
    if all(p.kind in ("term", "prefix") for p in plan):  # each read in name order, a page at a time
        streams = [
            _stream(lambda cursor, limit, v=p.value: tx.scan(kind, prefix=v, after=cursor, limit=limit,
                                                             summaries=texts), after, first)
            if p.kind == "prefix" and p.field == name_field else
            _stream(lambda cursor, limit, f=p.field, v=p.value, pre=p.kind == "prefix":
                    tx.find(kind, f, v, prefix=pre, after=cursor, limit=limit, summaries=texts), after, first)
            for p in plan
        ]
        return streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda row: row[0])
    names: set = set()
    for p in plan:
        if p.kind == "term":
            names.update(tx.find_names(kind, p.field, low=p.value, high=p.value))
        elif p.kind == "prefix":
            names.update(tx.find_names(kind, p.field, low=p.value, high=p.value + "\U0010ffff"))
        elif p.kind == "exists":
            names.update(tx.find_names(kind, p.field))
        elif p.kind == "grams":
            names.update(_holding_grams(tx, kind, p))
        else:  # range, pattern
            names.update(tx.find_names(kind, p.field, low=p.low, high=p.high, include_low=p.include_low,
                                       include_high=p.include_high,
                                       pattern=p.value if p.kind == "pattern" else None))
    return _names_in_order(tx, kind, names, after)


# A trigram held by this many names or more is not read (a GLOB over the field's entries
# costs about what reading this many names does); fewer candidates than FEW need no more.
COMMON, FEW = 4000, 64


def _holding_grams(tx, kind: str, lookup) -> set:
    """Candidates of an infix wildcard: for each alignment of its literal's trigrams
    (plan.some_grams), names holding the rarest of them, rarest first, until few remain;
    the union of both. A GLOB over the field's entries (the look-up's fallback) when
    every trigram of an alignment is common (`*hing-0*` on thing-NNNNNN)."""
    counted = [sorted((tx.count(kind, lookup.field, gram, at_most=COMMON), gram) for gram in aligned)
               for aligned in plan_grams(lookup.value)]
    if any(aligned[0][0] >= COMMON for aligned in counted):
        p = lookup.fallback
        return set(tx.find_names(kind, p.field, low=p.low, high=p.high, pattern=p.value))
    union = set()
    for aligned in counted:
        found = None
        for count, gram in aligned:
            if count >= COMMON or (found is not None and len(found) <= FEW):
                break
            names = set(tx.find_names(kind, lookup.field, low=gram, high=gram))
            found = names if found is None else found & names
        union |= found
    return union


@lru_cache(maxsize=512)
def _plan(node, index: str, custom: tuple, entry_format: int):
    types = dict(custom)
    return lookups(node, lambda field: fields.field_type(index, field, types), entry_format)


def plan_of(index: str, config: dict, node):
    """The look-ups of `node` on this index's entries (plan.lookups), computed once per query shape."""
    custom = tuple(sorted(settings.custom_types(config, index).items()))
    return _plan(node, index, custom, settings.entry_format(config, index))


def matching(tx, index: str, node, predicate, after: str | None = None, first: int = CHUNK,
             config: dict | None = None, plan=False):
    """(name, indexed document) of every match after `after`, in name order
    (`first`: how many the caller will likely take, to size the first read;
    `plan`: plan_of's answer when the caller has it)."""
    kind = settings.THING_INDEX if index == fields.THINGS else settings.GROUP_INDEX
    config = config if config is not None else settings.load(tx)
    plan = plan_of(index, config, node) if plan is False else plan
    name_field = fields.DEFAULT_FIELD[index]
    if plan is None or len(plan) > MAX_LOOKUPS:
        rows = _stream(lambda cursor, limit: tx.scan(kind, after=cursor, limit=limit), after, first)
    else:
        rows = _candidates(tx, kind, plan, name_field, after, first)
        if exact(node, plan):  # the look-up's rows are the matches (tests/test_indexing_plans.py)
            yield from rows
            return
    last = None
    for name, doc in rows:
        if name == last:
            continue
        last = name
        if predicate(doc["fields"]):
            yield name, doc


def _one_page(tx, index: str, lookup, after: str | None, limit: int) -> list:
    """(name, stored reply text) of the first `limit` documents of one term or prefix
    look-up after `after`, in name order: _candidates' rows for one look-up, in one read."""
    kind = settings.THING_INDEX if index == fields.THINGS else settings.GROUP_INDEX
    if lookup.kind == "prefix" and lookup.field == fields.DEFAULT_FIELD[index]:
        return tx.scan(kind, prefix=lookup.value, after=after, limit=limit, summaries=True)
    return tx.find(kind, lookup.field, lookup.value, prefix=lookup.kind == "prefix", after=after, limit=limit,
                   summaries=True)


_TEXT = itemgetter(1)


@operation("iot")
def SearchIndex(ctx, req):
    index, config, node, predicate, plan, exactly = prepared_query(ctx, req)
    limit = req.get("maxResults") or DEFAULT_RESULTS
    after = decode_token(req.get("nextToken"))
    key = "things" if index == fields.THINGS else "thingGroups"
    out = {"things": [], "thingGroups": []}
    # exact (plan.exact) terms and prefixes: the look-up's rows are the matches, read as their
    # stored reply texts (indexing/replies.py), spliced unparsed; else documents, each checked
    # against the query (but for an exact pattern: matching)
    spliced = exactly and all(p.kind in ("term", "prefix") for p in plan)
    if spliced and len(plan) == 1:  # most exact queries: one look-up, its page in one read
        rows = _one_page(ctx.tx, index, plan[0], after, limit + 1)
        if len(rows) > limit:  # the row after the page only says that another follows
            del rows[limit:]
            out["nextToken"] = encode_token(rows[-1][0])
        out[key] = JsonText(f"[{','.join(map(_TEXT, rows))}]")  # (one copy of the page's text, not two)
        return out
    if spliced:
        kind = settings.THING_INDEX if index == fields.THINGS else settings.GROUP_INDEX
        rows = _candidates(ctx.tx, kind, plan, fields.DEFAULT_FIELD[index], after, limit + 1, texts=True)
    else:
        rows = matching(ctx.tx, index, node, predicate, after, limit + 1, config, plan)
    found = []
    for row in rows:
        found.append(row)
        if len(found) > limit:
            break
    if len(found) > limit:
        found = found[:limit]
        out["nextToken"] = encode_token(found[-1][0])
    out[key] = JsonText(f"[{','.join(map(_TEXT, found))}]") if spliced else \
        [doc["result"] for _, doc in found]
    return out
