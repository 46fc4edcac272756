"""Stream files, read from S3 at the downstream endpoint (LOCALIOT_AWS_ENDPOINT_URL)
when devices ask for them.

A file is read whole the first time a device asks for a block of it, and
kept in a process-wide cache (least recently used out, at most
`Limits.CACHE_BYTES`) under (account, region, stream id, stream version,
file id): every device downloading the same stream version shares one read,
and UpdateStream (a new version) means a fresh read. The S3 ETag seen by the
first read is remembered; a DescribeStream asks S3 again (HeadObject), and
when the object changed under an unchanged stream the device gets AWS's
ETagMismatch ("The S3 ETag in the stream doesn't match with the ETag of the
latest S3 object version") until the stream is updated.

These functions block on the network: the door calls them off the event loop.
Failures are the file delivery protocol's codes: a missing bucket, key or
version is ResourceNotFound, a refusal (403) Unauthorized, anything else
InternalError, each with S3's own error code in the message.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from localiot.services.ota.file_delivery import Rejected

_MISSING = {"404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound"}
_REFUSED = {"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


class Limits:
    CACHE_BYTES = 256 * 1024 * 1024
    REMEMBERED_ETAGS = 100_000


@dataclass(frozen=True)
class Location:
    bucket: str
    key: str
    version: str | None = None

    @classmethod
    def of(cls, s3_location: dict) -> "Location":
        return cls(s3_location["bucket"], s3_location["key"], s3_location.get("version") or None)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}" + (f"?versionId={self.version}" if self.version else "")

    def params(self) -> dict:
        params = {"Bucket": self.bucket, "Key": self.key}
        if self.version:
            params["VersionId"] = self.version
        return params


@dataclass
class _Entry:
    data: bytes
    etag: str | None
    stale: bool = False


_lock = threading.Lock()
_files: OrderedDict[tuple, _Entry] = OrderedDict()
_etags: OrderedDict[tuple, str] = OrderedDict()
_size = 0


def cached(key: tuple) -> bytes | None:
    """The file's bytes if they are cached and still current (no network)."""
    with _lock:
        entry = _files.get(key)
        if entry is None or entry.stale:
            return None
        _files.move_to_end(key)
        return entry.data


def read(runtime, region: str, key: tuple, location: Location, token: str | None = None) -> bytes:
    """The whole file (cached): GetObject on a miss. Raises Rejected."""
    with _lock:
        entry = _files.get(key)
        if entry is not None:
            if entry.stale:
                raise _etag_mismatch(location, token)
            _files.move_to_end(key)
            return entry.data
    try:
        response = runtime.aws_client("s3", region).get_object(**location.params())
        data = response["Body"].read()
    except Exception as error:
        raise _failure(error, location, token) from None
    etag = response.get("ETag")
    with _lock:
        if not _remember(key, etag):
            raise _etag_mismatch(location, token)
        _store(key, _Entry(data, etag))
    return data


def size(runtime, region: str, key: tuple, location: Location, token: str | None = None) -> int:
    """The file's size from S3 (HeadObject), checked against the ETag first seen. Raises Rejected."""
    try:
        head = runtime.aws_client("s3", region).head_object(**location.params())
    except Exception as error:
        raise _failure(error, location, token) from None
    etag = head.get("ETag")
    with _lock:
        if not _remember(key, etag):
            entry = _files.get(key)
            if entry is not None:
                entry.stale = True
            raise _etag_mismatch(location, token)
    return int(head["ContentLength"])


def forget(prefix: tuple) -> None:
    """Drop cached files whose key starts with `prefix` (a deleted stream)."""
    global _size
    with _lock:
        for key in [k for k in _files if k[:len(prefix)] == prefix]:
            _size -= len(_files.pop(key).data)
        for key in [k for k in _etags if k[:len(prefix)] == prefix]:
            del _etags[key]


def _remember(key: tuple, etag: str | None) -> bool:
    """Record the first ETag seen for `key`; False when a later one differs."""
    if etag is None:
        return True
    known = _etags.get(key)
    if known is None:
        _etags[key] = etag
        while len(_etags) > Limits.REMEMBERED_ETAGS:
            _etags.popitem(last=False)
        return True
    return known == etag


def _store(key: tuple, entry: _Entry) -> None:
    global _size
    old = _files.pop(key, None)
    if old is not None:
        _size -= len(old.data)
    if len(entry.data) > Limits.CACHE_BYTES:
        return
    _files[key] = entry
    _size += len(entry.data)
    while _size > Limits.CACHE_BYTES:
        _, dropped = _files.popitem(last=False)
        _size -= len(dropped.data)


def _etag_mismatch(location: Location, token: str | None) -> Rejected:
    return Rejected("ETagMismatch", f"The S3 ETag in the stream doesn't match with the ETag of the latest S3 "
                                    f"object version of {location}.", token)


def _failure(error: Exception, location: Location, token: str | None) -> Rejected:
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code") or "")
    if code in _MISSING:
        return Rejected("ResourceNotFound", f"The stream file {location} was not found ({code}).", token)
    if code in _REFUSED:
        return Rejected("Unauthorized", f"Access to the stream file {location} was denied ({code}).", token)
    return Rejected("InternalError", f"The stream file {location} could not be read ({code or type(error).__name__}).",
                    token)
