"""SQLite backend: one connection, WAL, one transaction per API call.

All API work runs on the event loop's thread and handlers do not await inside
a transaction, so one connection serialises calls without locks. WAL with
synchronous=NORMAL puts every commit in the WAL file before the call
answers: a SIGKILLed process loses nothing it acknowledged (only a power cut
could lose the last commits; `durable=True` syncs every commit for that).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from operator import itemgetter
from pathlib import Path
from typing import Iterable

import orjson

from localiot.store.migrations import MIGRATIONS, TABLES
from localiot.store import summaries as _summaries
from localiot.store.documents import _dumps, _index_rows, _loads, _named, _summarized
from localiot.store.commit_group import PARTIAL, CommitGroup, rejoin, running_loop
from localiot.store.kept import KINDS as _KEPT
from localiot.store.queries import RANGE_READ, Queries

log = logging.getLogger("localiot.store")


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
        # Documents of localiot.store.kept's kinds as stored (text, None: absent), by
        # (account, region, kind, name): this process is the file's only user.
        self.kept: dict[tuple, str | None] = {}
        # Group commit (localiot.store.commit_group): the open group, committed groups whose
        # followers have not run yet, and how many transactions are inside their `with` now.
        self.group: CommitGroup | None = None
        self.pending_commit = None  # the open group's future: an API reply awaits it (server._http)
        self.journal: list | None = None  # the open group's writes, in order (commit_group.rejoin)
        self.committed_groups: list[CommitGroup] = []
        self.depth = 0
        # One cursor for the transactions' own statements and their writes, whose outcome
        # (rowcount) is read at once: connection.execute makes a cursor per statement
        # (~0.5 us each, several per write).
        self.writes = self.db.cursor()
        self.reads = self.db.cursor()  # and one for point reads (`get`: its statement ends with the row)
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

    def transaction(self, account: str, region: str, *, write: bool = True, grouped: bool = False) -> "_Transaction":
        """`with store.transaction(account, region) as tx:` commits when the body
        ends, rolls back when it raises. `grouped` (an API call, whose reply awaits
        `pending_commit`): its writes may share the commit of other API calls of the
        same loop iteration (localiot.store.commit_group)."""
        if not grouped:
            self._commit_open_group()
        return _Transaction(self, account, region, grouped)

    def _commit_open_group(self) -> None:
        """Before work outside the group (a transaction that is not grouped, a read across
        scopes): the open group is committed, unless a transaction is inside its `with`."""
        if self.group is not None and not self.depth:
            self.commit_group(now=False)

    # group commit (localiot.store.commit_group) --------------------------------
    def open_group(self) -> None:
        """After a grouped transaction's BEGIN: leave it open for this loop iteration's other
        API calls (with no running loop nobody could await it: the transaction commits alone)."""
        loop = running_loop()
        if loop is not None:
            self.group = CommitGroup(loop.create_future())
            self.pending_commit = self.group.done
            self.journal = []
            loop.call_soon(self.commit_group)

    def commit_group(self, now: bool = True) -> None:
        """COMMIT the open group (none, or a transaction still inside its `with`: nothing to do).
        `now`: its followers run here (the loop's own turn); else at the next safe point."""
        group = self.group
        if group is None:
            return
        if self.depth:  # a transaction is inside its `with` (cannot be, with no await in one): later
            loop = running_loop()
            if now and loop is not None:
                loop.call_soon(self.commit_group)
            return
        self.group = self.pending_commit = self.journal = None
        try:
            self.db.execute("COMMIT")
        except BaseException as error:
            log.exception("group commit failed: its API calls answer with the error")
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            self.kept.clear()  # it may hold what the group wrote
            group.fail(error)
            return
        if now and not self.committed_groups:
            group.run_followers()
            return
        self.committed_groups.append(group)
        if len(self.committed_groups) == 1:
            loop = running_loop()
            if loop is not None:
                loop.call_soon(self.run_committed)
        if now:
            self.run_committed()

    def run_committed(self) -> None:
        """Run what follows each committed group's units, oldest first (a safe point:
        the loop's turn or the end of a unit of work, see localiot.store.commit_group)."""
        while self.committed_groups:
            self.committed_groups.pop(0).run_followers()

    # reads across every (account, region): for listeners that serve them all --
    def scan_all_scopes(self, kind: str, where: dict | None = None) -> list[tuple[str, str, str, dict]]:
        """(account, region, name, doc) of every `kind` document whose top-level
        fields equal `where`'s values (None: absent or null)."""
        self._commit_open_group()  # committed data only, as transactions read
        sql = "SELECT name, doc FROM objects WHERE account = ? AND region = ? AND kind = ?"
        args: list = [kind]
        for field, value in (where or {}).items():
            if not field.isidentifier():
                raise ValueError(f"not a document field: {field!r}")
            if value is None:
                sql += f" AND json_extract(doc, '$.{field}') IS NULL"
            else:
                sql += f" AND json_extract(doc, '$.{field}') = ?"
                args.append(value)
        sql += " ORDER BY name"
        execute = self.db.execute
        return [(a, r, n, _loads(d)) for a, r in self._scopes() for n, d in execute(sql, (a, r, *args))]

    def _scopes(self) -> list[tuple[str, str]]:
        """Every (account, region) holding a document, in order: one seek in the objects'
        key per scope (there is no index by kind; see migration 4)."""
        execute, scopes = self.db.execute, []
        row = execute(SQL.first_scope).fetchone()
        while row is not None:
            scopes.append(row)
            row = execute(SQL.next_region, row).fetchone() or execute(SQL.next_account, row[:1]).fetchone()
        return scopes

    def scopes_indexing(self, kind: str, key: str, value: str) -> list[tuple[str, str]]:
        """The (account, region) scopes holding a `kind` document with index entry key=value."""
        self._commit_open_group()
        return [tuple(row) for row in self.db.execute(SQL.scopes_indexing, (kind, key, value))]

    def reset(self) -> None:
        self.commit_group()
        self.kept.clear()
        self.db.execute("BEGIN IMMEDIATE")
        for table in TABLES:
            self.db.execute(f"DELETE FROM {table}")
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.commit_group()
        self.run_committed()
        self.db.close()


SQL = Queries("?", distinct_names=False)
# Summaries kept in memory (localiot.store.summaries.KEPT) sit in the store's `kept` beside the
# kept documents (keyed by 4-tuples), as one {name: text} under (account, region, kind); at
# most this many in one of them. A put or delete marks (account, region, kind, name, _TEXT) written.
_TEXTS_KEPT = _summaries.KEPT
_TEXT = "summary"
_TEXTS_AT_MOST = 50_000
_PUT_INDEX_IF_ABSENT = SQL.put_index.replace("INSERT", "INSERT OR IGNORE", 1)  # change_index: already there is fine
_ABSENT = object()


class SQLiteTx:
    __slots__ = ("db", "account", "region", "_scope", "changes", "_transaction")

    def __init__(self, db: sqlite3.Connection, account: str, region: str, changes: list | None = None,
                 transaction: _Transaction | None = None):
        self.db = db
        self.account = account
        self.region = region
        self._scope = (account, region)
        # What this transaction wrote, shared by its scopes (see base.Tx.changes).
        self.changes = changes if changes is not None else []
        self._transaction = transaction

    def scope(self, account: str, region: str) -> "SQLiteTx":
        return SQLiteTx(self.db, account, region, self.changes, self._transaction)

    def _write(self, sql: str, args) -> int:
        """A writing statement, after the transaction's BEGIN if it is the first: its rowcount."""
        transaction = self._transaction
        if transaction is None:
            return self.db.execute(sql, args).rowcount
        if not transaction.began:
            transaction.begin()
        count = transaction.writes.execute(sql, args).rowcount
        if transaction.journal is not None:  # (made: a statement that failed changed nothing)
            transaction.journal.append((sql, args, False))
        return count

    def _write_many(self, sql: str, rows: list) -> None:
        transaction = self._transaction
        if transaction is None:
            self.db.executemany(sql, rows)
            return
        if not transaction.began:
            transaction.begin()
        journal = transaction.journal
        if journal is not None and rows.__class__ is not list:  # (kept to be made again)
            rows = list(rows)
        try:
            transaction.writes.executemany(sql, rows)
        except BaseException:
            if journal is not None:  # the rows before the failing one stand, and nothing says how many:
                journal.append(PARTIAL)  # a replay past this point cannot make them again (rejoin)
            raise
        if journal is not None:
            journal.append((sql, rows, True))

    # documents -----------------------------------------------------------
    def get(self, kind: str, name: str) -> dict | None:
        text = self.get_text(kind, name)
        if text is None:
            return None
        if text[:1] != " ":  # _loads, inline: the usual document, orjson's to read
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                pass
        return json.loads(text)

    def get_text(self, kind: str, name: str) -> str | None:
        transaction = self._transaction
        if transaction is not None and kind in _KEPT:
            return self._kept_text(kind, name)
        key = (*self._scope, kind, name)
        row = (self.db if transaction is None else transaction.store.reads).execute(SQL.get, key).fetchone()
        if row is None:
            if transaction is not None:  # no document, so no index entries: a put need not drop any
                if transaction.absent is None:
                    transaction.absent = {key}
                else:
                    transaction.absent.add(key)
            return None
        return row[0]

    def _kept_text(self, kind: str, name: str) -> str | None:
        key = (*self._scope, kind, name)
        transaction = self._transaction
        text = transaction.kept.get(key, _ABSENT)
        if text is _ABSENT:
            row = self.db.execute(SQL.get, key).fetchone()
            text = row[0] if row else None
            if transaction.written is None or key not in transaction.written:
                transaction.kept[key] = text
        return text

    def put(self, kind: str, name: str, doc: dict, index=None) -> None:
        if kind in _KEPT and self._transaction is not None:
            self._transaction.wrote_kept((*self._scope, kind, name))
        if kind in _TEXTS_KEPT and self._transaction is not None:
            self._drop_text(kind, name)
        self._write(SQL.put, (*self._scope, kind, name, _dumps(doc), _summaries.of(kind, doc)))
        self.changes.append(("doc", *self._scope, kind, name))
        if index is not None:
            absent = self._transaction.absent if self._transaction is not None else None
            doc_key = (*self._scope, kind, name)
            if absent is not None and doc_key in absent:
                absent.discard(doc_key)  # there now
            else:
                self._drop_index(kind, name)
            rows = [(*self._scope, kind, key, value, name) for key, value in _index_rows(index)]
            if rows:
                self._write_many(SQL.put_index, rows)

    def _drop_index(self, kind: str, name: str) -> None:
        self._write(SQL.drop_index, (*self._scope, kind, name))

    def delete(self, kind: str, name: str) -> bool:
        if kind in _KEPT and self._transaction is not None:
            self._transaction.wrote_kept((*self._scope, kind, name))
        if kind in _TEXTS_KEPT and self._transaction is not None:
            self._drop_text(kind, name)
        deleted = self._write(SQL.delete, (*self._scope, kind, name))
        self._drop_index(kind, name)
        if deleted:
            self.changes.append(("doc", *self._scope, kind, name))
        return deleted > 0

    def scan(self, kind, *, after=None, prefix=None, limit=None, summaries=False):
        if summaries and kind in _TEXTS_KEPT and self._transaction is not None:
            return self._kept_page(kind, None, prefix, True, after, limit)
        rows = self.db.execute(*SQL.scan(self._scope, kind, after, prefix, limit, summaries)).fetchall()
        return _summarized(self, kind, rows) if summaries else _named(rows)

    def find(self, kind, key, value, *, prefix=False, after=None, limit=None, summaries=False):
        if summaries and kind in _TEXTS_KEPT and self._transaction is not None:
            return self._kept_page(kind, key, value, prefix, after, limit)
        rows = self.db.execute(*SQL.find(self._scope, kind, key, value, prefix, after, limit, summaries)).fetchall()
        return _summarized(self, kind, rows) if summaries else _named(rows)

    def summary_page(self, kind, *, key=None, value="", prefix=False, after=None, limit):
        sql, args = (SQL.scan(self._scope, kind, after, None, limit + 1, True) if key is None
                     else SQL.find(self._scope, kind, key, value, prefix, after, limit + 1, True))
        if kind not in _TEXTS_KEPT:  # one row for the page (Queries.joined), cut and joined at C speed
            count, names, texts = self.db.execute(SQL.joined(sql), args).fetchone()
            if not count:
                return "", None
            if "\x1f" not in texts:  # (no NULL summary: else each is computed from its document, below)
                names = names.split("\n")
                # (else a name holding a newline, or group_concat's order not the page's: row by row)
                if len(names) == count and names == sorted(names):
                    if count <= limit:
                        return texts.replace("\x1e", ","), None
                    return texts[:texts.rfind("\x1e")].replace("\x1e", ","), names[limit - 1]
            return _summaries.page(_summarized(self, kind, self.db.execute(sql, args).fetchall()), limit)
        rows = (self.scan(kind, after=after, limit=limit + 1, summaries=True) if key is None
                else self.find(kind, key, value, prefix=prefix, after=after, limit=limit + 1, summaries=True))
        return _summaries.page(rows, limit)

    def _kept_page(self, kind, key, value, prefix, after, limit) -> list:
        """find's (scan's, key None: `value` is the name prefix) page of (name, summary) rows
        of a kind whose summaries are kept: from memory when all of them are, else read
        from the file and kept."""
        rows = self._kept_texts(kind, key, value, prefix, after, limit)
        if rows is None:
            sql = (SQL.scan(self._scope, kind, after, value, limit, True) if key is None
                   else SQL.find(self._scope, kind, key, value, prefix, after, limit, True))
            rows = _summarized(self, kind, self.db.execute(*sql).fetchall())
            self._keep_texts(kind, rows)
        return rows

    def _kept_texts(self, kind, key, value, prefix, after, limit) -> list | None:
        """find's (scan's, key None) (name, summary) rows from the index's names (the
        documents' keys) and the kept summaries (localiot.store.summaries.KEPT); None when
        one of them is not in memory."""
        count, joined = self.db.execute(*SQL.page_names(self._scope, kind, key, value, prefix, after, limit)).fetchone()
        if not count:
            return []
        names = joined.split("\n")
        if len(names) != count:  # (a name holding a newline)
            return None
        if key is not None and prefix:  # every entry of the range, in value order (Queries.page_names)
            if count > RANGE_READ:  # (a broad prefix: SQLite sorts for its LIMIT, in find)
                return None
            names = sorted(set(names))
            if limit is not None:
                del names[limit:]
        else:
            names.sort()  # (group_concat keeps the page's order in practice; SQLite does not promise it)
        kept = self._transaction.kept.get((*self._scope, kind))
        if kept is None:
            return None
        try:  # (itemgetter: the look-ups in one C call, not a Python loop)
            texts = itemgetter(*names)(kept) if len(names) > 1 else (kept[names[0]],)
        except KeyError:
            return None
        return None if None in texts else list(zip(names, texts))

    def _drop_text(self, kind, name) -> None:
        """A put or delete of `name`: its kept summary is dropped and kept out until the
        transaction ends (the next read after that takes what is stored)."""
        transaction = self._transaction
        transaction.wrote_kept((*self._scope, kind, name, _TEXT))  # (in `written`: not kept again before the end)
        kept = transaction.kept.get((*self._scope, kind))
        if kept is not None:
            kept.pop(name, None)

    def _keep_texts(self, kind, rows) -> None:
        """Keep the summaries of `rows` as read, but those this transaction wrote (until it
        ends: see localiot.store.kept) and beyond _TEXTS_AT_MOST (then read from the file)."""
        transaction = self._transaction
        written, (account, region) = transaction.written, self._scope
        kept = transaction.kept.setdefault((account, region, kind), {})
        if len(kept) + len(rows) > _TEXTS_AT_MOST:
            return
        for name, text in rows:
            if written is None or (account, region, kind, name, _TEXT) not in written:
                kept[name] = text

    def find_names(self, kind, key, *, low=None, high=None, include_low=True, include_high=True, pattern=None):
        sql, args = SQL.find_names(self._scope, kind, key, low, high, include_low, include_high, pattern)
        return list(dict.fromkeys([row[0] for row in self.db.execute(sql, args)]))  # (distinct: see SQL)

    def count(self, kind, key=None, value=None, *, at_most=None) -> int:
        return self.db.execute(*SQL.count(self._scope, kind, key, value, at_most)).fetchone()[0]

    def change_index(self, kind, name, gone, added) -> None:
        if gone:
            self._write_many(SQL.drop_entry, [(*self._scope, kind, key, value, name) for key, value in gone])
        if added:
            self._write_many(_PUT_INDEX_IF_ABSENT, [(*self._scope, kind, key, value, name) for key, value in added])

    # links ---------------------------------------------------------------
    def link(self, rel, src, dst) -> bool:
        made = self._write(SQL.link, (*self._scope, rel, src, dst))
        if made:
            self.changes.append(("link", *self._scope, rel, src, dst))
        return made > 0

    def unlink(self, rel, src, dst) -> bool:
        gone = self._write(SQL.unlink, (*self._scope, rel, src, dst))
        if gone:
            self.changes.append(("link", *self._scope, rel, src, dst))
        return gone > 0

    def linked(self, rel, src, *, after=None, limit=None):
        return [row[0] for row in self.db.execute(*SQL.walk(self._scope, rel, "src", "dst", src, after, limit))]

    def linked_to(self, rel, dst, *, after=None, limit=None):
        return [row[0] for row in self.db.execute(*SQL.walk(self._scope, rel, "dst", "src", dst, after, limit))]

    def is_linked(self, rel, src, dst) -> bool:
        return self.db.execute(SQL.is_linked, (*self._scope, rel, src, dst)).fetchone() is not None

    def count_links(self, rel, *, src=None, dst=None) -> int:
        return self.db.execute(*SQL.count_links(self._scope, rel, src, dst)).fetchone()[0]

    def unlink_all(self, rel, *, src=None, dst=None) -> int:
        gone = self.db.execute(*SQL.select_links(self._scope, rel, src, dst)).fetchall()
        self.changes.extend(("link", *self._scope, rel, s, d) for s, d in gone)
        return self._write(*SQL.delete_links(self._scope, rel, src, dst))

    # tags ----------------------------------------------------------------
    def get_tags(self, arn: str) -> dict[str, str]:
        return dict(self.db.execute(SQL.get_tags, (*self._scope, arn)).fetchall())

    def put_tags(self, arn: str, tags: dict[str, str]) -> None:
        self._write_many(SQL.put_tags, [(*self._scope, arn, k, v) for k, v in tags.items()])

    def remove_tags(self, arn: str, keys: Iterable[str]) -> None:
        self._write_many(SQL.remove_tag, [(*self._scope, arn, k) for k in keys])

    def drop_tags(self, arn: str) -> None:
        self._write(SQL.drop_tags, (*self._scope, arn))


class _Transaction(SQLiteTx):
    """One transaction as a plain context manager (every API call opens one).

    BEGIN IMMEDIATE goes out with the first write, not at the start: the store has
    one connection used by one thread (the event loop's), so no other writer can
    come between a unit of work's reads, and a unit of work that only reads (a
    Describe, a Get, a List) runs its statements in autocommit, without BEGIN and
    COMMIT. What a unit of work writes is still one transaction: committed at the
    end, rolled back whole when it raises.

    When the connection is already in a transaction at the first write (an open
    commit group, or this one runs inside another's `with`), this one is a
    SAVEPOINT in it: released at the end, rolled back to when it raises. A grouped
    transaction that begins leaves its COMMIT to the group (localiot.store.commit_group),
    one that joins it alone in its `with` takes no SAVEPOINT (its journal, `rejoin`)."""

    __slots__ = ("store", "writes", "grouped", "began", "savepoint", "kept", "written", "absent", "waits", "journal",
                 "mark")

    def __init__(self, store: SQLiteStore, account: str, region: str, grouped: bool):
        # The transaction is its own first scope (one object per unit of work, not two: its Tx
        # is `self` until __exit__, which drops that reference cycle).
        self.store, self.db, self.writes, self.kept = store, store.db, store.writes, store.kept
        self.account, self.region, self.grouped, self._scope = account, region, grouped, (account, region)
        self.changes, self._transaction = [], self
        self.began = self.savepoint = self.waits = False
        self.journal = None  # (begin: the open group's journal)
        self.written = None  # keys of kept kinds this transaction wrote (see localiot.store.kept)
        self.absent = None  # keys this transaction read as absent and has not written since

    def __enter__(self) -> SQLiteTx:
        self.store.depth += 1
        return self

    def wrote_kept(self, key: tuple) -> None:
        self.kept.pop(key, None)
        if self.written is None:
            self.written = set()
        self.written.add(key)

    def begin(self) -> None:
        if self.began:
            return
        store, opens = self.store, not self.db.in_transaction
        if opens:
            self.writes.execute("BEGIN IMMEDIATE")
            if self.grouped:
                store.open_group()
        elif not (self.grouped and store.depth == 1 and store.journal is not None):  # (else: joins the group)
            self.writes.execute("SAVEPOINT unit")
            self.savepoint = True
        self.journal = journal = store.journal  # (None: no group open)
        self.mark = None if opens or journal is None else len(journal)  # where its writes start in it
        self.began = True

    def __exit__(self, kind, error, trace) -> bool:
        store = self.store
        store.depth -= 1
        try:
            if self.began:
                self.began = False
                execute = self.writes.execute
                if self.savepoint:
                    if kind is not None:
                        execute("ROLLBACK TO unit")
                        if self.mark is not None:
                            del self.journal[self.mark:]
                    execute("RELEASE unit")
                elif kind is not None:
                    if self.mark is not None:  # joined the group: the others' writes stay
                        rejoin(store, self.mark)
                    else:
                        execute("ROLLBACK")
                        if self.grouped and store.group is not None:  # the group it opened held only its work
                            store.group = store.pending_commit = store.journal = None
                elif not self.grouped or store.group is None:
                    execute("COMMIT")
            # A grouped transaction that wrote into the open group or read what it holds, or any
            # savepoint in it (one inside another's `with`): its reply waits for the group's
            # COMMIT, and so does what follows it (defer).
            self.waits = store.group is not None and (self.grouped or self.savepoint)
        finally:
            if self.written is not None:  # committed or not, the next read takes what is stored
                for key in self.written:
                    self.kept.pop(key, None)
                self.written = None
            self._transaction = None  # (its scopes keep theirs)
        return False

    def defer(self, fn, arg) -> bool:
        """After `__exit__` without error: `fn(arg)` is what follows this transaction's
        commit. True when it is left to run after the group's COMMIT; False when the
        caller runs it now (committed groups' followers, if any, run first: their order)."""
        if self.waits:
            self.store.group.followers.append((fn, arg))
            return True
        if self.store.committed_groups and not self.store.depth:
            self.store.run_committed()
        return False
