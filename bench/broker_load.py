"""The load generator of bench/broker.py: a lean MQTT 3.1.1 client in worker processes.

Each worker is one process (forked by bench/broker.py) running one role on
uvloop; it talks to the parent over a multiprocessing Pipe:

    worker -> ("ready", info)        setup done (connected, subscribed ...)
    parent -> ("go", t_start, t0, t1) start the load at t_start; measure in [t0, t1)
    worker -> ("done", result)       counters and CPU seconds over [t0, t1)
    parent -> ("close",)             (idle role) close every connection
    worker -> ("error", text)        anything that went wrong

Times are time.monotonic() values (CLOCK_MONOTONIC, the same in every
process of the machine). The client is built to cost as little CPU as
possible per message, so that the broker, not the generator, is measured:

* every packet is pre-built bytes: CONNECT, SUBSCRIBE, and for QoS 0 one
  ~32 KB blob of identical PUBLISH packets that a publisher writes again and
  again, as long as its transport is not paused by TCP back-pressure (so a
  publisher waits, rather than spins, when the broker does not keep up);
  QoS 1 publishers keep every PUBLISH (packet ids 1..65535) ready and write
  as many as PUBACKs came back (`transport.writelines`), keeping `window`
  messages in flight;
* incoming bytes are framed with a tight loop over the fixed header only
  (type and remaining length); the QoS 1 subscriber slices each packet id
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
import select
import socket
import ssl
import time
import traceback

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

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

    def data_received(self, data):  # control packets only (until the subclass takes over)
        if self.rest:
            data = self.rest + data
        n = len(data)
        pos = 0
        while n - pos >= 2:
            got = _frame(data, pos, n)
            if got is None or got[1] > n:
                break
            start, end = got
            self.control(data[pos], data[start:end])
            pos = end
        self.rest = data[pos:]


class CountingSubscriber(_Client):
    """QoS 0 subscriber: counts PUBLISH packets."""

    count = 0

    def data_received(self, data):
        if self.rest:
            data = self.rest + data
        n = len(data)
        pos = 0
        cnt = 0
        while n - pos >= 2:
            first = data[pos]
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
            if first & 0xF0 == 0x30:
                cnt += 1
            else:
                self.control(first, data[start:end])
            pos = end
        self.rest = data[pos:] if pos < n else b""
        self.count += cnt


class AckingSubscriber(_Client):
    """QoS 1 subscriber: counts PUBLISH packets and answers each QoS 1 one with a PUBACK,
    all PUBACKs of one read in one write."""

    count = 0

    def data_received(self, data):
        if self.rest:
            data = self.rest + data
        n = len(data)
        pos = 0
        cnt = 0
        acks = []
        while n - pos >= 2:
            first = data[pos]
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
            if first & 0xF0 == 0x30:
                cnt += 1
                if first & 0x06:
                    p = start + 2 + ((data[start] << 8) | data[start + 1])
                    acks.append(b"\x40\x02" + data[p:p + 2])
            else:
                self.control(first, data[start:end])
            pos = end
        self.rest = data[pos:] if pos < n else b""
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
        if self.rest:
            data = self.rest + data
        n = len(data)
        pos = 0
        record = self.window_from <= now < self.window_to
        lat = self.latencies
        while n - pos >= 2:
            got = _frame(data, pos, n)
            if got is None or got[1] > n:
                break
            start, end = got
            first = data[pos]
            if first & 0xF0 == 0x30:
                self.count += 1
                p = start + 2 + ((data[start] << 8) | data[start + 1])
                if first & 0x06:
                    p += 2
                if record and end - p >= 8:
                    lat.append(now - int.from_bytes(data[p:p + 8], "big"))
            else:
                self.control(first, data[start:end])
            pos = end
        self.rest = data[pos:] if pos < n else b""


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
        if self.rest:
            data = self.rest + data
        n = len(data)
        pos = 0
        k = 0
        while n - pos >= 2:
            got = _frame(data, pos, n)
            if got is None or got[1] > n:
                break
            if data[pos] == 0x40:
                k += 1
            pos = got[1]
        self.rest = data[pos:] if pos < n else b""
        self.acked += k
        if k and self.qos:
            self.send_qos1(k)


async def open_client(loop, factory, host: str, port: int, client_id: str, keepalive: int = 1200):
    _, proto = await loop.create_connection(factory, host, port)
    proto.transport.write(connect_packet(client_id, keepalive))
    await asyncio.wait_for(proto.connack, 30)
    return proto


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
                    keepalive: int = 1200, server_hostname: str = "localhost"):
    """Connect (TCP, then TLS if ctx), send CONNECT, wait for a successful CONNACK: the socket."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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


