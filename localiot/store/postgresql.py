"""PostgreSQL backend: the same port, schema and migrations as SQLite, for
several nodes sharing one state (`localiot serve --store postgresql://...`).

Ordering. Every text column is COLLATE "C": names, index values, links and
tag keys compare byte by byte as SQLite's BINARY collation does, so scans,
`after=` pagination and prefix ranges answer in exactly SQLite's order.
Documents stay JSON text (not jsonb, which would reorder their keys).

Isolation across nodes: per-document locks in READ COMMITTED, no retries.
A writing transaction takes a transaction-scoped advisory lock on
(account, region, kind, name) before it reads a document (`get`) or writes one
(`put`, `delete`), and on (account, region, kind, key, value) before it looks
an index entry up (`find`). The lock is held until commit or rollback; the
read that follows it is a new statement, so under READ COMMITTED it sees what
the previous holder committed. Two nodes racing the same read-modify-write
(a shadow update with or without expectedVersion, a job execution state
transition, a thing's version) therefore run one after the other, and two
CreateThing calls for the same name see each other: the second finds the
first's thing. Advisory locks cover documents that do not exist yet, which
SELECT ... FOR UPDATE cannot, and they never abort a call the way a
SERIALIZABLE conflict (40001) does: the HTTP API, the MQTT doors and
time-driven work all open units of work, and none of them would have to be
re-runnable. What is not locked: scans and counts (a quota checked by
counting can be overshot by racing nodes) and links. Deadlocks (two calls
locking the same two documents in opposite orders) are detected by
PostgreSQL and end one of them with 40P01; `unit_of_work.run` retries the
whole call (the HTTP API's path).
Read-only transactions are REPEATABLE READ READ ONLY: one snapshot, no locks.

NUL. PostgreSQL text cannot hold U+0000, which SQLite stores (a request
label of "%00" reaches `get`). Names, index values, link ends, ARNs and tags
go through `_enc`/`_dec`: \x01 -> \x01\x02 and \x00 -> \x01\x01, an escape
that keeps byte order, so order and prefixes stay SQLite's. Documents are
JSON text, where NUL is already written \u0000.

The event loop. A transaction runs on the thread that opens it, on that
thread's own connection (kept for the thread's life; psycopg_pool would add a
checkout per call and nothing else here). The node's units of work run on a
few worker threads (localiot.cluster.workers): the HTTP API's calls, the
MQTT doors' units of work and synchronous time-driven work, each body and
transaction there, and what follows a commit (bus, commit listeners,
after-commit callbacks touching the broker's sessions or starting asyncio
tasks) queued on the loop in commit order. So the loop never waits on one of
those, and a call waiting on a lock another node (or another worker) holds
holds one worker thread only; two units of work of one node run at the same
time exactly as two nodes' do, which the locks above already make safe.
The broker's store work, the presence records and the units of work of
asyncio tasks run there too; localiot.cluster.workers lists what is still on
the loop, and `on_loop` counts every use of a connection from a thread that
runs an event loop (health: workers.storeOnLoop); lock_timeout bounds a rare
long wait of those. bench/api_floor.py --servers localiot,localiot-pg measures the cost
against SQLite in one run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
import threading
from typing import Iterable

from localiot.store.migrations import MIGRATIONS, TABLES, SQLiteOnly
from localiot.store.queries import Queries
from localiot.store import summaries as _summaries
from localiot.store.documents import _dumps, _index_rows, _loads, _summarized

# Held during migrations so nodes starting together migrate once.
_MIGRATION_LOCK = 0x6C6F63616C696F74  # "localiot"


def _pg_sql(sql: str) -> str:
    """A SQLite migration statement as PostgreSQL: text compares bytewise."""
    return sql.replace("TEXT NOT NULL", 'TEXT COLLATE "C" NOT NULL')


def _enc(text: str) -> str:
    """`text` without NUL, in the same order among other encoded strings."""
    if "\x00" in text or "\x01" in text:
        return text.replace("\x01", "\x01\x02").replace("\x00", "\x01\x01")
    return text


_UNESCAPE = re.compile("\x01([\x01\x02])")


def _dec(text: str) -> str:
    if "\x01" in text:
        return _UNESCAPE.sub(lambda m: "\x00" if m.group(1) == "\x01" else "\x01", text)
    return text


def _args(args):
    return [_enc(a) if a.__class__ is str else [_enc(x) for x in a] if a.__class__ is list else a for a in args]


# One character of an encoded value (see _enc): an escape pair or any other character.
_ONE = r"(?:\x01[\x01\x02]|[^\x01])"


def _glob_regex(pattern: str) -> str:
    """SQLite's GLOB `pattern` (* any run, ? one character, [..] / [^..] a class;
    case-sensitive) as an anchored PostgreSQL regular expression over encoded
    values. Escapes (\\xhh) stand for NUL and \\x01 so that the expression
    itself holds no character _enc would rewrite."""
    out, i = ["^"], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(_ONE + "*")
        elif ch == "?":
            out.append(_ONE)
        elif ch == "[" and pattern.find("]", i + 2 + (pattern[i + 1:i + 2] == "^")) > 0:
            end = pattern.find("]", i + 2 + (pattern[i + 1:i + 2] == "^"))  # a ] right after [ or [^ is a member
            body = pattern[i + 1:end]
            negate = body.startswith("^")
            members = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + members.replace("\\", "\\\\") + "]")
            i = end
        elif ch in "\x00\x01":
            out.append(r"\x01\x01" if ch == "\x00" else r"\x01\x02")
        else:
            out.append(ch if ch.isalnum() else "\\" + ch)
        i += 1
    return "".join(out) + "$"


def _lock_key(*parts: str) -> int:
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _redact(dsn: str) -> str:
    """The DSN without its password, for logs and /_localiot/health."""
    if "://" in dsn and "@" in dsn:
        scheme, rest = dsn.split("://", 1)
        auth, host = rest.rsplit("@", 1)
        return f"{scheme}://{auth.split(':', 1)[0]}@{host}"
    return dsn


class PostgreSQLStore:
    pending_commit = None  # every transaction commits when its `with` ends: nothing is pending

    def __init__(self, dsn: str):
        import psycopg  # noqa: F401  (fail here, not mid-call, when the driver is missing)

        self.dsn = dsn
        self.path = _redact(dsn)
        self._local = threading.local()
        self._connections: list = []
        self._lock = threading.Lock()
        # Store use on a thread running an event loop (the loop blocked on the database):
        # counted, with the first caller outside the store, for /_localiot/health and the tests.
        self.on_loop = 0
        self.on_loop_sites: dict[str, int] = {}
        self._migrate()

    # connections: one per thread, opened on first use ----------------------
    def connection(self):
        if asyncio._get_running_loop() is not None:
            self._used_on_loop()
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            import psycopg

            conn = psycopg.connect(self.dsn, autocommit=True)
            conn.execute("SET lock_timeout = '30s'")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _used_on_loop(self) -> None:
        self.on_loop += 1
        frame = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename.endswith(("postgresql.py", "unit_of_work.py")):
            frame = frame.f_back
        if frame is not None and len(self.on_loop_sites) < 256:
            site = f"{frame.f_code.co_filename.rsplit('localiot/', 1)[-1]}:{frame.f_code.co_name}"
            self.on_loop_sites[site] = self.on_loop_sites.get(site, 0) + 1

    def _migrate(self) -> None:
        conn = self.connection()
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                with conn.transaction():
                    for sql in statements:
                        if not isinstance(sql, SQLiteOnly):
                            conn.execute(_pg_sql(sql))
                    conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))

    @property
    def schema_version(self) -> int:
        return self.connection().execute("SELECT MAX(version) FROM schema_version").fetchone()[0]

    @staticmethod
    def retryable(error: BaseException) -> bool:
        """A deadlock PostgreSQL broke by ending this transaction: running it again succeeds."""
        return getattr(error, "sqlstate", None) == "40P01"

    def transaction(self, account: str, region: str, *, write: bool = True, grouped: bool = False) -> "_Transaction":
        # (`grouped` is SQLite's group commit: here every transaction commits when its `with` ends)
        return _Transaction(self.connection(), account, region, write)

    def scan_all_scopes(self, kind: str, where: dict | None = None) -> list[tuple[str, str, str, dict]]:
        sql = "SELECT account, region, name, doc FROM objects WHERE kind = %s"
        args: list = [kind]
        for field, value in (where or {}).items():
            if not field.isidentifier():
                raise ValueError(f"not a document field: {field!r}")
            if value is None:
                sql += f" AND (doc::jsonb -> '{field}' IS NULL OR doc::jsonb -> '{field}' = 'null'::jsonb)"
            elif isinstance(value, str):
                sql += f" AND doc::jsonb ->> '{field}' = %s"
                args.append(value)
            else:
                sql += f" AND doc::jsonb -> '{field}' = %s::jsonb"
                args.append(json.dumps(value))
        sql += " ORDER BY account, region, name"
        rows = self.connection().execute(sql, _args(args)).fetchall()
        return [(a, r, _dec(n), _loads(d)) for a, r, n, d in rows]

    def scopes_indexing(self, kind: str, key: str, value: str) -> list[tuple[str, str]]:
        rows = self.connection().execute(SQL.scopes_indexing, _args((kind, key, value))).fetchall()
        return [tuple(row) for row in rows]

    def reset(self) -> None:
        self.connection().execute(f"TRUNCATE {', '.join(TABLES)}")

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()


class _State:
    """What the scopes of one transaction share: the BEGIN not sent yet, the locks held."""

    __slots__ = ("begin", "locked")

    def __init__(self, write: bool):
        self.begin = "BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        self.locked: set | None = set() if write else None  # None: read-only, takes no locks


class _Transaction:
    """BEGIN goes out with the first statement (pipelined), so a unit of work that never
    touches the store costs no round trip, and one that reads one document costs two
    (BEGIN + lock + SELECT, then COMMIT)."""

    __slots__ = ("conn", "account", "region", "write", "state")

    def __init__(self, conn, account: str, region: str, write: bool):
        self.conn, self.account, self.region, self.write = conn, account, region, write

    def __enter__(self) -> "PostgreSQLTx":
        self.state = _State(self.write)
        return PostgreSQLTx(self.conn, self.account, self.region, [], self.state)

    def __exit__(self, kind, error, trace) -> bool:
        if self.state.begin is None:  # a transaction was begun
            if kind is None:
                self.conn.execute("COMMIT")
            elif not self.conn.closed:
                self.conn.execute("ROLLBACK")
        return False

    def defer(self, fn, arg) -> bool:
        return False  # committed when `with` ended: what follows runs now


_LOCK = "SELECT pg_advisory_xact_lock(%s)"

SQL = Queries("%s", pattern_op="~")
_PUT_INDEX = SQL.put_index + " ON CONFLICT DO NOTHING"
_REMOVE_TAGS = "DELETE FROM tags WHERE account=%s AND region=%s AND arn=%s AND key = ANY(%s)"


class PostgreSQLTx:
    def __init__(self, conn, account: str, region: str, changes: list, state: _State):
        self.conn = conn
        self.account = account
        self.region = region
        self._scope = (account, region)
        self.changes = changes
        self._state = state

    def scope(self, account: str, region: str) -> "PostgreSQLTx":
        return PostgreSQLTx(self.conn, account, region, self.changes, self._state)

    def _pending(self, lock: tuple | None) -> list:
        """The BEGIN and the advisory lock (on `lock`, writing transactions) still to send."""
        state, pending = self._state, []
        if state.begin is not None:
            pending.append((state.begin, ()))
            state.begin = None
        if lock is not None and state.locked is not None:
            key = _lock_key(*self._scope, *lock)
            if key not in state.locked:
                state.locked.add(key)
                pending.append((_LOCK, (key,)))
        return pending

    def _q(self, sql: str, args=(), lock: tuple | None = None):
        """Run one statement, after the pending BEGIN / lock in the same round trip.
        Statements after a lock are new statements: under READ COMMITTED they see
        what the lock's previous holder committed."""
        pending = self._pending(lock)
        if not pending:
            return self.conn.execute(sql, _args(args))
        with self.conn.pipeline():
            for before, before_args in pending:
                self.conn.execute(before, before_args)
            cur = self.conn.execute(sql, _args(args))
        return cur

    def _many(self, sql: str, rows: list) -> None:
        with self.conn.pipeline():
            for before, before_args in self._pending(None):
                self.conn.execute(before, before_args)
            with self.conn.cursor() as cur:
                cur.executemany(sql, [_args(row) for row in rows])

    # documents -----------------------------------------------------------
    def get(self, kind: str, name: str) -> dict | None:
        row = self._q(SQL.get, (*self._scope, kind, name), ("doc", kind, name)).fetchone()
        return _loads(row[0]) if row else None

    def get_text(self, kind: str, name: str) -> str | None:
        row = self._q(SQL.get, (*self._scope, kind, name), ("doc", kind, name)).fetchone()
        return row[0] if row else None

    def put(self, kind: str, name: str, doc: dict, index=None) -> None:
        with self.conn.pipeline():  # one round trip for the document and its index entries
            self._q(SQL.put, (*self._scope, kind, name, _dumps(doc), _summaries.of(kind, doc)), ("doc", kind, name))
            if index is not None:
                self._drop_index(kind, name)
                rows = [(*self._scope, kind, key, value, name) for key, value in _index_rows(index)]
                if rows:
                    self._many(_PUT_INDEX, rows)
        self.changes.append(("doc", *self._scope, kind, name))

    def _drop_index(self, kind: str, name: str) -> None:
        self._q(SQL.drop_index, (*self._scope, kind, name))

    def delete(self, kind: str, name: str) -> bool:
        with self.conn.pipeline():
            cur = self._q(SQL.delete, (*self._scope, kind, name), ("doc", kind, name))
            self._drop_index(kind, name)
        gone = cur.rowcount > 0
        if gone:
            self.changes.append(("doc", *self._scope, kind, name))
        return gone

    def scan(self, kind, *, after=None, prefix=None, limit=None, summaries=False):
        rows = self._q(*SQL.scan(self._scope, kind, after, prefix, limit, summaries)).fetchall()
        return self._rows(kind, rows, summaries)

    def find(self, kind, key, value, *, prefix=False, after=None, limit=None, summaries=False):
        sql, args = SQL.find(self._scope, kind, key, value, prefix, after, limit, summaries)
        lock = None if prefix else ("index", kind, key, value)
        return self._rows(kind, self._q(sql, args, lock).fetchall(), summaries)

    def summary_page(self, kind, *, key=None, value="", prefix=False, after=None, limit):
        rows = (self.scan(kind, after=after, limit=limit + 1, summaries=True) if key is None
                else self.find(kind, key, value, prefix=prefix, after=after, limit=limit + 1, summaries=True))
        return _summaries.page(rows, limit)

    def _rows(self, kind, rows, summaries: bool) -> list:
        """(name, document) rows, or (name, summary text) with `summaries` (see localiot.store.summaries)."""
        if summaries:
            return _summarized(self, kind, [(_dec(name), text) for name, text in rows])
        return [(_dec(name), _loads(doc)) for name, doc in rows]

    def find_names(self, kind, key, *, low=None, high=None, include_low=True, include_high=True, pattern=None):
        regex = None if pattern is None else _glob_regex(pattern)
        sql, args = SQL.find_names(self._scope, kind, key, low, high, include_low, include_high, regex)
        return [_dec(row[0]) for row in self._q(sql, args).fetchall()]

    def count(self, kind, key=None, value=None, *, at_most=None) -> int:
        return self._q(*SQL.count(self._scope, kind, key, value, at_most)).fetchone()[0]

    def change_index(self, kind, name, gone, added) -> None:
        if gone:
            self._many(SQL.drop_entry, [(*self._scope, kind, key, value, name) for key, value in gone])
        if added:  # a conflict is an entry already there
            self._many(_PUT_INDEX, [(*self._scope, kind, key, value, name) for key, value in added])

    # links ---------------------------------------------------------------
    def link(self, rel, src, dst) -> bool:
        cur = self._q(SQL.link, (*self._scope, rel, src, dst))
        if cur.rowcount:
            self.changes.append(("link", *self._scope, rel, src, dst))
        return cur.rowcount > 0

    def unlink(self, rel, src, dst) -> bool:
        cur = self._q(SQL.unlink, (*self._scope, rel, src, dst))
        if cur.rowcount:
            self.changes.append(("link", *self._scope, rel, src, dst))
        return cur.rowcount > 0

    def linked(self, rel, src, *, after=None, limit=None):
        return [_dec(row[0]) for row in self._q(*SQL.walk(self._scope, rel, "src", "dst", src, after, limit)).fetchall()]

    def linked_to(self, rel, dst, *, after=None, limit=None):
        return [_dec(row[0]) for row in self._q(*SQL.walk(self._scope, rel, "dst", "src", dst, after, limit)).fetchall()]

    def is_linked(self, rel, src, dst) -> bool:
        return self._q(SQL.is_linked, (*self._scope, rel, src, dst)).fetchone() is not None

    def count_links(self, rel, *, src=None, dst=None) -> int:
        return self._q(*SQL.count_links(self._scope, rel, src, dst)).fetchone()[0]

    def unlink_all(self, rel, *, src=None, dst=None) -> int:
        gone = self._q(*SQL.delete_links(self._scope, rel, src, dst, " RETURNING src, dst")).fetchall()
        gone.sort()
        self.changes.extend(("link", *self._scope, rel, _dec(s), _dec(d)) for s, d in gone)
        return len(gone)

    # tags ----------------------------------------------------------------
    def get_tags(self, arn: str) -> dict[str, str]:
        return {_dec(k): _dec(v) for k, v in self._q(SQL.get_tags, (*self._scope, arn)).fetchall()}

    def put_tags(self, arn: str, tags: dict[str, str]) -> None:
        if tags:
            self._many(SQL.put_tags, [(*self._scope, arn, k, v) for k, v in tags.items()])

    def remove_tags(self, arn: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            self._q(_REMOVE_TAGS, (*self._scope, arn, keys))

    def drop_tags(self, arn: str) -> None:
        self._q(SQL.drop_tags, (*self._scope, arn))
