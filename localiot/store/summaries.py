"""Summaries: a kind's list entry, written beside each document as reply JSON text.

A family whose list operation answers a fixed projection of each stored
document (ListThings' ThingAttribute) registers `fn(doc) -> str` for its kind;
every `put` of that kind stores `fn(doc)` with the document (so no writer can
leave it stale), and `scan` / `find` with `summaries=True` return (name, text)
instead of (name, document): the list reply splices the texts (orjson
fragments) instead of parsing every document and serializing it again.
Rows written before the summary column existed hold NULL: their text is
computed from the document on read. Changing what a registered function
writes for the same document needs a migration that sets the kind's stored
summaries to NULL (they are then computed on read until rewritten).
"""

from __future__ import annotations

from typing import Callable

_SUMMARIES: dict[str, Callable[[dict], str | None]] = {}
# Kinds whose summaries a store that is its data's only user (SQLite) keeps in memory once
# read, as localiot.store.kept keeps documents: `find` with summaries then reads only the
# names from the index and takes the texts from memory, instead of one key look-up of the
# document per row (SearchIndex's pages of 100: half their CPU).
KEPT: set[str] = set()


def register(kind: str, fn: Callable[[dict], str | None]) -> None:
    _SUMMARIES[kind] = fn


def of(kind: str, doc: dict) -> str | None:
    """The summary text of `doc`, or None when `kind` (or this document) has none."""
    fn = _SUMMARIES.get(kind)
    return None if fn is None else fn(doc)


def has(kind: str) -> bool:
    return kind in _SUMMARIES


def keep(kind: str) -> None:
    KEPT.add(kind)


def page(rows: list[tuple[str, str]], limit: int) -> tuple[str, str | None]:
    """Tx.summary_page's answer from (name, summary) rows, up to `limit` + 1 of them."""
    if len(rows) <= limit:
        return ",".join([text for _, text in rows]), None
    del rows[limit:]
    return ",".join([text for _, text in rows]), rows[-1][0]
