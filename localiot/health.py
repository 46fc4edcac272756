"""GET /_localiot/health: is this node fit to serve, and what is it.

It answers 200 when the node's store answers and its message fabric (if it
has one) is connected, 503 otherwise, so a load balancer's health check
takes a node out of rotation when it lost PostgreSQL or NATS:

    {"status": "running" | "unhealthy", "version", "services", "listeners",
     "node": {"id", "host", "pid"},
     "store": {"backend": "sqlite" | "postgresql", "location", "reachable", "schemaVersion"[, "error"]},
     "fabric": {"kind": "none" | "nats", "connected"[, "url", "nodeId"]},
     "periodic": {"mode", "held", ...},   # which time-driven work this node runs
     "workers": {"threads", "busy", "queued", "storeOnLoop": {"count", "sites"}} | null}
         # PostgreSQL: the threads units of work run on, and how often the event loop itself
         # used the store (it should not: each site is the place that did, with its count)

The store is asked for its schema version: inline for SQLite (one local
file, microseconds), from a worker thread with a time limit for a network
store, so an unreachable database never stalls the event loop."""

from __future__ import annotations

import asyncio
import os
import socket
from urllib.parse import urlsplit, urlunsplit

from localiot.timeouts import within
from localiot import __version__
from localiot.cluster import node_id, postgres_dsn

PROBE_SECONDS = 3.0


def _redacted(url: str) -> str:
    """A URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _schema_version(store) -> int | None:
    version = getattr(store, "schema_version", None)
    return version() if callable(version) else version


async def store_state(app) -> dict:
    dsn = postgres_dsn(app.config)
    state = {"backend": "postgresql" if dsn else "sqlite",
             "location": _redacted(dsn) if dsn else getattr(app.store, "path", None)}
    try:
        if dsn is None:
            version = _schema_version(app.store)
        else:
            version = await within(asyncio.to_thread(_schema_version, app.store), PROBE_SECONDS)
    except Exception as error:  # unreachable, timed out, or refused: the node cannot serve
        return {**state, "reachable": False, "schemaVersion": None,
                "error": str(error) or type(error).__name__}
    return {**state, "reachable": True, "schemaVersion": version}


def fabric_state(runtime) -> dict:
    fabric = getattr(runtime, "fabric", None)
    if fabric is None:
        return {"kind": "none", "connected": None}
    state = {"kind": getattr(fabric, "kind", "nats"), "connected": bool(getattr(fabric, "connected", False))}
    for field, attribute in (("url", "url"), ("nodeId", "node_id")):
        value = getattr(fabric, attribute, None)
        if value:
            state[field] = _redacted(value) if field == "url" else value
    confirm = getattr(fabric, "confirm", None)
    if confirm is not None:
        state["qos1"] = confirm.state()  # cross-node QoS 1 confirmations (localiot.fabric.confirm)
    return state


def workers_state(runtime) -> dict | None:
    workers = getattr(runtime, "workers", None)
    if workers is None:
        return None
    store = runtime.store
    return {**workers.state(), "storeOnLoop": {"count": getattr(store, "on_loop", 0),
                                               "sites": dict(getattr(store, "on_loop_sites", {}))}}


async def report(app) -> tuple[int, dict]:
    """(HTTP status, document) for GET /_localiot/health."""
    store = await store_state(app)
    fabric = fabric_state(app.runtime)
    healthy = store["reachable"] and fabric["connected"] is not False
    return (200 if healthy else 503), {
        "status": "running" if healthy else "unhealthy",
        "version": __version__,
        "services": {s.name: "available" for s in app.services},
        "listeners": dict(app.runtime.listeners),
        "node": {"id": node_id(), "host": socket.gethostname(), "pid": os.getpid()},
        "store": store,
        "fabric": fabric,
        "periodic": app.background.coordinator.describe(),
        "workers": workers_state(app.runtime),
    }
