"""The MQTT doors of the services: device publishes on reserved `$aws/...`
topics reach the same service functions the HTTP API calls.

Each door module registers `door(prefix, fn)`; `fn(app, identity, topic,
payload, properties) -> bool` says whether it accepted the publish. The
broker calls `make_handler(app)`'s result for every reserved topic.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

_DOORS: list[tuple[str, Callable]] = []


def door(prefix: str):
    def register(fn: Callable) -> Callable:
        _DOORS.append((prefix, fn))
        return fn

    return register


def make_handler(app) -> Callable:
    for module in pkgutil.iter_modules(__path__, prefix=__name__ + "."):
        importlib.import_module(module.name)

    def handle(identity, topic: str, payload: bytes, properties: dict) -> bool:
        for prefix, fn in _DOORS:
            if topic.startswith(prefix):
                return bool(fn(app, identity, topic, payload, properties))
        return False

    return handle
