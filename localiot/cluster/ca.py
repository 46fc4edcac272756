"""The installation's CAs (localiot.pki) for nodes that share a PostgreSQL store,
kept in it (rows 'installation-ca' and 'device-ca' of localiot_cluster) so a
device trusting the installation root can connect to any node, and a device
certificate one node issued verifies on every node. The first node to start
stores each CA; INSERT ... ON CONFLICT DO NOTHING makes nodes starting at once
end with one. A node whose data directory already holds a CA (an installation
moving from SQLite) offers that one, so certificates it issued keep verifying."""

from __future__ import annotations

import json

import psycopg

from localiot.cluster.settings import ensure_table_sync
from localiot.pki import DeviceCA, InstallationCA

ROWS = {InstallationCA: "installation-ca", DeviceCA: "device-ca"}


def load_or_create(dsn: str, seed_directory: str | None = None, kind: type[InstallationCA] = InstallationCA):
    """The shared CA of `kind` (InstallationCA, DeviceCA) in the store at `dsn`."""
    row_name = ROWS[kind]
    candidate = kind.existing(seed_directory) if seed_directory else None
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10, application_name="localiot:ca") as conn:
        ensure_table_sync(conn)

        def stored() -> tuple[str, str] | None:
            row = conn.execute("SELECT value FROM localiot_cluster WHERE name = %s", (row_name,)).fetchone()
            if row is None:
                return None
            pair = json.loads(row[0])
            return pair["key"], pair["certificate"]

        def put_if_absent(key_pem: bytes, cert_pem: bytes) -> tuple[str, str]:
            value = json.dumps({"key": key_pem.decode(), "certificate": cert_pem.decode()})
            conn.execute("INSERT INTO localiot_cluster (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                         (row_name, value))
            return stored()

        return kind.shared(stored, put_if_absent, candidate)
