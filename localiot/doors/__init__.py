"""The MQTT doors of the services: device publishes on reserved `$aws/...`
topics reach the same service functions the HTTP API calls.

Each door owns its topics: it declares the full topic template it serves,
and the broker's reserved-topic table (which `$` topics a device may
publish to at all) is built from the doors by `reserved_topics(app)`. A
publish goes to the door whose template matches it; when two could, the
more specific template wins (localiot.broker.reserved), never the order the
modules were found in.

How to add a door
-----------------

1. In a module under `localiot/doors/` (found and imported by
   `reserved_topics`), declare the topic template, with a named part for
   every level the service needs (`{name}` one level, `{name:json|cbor}`
   one level from a regular expression, `{name+}` the rest of the topic):

       @door("$aws/things/{thing}/shadow/{operation:get|update|delete}")
       def shadow_request(app, publish: ReservedPublish) -> bool:

   `publish` has `identity`, `topic`, `payload`, `properties` (MQTT 5),
   `qos`, `parts` (the template's named parts) and `connection` (the
   publishing MQTT connection; None for a will or an HTTPS / iot-data
   publish). Return True when the door served the publish; False refuses
   it (NOT_AUTHORIZED to an MQTT 5 client, a disconnect for 3.1.1, 403 over
   HTTPS). Pass `forward=False` to keep accepted publishes from the topic's
   subscribers (Basic Ingest).
2. The door parses, the service decides: turn `parts` and the payload into
   plain arguments and call the service through
   `serve(app, publish, service, operation, fn)`, which runs
   `fn(ctx)` as one unit of work (localiot.services.unit_of_work) of
   `operation` in the device's account and region, exactly as the HTTP API
   runs it: one transaction, then the commit listeners, then the topics
   the call queued with `ctx.publish` go out (replies included).
3. A reserved topic family that has no door yet stays publishable only if
   it is listed in `UNSERVED`; its door replaces the line.
4. Test it end to end with a real MQTT client (see tests/test_shadows_mqtt.py).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Callable

from localiot.broker.reserved import ReservedPublish, ReservedTopics, Route, TopicTemplate
from localiot.services.unit_of_work import unit_of_work

__all__ = ["ReservedPublish", "UNSERVED", "door", "reserved_topics", "serve"]

# Reserved topics devices may publish to that no door serves yet (upcoming
# families): the admission allows them, then they are refused like an unknown
# topic. A family's door replaces its line.
UNSERVED = (
    "$aws/things/{thing}/tunnels/{request+}",  # Secure Tunneling
)

_DOORS: list[tuple[str, Callable, bool]] = []


def door(template: str, *, forward: bool = True):
    """Register `fn(app, publish) -> bool` as the door of `template`."""
    TopicTemplate(template)  # a bad template fails at import, not at the first publish

    def register(fn: Callable) -> Callable:
        _DOORS.append((template, fn, forward))
        return fn

    return register


def reserved_topics(app) -> ReservedTopics:
    """The broker's reserved-topic table: every door, bound to `app`, and the UNSERVED topics."""
    for module in pkgutil.iter_modules(__path__, prefix=__name__ + "."):
        importlib.import_module(module.name)
    routes = [Route(TopicTemplate(t), functools.partial(fn, app), forward) for t, fn, forward in _DOORS]
    routes += [Route(TopicTemplate(t)) for t in UNSERVED]
    return ReservedTopics(routes)


def serve(app, publish, service_name: str, operation: str, fn: Callable):
    """Run `fn(ctx)` as one unit of work of `operation` in the publishing device's
    account and region, exactly as an HTTP call of it would run. Returns fn's
    result. With PostgreSQL (localiot.cluster.workers) the unit of work runs on a
    worker thread after the device's earlier door requests; `publish.pending` is
    then its task (the broker sends the PUBACK once it is done) and this returns None.
    Given an Identity instead of the publish, it runs here and now (a door that
    needs the result to answer: fleet provisioning)."""
    identity = getattr(publish, "identity", publish)
    workers = app.runtime.workers
    if workers is None or identity is publish:
        with unit_of_work(app.runtime, identity.account, identity.region, service_name, operation) as ctx:
            return fn(ctx)
    publish.pending = workers.in_order((identity.account, identity.region, identity.principal), _unit,
                                       app.runtime, identity, service_name, operation, fn)
    return None


def _unit(runtime, identity, service_name: str, operation: str, fn: Callable):
    with unit_of_work(runtime, identity.account, identity.region, service_name, operation) as ctx:
        return fn(ctx)
