"""Versioned schema. Append a migration; never edit one that has shipped."""


class SQLiteOnly(str):
    """A statement about SQLite's file layout only: PostgreSQL records the migration's
    version and skips it (its tables keep the layout earlier migrations gave them)."""


MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE objects (
                account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL,
                name TEXT NOT NULL, doc TEXT NOT NULL,
                PRIMARY KEY (account, region, kind, name))""",
            """CREATE TABLE object_index (
                account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL,
                key TEXT NOT NULL, value TEXT NOT NULL, name TEXT NOT NULL,
                PRIMARY KEY (account, region, kind, key, value, name))""",
            "CREATE INDEX object_index_by_name ON object_index (account, region, kind, name)",
            """CREATE TABLE links (
                account TEXT NOT NULL, region TEXT NOT NULL, rel TEXT NOT NULL,
                src TEXT NOT NULL, dst TEXT NOT NULL,
                PRIMARY KEY (account, region, rel, src, dst))""",
            "CREATE INDEX links_reverse ON links (account, region, rel, dst, src)",
            """CREATE TABLE tags (
                account TEXT NOT NULL, region TEXT NOT NULL, arn TEXT NOT NULL,
                key TEXT NOT NULL, value TEXT NOT NULL,
                PRIMARY KEY (account, region, arn, key))""",
        ],
    ),
    (
        2,
        [
            # scan_all_scopes(kind): every periodic job asks once a second; without it
            # each ask read the whole objects table (all things and shadows).
            "CREATE INDEX objects_by_kind ON objects (kind, account, region, name)",
        ],
    ),
    (
        3,
        [
            # A document's list summary as reply JSON text (localiot.store.summaries), written
            # with the document for the kinds that have one: a page of ListThings splices
            # these instead of parsing and re-serializing every document. NULL: not written
            # yet (a row from before this migration), computed from the document on read.
            "ALTER TABLE objects ADD COLUMN summary TEXT",
        ],
    ),
    (
        4,
        [
            # SQLite: the objects clustered by their key (WITHOUT ROWID), and no index by kind.
            # A rowid table kept each document in one b-tree and its key in another, and the
            # kind index in a third: inserting a thing dirtied three pages, each written to the
            # WAL at commit (two writes each), a point read walked two b-trees. Now an insert
            # dirties one page, a read walks one b-tree, and a page of ListThings reads its
            # rows in key order from the table itself (bench/README.md, api_floor's fifth pass).
            # scan_all_scopes(kind) finds the scopes by key (few) and reads each one's kind.
            SQLiteOnly("""CREATE TABLE objects_by_key (
                account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL,
                name TEXT NOT NULL, doc TEXT NOT NULL, summary TEXT,
                PRIMARY KEY (account, region, kind, name)) WITHOUT ROWID"""),
            SQLiteOnly("""INSERT INTO objects_by_key (account, region, kind, name, doc, summary)
                SELECT account, region, kind, name, doc, summary FROM objects"""),
            SQLiteOnly("DROP TABLE objects"),  # and its indexes, objects_by_kind among them
            SQLiteOnly("ALTER TABLE objects_by_key RENAME TO objects"),
        ],
    ),
]

TABLES = ("objects", "object_index", "links", "tags")
