"""The relay's frame reader: the field scanner that reads stream messages
without copying their payload must decide every frame as protobuf's parser
does (same fields, same refusals), and handle the frames local proxies write
itself rather than handing them to protobuf."""

from __future__ import annotations

import random

import pytest

from localiot.tunneling import frames
from localiot.tunneling.frames import FrameError, FrameReader, Header, Message, parse, scan

T = Message.Type


def decided(body: bytes):
    """What the relay reads from a frame body: its fields, or the close code it is refused with;
    `by` says whether the scanner read it or left it to protobuf."""
    try:
        got = scan(body, 0, len(body))
        by = "scan" if got is not None else "protobuf"
        if got is None:
            got = parse(body)
    except FrameError as error:
        return ("refused", error.code), "scan"
    return (got.type, got.streamId, got.ignorable, got.serviceId, got.connectionId), by


def protobuf(body: bytes):
    try:
        msg = parse(body)
    except FrameError as error:
        return ("refused", error.code)
    return (msg.type, msg.streamId, msg.ignorable, msg.serviceId, msg.connectionId)


@pytest.mark.parametrize("kind, stream, service, connection, size", [
    (T.DATA, 1, "SSH", 1, 64512),  # localproxy's largest DATA
    (T.DATA, 7, "", 0, 1),  # protocol 1 / 2 formats
    (T.STREAM_START, 2 ** 31 - 1, "BENCH", 2 ** 32 - 1, 0),
    (T.CONNECTION_RESET, 3, "é", 5, 0),  # a UTF-8 service id
])
def test_the_frames_local_proxies_write_are_scanned(kind, stream, service, connection, size):
    body = Message(type=kind, streamId=stream, serviceId=service, connectionId=connection,
                   payload=b"p" * size).SerializeToString()
    assert decided(body) == ((kind, stream, False, service, connection), "scan")


def test_the_scanner_decides_as_protobuf_on_damaged_frames():
    rnd = random.Random(17)
    by = {"scan": 0, "protobuf": 0}
    for _ in range(5000):
        msg = Message(type=rnd.choice([0, 1, 2, 3, 6, 7, 42]), streamId=rnd.choice([0, 1, 2 ** 31 - 1, -1]),
                      ignorable=rnd.random() < 0.3, serviceId=rnd.choice(["", "SSH", "é"]),
                      connectionId=rnd.choice([0, 1, 2 ** 32 - 1]), payload=b"x" * rnd.choice([0, 9, 64512, 64513]))
        body = bytearray(msg.SerializeToString())
        for _ in range(rnd.randint(0, 3)):  # damage: flipped bytes, a cut, a repeated tail
            if body:
                body[rnd.randrange(len(body))] = rnd.randrange(256)
        if rnd.random() < 0.2:
            body = body[:rnd.randrange(len(body) + 1)]
        if rnd.random() < 0.1:
            body += body[:12]
        got, path = decided(bytes(body))
        assert got == protobuf(bytes(body)), bytes(body[:32])
        by[path] += 1
    assert by["scan"] > 1000 and by["protobuf"] > 100, by  # both paths were exercised


def test_the_reader_splits_frames_across_websocket_messages():
    data = b"".join(frames.message(T.DATA, 1, service_id="SSH", connection_id=1, payload=bytes([i]) * 3000)
                    for i in range(5))
    reader, seen = FrameReader(), []
    for cut in range(0, len(data), 1234):  # message boundaries that fall anywhere, even in a length
        buffer, parsed = reader.feed(data[cut:cut + 1234])
        seen += [(buffer[start:end], msg) for start, end, msg in parsed]
    assert b"".join(raw for raw, _ in seen) == data
    assert all(isinstance(msg, Header) and msg.type == T.DATA for _, msg in seen) and len(seen) == 5
