"""Tx.summary_page (ListThings' page of stored summary texts) answers what scan and find with
summaries answer, cut to the page and joined by ",", on both stores: SQLite reads the page
as one row and falls back to reading row by row for a NULL summary (a row from before the
summary column), a name holding a newline, and for a kept kind; the last name only when
more rows follow."""

import json

import pytest

from localiot.store import summaries
from localiot.testing import ACCOUNT, REGION

KIND = "test-summary-page"
KEPT_KIND = "test-summary-page-kept"
for _kind in (KIND, KEPT_KIND):
    summaries.register(_kind, lambda doc: json.dumps({"n": doc["n"], "v": doc["v"]}, separators=(",", ":")))
summaries.keep(KEPT_KIND)

NAMES = ["a", "b", "b\nc", "c", "d/e", "\u00e9t\u00e9", "z"]


def _pages(tx, kind, limit, **options):
    """Every page from the first, as (texts, last name), and the whole as a list of names."""
    out, after = [], None
    while True:
        texts, last = tx.summary_page(kind, after=after, limit=limit, **options)
        out.append((json.loads("[" + texts + "]"), last))
        if last is None:
            return out
        after = last


def _expected(tx, kind, limit, key=None, value="", prefix=False):
    out, after = [], None
    while True:
        if key is None:
            rows = tx.scan(kind, after=after, limit=limit + 1, summaries=True)
        else:
            rows = tx.find(kind, key, value, prefix=prefix, after=after, limit=limit + 1, summaries=True)
        more = len(rows) > limit
        rows = rows[:limit]
        out.append(([json.loads(text) for _, text in rows], rows[-1][0] if more else None))
        if not more:
            return out
        after = rows[-1][0]


@pytest.mark.parametrize("kind", [KIND, KEPT_KIND])
@pytest.mark.parametrize("names", [NAMES, [n for n in NAMES if "\n" not in n]], ids=["newline", "plain"])
def test_summary_pages_equal_scan_and_find(localiot_server, kind, names):
    def steps(store):
        with store.transaction(ACCOUNT, REGION) as tx:
            for i, name in enumerate(names):
                tx.put(kind, name, {"n": name, "v": i}, {"color": "red" if i % 2 else "blue", "all": f"x{i}"})
        seen = []
        with store.transaction(ACCOUNT, REGION, write=False) as tx:
            for limit in (1, 2, 3, len(names), len(names) + 5):
                for options in ({}, {"key": "color", "value": "red"}, {"key": "all", "value": "x", "prefix": True}):
                    got, want = _pages(tx, kind, limit, **options), _expected(tx, kind, limit, **options)
                    seen.append((limit, options, got == want, len(got)))
                    assert got == want, (limit, options)
            assert tx.summary_page(kind, key="color", value="green", limit=5) == ("", None)
        with store.transaction(ACCOUNT, REGION) as tx:
            for name in names:
                tx.delete(kind, name)
        return seen

    seen = localiot_server.call(lambda: steps(localiot_server.app.store))
    assert all(ok for _, _, ok, _ in seen)
    assert max(n for *_, n in seen) == len(names)  # the one-at-a-time pages walked every row


def test_a_null_summary_mid_page_is_computed_from_its_document(localiot_server):
    def steps(store):
        with store.transaction(ACCOUNT, REGION) as tx:
            for i, name in enumerate("abcde"):
                tx.put(KIND, name, {"n": name, "v": i})
        sql = f"UPDATE objects SET summary = NULL WHERE kind = '{KIND}' AND name = 'c'"
        if hasattr(store, "db"):  # SQLite
            store.db.execute(sql)
        else:  # PostgreSQL
            with store.connection().transaction():
                store.connection().execute(sql)
        with store.transaction(ACCOUNT, REGION, write=False) as tx:
            first = tx.summary_page(KIND, limit=4)
            rest = tx.summary_page(KIND, after=first[1], limit=4)
        with store.transaction(ACCOUNT, REGION) as tx:
            for name in "abcde":
                tx.delete(KIND, name)
        return first, rest

    (texts, last), (more, end) = localiot_server.call(lambda: steps(localiot_server.app.store))
    assert [d["v"] for d in json.loads("[" + texts + "]")] == [0, 1, 2, 3] and last == "d"
    assert json.loads("[" + more + "]") == [{"n": "e", "v": 4}] and end is None
