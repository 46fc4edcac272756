"""The one table the cluster module keeps beside the store's own: settings
every node shares (the clock offset, the installation CA), by name.

Two nodes starting at once may both create it: CREATE TABLE IF NOT EXISTS is
not race-free in PostgreSQL (the loser fails on pg_type's unique index), so
creation runs under a transaction-level advisory lock."""

from __future__ import annotations

TABLE_SQL = "CREATE TABLE IF NOT EXISTS localiot_cluster (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
CREATE_LOCK = (0x4C494F54, 0)  # (classid, objid): no job lock uses objid 0 (cluster.locks.lock_key)
EXISTS_SQL = "SELECT to_regclass('localiot_cluster') IS NOT NULL"
LOCK_SQL = "SELECT pg_advisory_xact_lock(%s, %s)"


async def ensure_table(conn) -> None:
    """On an autocommit psycopg AsyncConnection."""
    if (await (await conn.execute(EXISTS_SQL)).fetchone())[0]:
        return
    async with conn.transaction():
        await conn.execute(LOCK_SQL, CREATE_LOCK)
        await conn.execute(TABLE_SQL)


def ensure_table_sync(conn) -> None:
    """On an autocommit psycopg Connection."""
    if conn.execute(EXISTS_SQL).fetchone()[0]:
        return
    with conn.transaction():
        conn.execute(LOCK_SQL, CREATE_LOCK)
        conn.execute(TABLE_SQL)
