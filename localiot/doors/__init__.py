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
    """Run `fn(ctx)` as one call of the device's account and region: one
    transaction, its events on the bus after the commit, then the commit
    listeners, exactly as an HTTP call of `operation` would. Returns fn's result."""
    from localiot.services.context import RequestContext

    runtime = app.runtime
    account, region = identity.account, identity.region
    with app.store.transaction(account, region) as tx:
        ctx = RequestContext(account, region, tx, runtime, service_name, operation)
        result = fn(ctx)
    for topic, payload in ctx.events:
        runtime.bus.publish(account, region, topic, payload)
    for listener in runtime.commit_listeners:
        listener(service_name, operation, account, region)
    return result
