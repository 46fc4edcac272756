"""Summaries kept in memory (localiot.store.summaries.KEPT: the fleet index's reply
texts, which SearchIndex's exact pages splice): `find` with summaries answers what
is stored after every commit, rollback, delete and reset, and inside a transaction
its own writes, on both stores (PostgreSQL keeps nothing and reads the database)."""

import json

import pytest

from localiot.store import summaries
from localiot.testing import ACCOUNT, REGION

KIND = "test-kept-summaries"
summaries.register(KIND, lambda doc: json.dumps({"n": doc["n"], "v": doc["v"]}, separators=(",", ":")))
summaries.keep(KIND)


class Undo(Exception):
    pass


def _on_store(server, fn):
    return server.call(lambda: fn(server.app.store))


def _put(tx, name, v, color="red"):
    tx.put(KIND, name, {"n": name, "v": v}, {"color": color, "tag": f"t-{name}"})


def _find(store, value="red", **options):
    with store.transaction(ACCOUNT, REGION, write=False) as tx:
        return tx.find(KIND, "color", value, summaries=True, **options)


def _texts(rows):
    return [(name, json.loads(text)["v"]) for name, text in rows]


def test_kept_summaries_follow_commits_rollbacks_deletes_and_resets(localiot_server):
    def steps(store):
        seen = []
        with store.transaction(ACCOUNT, REGION) as tx:
            for name in ("a", "b", "c"):
                _put(tx, name, 1)
        seen.append(_texts(_find(store)))  # read from the file, now kept
        seen.append(_texts(_find(store)))  # from memory on SQLite: the same
        with store.transaction(ACCOUNT, REGION) as tx:
            _put(tx, "b", 2)  # same index entry, new summary
            seen.append(_texts(tx.find(KIND, "color", "red", summaries=True)))  # its own write
        seen.append(_texts(_find(store)))
        with pytest.raises(Undo), store.transaction(ACCOUNT, REGION) as tx:
            tx.find(KIND, "color", "red", summaries=True)
            _put(tx, "c", 9)
            seen.append(_texts(tx.find(KIND, "color", "red", summaries=True)))
            raise Undo
        seen.append(_texts(_find(store)))  # the rolled-back write is nowhere
        with store.transaction(ACCOUNT, REGION) as tx:
            tx.find(KIND, "color", "red", summaries=True)
            tx.delete(KIND, "a")
            _put(tx, "c", 3, color="blue")
            seen.append(_texts(tx.find(KIND, "color", "red", summaries=True)))
        seen.append(_texts(_find(store)) + _texts(_find(store, "blue")))
        seen.append(_texts(_find(store, after="a", limit=1)))
        store.reset()
        seen.append(_texts(_find(store)))
        return seen

    assert _on_store(localiot_server, steps) == [
        [("a", 1), ("b", 1), ("c", 1)],
        [("a", 1), ("b", 1), ("c", 1)],
        [("a", 1), ("b", 2), ("c", 1)],
        [("a", 1), ("b", 2), ("c", 1)],
        [("a", 1), ("b", 2), ("c", 9)],
        [("a", 1), ("b", 2), ("c", 1)],
        [("b", 2)],
        [("b", 2), ("c", 3)],
        [("b", 2)],
        [],
    ]


def test_kept_summaries_of_prefix_finds_pages(localiot_server):
    def steps(store):
        with store.transaction(ACCOUNT, REGION) as tx:
            for i in range(12):
                _put(tx, f"d{i:02d}", i)
        with store.transaction(ACCOUNT, REGION, write=False) as tx:
            first = tx.find(KIND, "tag", "t-d0", prefix=True, summaries=True, limit=5)
            again = tx.find(KIND, "tag", "t-d", prefix=True, summaries=True, after="d03", limit=4)
        with store.transaction(ACCOUNT, REGION) as tx:
            _put(tx, "d05", 50)
        with store.transaction(ACCOUNT, REGION, write=False) as tx:
            after_write = tx.find(KIND, "tag", "t-d", prefix=True, summaries=True, after="d03", limit=4)
        return _texts(first), _texts(again), _texts(after_write)

    assert _on_store(localiot_server, steps) == (
        [("d00", 0), ("d01", 1), ("d02", 2), ("d03", 3), ("d04", 4)],
        [("d04", 4), ("d05", 5), ("d06", 6), ("d07", 7)],
        [("d04", 4), ("d05", 50), ("d06", 6), ("d07", 7)],
    )


def test_kept_summaries_of_a_broad_prefix_page_by_name(localiot_server):
    # More entries than the store pages in Python (localiot.store.queries.RANGE_READ), their
    # values in the reverse order of their names: a page is still the first names in name order
    count = 1_100

    def steps(store):
        with store.transaction(ACCOUNT, REGION) as tx:
            for i in range(count):
                tx.put(KIND, f"w{i:04d}", {"n": f"w{i:04d}", "v": i}, {"rev": f"r-{count - i:05d}"})
        pages = []
        for _ in range(2):  # read from the file, then with the texts kept
            with store.transaction(ACCOUNT, REGION, write=False) as tx:
                pages.append(_texts(tx.find(KIND, "rev", "r-", prefix=True, summaries=True, limit=3)))
                pages.append(_texts(tx.find(KIND, "rev", "r-0", prefix=True, summaries=True, after="w0997", limit=3)))
        return pages

    first, narrow = [("w0000", 0), ("w0001", 1), ("w0002", 2)], [("w0998", 998), ("w0999", 999), ("w1000", 1000)]
    assert _on_store(localiot_server, steps) == [first, narrow, first, narrow]
