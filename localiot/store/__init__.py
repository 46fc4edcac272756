"""The persistence port. Services see only `Store.transaction()` and `Tx`."""

from localiot.store.base import Store, Tx
from localiot.store.sqlite import SQLiteStore

__all__ = ["Store", "Tx", "SQLiteStore", "open_store"]


def open_store(path: str) -> Store:
    return SQLiteStore(path)
