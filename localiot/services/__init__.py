"""Service families. Handlers are plain functions named after their operation.

    @operation("iot")
    def CreateThing(ctx, req): ...

    @operation("iot", affects=Affects.DEVICE_RIGHTS | Affects.CERTIFICATE_STATUS)
    def UpdateCertificate(ctx, req): ...

`load_all()` imports every module under `localiot.services`, so a new
family registers its handlers by existing; nothing else lists them.
`affects` says what a committed call may have changed for connected devices;
the broker's authorization reads it (see `localiot.device_auth`).
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
from typing import Callable

HANDLERS: dict[tuple[str, str], Callable] = {}
_AFFECTS: dict[tuple[str, str], "Affects"] = {}


class Affects(enum.Flag):
    """What a committed operation may change for devices already connected."""

    NOTHING = 0
    DEVICE_RIGHTS = enum.auto()  # policies, attachments, thing attributes or groups: grants are recomputed
    CERTIFICATE_STATUS = enum.auto()  # clients whose certificate can no longer connect are dropped
    ALL_ACCOUNTS = enum.auto()  # reaches other accounts' devices (a CA certificate's status)
    TRUST_ANCHORS = enum.auto()  # may add a certificate the TLS listeners must accept


def operation(service: str, name: str | None = None, *, affects: Affects = Affects.NOTHING):
    def register(fn: Callable) -> Callable:
        key = (service, name or fn.__name__)
        if key in HANDLERS:
            raise RuntimeError(f"two handlers for {key}")
        HANDLERS[key] = fn
        if affects:
            _AFFECTS[key] = affects
        return fn

    return register


def affects(service: str, name: str) -> Affects:
    """What `service` `name` declared it affects (NOTHING for unknown names)."""
    return _AFFECTS.get((service, name), Affects.NOTHING)


def load_all() -> dict[tuple[str, str], Callable]:
    for module in pkgutil.walk_packages(__path__, prefix=__name__ + "."):
        importlib.import_module(module.name)
    return HANDLERS
