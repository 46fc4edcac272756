"""Tunnel frames: a 2-byte big-endian length, then that many bytes of a
protobuf `Message` (schema/Message.proto). WebSocket message boundaries mean
nothing: a WebSocket message may hold several frames or part of one, so a
`FrameReader` is fed bytes and yields whole frames, keeping at most one
partial frame (< 64 KiB) between feeds."""

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
            frames.append((offset, end, parse(view[offset + 2:end])))
            offset = end
        self._buffer = buffer[offset:] if offset < size else b""
        return buffer, frames
