"""Service families. Handlers are plain functions named after their operation.

    @operation("iot")
    def CreateThing(ctx, req): ...

`load_all()` imports every family so their handlers register.
"""

from __future__ import annotations

import importlib
from typing import Callable

HANDLERS: dict[tuple[str, str], Callable] = {}

FAMILIES = (
    "localiot.services.tagging",
    "localiot.services.registry.things",
    "localiot.services.registry.thing_types",
    "localiot.services.registry.events",
)


def operation(service: str, name: str | None = None):
    def register(fn: Callable) -> Callable:
        key = (service, name or fn.__name__)
        if key in HANDLERS:
            raise RuntimeError(f"two handlers for {key}")
        HANDLERS[key] = fn
        return fn

    return register


def load_all() -> dict[tuple[str, str], Callable]:
    for module in FAMILIES:
        importlib.import_module(module)
    return HANDLERS
