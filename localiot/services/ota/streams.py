"""Streams: CreateStream, DescribeStream, UpdateStream, DeleteStream, ListStreams.

A stream is a list of files (fileId 0-255, each an S3 location: bucket, key,
optional object version) that devices download in blocks over MQTT
(localiot/doors/streams.py). The files are not read here: the downstream S3
is asked when a device describes the stream or asks for a block
(stream_files). UpdateStream increments streamVersion (up to 65535), which
devices can check in their GetStream requests. A stream an OTA update uses
cannot be deleted while that update exists (DeleteConflictException).

Store: kind "stream", one document per stream id, with "uid" (a fresh id
per created stream, so a deleted and recreated stream never shares cached
file reads) and "otaUpdateId" for the streams an OTA update created or uses.
"""

from __future__ import annotations

from localiot.protocol.errors import ServiceError, invalid
from localiot.services import operation
from localiot.services.common import Resource, new_id, paginate, tags_to_dict
from localiot.services.iam import is_role_arn
from localiot.services.ota import stream_files
from localiot.services.ota.ota_model import OTA_UPDATE

STREAM = Resource(
    "stream", "stream/{name}",
    not_found="Stream {name} cannot be found.",
    exists="Stream {name} already exists.",
    id_field="streamId", arn_field="streamArn", taggable=True,
)
MAX_VERSION = 65535


def check_role(role_arn: str) -> str:
    if not is_role_arn(role_arn):
        raise invalid(f"roleArn {role_arn} is not a valid IAM role ARN.")
    return role_arn


def check_files(files: list[dict]) -> list[dict]:
    """The StreamFile list as stored: fileId and s3Location required, ids unique."""
    seen: set[int] = set()
    out = []
    for file in files:
        if file.get("fileId") is None:
            raise invalid("Each stream file needs a fileId.")
        location = file.get("s3Location")
        if not location or not location.get("bucket") or not location.get("key"):
            raise invalid(f"Stream file {file['fileId']} needs an s3Location with a bucket and a key.")
        if file["fileId"] in seen:
            raise invalid(f"The fileId {file['fileId']} is used twice in the stream.")
        seen.add(file["fileId"])
        s3 = {"bucket": location["bucket"], "key": location["key"]}
        if location.get("version"):
            s3["version"] = location["version"]
        out.append({"fileId": file["fileId"], "s3Location": s3})
    return out


def create(ctx, stream_id: str, files: list[dict], role_arn: str, description: str | None = None,
           tags: dict | None = None, ota_update_id: str | None = None) -> dict:
    """Store a new stream (CreateStream, and the streams CreateOTAUpdate makes)."""
    STREAM.ensure_absent(ctx, stream_id)
    at = ctx.now()
    doc = {
        "streamId": stream_id,
        "streamArn": STREAM.arn(ctx, stream_id),
        "streamVersion": 1,
        "description": description,
        "files": check_files(files),
        "roleArn": check_role(role_arn),
        "createdAt": at,
        "lastUpdatedAt": at,
        "uid": new_id(),
        "otaUpdateId": ota_update_id,
    }
    STREAM.create(ctx, stream_id, doc, tags, index={"ota": ota_update_id})
    return doc


def save(ctx, doc: dict) -> None:
    STREAM.put(ctx, doc["streamId"], doc, index={"ota": doc.get("otaUpdateId")})


def file_of(stream: dict, file_id: int) -> dict | None:
    return next((f for f in stream["files"] if f["fileId"] == file_id), None)


def _summary(doc: dict) -> dict:
    return {"streamId": doc["streamId"], "streamArn": doc["streamArn"], "streamVersion": doc["streamVersion"],
            "description": doc.get("description")}


@operation("iot")
def CreateStream(ctx, req):
    doc = create(ctx, req["streamId"], req["files"], req["roleArn"], req.get("description"),
                 tags_to_dict(req.get("tags")))
    return _summary(doc)


@operation("iot")
def DescribeStream(ctx, req):
    doc = STREAM.get(ctx, req["streamId"])
    return {"streamInfo": {
        **_summary(doc),
        "files": doc["files"],
        "createdAt": doc["createdAt"],
        "lastUpdatedAt": doc["lastUpdatedAt"],
        "roleArn": doc["roleArn"],
    }}


@operation("iot")
def UpdateStream(ctx, req):
    doc = STREAM.get(ctx, req["streamId"])
    if doc["streamVersion"] >= MAX_VERSION:
        raise ServiceError("LimitExceededException",
                           f"Stream {doc['streamId']} is at version {MAX_VERSION} and cannot be updated again.")
    if req.get("files"):
        doc["files"] = check_files(req["files"])
    if "description" in req:
        doc["description"] = req["description"]
    if req.get("roleArn"):
        doc["roleArn"] = check_role(req["roleArn"])
    _forget_files(ctx, doc)  # the old version's cached reads
    doc["streamVersion"] += 1
    doc["lastUpdatedAt"] = ctx.now()
    save(ctx, doc)
    return _summary(doc)


@operation("iot")
def DeleteStream(ctx, req):
    stream_id = req["streamId"]
    doc = STREAM.get(ctx, stream_id)
    users = [name for name, _ in ctx.tx.find(OTA_UPDATE.kind, "stream", stream_id, limit=1)]
    if users:
        raise ServiceError("DeleteConflictException",
                           f"Stream {stream_id} is used by OTA update {users[0]} and cannot be deleted.")
    STREAM.delete(ctx, stream_id)
    _forget_files(ctx, doc)
    return {}


def _forget_files(ctx, doc: dict) -> None:
    """Drop the cached reads of the stream's current version once the call commits."""
    prefix = (ctx.account, ctx.region, doc["uid"], doc["streamVersion"])
    ctx.after_commit(lambda: stream_files.forget(prefix))


def delete(ctx, stream_id: str) -> bool:
    """Delete a stream (DeleteOTAUpdate with deleteStream); False when it was not there."""
    doc = STREAM.find(ctx, stream_id)
    if doc is None:
        return False
    STREAM.delete(ctx, stream_id)
    _forget_files(ctx, doc)
    return True


@operation("iot")
def ListStreams(ctx, req):
    docs = [doc for _, doc in STREAM.list(ctx)]
    descending = req.get("ascendingOrder") is False
    if descending:
        docs.reverse()
    found, extra = paginate(ctx, req, docs, key=lambda d: d["streamId"], descending=descending)
    return {"streams": [_summary(d) for d in found], **extra}
