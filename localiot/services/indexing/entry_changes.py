"""Rewriting one indexed document and only the index entries that changed.

The store's `put(kind, name, doc, index)` drops every entry of the document
and writes them all again: for a thing whose shadow was updated that is
~27 deletes and ~27 inserts across the index's b-trees, most of them of
entries that did not change (thingName, thingId, attributes...), and the
commit then writes every page they touched (the hook cost ~8x the rest of
an UpdateThingShadow at the handler; bench/README.md, indexing, fifth pass).
Here the document is written without its entries (`put(..., index=None)`
leaves them as they are), then the entries the old document had and the new
one has not are deleted and the new ones inserted (`tx.change_index`, in the
same transaction). The old entries are computed from the old document's
fields (maintain.entries is a pure function of them): the caller takes this
way only while the index's entry format is current
(settings.current_entries), else it rewrites every entry.
"""

from __future__ import annotations


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
    tx.put(kind, name, doc)
    if old != new:
        tx.change_index(kind, name, sorted(old - new), sorted(new - old))
