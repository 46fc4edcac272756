"""The MQTT-based file delivery door.

    $aws/things/{thing}/streams/{stream}/describe/{json|cbor} -> .../description/{fmt}
    $aws/things/{thing}/streams/{stream}/get/{json|cbor}      -> .../data/{fmt}, one message per block

and `.../rejected/{fmt}` for every failure (the protocol and its quotes from
AWS's guide: localiot.services.ota.file_delivery). The door parses the
request; the service (localiot.services.ota.delivery) checks it against the
stream and builds the replies. Answers are published like any service
topic, so the broker delivers them to the subscribers whose policies let them
receive them, and the publish itself was authorized like any other.

The event loop never waits for S3: a GetStream for a file already read is
answered at once; anything that needs S3 (a first read, every
DescribeStream, which asks S3 for the current sizes) runs in a worker thread
and is answered when it returns.
"""

from __future__ import annotations

import asyncio
import logging

from localiot.doors import ReservedPublish, door
from localiot.services.ota import delivery, file_delivery
from localiot.services.ota.file_delivery import Rejected
from localiot.services.unit_of_work import read_only

log = logging.getLogger("localiot.doors.streams")
_OPERATIONS = {"describe": "DescribeStream", "get": "GetStream"}


@door("$aws/things/{thing}/streams/{stream}/{action:describe|get}/{format:json|cbor}")
def stream_request(app, publish: ReservedPublish) -> bool:
    thing, stream_id = publish.parts["thing"], publish.parts["stream"]
    action, fmt = publish.parts["action"], publish.parts["format"]
    identity, runtime = publish.identity, app.runtime
    operation = _OPERATIONS[action]
    try:
        parse = file_delivery.parse_get if action == "get" else file_delivery.parse_describe
        request = parse(publish.payload, fmt)
        with read_only(runtime, identity.account, identity.region, "iot", operation) as ctx:
            plan = delivery.plan(ctx, thing, stream_id, fmt, request)
            replies = delivery.ready(plan)
            if replies is not None:
                ctx.events.extend(replies)
                return True
    except Rejected as rejection:
        _answer(runtime, identity, operation, [delivery.rejected(thing, stream_id, fmt, rejection)])
        return True
    asyncio.get_running_loop().create_task(_fetch_and_answer(runtime, identity, operation, plan))
    return True


async def _fetch_and_answer(runtime, identity, operation: str, plan: delivery.Plan) -> None:
    try:
        replies = await asyncio.get_running_loop().run_in_executor(
            None, delivery.fetch, runtime, identity.region, plan)
    except Rejected as rejection:
        replies = [delivery.rejected(plan.thing, plan.stream_id, plan.fmt, rejection)]
    except Exception:
        log.exception("serving stream %s failed", plan.stream_id)
        rejection = Rejected("InternalError", "An internal error occurred in the Streaming service.",
                             plan.request.token)
        replies = [delivery.rejected(plan.thing, plan.stream_id, plan.fmt, rejection)]
    _answer(runtime, identity, operation, replies)


def _answer(runtime, identity, operation: str, replies: list[tuple[str, bytes]]) -> None:
    """Queue the replies on a unit of work: they reach the bus (and the subscribers) when it ends."""
    with read_only(runtime, identity.account, identity.region, "iot", operation) as ctx:
        ctx.events.extend(replies)
