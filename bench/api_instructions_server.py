#!/usr/bin/env python
"""Instructions per request of the whole localiot server (valgrind callgrind), on a data directory
loaded once without valgrind: a count the machine's load does not move (api_floor's CPU time does).

    .venv/bin/python bench/api_instructions_server.py load --src DIR --dir /tmp/d100k --things 100000
    .venv/bin/python bench/api_instructions_server.py measure --src DIR --dir /tmp/d100k [--cache]

`--src DIR`: a directory holding the localiot/ package to run (a `git archive` of a commit, or
a worktree). `measure` starts the server under callgrind (LOCALIOT_BACKGROUND_PERIOD=0), sends
`--warm` requests of each operation, zeroes the counters, sends `--n` more over `--connections`
and dumps: user-space instructions of the whole process per request. `--cache` adds callgrind's
cache and branch simulation (all events per request). Reads name things at random from all of
them (DescribeThing) or from the first `--shadows` shadows (GetThingShadow, UpdateThingShadow),
`--pool` distinct requests; ListThings is the first page of 100; Publish goes to a topic nobody
subscribed to (the HTTP side and the engine's fixed cost, not the delivery).
"""
import argparse, asyncio, glob, os, random, re, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_floor as af, api_floor_ab as ab
from control_plane import ServerProc

p = argparse.ArgumentParser()
p.add_argument("mode"); p.add_argument("--src", required=True); p.add_argument("--dir", required=True)
p.add_argument("--things", type=int, default=200); p.add_argument("--shadows", type=int, default=2000)
p.add_argument("--ops", default="DescribeThing,GetThingShadow,ListThings"); p.add_argument("--n", type=int, default=1000)
p.add_argument("--warm", type=int, default=200); p.add_argument("--connections", type=int, default=8)
p.add_argument("--pool", type=int, default=2000); p.add_argument("--cache", action="store_true")
a = p.parse_args()
os.environ["LOCALIOT_MQTT_PLAIN"] = "1"; os.environ["LOCALIOT_MQTT_PLAIN_PORT"] = "0"
os.environ["LOCALIOT_BACKGROUND_PERIOD"] = "0"
args = ["serve", "--port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0", "--log-level", "WARNING", "--data-dir", a.dir]
argv = [sys.executable, "-c", ab._RUN_FROM, a.src, *args]
cgdir = a.dir + ".cg"; os.makedirs(cgdir, exist_ok=True)
if a.mode == "measure":
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={cgdir}/out.%p"] + (
        ["--cache-sim=yes", "--branch-sim=yes"] if a.cache else []) + argv
srv = ServerProc("S", argv, None, cgdir, re.compile(r"localiot ready on http://[^:]+:(\d+)"))
ep = srv.wait_ready(timeout=900); pid = srv.proc.pid; port = int(ep.rsplit(":", 1)[1])
things = a.things
def total(path):
    # summary line "summary: N" or "totals: N"
    for line in open(path):
        if line.startswith("totals:") or line.startswith("summary:"):
            return [int(x) for x in line.split()[1:]]
async def main():
    r = af.Requests(ep)
    if a.mode == "load":
        await af.drive(port, pid, [r.create_thing(i) for i in range(a.things)], 32, duration=None)
        await af.drive(port, pid, [r.update_shadow(i, 0) for i in range(min(a.things, a.shadows))], 32, duration=None)
        return
    n_things = int(open(a.dir + ".things").read())
    ns = min(n_things, a.shadows)
    rng = random.Random(7)
    for op in a.ops.split(","):
        if op == "DescribeThing": pool = [r.describe_thing(rng.randrange(n_things)) for _ in range(a.pool)]
        elif op == "GetThingShadow": pool = [r.get_shadow(rng.randrange(ns)) for i in range(a.pool)]
        elif op == "ListThings": pool = [r.list_things()]
        elif op == "Publish": pool = [r.publish(i) for i in range(a.pool)]  # (nobody subscribed)
        elif op == "UpdateThingShadow": pool = [r.update_shadow(rng.randrange(ns), i) for i in range(a.pool)]
        await af.drive(port, pid, [pool[i % len(pool)] for i in range(a.warm)], a.connections, duration=None)
        subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True)
        t = time.time()
        res = await af.drive(port, pid, [pool[(a.warm + i) % len(pool)] for i in range(a.n)], a.connections, duration=None)
        before = set(glob.glob(f"{cgdir}/out.{pid}*"))
        subprocess.run(["callgrind_control", "-d", op, str(pid)], capture_output=True)
        new = sorted(set(glob.glob(f"{cgdir}/out.{pid}*")) - before, key=os.path.getmtime)
        tot = total(new[-1])
        print(f"{op}: {tot[0]/res.ok/1e3:.1f}k Ir/req  ({res.ok} ok, err {res.errors}, {time.time()-t:.0f}s)"
              + (f" all={[round(x/res.ok) for x in tot]}" if a.cache else ""), flush=True)
        os.rename(new[-1], f"{cgdir}/{op}.{os.path.basename(a.src.rstrip('/'))}.out")
try:
    import uvloop; uvloop.run(main())
finally:
    srv.stop()
if a.mode == "load":
    open(a.dir + ".things", "w").write(str(a.things))
