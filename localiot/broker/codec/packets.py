"""MQTT packets as small value classes (what `decode` returns and `encode` takes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from localiot.broker.codec.constants import (
    AUTH, CONNACK, CONNECT, DISCONNECT, MQTT311, PINGREQ, PINGRESP, PUBLISH, SUBACK, SUBSCRIBE, UNSUBACK,
    UNSUBSCRIBE,
)


# value classes --------------------------------------------------------------
class SubOptions(NamedTuple):
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0


@dataclass(slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: dict = field(default_factory=dict)


@dataclass(slots=True)
class Connect:
    client_id: str
    protocol_level: int = MQTT311
    clean_start: bool = True
    keep_alive: int = 60
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: dict = field(default_factory=dict)
    protocol_name: str = "MQTT"
    type = CONNECT


@dataclass(slots=True)
class Connack:
    session_present: bool = False
    reason_code: int = 0
    properties: dict = field(default_factory=dict)
    type = CONNACK


@dataclass(slots=True)
class Publish:
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: dict = field(default_factory=dict)
    type = PUBLISH


@dataclass(slots=True)
class Ack:
    """PUBACK, PUBREC, PUBREL and PUBCOMP share one shape."""

    type: int
    packet_id: int
    reason_code: int = 0
    properties: dict = field(default_factory=dict)


@dataclass(slots=True)
class Subscribe:
    packet_id: int
    subscriptions: list[tuple[str, SubOptions]]
    properties: dict = field(default_factory=dict)
    type = SUBSCRIBE


@dataclass(slots=True)
class Suback:
    packet_id: int
    reason_codes: list[int]
    properties: dict = field(default_factory=dict)
    type = SUBACK


@dataclass(slots=True)
class Unsubscribe:
    packet_id: int
    filters: list[str]
    properties: dict = field(default_factory=dict)
    type = UNSUBSCRIBE


@dataclass(slots=True)
class Unsuback:
    packet_id: int
    reason_codes: list[int] = field(default_factory=list)
    properties: dict = field(default_factory=dict)
    type = UNSUBACK


@dataclass(slots=True)
class Pingreq:
    type = PINGREQ


@dataclass(slots=True)
class Pingresp:
    type = PINGRESP


@dataclass(slots=True)
class Disconnect:
    reason_code: int = 0
    properties: dict = field(default_factory=dict)
    type = DISCONNECT


@dataclass(slots=True)
class Auth:
    reason_code: int = 0
    properties: dict = field(default_factory=dict)
    type = AUTH
