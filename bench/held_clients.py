"""The client processes of bench/held_connections.py: each opens its share of idle
mutual-TLS MQTT connections (raw non-blocking sockets with the stdlib ssl module,
bench/mqtt_clients.mqtt_open, from one loopback source address), holds them, and on
the parent's command sends PINGREQ on every one, or reads the check messages on the
sampled subscribers, or closes them all.

    parent -> ("open",)                       -> ("ok", per-node counts opened / failed / sampled)
    parent -> ("ping", timeout)               -> ("ok", per-node PINGRESPs answered / lost)
    parent -> ("expect", topic, payloads, timeout) -> ("ok", per-node subscribers that got every payload)
    parent -> ("close",)                      -> ("ok", {"closed": n}); the process ends
    any    -> ("error", traceback)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import traceback

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None
from mqtt_clients import DISCONNECT, _recv, _send, client_ssl_contexts, cpu_seconds, mqtt_open, subscribe_packet
from procs import HOST

MP = multiprocessing.get_context("fork")
PINGREQ, PINGRESP = b"\xc0\x00", b"\xd0\x00"


# ---------------------------------------------------------------------------
# client processes: hold connections, answer commands from the parent
# ---------------------------------------------------------------------------
async def read_packet(loop, sock, buf: bytearray) -> tuple[int, bytes]:
    """The next MQTT packet (first byte, body) from a TLS socket; `buf` keeps what is left over."""
    while True:
        pos, size, shift = 1, 0, 0
        while pos < len(buf) and pos <= 4:
            byte = buf[pos]
            size |= (byte & 0x7F) << shift
            shift += 7
            pos += 1
            if not byte & 0x80:
                if len(buf) >= pos + size:
                    first, body = buf[0], bytes(buf[pos:pos + size])
                    del buf[:pos + size]
                    return first, body
                break
        buf += await _recv(loop, sock, 16384)


async def bounded(items, work, concurrency: int) -> None:
    """`work(item)` for every item, `concurrency` at a time."""
    items = iter(items)

    async def lane():
        for item in items:
            await work(item)

    await asyncio.gather(*(lane() for _ in range(concurrency)))


class Holder:
    """Opens spec["count"] mutual-TLS connections, connection i to node i % nodes, and holds them."""

    def __init__(self, loop, spec: dict):
        self.loop, self.spec = loop, spec
        self.socks: list = []  # (node index, socket, sampled)
        self.bufs: dict[int, bytearray] = {}  # leftover bytes, by position in socks (rarely any)

    def per_node(self, values) -> list[int]:
        out = [0] * len(self.spec["ports"])
        for node in values:
            out[node] += 1
        return out

    async def open(self) -> dict:
        s, loop = self.spec, self.loop
        contexts = client_ssl_contexts(s)
        failed: list[int] = []
        errors: list[str] = []
        ports = s["ports"]
        t0, cpu0 = time.monotonic(), cpu_seconds()

        async def one(i: int):
            node = i % len(ports)
            sampled = i % s["sample_every"] == 0
            try:
                sock = await mqtt_open(loop, HOST, ports[node], contexts[i % len(contexts)], f"{s['prefix']}-{i}",
                                       source=s["source"])
                if sampled:
                    await _send(loop, sock, subscribe_packet(1, s["topic"], 0))
                    first, body = await read_packet(loop, sock, bytearray())
                    if first != 0x90 or body[-1] == 0x80:
                        sock.close()
                        raise ConnectionError(f"SUBSCRIBE refused: {first:#x} {body.hex()}")
                self.socks.append((node, sock, sampled))
            except Exception as e:
                failed.append(node)
                if len(errors) < 3:
                    errors.append(f"node {node + 1}: {e!r}")

        await bounded(range(s["count"]), one, s["concurrency"])
        return {"opened": self.per_node(n for n, _, _ in self.socks), "failed": self.per_node(failed),
                "errors": errors, "seconds": time.monotonic() - t0, "cpu": cpu_seconds() - cpu0,
                "sampled": self.per_node(n for n, _, sampled in self.socks if sampled)}

    async def ping(self, timeout: float) -> dict:
        """PINGREQ on every held connection; count the PINGRESPs."""
        answered: list[int] = []
        lost: list[int] = []
        errors: list[str] = []
        t0 = time.monotonic()

        async def one(k: int):
            node, sock, _ = self.socks[k]
            buf = self.bufs.pop(k, bytearray())
            try:
                async with asyncio.timeout(timeout):
                    await _send(self.loop, sock, PINGREQ)
                    while True:
                        first, _ = await read_packet(self.loop, sock, buf)
                        if first == PINGRESP[0]:
                            break
                answered.append(node)
            except Exception as e:
                lost.append(node)
                if len(errors) < 3:
                    errors.append(f"node {node + 1}: {e!r}")
            if buf:
                self.bufs[k] = buf

        await bounded(range(len(self.socks)), one, 256)
        return {"answered": self.per_node(answered), "lost": self.per_node(lost), "errors": errors,
                "seconds": time.monotonic() - t0}

    async def expect(self, topic: str, payloads: list[bytes], timeout: float) -> dict:
        """Every sampled connection reads PUBLISHes until it got each of `payloads` on `topic`."""
        complete: list[int] = []
        short: list[int] = []
        errors: list[str] = []
        want = topic.encode()

        async def one(k: int):
            node, sock, sampled = self.socks[k]
            if not sampled:
                return
            missing = set(payloads)
            buf = self.bufs.pop(k, bytearray())
            try:
                async with asyncio.timeout(timeout):
                    while missing:
                        first, body = await read_packet(self.loop, sock, buf)
                        if first >> 4 == 3:  # PUBLISH, QoS 0: topic length, topic, payload
                            size = int.from_bytes(body[:2], "big")
                            if body[2:2 + size] == want:
                                missing.discard(body[2 + size:])
                complete.append(node)
            except Exception as e:
                short.append(node)
                if len(errors) < 3:
                    errors.append(f"node {node + 1}: {len(missing)} of {len(payloads)} missing ({e!r})")
            if buf:
                self.bufs[k] = buf

        await bounded(range(len(self.socks)), one, 256)
        return {"complete": self.per_node(complete), "short": self.per_node(short), "errors": errors}

    def close(self) -> dict:
        for _, sock, _ in self.socks:
            try:
                sock.send(DISCONNECT)
            except OSError:
                pass
            sock.close()
        closed = len(self.socks)
        self.socks.clear()
        return {"closed": closed}


async def _holder(pipe, spec: dict) -> None:
    loop = asyncio.get_running_loop()
    holder = Holder(loop, spec)
    while True:
        if not pipe.poll():
            ready = loop.create_future()
            loop.add_reader(pipe.fileno(), lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_reader(pipe.fileno())
                os.set_blocking(pipe.fileno(), True)
        command, *rest = pipe.recv()
        try:
            if command == "open":
                pipe.send(("ok", await holder.open()))
            elif command == "ping":
                pipe.send(("ok", await holder.ping(*rest)))
            elif command == "expect":
                pipe.send(("ok", await holder.expect(*rest)))
            elif command == "close":
                pipe.send(("ok", holder.close()))
                return
        except Exception:
            pipe.send(("error", traceback.format_exc()))
            return


def holder_main(pipe, spec: dict) -> None:
    try:
        (uvloop.run if uvloop is not None else asyncio.run)(_holder(pipe, spec))
    except Exception:
        pipe.send(("error", traceback.format_exc()))
    finally:
        pipe.close()


class Holders:
    """The client processes, driven together: send a command to all, collect every answer."""

    def __init__(self, specs: list[dict]):
        self.procs = []
        for spec in specs:
            parent, child = MP.Pipe()
            p = MP.Process(target=holder_main, args=(child, spec), daemon=True)
            p.start()
            child.close()
            self.procs.append((p, parent))

    def ask(self, command: tuple, timeout: float, tick=None) -> list[dict]:
        self.send(command)
        return self.collect(command[0], timeout, tick)

    def send(self, command: tuple) -> None:
        for _, pipe in self.procs:
            pipe.send(command)

    def collect(self, command: str, timeout: float, tick=None) -> list[dict]:
        out = []
        deadline = time.monotonic() + timeout
        next_tick = time.monotonic() + 10
        for p, pipe in self.procs:
            while not pipe.poll(0.2):
                if tick is not None and time.monotonic() >= next_tick:
                    tick()
                    next_tick = time.monotonic() + 10
                if time.monotonic() > deadline or not p.is_alive():
                    self.kill()
                    raise RuntimeError(f"client process: no answer to {command!r} "
                                       f"({'exited ' + str(p.exitcode) if not p.is_alive() else 'timed out'})")
            status, value = pipe.recv()
            if status != "ok":
                self.kill()
                raise RuntimeError(f"client process failed:\n{value}")
            out.append(value)
        return out

    def kill(self) -> None:
        for p, _ in self.procs:
            if p.is_alive():
                p.kill()
            p.join()

    def join(self) -> None:
        for p, pipe in self.procs:
            p.join(30)
            if p.is_alive():
                p.kill()
                p.join()
            pipe.close()
