"""The persistence port. Services see only `Store.transaction()` and `Tx`."""

from localiot.store.base import Store, Tx
from localiot.store.sqlite import SQLiteStore

__all__ = ["Store", "Tx", "SQLiteStore", "open_store", "is_postgresql"]


def is_postgresql(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def open_store(target: str) -> Store:
    """A SQLite file (or ":memory:"), or PostgreSQL for a postgresql:// DSN."""
    if is_postgresql(target):
        from localiot.store.postgresql import PostgreSQLStore  # psycopg only when asked for

        return PostgreSQLStore(target)
    return SQLiteStore(target)
