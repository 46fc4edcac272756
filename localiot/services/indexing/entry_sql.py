"""The index's own SQL: rewriting one indexed document and only the entries that changed;
and counting a value's entries up to a bound (the trigram look-ups' choice).

The store's `put(kind, name, doc, index)` drops every entry of the document
and writes them all again: for a thing whose shadow was updated that is
~27 deletes and ~27 inserts across the index's b-trees, most of them of
entries that did not change (thingName, thingId, attributes...), and the
commit then writes every page they touched (the hook cost ~8x the rest of
an UpdateThingShadow at the handler; bench/README.md, indexing, fifth pass).
Here the document is written without its entries (`put(..., index=None)`
leaves them as they are), then the entries the old document had and the new
one has not are deleted and the new ones inserted, by key: the index's own
SQL, through the store transaction's own statement runner (so it is one
transaction with the document, and PostgreSQL's BEGIN, locks and encoding
apply as to every other statement). The old entries are computed from the
old document's fields (maintain.entries is a pure function of them): the
caller takes this way only while the index's entry format is current
(settings.current_entries), else it rewrites every entry.
"""

from __future__ import annotations

from localiot.store.queries import Queries

_SQLITE, _POSTGRESQL = Queries("?"), Queries("%s")
_DROP = "DELETE FROM object_index WHERE account={p} AND region={p} AND kind={p} AND key={p} AND value={p} AND name={p}"


def _pairs(entries: dict) -> set[tuple[str, str]]:
    return {(key, value) for key, values in entries.items() for value in values}


def put_changed(tx, kind: str, name: str, doc: dict, old_fields: dict, entries) -> None:
    """`tx.put(kind, name, doc, entries(doc["fields"]))` for a document stored with the
    entries of `old_fields` (entries: a field's entries depend on that field's values
    alone, so only the fields whose values changed are turned into entries)."""
    new_fields = doc["fields"]
    changed = [field for field, values in new_fields.items() if old_fields.get(field) != values]
    changed += [field for field in old_fields if field not in new_fields]
    old = _pairs(entries({f: old_fields[f] for f in changed if f in old_fields}))
    new = _pairs(entries({f: new_fields[f] for f in changed if f in new_fields}))
    gone = [(tx.account, tx.region, kind, key, value, name) for key, value in sorted(old - new)]
    added = [(tx.account, tx.region, kind, key, value, name) for key, value in sorted(new - old)]
    tx.put(kind, name, doc)
    if not gone and not added:
        return
    if hasattr(tx, "_write_many"):  # SQLite (localiot.store.sqlite.SQLiteTx)
        run, sql = tx._write_many, _SQLITE
        insert = sql.put_index.replace("INSERT", "INSERT OR IGNORE", 1)
    else:  # PostgreSQL (localiot.store.postgresql.PostgreSQLTx): a conflict is a row already there
        run, sql = tx._many, _POSTGRESQL
        insert = sql.put_index + " ON CONFLICT DO NOTHING"
    if gone:
        run(_DROP.format(p=sql.p), gone)
    if added:
        run(insert, added)


_COUNT = ("SELECT COUNT(*) FROM (SELECT 1 FROM object_index WHERE account={p} AND region={p} AND kind={p} "
          "AND key={p} AND value={p} LIMIT {p}) AS bounded")


def count_at_most(tx, kind: str, key: str, value: str, bound: int) -> int:
    """How many `kind` documents have entry key=value, counting no further than `bound`
    (the store's count reads every entry: ~30,000 for a trigram every name holds)."""
    args = (tx.account, tx.region, kind, key, value, bound)
    if hasattr(tx, "_write_many"):  # SQLite: reads need no BEGIN (localiot.store.sqlite)
        return tx.db.execute(_COUNT.format(p=_SQLITE.p), args).fetchone()[0]
    return tx._q(_COUNT.format(p=_POSTGRESQL.p), args).fetchone()[0]
