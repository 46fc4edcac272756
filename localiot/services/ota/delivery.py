"""What a device's DescribeStream or GetStream request answers (MQTT-based
file delivery; the door is localiot/doors/streams.py, the wire format
file_delivery.py).

A request is served in two steps so the event loop never waits for S3:
`plan(ctx, ...)` checks the request against the stream in the store (the
stream exists, the version matches, the file is in it) and says which S3
objects it needs; `fetch(runtime, region, plan)` reads them (blocking: run it
off the loop, or skip it when `ready(plan)` finds everything cached) and
returns the reply messages as (topic, payload) pairs. Failures at any step
are `file_delivery.Rejected`, answered with `rejected(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from localiot.services.ota import file_delivery, stream_files
from localiot.services.ota.file_delivery import DescribeRequest, GetRequest, Rejected
from localiot.services.ota.stream_files import Location
from localiot.services.ota.streams import STREAM, file_of


@dataclass
class Plan:
    thing: str
    stream_id: str
    fmt: str
    request: DescribeRequest | GetRequest
    version: int
    description: str | None
    files: list[tuple[int, tuple, Location]] = field(default_factory=list)  # (file id, cache key, S3 location)


def plan(ctx, thing: str, stream_id: str, fmt: str, request) -> Plan:
    stream = STREAM.find(ctx, stream_id)
    if stream is None:
        raise Rejected("ResourceNotFound", f"The stream {stream_id} was not found.", request.token)
    found = Plan(thing, stream_id, fmt, request, stream["streamVersion"], stream.get("description"))
    if isinstance(request, GetRequest):
        if request.version is not None and request.version != stream["streamVersion"]:
            raise Rejected("VersionMismatch",
                           f"The stream version {request.version} in the request doesn't match the stream version "
                           f"{stream['streamVersion']} of stream {stream_id}.", request.token)
        file = file_of(stream, request.file_id)
        if file is None:
            raise Rejected("ResourceNotFound",
                           f"The file {request.file_id} was not found in stream {stream_id}.", request.token)
        files = [file]
    else:
        files = stream["files"]
    for file in files:
        key = (ctx.account, ctx.region, stream["uid"], stream["streamVersion"], file["fileId"])
        found.files.append((file["fileId"], key, Location.of(file["s3Location"])))
    return found


def ready(found: Plan) -> list[tuple[str, bytes]] | None:
    """The replies of a GetStream plan whose file is cached (no network), else None."""
    if not isinstance(found.request, GetRequest):
        return None
    data = stream_files.cached(found.files[0][1])
    return None if data is None else _blocks(found, data)


def fetch(runtime, region: str, found: Plan) -> list[tuple[str, bytes]]:
    """The replies of a plan, reading S3 as needed (blocking). Raises Rejected."""
    request = found.request
    if isinstance(request, GetRequest):
        _, key, location = found.files[0]
        return _blocks(found, stream_files.read(runtime, region, key, location, request.token))
    sizes = [(file_id, stream_files.size(runtime, region, key, location, request.token))
             for file_id, key, location in found.files]
    body = file_delivery.description(request.token, found.version, found.description, sizes)
    return [(file_delivery.topic(found.thing, found.stream_id, "description", found.fmt),
             file_delivery.encode(body, found.fmt))]


def _blocks(found: Plan, data: bytes) -> list[tuple[str, bytes]]:
    request = found.request
    topic = file_delivery.topic(found.thing, found.stream_id, "data", found.fmt)
    return [(topic, file_delivery.data_message(request.token, request.file_id, block_id,
                                               file_delivery.block(data, block_id, request.block_size), found.fmt))
            for block_id in file_delivery.blocks_for(request, len(data))]


def rejected(thing: str, stream_id: str, fmt: str, rejection: Rejected) -> tuple[str, bytes]:
    return (file_delivery.topic(thing, stream_id, "rejected", fmt),
            file_delivery.encode(rejection.document(), fmt))
