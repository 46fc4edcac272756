"""The load generator of bench/broker.py: worker processes running one role each.

Each worker is one process (forked by bench/broker.py) running one role on
uvloop with the clients of bench/mqtt_clients.py; it talks to the parent
over a multiprocessing Pipe:

    worker -> ("ready", info)        setup done (connected, subscribed ...)
    parent -> ("go", t_start, t0, t1) start the load at t_start; measure in [t0, t1)
    worker -> ("done", result)       counters and CPU seconds over [t0, t1)
    parent -> ("close",)             (idle role) close every connection
    worker -> ("error", text)        anything that went wrong

Times are time.monotonic() values (CLOCK_MONOTONIC, the same in every
process of the machine).
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
from mqtt_clients import (DISCONNECT, AckingSubscriber, CountingSubscriber, LatencySubscriber, Publisher,
                          client_ssl_contexts, cpu_seconds, mqtt_open, open_client, publish_packet, subscribe,
                          sys_seconds)


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
        await subscribe(self.proto, s["topic_filter"], 1 if mode == "qos1" else 0)
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
        sources = s.get("sources") or [None]

        async def opener():
            nonlocal next_i, failed, first_error
            while next_i < s["count"]:
                i = next_i
                next_i += 1
                try:
                    sock = await mqtt_open(self.loop, s["host"], s["port"], contexts[i % len(contexts)],
                                           f"{s['prefix']}-{i}", source=sources[i % len(sources)])
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