# ---------------------------------------------------------------------------
# roles
# ---------------------------------------------------------------------------
class _Role:
    def __init__(self, loop, spec: dict):
        self.loop = loop
        self.spec = spec
        self.snap: dict = {}

    async def setup(self) -> dict:
        return {}

    def counters(self) -> dict:
        return {}

    def _snapshot(self, key: str) -> None:
        self.snap[key] = (time.monotonic(), cpu_seconds(), dict(self.counters(), sys_cpu=sys_seconds()))

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def run(self, t_start: float, t0: float, t1: float) -> dict:
        loop = self.loop
        now = time.monotonic()
        loop.call_later(max(0.0, t0 - now), self._snapshot, "t0")
        loop.call_later(max(0.0, t1 - now), self._snapshot, "t1")
        await asyncio.sleep(max(0.0, t_start - now))
        self.start()
        while "t1" not in self.snap:
            await asyncio.sleep(0.05)
        result = self.window_result()
        await self.stop()
        return result

    def window_result(self) -> dict:
        (m0, c0, k0), (m1, c1, k1) = self.snap["t0"], self.snap["t1"]
        out = {"elapsed": m1 - m0, "cpu": c1 - c0}
        for key in k1:
            out[key] = k1[key] - k0.get(key, 0)
        return out


class SubscriberRole(_Role):
    async def setup(self):
        s = self.spec
        mode = s["mode"]
        cls = {"qos0": CountingSubscriber, "qos1": AckingSubscriber, "latency": LatencySubscriber}[mode]
        self.proto = await open_client(self.loop, lambda: cls(self.loop), s["host"], s["port"], s["client_id"])
        self.proto.transport.write(subscribe_packet(1, s["topic_filter"], 1 if mode == "qos1" else 0))
        await asyncio.wait_for(self.proto.suback, 30)
        return {}

    def counters(self):
        return {"received": self.proto.count}

    async def run(self, t_start, t0, t1):
        if self.spec["mode"] == "latency":
            base_ns = time.monotonic_ns() - time.monotonic() * 1e9
            self.proto.window_from = int(t0 * 1e9 + base_ns)
            self.proto.window_to = int(t1 * 1e9 + base_ns)
        result = await super().run(t_start, t0, t1)
        if self.spec["mode"] == "latency":
            result["latencies_ns"] = self.proto.latencies
        return result

    async def stop(self):
        t = self.proto.transport
        if t is not None:
            t.write(DISCONNECT)
            t.close()


class PublisherRole(_Role):
    async def setup(self):
        s = self.spec
        mode = s["mode"]
        qos = 1 if mode == "qos1" else 0
        payload = os.urandom(s["payload_size"]) if mode != "latency" else b""
        self.pubs = []
        for cid, topic in zip(s["client_ids"], s["topics"]):
            pub = await open_client(self.loop, lambda t=topic: Publisher(self.loop, t, payload, qos, s["window"]),
                                    s["host"], s["port"], cid)
            pub.transport.set_write_buffer_limits(high=256 * 1024, low=64 * 1024)
            self.pubs.append(pub)
        if mode == "latency":
            pad = b"\0" * max(0, s["payload_size"] - 8)
            self.heads = [publish_packet(p.topic, b"\0" * (8 + len(pad)))[:-(8 + len(pad))] for p in self.pubs]
            self.pad = pad
        return {"publishers": len(self.pubs)}

    def counters(self):
        if self.spec["mode"] == "latency":
            return {"sent": self.lat_sent}
        return {"sent": sum(p.sent for p in self.pubs), "acked": sum(p.acked for p in self.pubs)}

    def start(self):
        if self.spec["mode"] == "latency":
            self.lat_start = time.monotonic()
            self.lat_sent = 0
            self._tick()
            return
        for p in self.pubs:
            p.start()

    lat_sent = 0

    def _tick(self):
        if not self.running_latency():
            return
        due = int((time.monotonic() - self.lat_start) * self.spec["rate"]) - self.lat_sent
        pubs, heads, pad = self.pubs, self.heads, self.pad
        n = len(pubs)
        for _ in range(due):
            i = self.lat_sent % n
            t = pubs[i].transport
            if t is not None:
                t.write(heads[i] + time.monotonic_ns().to_bytes(8, "big") + pad)
            self.lat_sent += 1
        self.loop.call_later(0.001, self._tick)

    def running_latency(self):
        return "t1" not in self.snap

    async def stop(self):
        for p in self.pubs:
            p.running = False
        for p in self.pubs:
            t = p.transport
            if t is not None:
                t.write(DISCONNECT)
                t.close()


