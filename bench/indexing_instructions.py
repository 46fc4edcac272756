"""Instructions per SearchIndex (bench/indexing.py --parts instructions), for the
queries moto understands at --moto-things things: a count the machine's load does
not move, so it tells two versions apart where CPU time cannot.

Run under callgrind with instrumentation off until the measured calls:

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg/out.%p \\
        .venv/bin/python bench/indexing.py --parts instructions --moto-things 10000 --runs 200 \\
        --data-dir /tmp/fleet-10k

Two figures per query: `handler`, SearchIndex in its read-only unit of work on
the server's loop (--runs calls in one turn), and `request`, the whole server
process per lean-client request (the client in a process of its own, untraced).
The fleet is seeded (REGISTRY, as the moto part) into --data-dir once; later runs
reuse it, so before and after read the same file. The measured window is opened
and closed through callgrind's client requests (a small C library built here
with gcc; outside valgrind they do nothing and the counts read 0)."""

from __future__ import annotations

import os
import tempfile

import callgrind_window
from indexing import (ACCOUNT, MOTO_QUERIES, REGION, _CLIENTS, _http_timed_here, client, http_timed_cpu,
                      seed_localiot)
from localiot.services import HANDLERS
from localiot.services.unit_of_work import read_only
from localiot.testing import local_server

def instructions(args) -> None:
    window = callgrind_window.window()
    out_pattern = os.environ.get("CALLGRIND_OUT", "/tmp/cg/out.%p")
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="fleet-")
    seeded = os.path.exists(os.path.join(data_dir, "seeded"))
    with local_server(background_period=0, data_dir=data_dir) as server:
        if not seeded:
            client(server.endpoint).update_indexing_configuration(
                thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
            seed_localiot(server, args.moto_things)
            open(os.path.join(data_dir, "seeded"), "w").close()
        search, runtime = HANDLERS[("iot", "SearchIndex")], server.app.runtime

        def calls(query: str, count: int) -> None:
            for _ in range(count):
                with read_only(runtime, ACCOUNT, REGION, "iot", "SearchIndex") as ctx:
                    search(ctx, {"queryString": query, "maxResults": 100})

        print(f"instructions per SearchIndex at {args.moto_things} things ({args.runs} calls each)")
        print(f"{'query':<18} {'handler':>10} {'request':>10}")
        for label, query in MOTO_QUERIES.items():
            server.call(calls, query, 20)  # warm: caches, statements, kept texts
            window.window_open()
            server.call(calls, query, args.runs)
            window.window_close()
            window.window_dump(f"handler {label}".encode())
            handler = callgrind_window.last_total(out_pattern) / args.runs
            http_timed_cpu(server.endpoint, query, 20)  # warm, and the client process started
            window.window_open()
            _CLIENTS[0].submit(_http_timed_here, server.endpoint, query, args.runs).result()
            window.window_close()
            window.window_dump(f"request {label}".encode())
            request = callgrind_window.last_total(out_pattern) / (args.runs + 1)  # (+1: the client's own warm-up call)
            print(f"{label:<18} {handler / 1000:9.1f}k {request / 1000:9.1f}k", flush=True)
