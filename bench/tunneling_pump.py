"""The relay alone: a protocol-level source and destination that cost next to
nothing, for `bench/tunneling.py --pump` (over ws:// on the API port and
wss:// on the ALPN port).

The source is a blocking socket that has done the WebSocket handshake as a
source local proxy (protocol 3) and sends one STREAM_START, then prebuilt,
premasked WebSocket messages of two 63 KiB DATA frames each (what a local
proxy sends when its TCP side reads fast), with one `sendall` per 2 MiB. The
destination, in a thread, receives into one preallocated buffer, steps over
the WebSocket frame headers and counts the tunnel bytes until all the
source's have arrived. Neither side parses or copies a payload, so what the
clock shows is the relay's own cost per byte (and, with TLS, the kernel's and
OpenSSL's on this side).
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import struct
import threading
import time
from urllib.parse import urlsplit

from localiot.tunneling.Message_pb2 import Message

PROTOCOL = "aws.iot.securetunneling-3.0"
PAYLOAD = 63 * 1024
FRAMES_PER_MESSAGE = 2  # 2 x (2 + 64,5xx) bytes: under the relay's 131,076-byte message limit
MESSAGES_PER_SEND = 16


def _tunnel_frame(kind, payload=b"", service="BENCH") -> bytes:
    body = Message(type=kind, streamId=1, serviceId=service, connectionId=1, payload=payload).SerializeToString()
    return struct.pack(">H", len(body)) + body


def _masked(payload: bytes) -> bytes:
    """One client-to-server binary WebSocket frame (masked, as RFC 6455 requires of clients)."""
    size, key = len(payload), os.urandom(4)
    length = (bytes([0x80 | size]) if size < 126 else struct.pack(">BH", 0x80 | 126, size) if size < 65536
              else struct.pack(">BQ", 0x80 | 127, size))
    header = bytes([0x82]) + length
    mask = int.from_bytes((key * (size // 4 + 1))[:size], "big")
    return header + key + (int.from_bytes(payload, "big") ^ mask).to_bytes(size, "big")


class RawWebSocket:
    """A blocking WebSocket client connection to the relay as one local proxy."""

    def __init__(self, url: str, token: str, mode: str, context: ssl.SSLContext | None = None):
        parts = urlsplit(url)
        raw = socket.create_connection((parts.hostname, parts.port), timeout=120)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = context.wrap_socket(raw, server_hostname=parts.hostname) if context else raw
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /tunnel?local-proxy-mode={mode} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {PROTOCOL}\r\n"
                           f"access-token: {token}\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"the relay closed the handshake: {answer!r}")
            answer += chunk
        head, self.rest = answer.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"the relay refused the {mode}: {head!r}")

    def close(self) -> None:
        self.sock.close()


def _count(ws: RawWebSocket, expected: int, done: threading.Event, got: list) -> None:
    """Destination side: count binary payload bytes (after the first message, SERVICE_IDS)."""
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    pending = bytearray(ws.rest)  # bytes of a frame header not parsed yet
    skip_message, left, total = True, 0, 0  # left: payload bytes of the current frame still to come
    try:
        while total < expected:
            if pending:
                data, pending = bytes(pending), bytearray()
            else:
                n = ws.sock.recv_into(buffer)
                if not n:
                    break
                data = view[:n]
            pos, size = 0, len(data)
            while pos < size:
                if left:
                    take = min(left, size - pos)
                    left -= take
                    pos += take
                    if not skip_message:
                        total += take
                    elif not left:
                        skip_message = False
                    continue
                if size - pos < 2:
                    pending += data[pos:]
                    break
                length = data[pos + 1] & 0x7F
                need = 2 + (2 if length == 126 else 8 if length == 127 else 0)
                if size - pos < need:
                    pending += data[pos:]
                    break
                if length == 126:
                    (length,) = struct.unpack_from(">H", data, pos + 2)
                elif length == 127:
                    (length,) = struct.unpack_from(">Q", data, pos + 2)
                if data[pos] & 0x0F == 0x8:
                    raise ConnectionError("the relay closed the destination")
                pos += need
                left = length
                if not left and skip_message:
                    skip_message = False
    finally:
        got.append(total)
        done.set()


def pump(url: str, source_token: str, destination_token: str, megabytes: int,
         context: ssl.SSLContext | None = None) -> tuple[float, float]:
    """(MB/s of tunnel bytes one way, this process's CPU seconds) for `megabytes` MB from the source."""
    frame = _tunnel_frame(Message.DATA, os.urandom(PAYLOAD))
    block = _masked(frame * FRAMES_PER_MESSAGE) * MESSAGES_PER_SEND
    per_block = len(frame) * FRAMES_PER_MESSAGE * MESSAGES_PER_SEND
    blocks = max(1, megabytes * 1_000_000 // per_block)
    start = _tunnel_frame(Message.STREAM_START)
    destination = RawWebSocket(url, destination_token, "destination", context)
    source = RawWebSocket(url, source_token, "source", context)
    try:
        done, got = threading.Event(), []
        expected = len(start) + blocks * per_block
        counter = threading.Thread(target=_count, args=(destination, expected, done, got), daemon=True)
        time.sleep(0.2)  # both attached: SERVICE_IDS sent to each
        counter.start()
        cpu, started = time.process_time(), time.perf_counter()
        source.sock.sendall(_masked(start))
        for _ in range(blocks):
            source.sock.sendall(block)
        if not done.wait(600) or got[0] != expected:
            raise AssertionError(f"the destination received {got} of {expected} tunnel bytes")
        elapsed = time.perf_counter() - started
        return expected / elapsed / 1e6, time.process_time() - cpu
    finally:
        source.close()
        destination.close()


def direct(megabytes: int) -> float:
    """The same bytes, in the same sends, over one plain loopback TCP connection: MB/s."""
    block = os.urandom(1 << 21)
    blocks = max(1, megabytes * 1_000_000 // len(block))
    listener = socket.create_server(("127.0.0.1", 0))
    got = []

    def sink():
        conn, _ = listener.accept()
        buffer, total = bytearray(1 << 20), 0
        with conn:
            while total < blocks * len(block) and (n := conn.recv_into(buffer)):
                total += n
        got.append(total)

    thread = threading.Thread(target=sink, daemon=True)
    thread.start()
    with socket.create_connection(listener.getsockname()) as conn, listener:
        started = time.perf_counter()
        for _ in range(blocks):
            conn.sendall(block)
        thread.join(600)
        elapsed = time.perf_counter() - started
    assert got == [blocks * len(block)], got
    return blocks * len(block) / elapsed / 1e6
