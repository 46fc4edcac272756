"""SQLite backend: one connection, WAL, one transaction per API call.

All API work runs on the event loop's thread and handlers do not await inside
a transaction, so one connection serialises calls without locks. WAL with
synchronous=NORMAL puts every commit in the WAL file before the call
answers: a SIGKILLed process loses nothing it acknowledged (only a power cut
could lose the last commits; `durable=True` syncs every commit for that).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Iterable

import orjson

from localiot.store.migrations import MIGRATIONS, TABLES

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _loads(text: str):
    """A stored document. orjson reads them ~4x faster than json (ListThings reads
    101 per page); what it refuses (integers beyond 64 bits, NaN) json still reads,
    so every stored document reads back exactly as before."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


# Point reads through mmap were ~15% cheaper than through SQLite's page cache on a
# 100,000-thing file (bench/README.md); WAL and synchronous are untouched.
MMAP_BYTES = 256 * 1024 * 1024


class SQLiteStore:
    def __init__(self, path: str, durable: bool = False):
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Every statement is a constant string with ? parameters: sqlite3 keeps it
        # prepared in its statement cache, sized to hold all the store's SQL.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=512)
        if path != ":memory:":
            # One process owns the data directory (DataDirectoryLock), so the file is
            # locked once, not per transaction: before WAL is entered, so the WAL index
            # lives in memory instead of the -shm file. Commits still reach the WAL
            # file before they answer (SIGKILL loses nothing); point reads measured
            # ~20% and writes ~50% cheaper in the store (bench/README.md).
            self.db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.db.execute("PRAGMA foreign_keys=OFF")
        self._migrate()

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = row[0] or 0
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for sql in statements:
                    self.db.execute(sql)
                self.db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        return self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]

    def transaction(self, account: str, region: str, *, write: bool = True) -> "_Transaction":
        """`with store.transaction(account, region) as tx:` commits when the body
        ends, rolls back when it raises."""
        return _Transaction(self.db, account, region, write)

    # reads across every (account, region): for listeners that serve them all --
    def scan_all_scopes(self, kind: str, where: dict | None = None) -> list[tuple[str, str, str, dict]]:
        """(account, region, name, doc) of every `kind` document whose top-level
        fields equal `where`'s values (None: absent or null)."""
        sql = "SELECT account, region, name, doc FROM objects WHERE kind = ?"
        args: list = [kind]
        for field, value in (where or {}).items():
            if not field.isidentifier():
                raise ValueError(f"not a document field: {field!r}")
            if value is None:
                sql += f" AND json_extract(doc, '$.{field}') IS NULL"
            else:
                sql += f" AND json_extract(doc, '$.{field}') = ?"
                args.append(value)
        return [(a, r, n, _loads(d)) for a, r, n, d in self.db.execute(sql, args)]

    def scopes_indexing(self, kind: str, key: str, value: str) -> list[tuple[str, str]]:
        """The (account, region) scopes holding a `kind` document with index entry key=value."""
        rows = self.db.execute(
            "SELECT DISTINCT account, region FROM object_index WHERE kind = ? AND key = ? AND value = ?",
            (kind, key, value),
        )
        return [tuple(row) for row in rows]

    def reset(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        for table in TABLES:
            self.db.execute(f"DELETE FROM {table}")
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


class _Transaction:
    """One transaction as a plain context manager (every API call opens one)."""

    __slots__ = ("db", "account", "region", "write")

    def __init__(self, db: sqlite3.Connection, account: str, region: str, write: bool):
        self.db, self.account, self.region, self.write = db, account, region, write

    def __enter__(self) -> "SQLiteTx":
        self.db.execute("BEGIN IMMEDIATE" if self.write else "BEGIN")
        return SQLiteTx(self.db, self.account, self.region, [])

    def __exit__(self, kind, error, trace) -> bool:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        return False


def _index_rows(index):
    for key, values in index.items():
        if values is None:
            continue
        if isinstance(values, str):
            values = (values,)
        for value in values:
            yield key, value


class SQLiteTx:
    def __init__(self, db: sqlite3.Connection, account: str, region: str, changes: list | None = None):
        self.db = db
        self.account = account
        self.region = region
        self._scope = (account, region)
        # What this transaction wrote, shared by its scopes (see base.Tx.changes).
        self.changes = changes if changes is not None else []

    def scope(self, account: str, region: str) -> "SQLiteTx":
        return SQLiteTx(self.db, account, region, self.changes)

    # documents -----------------------------------------------------------
    def get(self, kind: str, name: str) -> dict | None:
        row = self.db.execute(
            "SELECT doc FROM objects WHERE account=? AND region=? AND kind=? AND name=?",
            (*self._scope, kind, name),
        ).fetchone()
        return _loads(row[0]) if row else None

    def put(self, kind: str, name: str, doc: dict, index=None) -> None:
        self.db.execute(
            "INSERT INTO objects (account, region, kind, name, doc) VALUES (?,?,?,?,?) "
            "ON CONFLICT (account, region, kind, name) DO UPDATE SET doc=excluded.doc",
            (*self._scope, kind, name, _dumps(doc)),
        )
        self.changes.append(("doc", *self._scope, kind, name))
        if index is not None:
            self._drop_index(kind, name)
            self.db.executemany(
                "INSERT INTO object_index (account, region, kind, key, value, name) VALUES (?,?,?,?,?,?)",
                [(*self._scope, kind, key, value, name) for key, value in _index_rows(index)],
            )

    def _drop_index(self, kind: str, name: str) -> None:
        self.db.execute(
            "DELETE FROM object_index WHERE account=? AND region=? AND kind=? AND name=?",
            (*self._scope, kind, name),
        )

    def delete(self, kind: str, name: str) -> bool:
        cur = self.db.execute(
            "DELETE FROM objects WHERE account=? AND region=? AND kind=? AND name=?",
            (*self._scope, kind, name),
        )
        self._drop_index(kind, name)
        if cur.rowcount:
            self.changes.append(("doc", *self._scope, kind, name))
        return cur.rowcount > 0

    def scan(self, kind, *, after=None, prefix=None, limit=None):
        sql = "SELECT name, doc FROM objects WHERE account=? AND region=? AND kind=?"
        args: list = [*self._scope, kind]
        if after is not None:
            sql += " AND name > ?"
            args.append(after)
        if prefix:
            sql += " AND name >= ? AND name < ?"
            args += [prefix, prefix + "\U0010ffff"]
        sql += " ORDER BY name"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [(name, _loads(doc)) for name, doc in self.db.execute(sql, args)]

    def find(self, kind, key, value, *, prefix=False, after=None, limit=None):
        sql = (
            "SELECT o.name, o.doc FROM object_index i JOIN objects o ON o.account=i.account "
            "AND o.region=i.region AND o.kind=i.kind AND o.name=i.name "
            "WHERE i.account=? AND i.region=? AND i.kind=? AND i.key=?"
        )
        args: list = [*self._scope, kind, key]
        if prefix:
            sql += " AND i.value >= ? AND i.value < ?"
            args += [value, value + "\U0010ffff"]
        else:
            sql += " AND i.value = ?"
            args.append(value)
        if after is not None:
            sql += " AND i.name > ?"
            args.append(after)
        sql += " GROUP BY o.name ORDER BY o.name" if prefix else " ORDER BY i.name"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [(name, _loads(doc)) for name, doc in self.db.execute(sql, args)]

    def find_names(self, kind, key, *, low=None, high=None, include_low=True, include_high=True, pattern=None):
        sql = "SELECT DISTINCT name FROM object_index WHERE account=? AND region=? AND kind=? AND key=?"
        args: list = [*self._scope, kind, key]
        if low is not None:
            sql += " AND value >= ?" if include_low else " AND value > ?"
            args.append(low)
        if high is not None:
            sql += " AND value <= ?" if include_high else " AND value < ?"
            args.append(high)
        if pattern is not None:
            sql += " AND value GLOB ?"
            args.append(pattern)
        return [row[0] for row in self.db.execute(sql, args)]

    def count(self, kind, key=None, value=None) -> int:
        if key is None:
            sql, args = "SELECT COUNT(*) FROM objects WHERE account=? AND region=? AND kind=?", [*self._scope, kind]
        else:
            sql = "SELECT COUNT(*) FROM object_index WHERE account=? AND region=? AND kind=? AND key=? AND value=?"
            args = [*self._scope, kind, key, value]
        return self.db.execute(sql, args).fetchone()[0]

    # links ---------------------------------------------------------------
    def link(self, rel, src, dst) -> bool:
        cur = self.db.execute(
            "INSERT INTO links (account, region, rel, src, dst) VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
            (*self._scope, rel, src, dst),
        )
        if cur.rowcount:
            self.changes.append(("link", *self._scope, rel, src, dst))
        return cur.rowcount > 0

    def unlink(self, rel, src, dst) -> bool:
        cur = self.db.execute(
            "DELETE FROM links WHERE account=? AND region=? AND rel=? AND src=? AND dst=?",
            (*self._scope, rel, src, dst),
        )
        if cur.rowcount:
            self.changes.append(("link", *self._scope, rel, src, dst))
        return cur.rowcount > 0

    def _walk(self, rel, column, other, fixed, after, limit):
        sql = f"SELECT {other} FROM links WHERE account=? AND region=? AND rel=? AND {column}=?"
        args: list = [*self._scope, rel, fixed]
        if after is not None:
            sql += f" AND {other} > ?"
            args.append(after)
        sql += f" ORDER BY {other}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [row[0] for row in self.db.execute(sql, args)]

    def linked(self, rel, src, *, after=None, limit=None):
        return self._walk(rel, "src", "dst", src, after, limit)

    def linked_to(self, rel, dst, *, after=None, limit=None):
        return self._walk(rel, "dst", "src", dst, after, limit)

    def is_linked(self, rel, src, dst) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM links WHERE account=? AND region=? AND rel=? AND src=? AND dst=?",
            (*self._scope, rel, src, dst),
        ).fetchone()
        return row is not None

    def count_links(self, rel, *, src=None, dst=None) -> int:
        sql, args = "SELECT COUNT(*) FROM links WHERE account=? AND region=? AND rel=?", [*self._scope, rel]
        if src is not None:
            sql += " AND src=?"
            args.append(src)
        if dst is not None:
            sql += " AND dst=?"
            args.append(dst)
        return self.db.execute(sql, args).fetchone()[0]

    def unlink_all(self, rel, *, src=None, dst=None) -> int:
        where, args = " WHERE account=? AND region=? AND rel=?", [*self._scope, rel]
        if src is not None:
            where += " AND src=?"
            args.append(src)
        if dst is not None:
            where += " AND dst=?"
            args.append(dst)
        gone = self.db.execute("SELECT src, dst FROM links" + where, args).fetchall()
        self.changes.extend(("link", *self._scope, rel, s, d) for s, d in gone)
        return self.db.execute("DELETE FROM links" + where, args).rowcount

    # tags ----------------------------------------------------------------
    def get_tags(self, arn: str) -> dict[str, str]:
        rows = self.db.execute(
            "SELECT key, value FROM tags WHERE account=? AND region=? AND arn=? ORDER BY key",
            (*self._scope, arn),
        )
        return dict(rows.fetchall())

    def put_tags(self, arn: str, tags: dict[str, str]) -> None:
        self.db.executemany(
            "INSERT INTO tags (account, region, arn, key, value) VALUES (?,?,?,?,?) "
            "ON CONFLICT (account, region, arn, key) DO UPDATE SET value=excluded.value",
            [(*self._scope, arn, k, v) for k, v in tags.items()],
        )

    def remove_tags(self, arn: str, keys: Iterable[str]) -> None:
        self.db.executemany(
            "DELETE FROM tags WHERE account=? AND region=? AND arn=? AND key=?",
            [(*self._scope, arn, k) for k in keys],
        )

    def drop_tags(self, arn: str) -> None:
        self.db.execute("DELETE FROM tags WHERE account=? AND region=? AND arn=?", (*self._scope, arn))
