"""Client sessions: the AWS IoT rules for client ids, keep-alive and expiry,
the broker's quotas, and a session's in-memory state (subscriptions,
in-flight QoS 1 bookkeeping) with its document form. Storing them is
localiot.broker.persistence's job.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass

from localiot.broker import codec
from localiot.broker.codec import SubOptions
from localiot.broker.message import Message



@dataclass
class Limits:
    """AWS IoT Core message broker quotas (defaults as AWS documents them)."""

    payload_max: int = 128 * 1024
    topic_max_bytes: int = 256
    topic_max_slashes: int = 7
    client_id_max: int = 128
    subscriptions_per_request: int = 8
    subscriptions_per_connection: int = 50
    keepalive_min: int = 30
    keepalive_max: int = 1200
    session_expiry_default: int = 3600  # persistent sessions (v3 clean session 0)
    session_expiry_max: int = 3600  # configurable up to 7 days on AWS
    queued_max: int = 100  # queued QoS 1 messages per persistent session
    retained_topics_max: int = 500_000
    topic_alias_max: int = 8
    receive_maximum: int = 100  # in-flight QoS 1 messages towards one client
    pending_high: int = 1000  # QoS 1 messages waiting for a subscriber's window: its publishers pause
    pending_low: int = 250  # ... and read again when it has drained to this many
    stuck_timeout: float = 60.0  # seconds a congested subscriber may go without progress before it goes
    sweep_interval: float = 1.0  # seconds between keep-alive / expiry checks

    def __post_init__(self):
        self.session_expiry_max = min(self.session_expiry_max, 7 * 24 * 3600)


def check_client_id(client_id: str, limits: Limits) -> int | None:
    """The MQTT 5 reason code refusing this client id, or None."""
    if len(client_id.encode()) > limits.client_id_max:
        return codec.CLIENT_IDENTIFIER_NOT_VALID
    return None


def negotiate_keep_alive(requested: int, limits: Limits) -> int:
    """AWS: 0 means the maximum (1200 s); below 30 s is raised to 30; above 1200 s is lowered to 1200."""
    if requested == 0:
        return limits.keepalive_max
    return max(limits.keepalive_min, min(limits.keepalive_max, requested))  # (equal: the limit's int, shared)


def negotiate_session_expiry(version: int, clean_start: bool, properties: dict, limits: Limits) -> int:
    """Seconds the session outlives its connection (0: it ends with the connection)."""
    if version == codec.MQTT5:
        return min(properties.get("session_expiry_interval", 0), limits.session_expiry_max)
    return 0 if clean_start else min(limits.session_expiry_default, limits.session_expiry_max)


_IDS_AT_ONCE = 256  # session ids' random bytes taken from the kernel at once
_random = threading.local()  # per thread: its bytes and how many of them are used
os.register_at_fork(after_in_child=lambda: _random.__dict__.clear())  # a child draws its own bytes


def new_session_id() -> str:
    """A random (version 4) UUID's 32 hex digits, without building a uuid.UUID (one per connect).
    The bytes come from os.urandom 256 ids at a time: a getrandom call per connect was a few
    percent of a plain connection's CPU."""
    pool = _random.__dict__
    at = pool.get("at", 0)
    if not at:
        pool["bytes"] = os.urandom(16 * _IDS_AT_ONCE)
        at = 16 * _IDS_AT_ONCE
    at -= 16
    pool["at"] = at
    b = bytearray(pool["bytes"][at:at + 16])
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    return b.hex()


# Shared by the sessions that have no subscription, no message in flight or no cached receive decision
# yet (never written to: the broker makes a session its own dict on the first entry). A connected
# idle session then costs no empty dicts (3 x 64 bytes).
NO_ENTRIES: dict = {}


