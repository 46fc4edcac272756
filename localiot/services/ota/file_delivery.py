"""The device side of MQTT-based file delivery, as a pure module: request
parsing, the block bitmap, which blocks a GetStream request gets, and the
JSON / CBOR messages with AWS's short keys. No store, no S3, no MQTT here.

What this follows, from AWS's developer guide ("Using AWS IoT Core
MQTT-based file delivery in devices", the Streaming service pages):

- Topics: a device publishes `$aws/things/ThingName/streams/StreamId/describe/json`
  and gets "a DescribeStream response on the accepted topic filter"
  `.../description/json`; it publishes `.../get/json` and "will receive one or
  more GetStream responses" on `.../data/json`, "each response message
  contains basic information and a data payload for a single block";
  failures go to `.../rejected/json`. "If you replace json with cbor in the
  topics ... your device receives messages in the CBOR format."
- DescribeStream request `{"c": token}`; "The client token can't be longer
  than 64 bytes ... causes an error response and an InvalidRequest error
  message." Response: "c" the token (if given), "s" the stream version, "d"
  the description, "r" the files, each `{"f": file id, "z": size in bytes}`.
- GetStream request: "c" token [optional]; "s" stream version [optional]:
  "If the stream version ... doesn't match the latest stream version in the
  cloud, the service sends an error response and a VersionMismatch error
  message"; "f" file id "(an integer in the range 0 to 255)", unknown ids get
  ResourceNotFound; "l" block size "(an integer in the range 256 to
  131,072)", else BlockSizeOutOfBounds; "o" block offset "(an integer in the
  range 0 to 98,304)" [optional, default 0]; "n" number of blocks "(an
  integer in the range 0 to 98,304)" [optional]: "If not defined, it
  defaults to 131072/DataBlockSize"; "b" the bitmap [optional]: "The bitmap
  must be less than 12,288 bytes."
- Bitmap: "For each bit which is set to 1 in the bitmap, a corresponding
  block of the stream file will be returned", counted from the offset; "The
  first byte contains bits 7-0 (in that order), the second byte contains
  bits 15-8" (bits 0, 1, 4 and 23 are "0x130080"). "n" then limits the
  blocks; the service sends at most 128 KB per request: "your device must
  make multiple requests in order to receive all of the data requested".
- GetStream response per block: "c" token, "f" file id, "l" "the size of
  the data block payload in bytes", "i" "the ID of the data block ...
  numbered starting from 0", "p" the payload.
- Errors: `{"o": code, "m": message, "c": token}`; "When the client token
  given in the request isn't valid or is malformed, it's not returned".
  Codes: InvalidTopic, InvalidJson, InvalidCbor, InvalidRequest,
  Unauthorized, BlockSizeOutOfBounds, OffsetOutOfBounds,
  BlockCountLimitExceeded, BlockBitmapLimitExceeded, ResourceNotFound,
  VersionMismatch, ETagMismatch, InternalError.

Encodings where the guide leaves room: in CBOR "p" and "b" are byte strings
(FreeRTOS's OTA agent and AWS's mqtt-file-streams library encode them so).
In JSON "p" is base64, as AWS's own downloader library
(aws-iot-core-mqtt-file-streams-embedded-c) decodes it; the JSON bitmap "b"
is the hexadecimal string the guide shows ("0x130080", the 0x optional).
Blocks a bitmap or a count names past the end of the file are not sent (AWS's
downloader sends a fixed 4-byte bitmap with n=1 for every block, the last
included); a request whose blocks all lie past the end is ResourceNotFound
("The requested stream, files, file versions or blocks were not found").
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from localiot import cbor

MIN_BLOCK_SIZE = 256
MAX_BLOCK_SIZE = 131072
MAX_OFFSET = 98304
MAX_BLOCKS = 98304
MAX_BITMAP_BYTES = 12288  # "must be less than"
MAX_TOKEN_BYTES = 64
MAX_FILE_ID = 255
RESPONSE_LIMIT = 131072  # bytes of block payload sent for one GetStream request

FORMATS = ("json", "cbor")


class Rejected(Exception):
    """A request the service answers on `.../rejected/<format>`."""

    def __init__(self, code: str, message: str, token: str | None = None):
        super().__init__(message)
        self.code, self.message, self.token = code, message, token

    def document(self) -> dict:
        body = {"o": self.code, "m": self.message}
        if self.token is not None:
            body["c"] = self.token
        return body


@dataclass(frozen=True)
class DescribeRequest:
    token: str | None = None


@dataclass(frozen=True)
class GetRequest:
    file_id: int
    block_size: int
    token: str | None = None
    version: int | None = None
    offset: int = 0
    count: int | None = None
    bitmap: bytes | None = None


# decoding -----------------------------------------------------------------------
def decode(payload: bytes, fmt: str) -> dict:
    """The request object; InvalidJson / InvalidCbor / InvalidRequest when it is not one."""
    if not payload:
        return {}
    if fmt == "cbor":
        try:
            request = cbor.loads(payload)
        except ValueError:
            raise Rejected("InvalidCbor", "The Stream request is not valid CBOR document.") from None
    else:
        try:
            request = json.loads(bytes(payload).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise Rejected("InvalidJson", "The Stream request is not valid JSON document.") from None
    if not isinstance(request, dict):
        raise Rejected("InvalidRequest", f"The Stream request must be a {fmt.upper()} object.")
    return request


def _token(request: dict) -> str | None:
    token = request.get("c")
    if token is None:
        return None
    if not isinstance(token, str):
        raise Rejected("InvalidRequest", "The client token must be a string.")
    if len(token.encode("utf-8")) > MAX_TOKEN_BYTES:
        raise Rejected("InvalidRequest", f"The client token can't be longer than {MAX_TOKEN_BYTES} bytes.")
    return token


def _integer(request: dict, key: str, name: str, token: str | None) -> int | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejected("InvalidRequest", f"The {name} (\"{key}\") must be an integer.", token)
    return value


def parse_describe(payload: bytes, fmt: str) -> DescribeRequest:
    return DescribeRequest(_token(decode(payload, fmt)))


def parse_get(payload: bytes, fmt: str) -> GetRequest:
    request = decode(payload, fmt)
    token = _token(request)
    version = _integer(request, "s", "stream version", token)
    file_id = _integer(request, "f", "stream file ID", token)
    if file_id is None:
        raise Rejected("InvalidRequest", "The stream file ID (\"f\") is required.", token)
    if not 0 <= file_id <= MAX_FILE_ID:
        raise Rejected("InvalidRequest", f"The stream file ID must be between 0 and {MAX_FILE_ID}.", token)
    block_size = _integer(request, "l", "block size", token)
    if block_size is None:
        raise Rejected("InvalidRequest", "The block size (\"l\") is required.", token)
    if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
        raise Rejected("BlockSizeOutOfBounds",
                       f"The block size is out of bounds: it must be between {MIN_BLOCK_SIZE} and "
                       f"{MAX_BLOCK_SIZE} bytes.", token)
    offset = _integer(request, "o", "block offset", token) or 0
    if not 0 <= offset <= MAX_OFFSET:
        raise Rejected("OffsetOutOfBounds", f"The offset is out of bounds: it must be between 0 and {MAX_OFFSET}.",
                       token)
    count = _integer(request, "n", "number of blocks", token)
    if count is not None and not 0 <= count <= MAX_BLOCKS:
        raise Rejected("BlockCountLimitExceeded",
                       f"The number of requested blocks is out of bounds: it must be between 0 and {MAX_BLOCKS}.",
                       token)
    bitmap = _bitmap(request.get("b"), fmt, token)
    return GetRequest(file_id, block_size, token, version, offset, count or None, bitmap)


def _bitmap(value, fmt: str, token: str | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)) and fmt == "cbor":
        bitmap = bytes(value)
    elif isinstance(value, str):
        text = value[2:] if value[:2] in ("0x", "0X") else value
        try:
            bitmap = bytes.fromhex(text) if len(text) % 2 == 0 else bytes.fromhex("0" + text)
        except ValueError:
            raise Rejected("InvalidRequest", "The block bitmap (\"b\") must be a hexadecimal string.", token) from None
    else:
        kind = "a byte string or a hexadecimal string" if fmt == "cbor" else "a hexadecimal string"
        raise Rejected("InvalidRequest", f"The block bitmap (\"b\") must be {kind}.", token)
    if not bitmap:
        raise Rejected("InvalidRequest", "The block bitmap (\"b\") is empty.", token)
    if len(bitmap) >= MAX_BITMAP_BYTES:
        raise Rejected("BlockBitmapLimitExceeded",
                       f"The size of the request bitmap is out of bounds: it must be less than {MAX_BITMAP_BYTES} bytes.",
                       token)
    return bitmap


# bitmaps and blocks ----------------------------------------------------------------
def bitmap_of(blocks, offset: int = 0) -> bytes:
    """The bitmap asking for `blocks` (block ids) from `offset` (what a device builds)."""
    blocks = sorted(set(blocks))
    if not blocks:
        return b""
    out = bytearray((blocks[-1] - offset) // 8 + 1)
    for block in blocks:
        bit = block - offset
        if bit < 0:
            raise ValueError(f"block {block} is before the offset {offset}")
        out[bit // 8] |= 1 << (bit % 8)
    return bytes(out)


def bits(bitmap: bytes):
    """The positions set in `bitmap`, in increasing order (bit 0 is byte 0's lowest bit)."""
    for index, byte in enumerate(bitmap):
        if byte:
            for bit in range(8):
                if byte & (1 << bit):
                    yield index * 8 + bit


def block_count(file_size: int, block_size: int) -> int:
    return (file_size + block_size - 1) // block_size


def blocks_for(request: GetRequest, file_size: int) -> list[int]:
    """The block ids a GetStream request gets, in order: the bitmap's (or the
    count's) blocks from the offset, at most "n" and at most 128 KB of
    payload; blocks past the end of the file are left out."""
    wanted = request.count or max(1, RESPONSE_LIMIT // request.block_size)
    limit = min(wanted, max(1, RESPONSE_LIMIT // request.block_size))
    total = block_count(file_size, request.block_size)
    if request.bitmap is not None:
        candidates = (request.offset + bit for bit in bits(request.bitmap))
    else:
        candidates = iter(range(request.offset, request.offset + wanted))
    if request.bitmap is not None and not any(request.bitmap):
        raise Rejected("InvalidRequest", "The block bitmap asks for no block.", request.token)
    found: list[int] = []
    for block in candidates:  # increasing block ids
        if len(found) >= limit or block >= total:
            break
        found.append(block)
    if not found:
        raise Rejected("ResourceNotFound",
                       f"The requested blocks were not found: file {request.file_id} has {total} block(s) of "
                       f"{request.block_size} bytes ({file_size} bytes).", request.token)
    return found


def block(data: bytes, block_id: int, block_size: int) -> bytes:
    return data[block_id * block_size:(block_id + 1) * block_size]


# encoding ---------------------------------------------------------------------------
def encode(body: dict, fmt: str) -> bytes:
    if fmt == "cbor":
        return cbor.dumps(body)
    return json.dumps(body, separators=(",", ":")).encode()


def description(token: str | None, version: int, text: str | None, files: list[tuple[int, int]]) -> dict:
    body: dict = {}
    if token is not None:
        body["c"] = token
    body["s"] = version
    if text:
        body["d"] = text
    body["r"] = [{"f": file_id, "z": size} for file_id, size in files]
    return body


def data_message(token: str | None, file_id: int, block_id: int, payload: bytes, fmt: str) -> bytes:
    body: dict = {}
    if token is not None:
        body["c"] = token
    body.update(f=file_id, l=len(payload), i=block_id,
                p=payload if fmt == "cbor" else base64.b64encode(payload).decode("ascii"))
    return encode(body, fmt)


def payload_of(message: dict) -> bytes:
    """A data message's block payload (decoded from base64 in JSON)."""
    value = message["p"]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as error:
        raise ValueError(f"invalid base64 payload: {error}") from None


def topic(thing: str, stream_id: str, suffix: str, fmt: str) -> str:
    return f"$aws/things/{thing}/streams/{stream_id}/{suffix}/{fmt}"
