"""Kinds kept in memory: settings read by every write and seldom written.

A family whose writes all consult one small settings document (the event
configurations, the fleet indexing configuration) declares its kind here.
A store that is the only user of its data (SQLite: the data directory lock
and the exclusive file lock) then answers `get` of such a document from
memory after its first read: a write of it in a transaction drops it from
memory and keeps it out until the transaction ends (commit or rollback),
after which the next read takes the stored document again. A store shared by
several processes (PostgreSQL) keeps nothing and reads the database.
"""

from __future__ import annotations

KINDS: set[str] = set()


def keep(kind: str) -> None:
    KINDS.add(kind)
