#!/usr/bin/env python
"""Instructions per API call in process (callgrind): `engine.handle` on api_floor.py's
pre-signed requests, 32 per loop turn, the group commit awaited as the HTTP handler
awaits it, on a server with 200 things and their shadows and (for Publish) one MQTT
subscriber in a process of its own. A count the machine's load does not move, so it
tells two versions apart where CPU time cannot.

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg/out.%p \\
        .venv/bin/python bench/api_instructions.py --ops CreateThing,UpdateThingShadow,Publish

Another version's package: PYTHONPATH=<dir holding localiot/> in front. The measured
window (--calls calls after --warm ones) is opened and closed through callgrind's client
requests (a small C library built here with gcc); outside valgrind the counts read 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_floor as af  # noqa: E402
import callgrind_window  # noqa: E402
from multidict import CIMultiDict, MultiDict  # noqa: E402

from localiot.testing import local_server  # noqa: E402

THINGS = 200
_SUBSCRIBER = ("import asyncio, sys; sys.path.insert(0, sys.argv[2]); import api_floor as af\n"
               "async def main():\n"
               "    _, s = await asyncio.get_running_loop().create_connection(af.Subscriber, '127.0.0.1', int(sys.argv[1]))\n"
               "    await s.suback; print('subscribed', flush=True); await asyncio.Event().wait()\n"
               "asyncio.run(main())")


def parsed(raw: bytes) -> tuple:
    """(method, path, target, query, headers, body) of a raw request, as server._http passes them."""
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    method, target, _ = lines[0].split(" ")
    headers = CIMultiDict(line.split(": ", 1) for line in lines[1:])
    path, _, qs = target.partition("?")
    query = MultiDict(kv.split("=", 1) for kv in qs.split("&")) if qs else MultiDict()
    if method == "POST" and path.startswith("/topics/"):
        path = "/topics/" + path[8:].replace("/", "%2F")
    return method, path, target, query, headers, body


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", default="CreateThing,UpdateThingShadow,Publish,DescribeThing")
    p.add_argument("--calls", type=int, default=960)
    p.add_argument("--warm", type=int, default=320)
    p.add_argument("--batch", type=int, default=32, help="calls per loop turn (default 32, the bench's connections)")
    args = p.parse_args(argv)
    window, out_pattern = callgrind_window.window(), os.environ.get("CALLGRIND_OUT", "/tmp/cg/out.%p")
    with local_server(background_period=0, mqtt_plain=True) as server:
        app = server.app
        reqs = af.Requests(app.endpoint)
        subscriber = subprocess.Popen([sys.executable, "-c", _SUBSCRIBER, str(server.listener("mqtt-plain")[1]),
                                       os.path.dirname(os.path.abspath(__file__))], stdout=subprocess.PIPE)
        subscriber.stdout.readline()

        async def drive(requests, measured):
            engine, store = app.engine, app.store
            if measured:
                window.window_open()
            for i in range(0, len(requests), args.batch):
                for req in requests[i:i + args.batch]:
                    reply = engine.handle(req[0], "", req[1], req[2], req[3], req[4], req[5])
                    if reply.status >= 300:
                        raise SystemExit(f"{reply.status}: {reply.body!r}")
                if store.pending_commit is not None:
                    await store.pending_commit
                await asyncio.sleep(0)
            if measured:
                window.window_close()
                window.window_dump(b"calls")

        def run(raw, measured=False):
            asyncio.run_coroutine_threadsafe(drive([parsed(r) for r in raw], measured), server.loop).result(3600)

        def make(op, n, start):
            if op == "CreateThing":
                return [reqs.create_thing(i) for i in range(start, start + n)]
            if op == "UpdateThingShadow":
                return [reqs.update_shadow(i % THINGS, start + i) for i in range(n)]
            if op == "Publish":
                return [reqs.publish(start + i) for i in range(n)]
            if op == "GetThingShadow":
                return [reqs.get_shadow(i % THINGS) for i in range(n)]
            if op == "ListThings":
                return [reqs.list_things() for _ in range(n)]
            return [reqs.describe_thing(i % THINGS) for i in range(n)]

        try:
            run([reqs.create_thing(i) for i in range(THINGS)])
            run([reqs.update_shadow(i, 0) for i in range(THINGS)])
            start = 1000
            for op in args.ops.split(","):
                run(make(op, args.warm, start))
                run(make(op, args.calls, start + args.warm), measured=True)
                start += args.warm + args.calls
                time.sleep(0.2)
                print(f"{op:20s} {callgrind_window.last_total(out_pattern) / args.calls / 1000:8.1f}k instructions per call", flush=True)
        finally:
            subscriber.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