class Session:
    __slots__ = ("account", "region", "client_id", "expiry_interval", "subscriptions", "conn", "inflight",
                 "_waiting", "_next_pid", "session_id", "expires_at", "_delayed_will", "queued",
                 "receive_cache", "identity", "version", "stored", "moved_at", "connected_at", "presence_version")

    def __init__(self, account: str, region: str, client_id: str, expiry_interval: int = 0,
                 session_id: str | None = None):
        self.account = account
        self.region = region
        self.client_id = client_id
        self.expiry_interval = expiry_interval
        self.subscriptions: dict[str, SubOptions] = NO_ENTRIES  # made on the first subscription
        self.conn = None
        # packet id -> (message, retain flag, stored name of a persistent session's message or None)
        self.inflight: dict[int, tuple[Message, bool, str | None]] = NO_ENTRIES  # made on the first message
        self._waiting: deque | None = None  # `pending`, made when first needed (a deque is ~600 bytes)
        self._next_pid = 1
        self.session_id = session_id or new_session_id()  # (the lifecycle events' presence keeps it too)
        self.expires_at: float | None = None  # while disconnected
        self._delayed_will: tuple[Message, float | None] | None = None  # (will, will_due): see `will`
        self.queued = 0  # messages waiting in the store
        self.receive_cache: dict[str, bool] = NO_ENTRIES  # made on the first delivery checked
        self.identity = None
        self.version = codec.MQTT311
        self.stored = False  # has a document in the store
        self.moved_at: float | None = None  # with a fabric: when it last changed node (wall clock)
        # the connection holding it now: its presence event's timestamp (ms); the versionNumber of its
        # latest connection, None before the first (localiot.broker.lifecycle; kept here, not in a dict
        # per client id, while it is connected, and with a persistent session while it is kept)
        self.connected_at: int | None = None
        self.presence_version: int | None = None

    @property
    def pending(self) -> deque:
        """(message, retain flag, stored name) of QoS 1 messages waiting for a window slot."""
        waiting = self._waiting
        if waiting is None:
            waiting = self._waiting = deque()
        return waiting

    @property
    def will(self) -> Message | None:
        """A delayed will waiting for `will_due` (one slot for both: most sessions have none)."""
        delayed = self._delayed_will
        return None if delayed is None else delayed[0]

    @will.setter
    def will(self, will: Message | None) -> None:
        delayed = self._delayed_will
        self._delayed_will = None if will is None else (will, None if delayed is None else delayed[1])

    @property
    def will_due(self) -> float | None:
        delayed = self._delayed_will
        return None if delayed is None else delayed[1]

    @will_due.setter
    def will_due(self, due: float | None) -> None:
        delayed = self._delayed_will
        if delayed is not None:
            self._delayed_will = (delayed[0], due)
        elif due is not None:
            raise ValueError("a will's due time without a will")

    @property
    def publisher(self) -> tuple[str, str] | None:
        """(client id, principal) of its publishes, for the bus (rules' clientid(), principal())."""
        identity = self.identity
        return None if identity is None else (self.client_id, identity.principal)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.account, self.region, self.client_id

    @property
    def persistent(self) -> bool:
        return self.expiry_interval > 0

    def next_packet_id(self) -> int:
        pid = self._next_pid
        inflight = self.inflight
        while pid in inflight:
            pid = pid % 65535 + 1
        self._next_pid = pid % 65535 + 1
        return pid

    def to_doc(self, now: float) -> dict:
        return {
            "clientId": self.client_id,
            "sessionIdentifier": self.session_id,
            "expiryInterval": self.expiry_interval,
            "subscriptions": {f: list(o) for f, o in self.subscriptions.items()},
            "connected": self.conn is not None,
            "expiresAt": self.expires_at,
            "protocolVersion": self.version,
            "updatedAt": now,
        }

    @classmethod
    def from_doc(cls, account: str, region: str, doc: dict) -> "Session":
        s = cls(account, region, doc["clientId"], doc["expiryInterval"], doc["sessionIdentifier"])
        s.subscriptions = {f: SubOptions(*o) for f, o in doc.get("subscriptions", {}).items()}
        s.expires_at = doc.get("expiresAt")
        s.version = doc.get("protocolVersion", codec.MQTT311)
        s.stored = True
        if doc.get("connected") or s.expires_at is None:
            # The broker stopped while the client was connected (or was killed):
            # the session has been disconnected since its last update.
            s.expires_at = doc.get("updatedAt", time.time()) + s.expiry_interval
        return s


class SessionTable:
    """The broker's sessions by (account, region, client id), as a dict of them would be
    (get, [], in, del, iteration over the keys, values, len, clear), held per scope:
    {(account, region): {client id: session}}. A dict keyed by the triple kept a tuple
    per session (64 bytes of an idle connection's ~1 KB); here the key is the client
    id's string, which the session holds anyway."""

    __slots__ = ("_scopes",)

    def __init__(self):
        self._scopes: dict[tuple[str, str], dict[str, Session]] = {}

    def get(self, key: tuple[str, str, str], default=None):
        inner = self._scopes.get((key[0], key[1]))
        return default if inner is None else inner.get(key[2], default)

    def __getitem__(self, key: tuple[str, str, str]) -> Session:
        return self._scopes[(key[0], key[1])][key[2]]

    def __setitem__(self, key: tuple[str, str, str], session: Session) -> None:
        inner = self._scopes.get((key[0], key[1]))
        if inner is None:
            inner = self._scopes[(key[0], key[1])] = {}
        inner[key[2]] = session

    def __delitem__(self, key: tuple[str, str, str]) -> None:
        scope = (key[0], key[1])
        inner = self._scopes[scope]
        del inner[key[2]]
        if not inner:
            del self._scopes[scope]

    def __contains__(self, key) -> bool:
        inner = self._scopes.get((key[0], key[1]))
        return inner is not None and key[2] in inner

    def __iter__(self):
        for (account, region), inner in list(self._scopes.items()):
            for client_id in list(inner):
                yield account, region, client_id

    def __len__(self) -> int:
        return sum(len(inner) for inner in self._scopes.values())

    def values(self) -> list[Session]:
        return [session for inner in self._scopes.values() for session in inner.values()]

    def clear(self) -> None:
        self._scopes.clear()
