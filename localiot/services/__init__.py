"""Service families. Handlers are plain functions named after their operation.

    @operation("iot")
    def CreateThing(ctx, req): ...

`load_all()` imports every module under `localiot.services`, so a new
family registers its handlers by existing; nothing else lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

HANDLERS: dict[tuple[str, str], Callable] = {}


def operation(service: str, name: str | None = None):
    def register(fn: Callable) -> Callable:
        key = (service, name or fn.__name__)
        if key in HANDLERS:
            raise RuntimeError(f"two handlers for {key}")
        HANDLERS[key] = fn
        return fn

    return register


def load_all() -> dict[tuple[str, str], Callable]:
    for module in pkgutil.walk_packages(__path__, prefix=__name__ + "."):
        importlib.import_module(module.name)
    return HANDLERS
