"""The store's SQL, written once for both backends.

SQLite writes a parameter `?`, psycopg `%s`; otherwise the statements of the
two stores are the same. `Queries(placeholder)` holds every statement as a
constant string: the fixed ones are built in the constructor, the ones whose
clauses depend on optional arguments (after=, prefix=, limit=, src=, dst=) are
built once per combination and cached, so a call never builds SQL text and
SQLite's statement cache (keyed by the text) always hits.

Each method returns (sql, args) for a transaction scoped to `scope`
(account, region).
"""

from __future__ import annotations

# Upper bound of a prefix range: every string starting with the prefix sorts below prefix + U+10FFFF.
TOP = "\U0010ffff"


# Entries of a value prefix's range that `page_names` reads to page them in Python (more: `find`)
RANGE_READ = 1000


class Queries:
    def __init__(self, placeholder: str, *, pattern_op: str = "GLOB", distinct_names: bool = True):
        p = self.p = placeholder
        self._pattern_op = pattern_op  # how `find_names` matches its pattern (PostgreSQL: a regex, "~")
        # Whether `find_names` asks for DISTINCT names (SQLite: no, its store drops repeats itself:
        # the temporary b-tree of a DISTINCT cost more than the rest of a 1-name look-up)
        self._distinct_names = "DISTINCT " if distinct_names else ""
        self._cache: dict[tuple, str] = {}
        self.get = f"SELECT doc FROM objects WHERE account={p} AND region={p} AND kind={p} AND name={p}"
        self.put = (f"INSERT INTO objects (account, region, kind, name, doc, summary) VALUES ({p},{p},{p},{p},{p},{p}) "
                    "ON CONFLICT (account, region, kind, name) DO UPDATE SET doc=excluded.doc, summary=excluded.summary")
        self.put_index = (f"INSERT INTO object_index (account, region, kind, key, value, name) "
                          f"VALUES ({p},{p},{p},{p},{p},{p})")
        self.drop_index = f"DELETE FROM object_index WHERE account={p} AND region={p} AND kind={p} AND name={p}"
        self.delete = f"DELETE FROM objects WHERE account={p} AND region={p} AND kind={p} AND name={p}"
        self.count_kind = f"SELECT COUNT(*) FROM objects WHERE account={p} AND region={p} AND kind={p}"
        self.count_index = (f"SELECT COUNT(*) FROM object_index WHERE account={p} AND region={p} AND kind={p} "
                            f"AND key={p} AND value={p}")
        self.count_index_at_most = (f"SELECT COUNT(*) FROM (SELECT 1 FROM object_index WHERE account={p} "
                                    f"AND region={p} AND kind={p} AND key={p} AND value={p} LIMIT {p}) AS bounded")
        self.drop_entry = (f"DELETE FROM object_index WHERE account={p} AND region={p} AND kind={p} AND key={p} "
                           f"AND value={p} AND name={p}")
        self.link = (f"INSERT INTO links (account, region, rel, src, dst) VALUES ({p},{p},{p},{p},{p}) "
                     "ON CONFLICT DO NOTHING")
        self.unlink = f"DELETE FROM links WHERE account={p} AND region={p} AND rel={p} AND src={p} AND dst={p}"
        self.is_linked = f"SELECT 1 FROM links WHERE account={p} AND region={p} AND rel={p} AND src={p} AND dst={p}"
        self.get_tags = f"SELECT key, value FROM tags WHERE account={p} AND region={p} AND arn={p} ORDER BY key"
        self.put_tags = (f"INSERT INTO tags (account, region, arn, key, value) VALUES ({p},{p},{p},{p},{p}) "
                         "ON CONFLICT (account, region, arn, key) DO UPDATE SET value=excluded.value")
        self.remove_tag = f"DELETE FROM tags WHERE account={p} AND region={p} AND arn={p} AND key={p}"
        self.drop_tags = f"DELETE FROM tags WHERE account={p} AND region={p} AND arn={p}"
        self.first_scope = "SELECT account, region FROM objects ORDER BY account, region LIMIT 1"
        # (two plain ranges: SQLite walked every row of the scope for `(account, region) > (?, ?)`)
        self.next_region = (f"SELECT account, region FROM objects WHERE account = {p} AND region > {p} "
                            "ORDER BY account, region LIMIT 1")
        self.next_account = f"SELECT account, region FROM objects WHERE account > {p} ORDER BY account, region LIMIT 1"
        self.scopes_indexing = (f"SELECT DISTINCT account, region FROM object_index WHERE kind = {p} AND key = {p} "
                                f"AND value = {p}")

    def _built(self, key: tuple, build) -> str:
        sql = self._cache.get(key)
        if sql is None:
            sql = self._cache[key] = build()
        return sql

    # documents -----------------------------------------------------------
    def scan(self, scope, kind, after, prefix, limit, summaries: bool = False) -> tuple[str, list]:
        """(name, doc) rows; with `summaries`, (name, summary) rows (a NULL summary: read the doc)."""
        args = [*scope, kind]
        if after is not None:
            args.append(after)
        if prefix:
            args += [prefix, prefix + TOP]
        if limit is not None:
            args.append(limit)
        key = ("scan", after is not None, bool(prefix), limit is not None, summaries)
        return self._built(key, lambda: self._scan(*key[1:])), args

    def _scan(self, after: bool, prefix: bool, limit: bool, summaries: bool) -> str:
        p = self.p
        # (a CASE reading doc where summary is NULL doubled the statement's cost: measured)
        columns = "name, summary" if summaries else "name, doc"
        sql = f"SELECT {columns} FROM objects WHERE account={p} AND region={p} AND kind={p}"
        if after:
            sql += f" AND name > {p}"
        if prefix:
            sql += f" AND name >= {p} AND name < {p}"
        sql += " ORDER BY name"
        return sql + (f" LIMIT {p}" if limit else "")

    def find(self, scope, kind, key, value, prefix, after, limit, summaries: bool = False) -> tuple[str, list]:
        """Rows as scan's, of the documents with index entry key=value (or key's value starting with it)."""
        args = [*scope, kind, *scope, kind, key, value, value + TOP] if prefix else [*scope, kind, key, value]
        if after is not None:
            args.append(after)
        if limit is not None:
            args.append(limit)
        flags = ("find", bool(prefix), after is not None, limit is not None, summaries)
        return self._built(flags, lambda: self._find(*flags[1:])), args

    def _find(self, prefix: bool, after: bool, limit: bool, summaries: bool) -> str:
        p = self.p
        if prefix:
            # The page's names first, from the index alone (distinct, in order, up to the
            # limit), then only their documents: a join grouped by name read the document of
            # every match first (4-6x slower for 1,000+ matches; bench/README.md, indexing).
            columns = "name, summary" if summaries else "name, doc"
            return (f"SELECT {columns} FROM objects WHERE account={p} AND region={p} AND kind={p} AND name IN "
                    f"(SELECT DISTINCT name FROM object_index WHERE account={p} AND region={p} AND kind={p} "
                    f"AND key={p} AND value >= {p} AND value < {p}" + (f" AND name > {p}" if after else "")
                    + " ORDER BY name" + (f" LIMIT {p})" if limit else ")") + " ORDER BY name")
        columns = "o.name, o.summary" if summaries else "o.name, o.doc"
        sql = (f"SELECT {columns} FROM object_index i JOIN objects o ON o.account=i.account "
               "AND o.region=i.region AND o.kind=i.kind AND o.name=i.name "
               f"WHERE i.account={p} AND i.region={p} AND i.kind={p} AND i.key={p} AND i.value = {p}")
        if after:
            sql += f" AND i.name > {p}"
        sql += " ORDER BY i.name"
        return sql + (f" LIMIT {p}" if limit else "")

    def joined(self, sql: str) -> str:
        """SQLite: the (name, summary) rows of `sql` (scan's or find's with summaries) as one row:
        (rows, names joined by a newline, summaries joined by U+001E with U+001F for a NULL one).
        A row each cost a step, the GIL let go and taken back and mutex round trips for each
        column in the sqlite3 module: 539k -> 387k instructions for a page of 101 (a further
        aggregate, count(summary) say, ~75k: bench/README.md, api_floor, eighth pass). Both come
        from one pass over the page's rows, so their items correspond. (A JSON text holds
        neither control character unescaped: summaries are JSON texts.)"""
        return self._built(("joined", sql), lambda: "SELECT count(*), group_concat(name, '\n'), "
                           "group_concat(coalesce(summary, '\x1f'), '\x1e') FROM (" + sql + ") AS page")

    def page_names(self, scope, kind, key, value, prefix, after, limit) -> tuple[str, list]:
        """SQLite: one row (how many, their names joined by a newline) of the names `find`
        (or `scan` by name prefix `value`, key None) with the same arguments answers, from the
        index alone (or the documents' keys): their summaries are in memory
        (localiot.store.summaries.KEPT). One row: a row per name cost more than reading it.
        A prefix of values (`find` with `prefix`) answers the names of every entry in the
        range, in value order, repeats included: the caller takes the first `limit`
        distinct ones (SQLite's DISTINCT and ORDER BY over the same entries, then LIMIT,
        cost 1.7x as much for a page of 100: bench/README.md, indexing, seventh pass), up to
        RANGE_READ + 1 of them: a caller given more answers from `find` instead (for a range of
        10,000 entries sorting them all in Python cost more than SQLite's sort for its LIMIT)."""
        if key is not None and prefix:
            args = [*scope, kind, key, value, value + TOP]
            if after is not None:
                args.append(after)
            args.append(RANGE_READ + 1)
            flags = ("page_names", "range", after is not None)
            return self._built(flags, lambda: self._range_names(flags[2])), args
        if key is None:
            args = [*scope, kind]
            if after is not None:
                args.append(after)
            if value:
                args += [value, value + TOP]
            flags = ("page_names", None, after is not None, bool(value), limit is not None)
        else:
            args = [*scope, kind, key, value]
            if after is not None:
                args.append(after)
            flags = ("page_names", "term", after is not None, limit is not None)
        if limit is not None:
            args.append(limit)
        # (the separator a literal: char(10) was copied into its register for every name)
        return self._built(flags, lambda: "SELECT count(*), group_concat(name, '\n') FROM (" + (
            self._scan_names(*flags[2:]) if key is None else self._term_names(*flags[2:])) + ") AS page"), args

    def _range_names(self, after: bool) -> str:
        p = self.p
        return (f"SELECT count(*), group_concat(name, '\n') FROM (SELECT name FROM object_index WHERE account={p} "
                f"AND region={p} AND kind={p} AND key={p} AND value >= {p} AND value < {p}"
                + (f" AND name > {p}" if after else "") + f" LIMIT {p}) AS page")

    def _scan_names(self, after: bool, prefix: bool, limit: bool) -> str:
        """_scan's statement reading only the names (the key: no document is read)."""
        return self._scan(after, prefix, limit, False).replace("SELECT name, doc FROM", "SELECT name FROM", 1)

    def _term_names(self, after: bool, limit: bool) -> str:
        p = self.p
        # (one value: its entries' names are distinct and in order in the index already)
        sql = f"SELECT name FROM object_index WHERE account={p} AND region={p} AND kind={p} AND key={p} AND value = {p}"
        if after:
            sql += f" AND name > {p}"
        sql += " ORDER BY name"
        return sql + (f" LIMIT {p}" if limit else "")

    def find_names(self, scope, kind, key, low, high, include_low, include_high, pattern) -> tuple[str, list]:
        """Distinct names with an index entry `key` in [low, high] (None: unbounded) matching
        `pattern` (None: any), in the backend's own pattern syntax (see pattern_op)."""
        args = [*scope, kind, key]
        args += [bound for bound in (low, high, pattern) if bound is not None]
        flags = ("find_names", None if low is None else include_low, None if high is None else include_high,
                 pattern is not None)
        return self._built(flags, lambda: self._find_names(*flags[1:])), args

    def _find_names(self, low: bool | None, high: bool | None, pattern: bool) -> str:
        p = self.p
        sql = (f"SELECT {self._distinct_names}name FROM object_index WHERE account={p} AND region={p} AND kind={p} "
               f"AND key={p}")
        if low is not None:
            sql += f" AND value >= {p}" if low else f" AND value > {p}"
        else:  # (always true: keeps SQLite on the (key, value, name) index, which covers the query;
            # without a value bound it read every entry of the kind through the name index, 4-20x slower)
            sql += " AND value >= ''"
        if high is not None:
            sql += f" AND value <= {p}" if high else f" AND value < {p}"
        if not pattern:
            return sql
        # SQLite: `GLOB +?`, not `GLOB ?`: a GLOB whose pattern is a bare parameter is planned
        # on the parameter's value, so every execution with another value re-prepared the
        # statement (2/3 of a 1-hit wildcard's SQL; the value bounds above do the narrowing)
        return sql + (f" AND value GLOB +{p}" if self._pattern_op == "GLOB" else f" AND value {self._pattern_op} {p}")

    def count(self, scope, kind, key, value, at_most=None) -> tuple[str, list]:
        if key is None:
            return self.count_kind, [*scope, kind]
        if at_most is not None:
            return self.count_index_at_most, [*scope, kind, key, value, at_most]
        return self.count_index, [*scope, kind, key, value]

    # links ---------------------------------------------------------------
    def walk(self, scope, rel, column: str, other: str, fixed, after, limit) -> tuple[str, list]:
        """`other` ends of `rel` links whose `column` end is `fixed` (column/other: "src"/"dst")."""
        args = [*scope, rel, fixed]
        if after is not None:
            args.append(after)
        if limit is not None:
            args.append(limit)
        key = ("walk", column, other, after is not None, limit is not None)
        return self._built(key, lambda: self._walk(*key[1:])), args

    def _walk(self, column: str, other: str, after: bool, limit: bool) -> str:
        p = self.p
        sql = f"SELECT {other} FROM links WHERE account={p} AND region={p} AND rel={p} AND {column}={p}"
        if after:
            sql += f" AND {other} > {p}"
        sql += f" ORDER BY {other}"
        return sql + (f" LIMIT {p}" if limit else "")

    def links_where(self, scope, rel, src, dst) -> tuple[str, list]:
        """The WHERE clause selecting `rel` links from `src` and/or to `dst` (None: any)."""
        args = [*scope, rel]
        if src is not None:
            args.append(src)
        if dst is not None:
            args.append(dst)
        key = ("links", src is not None, dst is not None)
        return self._built(key, lambda: self._links_where(*key[1:])), args

    def _links_where(self, src: bool, dst: bool) -> str:
        p = self.p
        where = f" WHERE account={p} AND region={p} AND rel={p}"
        if src:
            where += f" AND src={p}"
        if dst:
            where += f" AND dst={p}"
        return where

    def count_links(self, scope, rel, src, dst) -> tuple[str, list]:
        where, args = self.links_where(scope, rel, src, dst)
        return self._built(("count_links", where), lambda: "SELECT COUNT(*) FROM links" + where), args

    def select_links(self, scope, rel, src, dst) -> tuple[str, list]:
        where, args = self.links_where(scope, rel, src, dst)
        return self._built(("select_links", where), lambda: "SELECT src, dst FROM links" + where), args

    def delete_links(self, scope, rel, src, dst, returning: str = "") -> tuple[str, list]:
        where, args = self.links_where(scope, rel, src, dst)
        return self._built(("delete_links", where, returning), lambda: "DELETE FROM links" + where + returning), args
