"""The MQTT doors of the services: device publishes on reserved `$aws/...`
topics reach the same service functions the HTTP API calls.

Each door module registers `door(prefix, fn)`; `fn(app, identity, topic,
payload, properties) -> bool` says whether it accepted the publish; doors
whose prefix matches are tried in turn until one accepts. The broker calls
`make_handler(app)`'s result for every reserved topic. `serve` runs a door's
service call the way the HTTP API runs one.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from localiot.services.unit_of_work import unit_of_work

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
            if topic.startswith(prefix) and fn(app, identity, topic, payload, properties):
                return True
        return False

    return handle


def serve(app, identity, service_name: str, operation: str, fn: Callable):
    """Run `fn(ctx)` as one unit of work of `operation` in the device's account
    and region, exactly as an HTTP call of it would run. Returns fn's result."""
    with unit_of_work(app.runtime, identity.account, identity.region, service_name, operation) as ctx:
        return fn(ctx)
