"""What several localiot nodes on one PostgreSQL store share beyond the store
port itself: who runs the time-driven work (`coordinator`), the injectable
clock's offset, the node's identity, and the installation's CAs (`shared_ca`).

With the embedded SQLite store (one process) every answer here is the
single-node one and costs nothing: `Solo` holds every job, keeps the clock
to itself and the CA stays in the data directory.

Which store a node uses is read from its configuration (`--store` /
LOCALIOT_STORE): a `postgres://` or `postgresql://` URL means several nodes
may share it."""

from __future__ import annotations

import os
import socket

from localiot.cluster.solo import Solo

__all__ = ["Solo", "coordinator", "node_id", "postgres_dsn", "shared_ca"]


def postgres_dsn(config) -> str | None:
    """The PostgreSQL URL this node's store lives at, None for SQLite."""
    url = getattr(config, "store", "") or ""
    return url if url.startswith(("postgres://", "postgresql://")) else None


def node_id() -> str:
    """This node's name in health reports and in PostgreSQL's application_name:
    LOCALIOT_NODE_ID, else host name and process id."""
    return os.environ.get("LOCALIOT_NODE_ID") or f"{socket.gethostname()}-{os.getpid()}"


def coordinator(config, clock, names: list[str]):
    """The coordinator of time-driven work for this node (see localiot.background)."""
    dsn = postgres_dsn(config)
    if dsn is None:
        return Solo()
    from localiot.cluster.locks import AdvisoryLocks

    return AdvisoryLocks(dsn, clock, names, node_id(), period=config.background_period)


def shared_ca(config, kind):
    """The installation's CA of `kind` (localiot.pki InstallationCA or DeviceCA)
    kept in the shared store, or None when the store is SQLite (the CA then stays in the
    data directory: localiot.pki)."""
    dsn = postgres_dsn(config)
    if dsn is None:
        return None
    from localiot.cluster.ca import load_or_create

    seed = None if config.in_memory else config.data_dir
    return load_or_create(dsn, seed, kind)
