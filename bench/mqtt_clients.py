"""A lean MQTT 3.1.1 client for load generation (bench/broker_load.py's roles).

Built to cost as little CPU as possible per message, so that the broker,
not the generator, is measured:

* every packet is pre-built bytes: CONNECT, SUBSCRIBE, and for QoS 0 one
  ~32 KB blob of identical PUBLISH packets that a publisher writes again and
  again, as long as its transport is not paused by TCP back-pressure (so a
  publisher waits, rather than spins, when the broker does not keep up);
  QoS 1 publishers keep every PUBLISH (packet ids 1..65535) ready and write
  as many as PUBACKs came back (`transport.writelines`), keeping `window`
  messages in flight;
* incoming bytes are framed by one generator over the fixed header only
  (type and remaining length, `_Client.frames`), shared by every role; the QoS 1 subscriber slices each packet id
  out of the buffer and answers all PUBACKs of one read with one write;
* the streaming clients use asyncio Protocols (no streams); connection
  tests (connections/s, idle connections) use raw non-blocking sockets, and
  for TLS the stdlib `ssl` module directly (`do_handshake` driven by
  add_reader/add_writer), not asyncio's SSL transport, so an idle TLS client
  connection costs only its OpenSSL state.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time


DISCONNECT = b"\xe0\x00"


# ---------------------------------------------------------------------------
# MQTT 3.1.1 packets
# ---------------------------------------------------------------------------
def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def mqtt_str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return len(b).to_bytes(2, "big") + b


def connect_packet(client_id: str, keepalive: int = 1200, clean: bool = True) -> bytes:
    body = mqtt_str("MQTT") + bytes((4, 0x02 if clean else 0x00)) + keepalive.to_bytes(2, "big") + mqtt_str(client_id)
    return b"\x10" + varint(len(body)) + body


def subscribe_packet(packet_id: int, topic_filter: str, qos: int) -> bytes:
    body = packet_id.to_bytes(2, "big") + mqtt_str(topic_filter) + bytes((qos,))
    return b"\x82" + varint(len(body)) + body


def publish_packet(topic: str, payload: bytes, qos: int = 0, packet_id: int = 0) -> bytes:
    body = mqtt_str(topic) + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    return bytes((0x30 | (qos << 1),)) + varint(len(body)) + body


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def sys_seconds() -> float:
    return os.times().system


def _frame(data: bytes, pos: int, n: int):
    """(start, end) of the packet at `pos`, or None if it is not complete."""
    rl = data[pos + 1]
    if rl < 128:
        return pos + 2, pos + 2 + rl
    rl &= 127
    mult = 128
    i = pos + 2
    while True:
        if i >= n:
            return None
        b = data[i]
        i += 1
        rl += (b & 127) * mult
        if b < 128:
            return i, i + rl
        mult *= 128


# ---------------------------------------------------------------------------
# streaming clients (asyncio Protocols)
# ---------------------------------------------------------------------------
class _Client(asyncio.Protocol):
    """CONNECT/CONNACK and SUBACK handling shared by publishers and the subscriber."""

    def __init__(self, loop):
        self.loop = loop
        self.transport = None
        self.rest = b""
        self.connack = loop.create_future()
        self.suback = loop.create_future()
        self.closed = loop.create_future()
        self.paused = False

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def connection_lost(self, exc):
        self.transport = None
        for fut in (self.connack, self.suback):
            if not fut.done():
                fut.set_exception(ConnectionError(f"connection lost: {exc!r}"))
                fut.exception()  # no "never retrieved" warning when nobody waits for it
        if not self.closed.done():
            self.closed.set_result(exc)

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False

    def control(self, first: int, body: bytes) -> None:
        kind = first >> 4
        if kind == 2:
            if body[1] != 0:
                self.connack.set_exception(ConnectionError(f"CONNACK return code {body[1]}"))
            elif not self.connack.done():
                self.connack.set_result(True)
        elif kind == 9:
            if not self.suback.done():
                if body[2:] and body[2] >= 0x80:
                    self.suback.set_exception(ConnectionError("SUBACK refused the subscription"))
                else:
                    self.suback.set_result(body[2:])

    def frames(self, data):
        """Each complete packet of what arrived (after what the last read left over):
        (buffer, first byte, body start, body end). An incomplete packet waits for the next read."""
        if self.rest:
            data = self.rest + data
        n = len(data)
        pos = 0
        while n - pos >= 2:
            rl = data[pos + 1]
            if rl < 128:
                start = pos + 2
                end = start + rl
            else:
                got = _frame(data, pos, n)
                if got is None:
                    break
                start, end = got
            if end > n:
                break
            yield data, data[pos], start, end
            pos = end
        self.rest = data[pos:] if pos < n else b""

    def data_received(self, data):  # control packets only (until the subclass takes over)
        for buf, first, start, end in self.frames(data):
            self.control(first, buf[start:end])


class CountingSubscriber(_Client):
    """QoS 0 subscriber: counts PUBLISH packets."""

    count = 0

    def data_received(self, data):
        cnt = 0
        for buf, first, start, end in self.frames(data):
            if first & 0xF0 == 0x30:
                cnt += 1
            else:
                self.control(first, buf[start:end])
        self.count += cnt


class AckingSubscriber(_Client):
    """QoS 1 subscriber: counts PUBLISH packets and answers each QoS 1 one with a PUBACK,
    all PUBACKs of one read in one write."""

    count = 0

    def data_received(self, data):
        cnt = 0
        acks = []
        for buf, first, start, end in self.frames(data):
            if first & 0xF0 == 0x30:
                cnt += 1
                if first & 0x06:
                    p = start + 2 + ((buf[start] << 8) | buf[start + 1])
                    acks.append(b"\x40\x02" + buf[p:p + 2])
            else:
                self.control(first, buf[start:end])
        self.count += cnt
        if acks and self.transport is not None:
            self.transport.write(b"".join(acks))


class LatencySubscriber(_Client):
    """QoS 0 subscriber: reads the send time (monotonic ns, 8 bytes) at the start of each
    payload and records the latency of messages received in [window_from, window_to)."""

    count = 0
    window_from = 0
    window_to = 0

    def __init__(self, loop):
        super().__init__(loop)
        self.latencies: list[int] = []

    def data_received(self, data):
        now = time.monotonic_ns()
        record = self.window_from <= now < self.window_to
        lat = self.latencies
        for buf, first, start, end in self.frames(data):
            if first & 0xF0 == 0x30:
                self.count += 1
                p = start + 2 + ((buf[start] << 8) | buf[start + 1])
                if first & 0x06:
                    p += 2
                if record and end - p >= 8:
                    lat.append(now - int.from_bytes(buf[p:p + 8], "big"))
            else:
                self.control(first, buf[start:end])


class Publisher(_Client):
    """Publishes to one topic. QoS 0: writes a pre-built blob while the transport is not paused.
    QoS 1: keeps `window` PUBLISH packets in flight, refilled as PUBACKs arrive."""

    def __init__(self, loop, topic: str, payload: bytes, qos: int, window: int):
        super().__init__(loop)
        self.qos = qos
        self.window = window
        self.running = False
        self.scheduled = False
        self.sent = 0
        self.acked = 0
        self.topic = topic
        self.payload = payload
        if qos == 0:
            packet = publish_packet(topic, payload)
            self.per_blob = max(1, 32768 // len(packet))
            self.blob = packet * self.per_blob
        else:
            self.packets = [b""] + [publish_packet(topic, payload, 1, pid) for pid in range(1, 65536)]
            self.next_pid = 1
        self.connected = False

    # QoS 0 ----------------------------------------------------------------
    def pump(self):
        self.scheduled = False
        t = self.transport
        if not self.running or self.paused or t is None:
            return
        t.write(self.blob)
        self.sent += self.per_blob
        if not self.paused:
            self.scheduled = True
            self.loop.call_soon(self.pump)

    def resume_writing(self):
        self.paused = False
        if self.running and self.qos == 0 and not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.pump)

    # QoS 1 ----------------------------------------------------------------
    def send_qos1(self, k: int) -> None:
        t = self.transport
        if not self.running or t is None or k <= 0:
            return
        i = self.next_pid
        j = i + k
        if j <= 65536:
            t.writelines(self.packets[i:j])
        else:
            t.writelines(self.packets[i:] + self.packets[1:j - 65535])
            j -= 65535
        self.next_pid = j
        self.sent += k

    def start(self):
        self.running = True
        if self.qos == 0:
            self.pump()
        else:
            self.send_qos1(self.window)

    def data_received(self, data):
        if not self.connected:
            super().data_received(data)
            if self.connack.done():
                self.connected = True
            return
        k = 0
        for _, first, _, _ in self.frames(data):
            if first == 0x40:
                k += 1
        self.acked += k
        if k and self.qos:
            self.send_qos1(k)


async def open_client(loop, factory, host: str, port: int, client_id: str, keepalive: int = 1200,
                      clean: bool = True):
    """A streaming client (`factory()`, a _Client) connected: CONNECT sent, CONNACK received."""
    _, proto = await loop.create_connection(factory, host, port)
    proto.transport.write(connect_packet(client_id, keepalive, clean))
    await asyncio.wait_for(proto.connack, 30)
    return proto


async def subscribe(proto, topic_filter: str, qos: int = 1) -> None:
    """SUBSCRIBE and wait for the SUBACK (a refused subscription raises ConnectionError)."""
    proto.transport.write(subscribe_packet(1, topic_filter, qos))
    await asyncio.wait_for(proto.suback, 30)


# ---------------------------------------------------------------------------
# connection clients (raw sockets, stdlib ssl)
# ---------------------------------------------------------------------------
async def _wait_fd(loop, fd: int, write: bool) -> None:
    fut = loop.create_future()

    def ready():
        if not fut.done():
            fut.set_result(None)

    if write:
        loop.add_writer(fd, ready)
    else:
        loop.add_reader(fd, ready)
    try:
        await fut
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def _send(loop, sock, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
            view = view[sent:]
        except (BlockingIOError, ssl.SSLWantWriteError):
            await _wait_fd(loop, sock.fileno(), True)
        except ssl.SSLWantReadError:
            await _wait_fd(loop, sock.fileno(), False)


async def _recv(loop, sock, n: int) -> bytes:
    while True:
        try:
            data = sock.recv(n)
        except (BlockingIOError, ssl.SSLWantReadError):
            await _wait_fd(loop, sock.fileno(), False)
            continue
        except ssl.SSLWantWriteError:
            await _wait_fd(loop, sock.fileno(), True)
            continue
        if not data:
            raise ConnectionError("connection closed by the broker")
        return data


async def mqtt_open(loop, host: str, port: int, ctx: ssl.SSLContext | None, client_id: str,
                    keepalive: int = 1200, server_hostname: str = "localhost", source: str | None = None):
    """Connect (TCP, then TLS if ctx), send CONNECT, wait for a successful CONNACK: the socket.
    `source`: the local address to connect from (more than ~28,000 connections to one port
    need several: each source address has its own ephemeral ports)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source is not None:
            sock.bind((source, 0))
        await loop.sock_connect(sock, (host, port))
        if ctx is not None:
            sock = ctx.wrap_socket(sock, server_hostname=server_hostname, do_handshake_on_connect=False)
            while True:
                try:
                    sock.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    await _wait_fd(loop, sock.fileno(), False)
                except ssl.SSLWantWriteError:
                    await _wait_fd(loop, sock.fileno(), True)
        await _send(loop, sock, connect_packet(client_id, keepalive))
        got = b""
        while len(got) < 4:
            got += await _recv(loop, sock, 4 - len(got))
        if got[0] != 0x20 or got[3] != 0:
            raise ConnectionError(f"CONNACK refused: {got.hex()}")
        return sock
    except BaseException:
        sock.close()
        raise


def client_ssl_contexts(spec: dict) -> list:
    """One context per client certificate (connections take them in turn)."""
    tls = spec.get("tls")
    if not tls:
        return [None]
    out = []
    for cert, key in tls["certs"]:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls["cafile"])
        ctx.load_cert_chain(cert, key)
        out.append(ctx)
    return out
