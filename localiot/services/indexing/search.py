"""SearchIndex, and the one way every indexing feature finds matching
documents (aggregations, dynamic groups and fleet metrics use `matching`).

The planner (localiot.indexing.evaluate.lookups) names index entries whose
union holds every match: term and prefix queries read only those, through
the store's (kind, key, value) index, merged in name order; other queries
scan the index in name order. Either way every candidate is checked against
the whole query, so the plan only ever narrows."""

from __future__ import annotations

import heapq

from localiot.indexing import fields
from localiot.indexing.evaluate import compile_query, lookups
from localiot.indexing.query import QueryError, parse
from localiot.protocol.errors import ServiceError, invalid
from localiot.services import operation
from localiot.services.common import decode_token, encode_token
from localiot.services.indexing import settings

QUERY_VERSION = "2017-09-30"
CHUNK = 500
MAX_LOOKUPS = 64
DEFAULT_RESULTS = 100


def checked_query(ctx, req, *, ready: bool = True):
    """(index, config, query tree, predicate) for a request's indexName / queryString, or AWS's error."""
    version = req.get("queryVersion")
    if version is not None and version != QUERY_VERSION:
        raise invalid(f"Query version {version} is not supported; use {QUERY_VERSION}.")
    index, config = settings.require_index(ctx, req.get("indexName"), ready=ready)
    custom = settings.custom_types(config, index)
    try:
        node = parse(req["queryString"], index, custom)
    except QueryError as exc:
        raise ServiceError("InvalidQueryException", str(exc)) from None
    return index, config, node, compile_query(node, index, custom)


def _stream(fetch, after, first: int = CHUNK):
    """Rows in key order, read in keyset chunks growing from `first` (a page's size) to CHUNK."""
    cursor, size = after, max(1, min(first, CHUNK))
    while True:
        rows = fetch(cursor, size)
        yield from rows
        if len(rows) < size:
            return
        cursor, size = rows[-1][0], min(size * 4, CHUNK)


def matching(tx, index: str, node, predicate, after: str | None = None, first: int = CHUNK):
    """(name, indexed document) of every match after `after`, in name order
    (`first`: how many the caller will likely take, to size the first read)."""
    kind = settings.THING_INDEX if index == fields.THINGS else settings.GROUP_INDEX
    name_field = fields.DEFAULT_FIELD[index]
    plan = lookups(node)
    # Exact values read the (key, value, name) index in name order; a prefix of
    # the name is a key range of the documents; any other prefix scans.
    if plan is None or len(plan) > MAX_LOOKUPS or any(p and f != name_field for f, _, p in plan):
        rows = _stream(lambda cursor, limit: tx.scan(kind, after=cursor, limit=limit), after, first)
    else:
        streams = [
            _stream(lambda cursor, limit, v=v: tx.scan(kind, prefix=v, after=cursor, limit=limit), after, first)
            if p else
            _stream(lambda cursor, limit, f=f, v=v: tx.find(kind, f, v, after=cursor, limit=limit), after, first)
            for f, v, p in plan
        ]
        rows = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda row: row[0])
    last = None
    for name, doc in rows:
        if name == last:
            continue
        last = name
        if predicate(doc["fields"]):
            yield name, doc


@operation("iot")
def SearchIndex(ctx, req):
    index, _, node, predicate = checked_query(ctx, req)
    limit = req.get("maxResults") or DEFAULT_RESULTS
    found = []
    for row in matching(ctx.tx, index, node, predicate, decode_token(req.get("nextToken")), limit + 1):
        found.append(row)
        if len(found) > limit:
            break
    out = {"things": [], "thingGroups": []}
    if len(found) > limit:
        found = found[:limit]
        out["nextToken"] = encode_token(found[-1][0])
    key = "things" if index == fields.THINGS else "thingGroups"
    out[key] = [doc["result"] for _, doc in found]
    return out
