"""Stored documents as text, for both stores: how a document is written (`_dumps`),
read back (`_loads`, `_named` for a page of them), a page's summaries completed
(`_summarized`) and a document's index entries listed (`_index_rows`)."""

from __future__ import annotations

import json

import orjson

from localiot.protocol import jsontext
from localiot.protocol.jsontext import _LONG_NUMBER
from localiot.store import summaries as _summaries


def _dumps(doc) -> str:
    """A document as stored: compact JSON text (orjson where its text is json's).
    Text written by json (not orjson) holding a run of 19 digits (an integer that
    may be beyond 64 bits, which orjson would read back as a float) starts with a
    space: JSON allows it, and it tells _loads to read that document with json."""
    out, by_orjson = jsontext.dumps_by(doc, ensure_ascii=False)
    text = out.decode()
    return " " + text if not by_orjson and _LONG_NUMBER.search(text) is not None else text


def _loads(text: str):
    """A stored document. orjson reads them ~4x faster than json (ListThings reads
    101 per page); json reads what _dumps marked (a leading space) and whatever
    orjson refuses (NaN), so every stored document reads back as it was written.
    (Documents written before the mark by an older version are read by orjson.)"""
    if text[:1] != " ":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _named(rows) -> list[tuple[str, dict]]:
    """(name, document) of (name, stored text) rows; a page of ListThings is 101 of them."""
    loads = orjson.loads
    try:
        return [(name, loads(doc)) if doc[:1] != " " else (name, json.loads(doc)) for name, doc in rows]
    except orjson.JSONDecodeError:  # one of them needs json (see _loads)
        return [(name, _loads(doc)) for name, doc in rows]


def _summarized(tx, kind: str, rows: list) -> list[tuple[str, str]]:
    """(name, summary text) of (name, stored summary) rows: a NULL summary (a row written
    before summaries were stored) is computed from the document, read by `tx.get`."""
    if not rows or None not in list(zip(*rows))[1]:  # (the usual page: no NULL, found at C speed)
        return rows
    for i, (name, text) in enumerate(rows):
        if text is None:
            rows[i] = (name, _summaries.of(kind, tx.get(kind, name)))
    return rows


def _index_rows(index):
    for key, values in index.items():
        if values is None:
            continue
        if isinstance(values, str):
            values = (values,)
        for value in values:
            yield key, value
