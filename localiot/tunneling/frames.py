"""Tunnel frames: a 2-byte big-endian length, then that many bytes of a
protobuf `Message` (schema/Message.proto). WebSocket message boundaries mean
nothing: a WebSocket message may hold several frames or part of one, so a
`FrameReader` is fed bytes and yields whole frames, keeping at most one
partial frame (< 64 KiB) between feeds.

Every frame is checked, but the common ones (DATA and the other stream
messages, written as localproxy writes them) are read by `scan`, which picks
out the fields the relay needs and steps over the payload without copying it;
anything it does not recognise as plain (another field, a wrong wire type, a
long or negative varint, a bad UTF-8 service id) goes to protobuf's own parser,
which decides as before."""

from __future__ import annotations

import struct

from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from localiot.tunneling.Message_pb2 import Message

Type = Message.Type
DATA, STREAM_START, STREAM_RESET = Type.DATA, Type.STREAM_START, Type.STREAM_RESET
SESSION_RESET, SERVICE_IDS = Type.SESSION_RESET, Type.SERVICE_IDS
CONNECTION_START, CONNECTION_RESET = Type.CONNECTION_START, Type.CONNECTION_RESET
MAX_PAYLOAD = 64512  # "The payload of any message may not contain more than 63kb"
MAX_WS_MESSAGE = 131076  # the largest WebSocket message either side sends or accepts
_LENGTH = struct.Struct(">H")


class FrameError(Exception):
    """A frame the relay cannot accept: the sender's WebSocket is closed with `code`."""

    def __init__(self, message: str, code: int = 1002):
        super().__init__(message)
        self.code = code


def encode(message: Message) -> bytes:
    body = message.SerializeToString()
    if len(body) > 0xFFFF:
        raise FrameError("message too large for a tunnel frame", 1009)
    return _LENGTH.pack(len(body)) + body


def message(kind: int, stream_id: int = 0, *, service_id: str = "", connection_id: int = 0,
            payload: bytes = b"", services=()) -> bytes:
    """One encoded frame."""
    msg = Message(type=kind, streamId=stream_id, serviceId=service_id, connectionId=connection_id,
                  payload=payload)
    msg.availableServiceIds.extend(services)
    return encode(msg)


class Header:
    """The fields of a `Message` the relay reads (same names), without its payload."""

    __slots__ = ("type", "streamId", "ignorable", "serviceId", "connectionId")

    def __init__(self, kind: int, stream_id: int, ignorable: bool, service_id: str, connection_id: int):
        self.type, self.streamId, self.ignorable = kind, stream_id, ignorable
        self.serviceId, self.connectionId = service_id, connection_id


_INT32, _UINT32 = 1 << 31, 1 << 32


def scan(buffer, start: int, end: int):
    """The frame body buffer[start:end] as a Header, or None when it is not plain enough to
    read here (protobuf's parser then decides). Fields: type=1, streamId=2, ignorable=3
    (varints), payload=4, serviceId=5 (length-delimited), connectionId=7 (varint)."""
    kind = stream = connection = 0
    ignorable, service, pos, size = False, "", start, 0
    while pos < end:
        tag = buffer[pos]
        pos += 1
        value = shift = 0
        while True:  # a varint: the value, or the length of a length-delimited field
            if pos >= end or shift > 28:
                return None
            byte = buffer[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        if tag == 0x22:  # payload: stepped over
            pos += value
            if pos > end:
                return None
            size = value  # a repeated field: the last one counts, as in protobuf
        elif tag == 0x08:
            if value >= _INT32:
                return None
            kind = value
        elif tag == 0x10:
            if value >= _INT32:
                return None
            stream = value
        elif tag == 0x38:
            if value >= _UINT32:
                return None
            connection = value
        elif tag == 0x18:
            ignorable = value != 0
        elif tag == 0x2A:
            if pos + value > end:
                return None
            try:
                service = str(buffer[pos:pos + value], "utf-8")
            except UnicodeDecodeError:
                return None
            pos += value
        else:
            return None
    if size > MAX_PAYLOAD:
        raise FrameError(f"a tunnel frame's payload exceeds {MAX_PAYLOAD} bytes", 1009)
    return Header(kind, stream, ignorable, service, connection)


def parse(body) -> Message:
    msg = Message()
    try:
        msg.ParseFromString(body)
    except DecodeError:
        raise FrameError("a tunnel frame is not a protobuf Message") from None
    if len(UnknownFieldSet(msg)):
        raise FrameError("a tunnel frame extends the Message schema")
    if len(msg.payload) > MAX_PAYLOAD:
        raise FrameError(f"a tunnel frame's payload exceeds {MAX_PAYLOAD} bytes", 1009)
    return msg


class FrameReader:
    """Bytes in, frames out, across WebSocket message boundaries: `feed` answers the
    bytes it parsed (the kept partial frame, if any, followed by `data`) and for each
    whole frame its (start, end, Message), so whole runs of frames can be passed on
    as slices of those bytes without copying them frame by frame."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> tuple[bytes, list[tuple[int, int, Message]]]:
        buffer = self._buffer + data if self._buffer else data
        view = memoryview(buffer)
        frames, offset, size = [], 0, len(buffer)
        while size - offset >= 2:
            (length,) = _LENGTH.unpack_from(buffer, offset)
            end = offset + 2 + length
            if end > size:
                break
            frames.append((offset, end, scan(buffer, offset + 2, end) or parse(view[offset + 2:end])))
            offset = end
        self._buffer = buffer[offset:] if offset < size else b""
        return buffer, frames