class ConnRateRole(_Role):
    """`concurrency` loops of: connect (+ TLS handshake), CONNECT, CONNACK, DISCONNECT, close."""

    async def setup(self):
        self.contexts = client_ssl_contexts(self.spec)
        self.done = 0
        self.errors = 0
        self.first_error = None
        self.times: list[float] = []
        return {}

    def counters(self):
        return {"errors": self.errors}

    async def _loop(self, k: int, t0: float, t1: float):
        s = self.spec
        i = 0
        while True:
            start = time.monotonic()
            if start >= t1:
                return
            ctx = self.contexts[(k + i) % len(self.contexts)]
            try:
                sock = await mqtt_open(self.loop, s["host"], s["port"], ctx, f"{s['prefix']}-{k}-{i}")
            except Exception as e:  # counted, and the loop goes on
                self.errors += 1
                if self.first_error is None:
                    self.first_error = repr(e)
                await asyncio.sleep(0.01)
                i += 1
                continue
            end = time.monotonic()
            if t0 <= end < t1:
                self.done += 1
                self.times.append(end - start)
            try:
                sock.send(DISCONNECT)
            except OSError:
                pass
            sock.close()
            i += 1

    async def run(self, t_start, t0, t1):
        loop = self.loop
        now = time.monotonic()
        loop.call_later(max(0.0, t0 - now), self._snapshot, "t0")
        loop.call_later(max(0.0, t1 - now), self._snapshot, "t1")
        await asyncio.sleep(max(0.0, t_start - now))
        base = self.spec["worker"] * 100000
        await asyncio.gather(*(self._loop(base + k, t0, t1) for k in range(self.spec["concurrency"])))
        while "t1" not in self.snap:
            await asyncio.sleep(0.05)
        result = self.window_result()
        result.update(connected=self.done, first_error=self.first_error, connect_times=self.times)
        return result


class IdleRole(_Role):
    """Opens `count` connections (`concurrency` at a time) and holds them until told to close."""

    async def setup(self):
        s = self.spec
        contexts = client_ssl_contexts(s)
        self.socks = []
        failed = 0
        first_error = None
        next_i = 0
        start = time.monotonic()
        cpu0 = cpu_seconds()

        async def opener():
            nonlocal next_i, failed, first_error
            while next_i < s["count"]:
                i = next_i
                next_i += 1
                try:
                    sock = await mqtt_open(self.loop, s["host"], s["port"], contexts[i % len(contexts)],
                                           f"{s['prefix']}-{i}")
                    self.socks.append(sock)
                except Exception as e:
                    failed += 1
                    if first_error is None:
                        first_error = repr(e)

        await asyncio.gather(*(opener() for _ in range(s["concurrency"])))
        return {"opened": len(self.socks), "failed": failed, "first_error": first_error,
                "seconds": time.monotonic() - start, "cpu": cpu_seconds() - cpu0}

    def still_open(self) -> int:
        """How many held connections the broker has not closed (nothing to read, or data but no EOF)."""
        poller = select.poll()
        for sock in self.socks:
            poller.register(sock.fileno(), select.POLLIN)
        readable = {fd for fd, _ in poller.poll(0)}
        closed = 0
        for sock in self.socks:
            fd = sock.fileno()
            if fd in readable:
                raw = socket.socket(fileno=os.dup(fd))
                try:
                    if raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                        closed += 1
                except BlockingIOError:
                    pass
                except OSError:
                    closed += 1
                finally:
                    raw.close()
        return len(self.socks) - closed

    async def close_all(self):
        alive = self.still_open()
        for sock in self.socks:
            try:
                sock.send(DISCONNECT)
            except (OSError, ssl.SSLError):
                pass
            sock.close()
        self.socks.clear()
        return {"still_open": alive}


ROLES = {"sub": SubscriberRole, "pub": PublisherRole, "connrate": ConnRateRole, "idle": IdleRole}


# ---------------------------------------------------------------------------
# worker process
# ---------------------------------------------------------------------------
async def _pipe_recv(loop, pipe):
    if not pipe.poll():
        fut = loop.create_future()
        fd = pipe.fileno()
        loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            loop.remove_reader(fd)
            os.set_blocking(fd, True)  # the loop made it non-blocking; large sends need it blocking
    return pipe.recv()


async def _worker(pipe, spec: dict) -> None:
    loop = asyncio.get_running_loop()
    role = ROLES[spec["role"]](loop, spec)
    try:
        info = await role.setup()
    except Exception:
        pipe.send(("error", traceback.format_exc()))
        return
    pipe.send(("ready", info))
    while True:
        msg = await _pipe_recv(loop, pipe)
        if msg[0] == "go":
            try:
                result = await role.run(*msg[1:])
            except Exception:
                pipe.send(("error", traceback.format_exc()))
                return
            pipe.send(("done", result))
            return
        if msg[0] == "close":
            pipe.send(("done", await role.close_all()))
            return
        if msg[0] == "exit":
            return


def worker_main(pipe, spec: dict) -> None:
    """Entry point of a worker process."""
    try:
        if uvloop is not None:
            uvloop.run(_worker(pipe, spec))
        else:  # pragma: no cover
            asyncio.run(_worker(pipe, spec))
    except Exception:
        try:
            pipe.send(("error", traceback.format_exc()))
        except Exception:
            pass
    finally:
        pipe.close()
