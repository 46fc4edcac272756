"""HTTPS publish on the ALPN port, as devices use it:
`POST /topics/{topic}?qos=1[&retain=true]` with a client certificate (or
custom authorizer headers), answered like AWS with {"message": "OK",
"traceId": ...}. The publish goes through the broker's admission like an
MQTT one; a reserved topic (shadow, jobs, Basic Ingest ...) is served by its
door as if published over MQTT, without a connection to answer on. A
request with neither a client certificate nor an authorizer (a SigV4-signed
iot-data Publish) is not for this door: `publish` answers None and the
request goes to the HTTP API.
"""

from __future__ import annotations

import asyncio
import functools

from aiohttp import web

from localiot.broker import auth as broker_auth
from localiot.broker.admission import DENIED, INVALID, RESERVED
from localiot.broker.retained import RetainedQuotaExceeded
from localiot.topics import TopicError
from localiot.listeners.http import http_context, reply
from localiot.listeners.tls import sni_of
from localiot.services.unit_of_work import run_off_loop


async def publish(request: web.BaseRequest, topic: str, broker, device_auth) -> web.StreamResponse | None:
    """HTTPS publish as devices use it; None when it is an API call (SigV4) instead."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    remote = request.remote
    sni = sni_of(request.transport)
    if der:
        identity = await run_off_loop(broker.runtime, functools.partial(  # PostgreSQL: on a worker
            device_auth.certificate_identity, der, None, remote, sni, just_in_time=False))
    else:
        found = device_auth.custom_authentication(None, None, None, remote, sni, http=http_context(request))
        if found is None:
            return None
        identity = await found if asyncio.iscoroutine(found) else found
        if identity is None:  # (PostgreSQL: known once the authorizer was read on a worker)
            return None
    if not isinstance(identity, broker_auth.Identity):
        return reply(403, "Forbidden")
    query = request.rel_url.query
    try:
        qos = int(query.get("qos", "0"))
    except ValueError:
        qos = -1
    if qos not in (0, 1):
        return reply(400, "qos must be 0 or 1.")
    retain = query.get("retain", "false").lower() == "true"
    payload = await request.read()
    if len(payload) > broker.limits.payload_max:
        return reply(413, "Payload too large.")
    decision = broker.admit(identity, topic, retain)
    if decision.status == INVALID:
        return reply(400, decision.reason)
    if decision.status == DENIED:
        return reply(403, "Forbidden")
    if decision.status == RESERVED:
        served = broker.serve_reserved(identity, decision, payload, {}, qos)
        if isinstance(served, asyncio.Future):  # PostgreSQL: the door's unit of work runs on a worker
            try:
                await served
            except Exception:
                return reply(403, "Forbidden")
        elif not served:
            return reply(403, "Forbidden")
        return reply(200, "OK")
    publish = functools.partial(broker.publish, identity.account, identity.region, topic, payload, qos,
                                decision.retain, source="https")
    try:
        if decision.retain:  # PostgreSQL: stored on a worker (broker.publish from a worker), then routed
            await run_off_loop(broker.runtime, publish)
        else:
            publish()
    except RetainedQuotaExceeded:
        return reply(413, "The account's retained message quota is reached.")
    except TopicError as e:
        return reply(400, str(e))
    return reply(200, "OK")
