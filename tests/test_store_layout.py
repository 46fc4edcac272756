"""The SQLite store's layout (migration 4: objects clustered by key, no index by kind):
a file written by the previous layout reads back the same after the migration, and
scan_all_scopes still finds every scope's documents of a kind, in order, without
reading the other scopes' rows (the scopes are found by seeks in the key)."""

from __future__ import annotations

import sqlite3

from localiot.store.migrations import MIGRATIONS
from localiot.store.sqlite import SQLiteStore

# Accounts and regions that sort next to each other (prefixes of one another).
SCOPES = [("12", "us-east-1"), ("123", "eu-west-1"), ("123", "us-east-1"), ("123", "us-east-10"), ("9", "a")]


def _fill(store: SQLiteStore) -> None:
    for account, region in SCOPES:
        with store.transaction(account, region) as tx:
            for i in range(3):
                tx.put("tunnel", f"t{i}", {"status": "OPEN" if i != 1 else "CLOSED", "scope": [account, region]})
            tx.put("thing", "x", {"thingName": "x", "thingArn": f"arn:{account}", "attributes": {}, "version": 1})


def test_scan_all_scopes_reads_every_scope_in_order(tmp_path):
    store = SQLiteStore(str(tmp_path / "store.db"))
    try:
        _fill(store)
        found = store.scan_all_scopes("tunnel", {"status": "OPEN"})
        assert [(a, r, n) for a, r, n, _ in found] == [(a, r, n) for a, r in sorted(SCOPES) for n in ("t0", "t2")]
        assert all(doc["scope"] == [a, r] for a, r, _, doc in found)
        assert len(store.scan_all_scopes("tunnel")) == 3 * len(SCOPES)
        assert store.scan_all_scopes("tunnel", {"missing": None}) == store.scan_all_scopes("tunnel")
        assert store.scan_all_scopes("nothing") == []
    finally:
        store.close()


def test_scan_all_scopes_does_not_walk_a_large_scope(tmp_path):
    """A dozen periodic jobs call it every second: with 50,000 things in one scope it stays
    a few seeks. Counted in SQLite's virtual machine steps (its progress handler), not time:
    a range that walked the large scope's rows took ~100 times as many."""
    store = SQLiteStore(str(tmp_path / "store.db"))
    try:
        with store.transaction("123", "us-east-1") as tx:
            for i in range(50_000):
                tx.put("thing", f"thing-{i:06d}", {"thingName": f"thing-{i:06d}"})
        _fill(store)
        steps = []
        store.db.set_progress_handler(lambda: steps.append(1), 100)
        found = store.scan_all_scopes("tunnel", {"status": "OPEN"})
        store.db.set_progress_handler(None, 100)
        assert len(found) == 2 * len(SCOPES)
        assert len(steps) * 100 < 5_000
    finally:
        store.close()


def test_a_file_of_the_previous_layout_reads_the_same_after_migrating(tmp_path):
    path = str(tmp_path / "old.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in MIGRATIONS:
        if version > 3:
            break
        for sql in statements:
            db.execute(sql)
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    rows = [("123", "us-east-1", "thing", f"t{i}", '{"thingName":"t%d","version":%d}' % (i, i), None if i % 2 else "{}")
            for i in range(100)]
    db.executemany("INSERT INTO objects (account, region, kind, name, doc, summary) VALUES (?,?,?,?,?,?)", rows)
    db.close()
    store = SQLiteStore(path)
    try:
        assert store.schema_version == max(version for version, _ in MIGRATIONS)
        kept = store.db.execute("SELECT account, region, kind, name, doc, summary FROM objects ORDER BY name").fetchall()
        assert kept == sorted(rows, key=lambda row: row[3])
        indexes = {row[0] for row in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "objects_by_kind" not in indexes
        with store.transaction("123", "us-east-1") as tx:
            assert tx.get("thing", "t7") == {"thingName": "t7", "version": 7}
            assert [name for name, _ in tx.scan("thing", limit=3)] == ["t0", "t1", "t10"]
            tx.put("thing", "t7", {"thingName": "t7", "version": 8})
        with store.transaction("123", "us-east-1", write=False) as tx:
            assert tx.get("thing", "t7")["version"] == 8
            assert tx.count("thing") == 100
    finally:
        store.close()
