"""The narrow store interface every backend implements.

Resources are JSON documents addressed by (account, region, kind, name), with
secondary index entries (key, value) per document, directed links between
names (group membership, attachments) and tags by ARN. A `Tx` is one API
call's transaction, bound to one (account, region); `Tx.scope()` reaches
another one inside the same transaction (certificate transfers, ...).
"""

from __future__ import annotations

from typing import Iterable, Protocol


class Tx(Protocol):
    account: str
    region: str
    # What the transaction wrote so far, in order, across its scopes:
    # ("doc", account, region, kind, name) for each put / delete and
    # ("link", account, region, rel, src, dst) for each link made or removed.
    # Derived data (the fleet index) follows the writes from it before commit.
    changes: list[tuple]

    def scope(self, account: str, region: str) -> "Tx": ...

    def get(self, kind: str, name: str) -> dict | None: ...

    # The document as stored: its writer's JSON text (localiot.store.documents._dumps: compact,
    # UTF-8; a leading space marks text json wrote), for a reply that can splice it.
    def get_text(self, kind: str, name: str) -> str | None: ...

    def put(self, kind: str, name: str, doc: dict, index: dict[str, Iterable[str] | str | None] | None = None) -> None: ...

    def delete(self, kind: str, name: str) -> bool: ...

    # With summaries=True, rows are (name, summary text) instead (localiot.store.summaries).
    def scan(self, kind: str, *, after: str | None = None, prefix: str | None = None, limit: int | None = None,
             summaries: bool = False) -> list[tuple[str, dict]]: ...

    def find(self, kind: str, key: str, value: str, *, prefix: bool = False, after: str | None = None,
             limit: int | None = None, summaries: bool = False) -> list[tuple[str, dict]]: ...

    # One page of summary texts (localiot.store.summaries) in name order: scan's (find's, with `key`)
    # first `limit` rows after `after`, their texts joined by "," (a JSON array's items), and the
    # last one's name when more rows follow (None: the last page).
    def summary_page(self, kind: str, *, key: str | None = None, value: str = "", prefix: bool = False,
                     after: str | None = None, limit: int) -> tuple[str, str | None]: ...

    # Names (unordered, distinct) of `kind` documents with an index entry `key` whose value is within
    # [low, high] in string order (None: unbounded; include_* say whether a bound itself is in) and,
    # when given, matches `pattern` (GLOB syntax: * any run, ? one character, [..] a class).
    def find_names(self, kind: str, key: str, *, low: str | None = None, high: str | None = None,
                   include_low: bool = True, include_high: bool = True, pattern: str | None = None) -> list[str]: ...

    # With `at_most`, counting stops there (a value many documents hold is not read through).
    def count(self, kind: str, key: str | None = None, value: str | None = None, *,
              at_most: int | None = None) -> int: ...

    # Index entries (key, value) of the `kind` document `name` that `gone` and `added` name
    # deleted and inserted, the others left as they are (`put` without `index` keeps them).
    def change_index(self, kind: str, name: str, gone: Iterable[tuple[str, str]],
                     added: Iterable[tuple[str, str]]) -> None: ...

    def link(self, rel: str, src: str, dst: str) -> bool: ...

    def unlink(self, rel: str, src: str, dst: str) -> bool: ...

    def linked(self, rel: str, src: str, *, after: str | None = None, limit: int | None = None) -> list[str]: ...

    def linked_to(self, rel: str, dst: str, *, after: str | None = None, limit: int | None = None) -> list[str]: ...

    def is_linked(self, rel: str, src: str, dst: str) -> bool: ...

    def count_links(self, rel: str, *, src: str | None = None, dst: str | None = None) -> int: ...

    def unlink_all(self, rel: str, *, src: str | None = None, dst: str | None = None) -> int: ...

    def get_tags(self, arn: str) -> dict[str, str]: ...

    def put_tags(self, arn: str, tags: dict[str, str]) -> None: ...

    def remove_tags(self, arn: str, keys: Iterable[str]) -> None: ...

    def drop_tags(self, arn: str) -> None: ...


class Transaction(Protocol):
    """What `Store.transaction` returns: `with` it for a Tx; it commits when the body ends."""

    def __enter__(self) -> Tx: ...

    def __exit__(self, kind, error, trace) -> bool: ...

    # After `__exit__` without error: True when `fn(arg)` (what follows the commit) was left
    # to run once a shared COMMIT is done (SQLite's group); False: the caller runs it now.
    def defer(self, fn, arg) -> bool: ...


class Store(Protocol):
    # The future a grouped caller awaits before it acknowledges its work while a shared
    # commit is open (SQLite's group, localiot.store.commit_group); None: nothing pending.
    pending_commit: object

    # grouped: the caller awaits `pending_commit` before it acknowledges the work, so the
    # store may commit it together with other such work.
    def transaction(self, account: str, region: str, *, write: bool = True, grouped: bool = False) -> Transaction: ...

    def scan_all_scopes(self, kind: str, where: dict | None = None) -> list[tuple[str, str, str, dict]]: ...

    def scopes_indexing(self, kind: str, key: str, value: str) -> list[tuple[str, str]]: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...
