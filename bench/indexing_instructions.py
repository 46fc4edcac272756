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

import ctypes
import glob
import os
import subprocess
import tempfile

from indexing import (ACCOUNT, MOTO_QUERIES, REGION, _CLIENTS, _http_timed_here, client, http_timed_cpu,
                      seed_localiot)
from localiot.services import HANDLERS
from localiot.services.unit_of_work import read_only
from localiot.testing import local_server

_SOURCE = r"""
#include <valgrind/callgrind.h>
void window_open(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void window_close(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void window_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
"""


def _window():
    folder = tempfile.mkdtemp(prefix="cg-window-")
    source, library = os.path.join(folder, "window.c"), os.path.join(folder, "window.so")
    with open(source, "w") as f:
        f.write(_SOURCE)
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", library, source], check=True)
    return ctypes.CDLL(library)


def _last_total(out_pattern: str) -> int:
    """The total of the newest callgrind dump (0 when not run under callgrind)."""
    dumps = glob.glob(out_pattern.replace("%p", str(os.getpid())) + ".*")
    if not dumps:
        return 0
    newest = max(dumps, key=lambda path: int(path.rsplit(".", 1)[1]))
    with open(newest) as f:
        totals = [line for line in f if line.startswith("totals:")]
    return int(totals[-1].split()[1]) if totals else 0


def instructions(args) -> None:
    window = _window()
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
            handler = _last_total(out_pattern) / args.runs
            http_timed_cpu(server.endpoint, query, 20)  # warm, and the client process started
            window.window_open()
            _CLIENTS[0].submit(_http_timed_here, server.endpoint, query, args.runs).result()
            window.window_close()
            window.window_dump(f"request {label}".encode())
            request = _last_total(out_pattern) / (args.runs + 1)  # (+1: the client's own warm-up call)
            print(f"{label:<18} {handler / 1000:9.1f}k {request / 1000:9.1f}k", flush=True)
