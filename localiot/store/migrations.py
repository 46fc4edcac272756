"""Versioned schema. Append a migration; never edit one that has shipped."""

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
]

TABLES = ("objects", "object_index", "links", "tags")
