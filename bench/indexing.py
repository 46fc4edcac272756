#!/usr/bin/env python
"""Fleet indexing: SearchIndex latency on a large fleet, index lag after an
update, and the same queries against moto's server (same run).

localiot runs in this process on its own loop thread (localiot.testing);
the fleet is seeded through the real CreateThing / UpdateThingShadow
handlers inside units of work (batches of 1000 per transaction, so the index
is maintained exactly as for API calls, only without 100,000 HTTP round
trips). Every timed request goes through boto3 over HTTP, one at a time,
for both servers: the figures include boto3's own per-call cost (~1 ms).

Prints p50 / p99 (ms) of SearchIndex for term, prefix, wildcard, numeric
range and boolean queries at --things things, twice: through boto3 over
HTTP (what a client sees, including boto3's own cost), through a lean client
in a process of its own replaying one signed request (the server's own
time over HTTP), and the handler alone
on the server's loop (the index's own work: one read-only unit of work, no
HTTP, no boto3); index lag (UpdateThingShadow returned -> SearchIndex sees
it) and, at --moto-things things on both servers, the queries moto supports
with the speed-up over moto (boto3 over HTTP for both).

Usage:  .venv/bin/python bench/indexing.py [--things 100000] [--moto-things 10000] [--runs 200] [--rounds 1]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from urllib.parse import urlsplit

import boto3
from moto.server import ThreadedMotoServer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from localiot.services import HANDLERS, load_all  # noqa: E402
from localiot.services.unit_of_work import read_only, unit_of_work  # noqa: E402
from localiot.testing import local_server  # noqa: E402

ACCOUNT, REGION = "123456789012", "us-east-1"
QUERIES = {
    "term": "thingName:thing-{probe}",
    "term (attribute)": "attributes.building:b17",
    "prefix": "thingName:thing-{probe4}*",
    "wildcard": "thingName:thing-0?4321",
    "suffix": "thingName:*4321",
    "infix": "thingName:*5432*",
    "numeric range": "shadow.reported.temp:[20.5 TO 20.7]",
    "boolean": "attributes.building:b17 AND shadow.reported.temp>25 AND NOT attributes.floor:3",
}
MOTO_QUERIES = {  # what moto's search_index understands: thingName terms and wildcards, attributes
    "term": "thingName:thing-004321",
    "prefix": "thingName:thing-0043*",
    "term (attribute)": "attributes.building:b17",
    "suffix": "thingName:*21",
    "wildcard": "thingName:thing-0?4321",
}


def client(endpoint, service="iot"):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def seed_localiot(server, count: int) -> None:
    load_all()
    create, shadow = HANDLERS[("iot", "CreateThing")], HANDLERS[("iotdata", "UpdateThingShadow")] \
        if ("iotdata", "UpdateThingShadow") in HANDLERS else None
    if shadow is None:
        shadow = next(fn for (svc, op), fn in HANDLERS.items() if op == "UpdateThingShadow")
    runtime = server.app.runtime

    def batch(start: int, stop: int) -> None:
        with unit_of_work(runtime, ACCOUNT, REGION, "iot", "CreateThing") as ctx:
            for i in range(start, stop):
                name = f"thing-{i:06d}"
                create(ctx, {"thingName": name, "attributePayload": {"attributes": {
                    "building": f"b{i % 50}", "floor": str(i % 10)}}})
                payload = json.dumps({"state": {"reported": {"temp": round(15 + (i % 1000) / 50, 2)}}}).encode()
                shadow(ctx, {"thingName": name, "payload": payload})

    for start in range(0, count, 1000):
        server.call(batch, start, min(start + 1000, count))


def handler_timed(server, query: str, runs: int) -> tuple[float, float]:
    """p50 / p99 (ms) of the SearchIndex handler alone, timed on the server's loop."""
    search, runtime = HANDLERS[("iot", "SearchIndex")], server.app.runtime

    def once() -> float:
        t = time.perf_counter()
        with read_only(runtime, ACCOUNT, REGION, "iot", "SearchIndex") as ctx:
            search(ctx, {"queryString": query, "maxResults": 100})
        return (time.perf_counter() - t) * 1000

    server.call(once)  # warm
    samples = sorted(server.call(once) for _ in range(runs))
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def raw_search(endpoint: str, query: str):
    """One SearchIndex as a lean client sends it: signed once by botocore, replayed on
    one keep-alive connection (no boto3 per call: what is left is the server's time)."""
    body = json.dumps({"queryString": query, "maxResults": 100}).encode()
    request = AWSRequest(method="POST", url=endpoint + "/indices/search", data=body,
                         headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("testing", "testing"), "iot", REGION).add_auth(request)
    headers = dict(request.prepare().headers)
    url = urlsplit(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port)

    def once() -> None:
        conn.request("POST", "/indices/search", body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"SearchIndex {query!r} answered {answer.status}")

    return once


def _http_timed_here(endpoint: str, query: str, runs: int) -> tuple[float, float]:
    return timed(raw_search(endpoint, query), runs)


def http_timed(endpoint: str, query: str, runs: int) -> tuple[float, float]:
    """p50 / p99 (ms) of the lean client, run in a process of its own: the servers run
    on threads of this process, and a client on another thread would take the GIL
    from the server it times (for both servers alike)."""
    return http_timed_cpu(endpoint, query, runs)[:2]


_CLIENTS: list = []


def http_timed_cpu(endpoint: str, query: str, runs: int) -> tuple[float, float, float]:
    """http_timed's p50 / p99 and the servers' CPU per request (ms): this process's CPU time
    (every thread: both servers, which are idle but for the one being timed) over the
    client's requests, as api_floor.py reads the server's. The client process is started
    once and kept (its start-up is not in the figure)."""
    if not _CLIENTS:
        _CLIENTS.append(ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")))
        _CLIENTS[0].submit(time.time).result()
    cpu = time.process_time()
    p50, p99 = _CLIENTS[0].submit(_http_timed_here, endpoint, query, runs).result()
    return p50, p99, (time.process_time() - cpu) * 1000 / (runs + 1)


def timed(fn, runs: int) -> tuple[float, float]:
    fn()  # warm
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--things", type=int, default=100_000, help="fleet size for the latency table")
    parser.add_argument("--moto-things", type=int, default=10_000, help="fleet size for the comparison with moto")
    parser.add_argument("--runs", type=int, default=200, help="timed requests per query (moto: a tenth)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="moto: time every query this many times over on the same fleets, and give ranges")
    parser.add_argument("--parts", default="large,moto",
                        help="what to run: large (the table at --things, index lag), moto (the comparison), "
                             "writes (UpdateThingShadow's cost under each indexing mode), "
                             "connectivity (index lag after an MQTT connect and disconnect), "
                             "instructions (per SearchIndex, under valgrind --tool=callgrind: "
                             "bench/indexing_instructions.py)")
    parser.add_argument("--write-things", type=int, default=5000, help="fleet size for the writes part")
    parser.add_argument("--store", default="sqlite", help="connectivity part: sqlite or postgresql (a fresh one)")
    parser.add_argument("--data-dir", default=None,
                        help="instructions part: the server's data directory, seeded once and kept between runs")
    args = parser.parse_args()
    probe = f"{min(54321, args.things - 1):06d}"

    if "large" in args.parts:
        large(args, probe)
    if "moto" in args.parts:
        versus_moto(args)
    if "writes" in args.parts:
        writes(args)
    if "connectivity" in args.parts:
        connectivity_lag(args)
    if "instructions" in args.parts:
        from indexing_instructions import instructions

        instructions(args)


def connectivity_lag(args) -> None:
    """Issue 13's freshness for connectivity: a thing's MQTT client connects (CONNACK
    received) or disconnects (the broker closed the socket), then SearchIndex is asked
    until it answers connectivity.connected accordingly. The broker's presence records
    are written per 20 ms window (localiot.services.presence.WINDOW), the index with them."""
    from localiot.testing import RawClient

    things = min(args.things, 2000)
    with local_server(background_period=0, mqtt_plain=True, store=args.store) as server:
        iot = client(server.endpoint)
        iot.update_indexing_configuration(thingIndexingConfiguration={
            "thingIndexingMode": "REGISTRY", "thingConnectivityIndexingMode": "STATUS"})
        for i in range(things):
            iot.create_thing(thingName=f"dev-{i:05d}")
        port = server.listener("mqtt-plain")[1]
        runs = min(args.runs, 200)
        lags = {"connect": [], "disconnect": []}
        for i in range(runs):
            name = f"dev-{(i * 7919) % things:05d}"
            raw = RawClient.plain(port)
            assert raw.connect(name).reason_code == 0
            t = time.perf_counter()
            while not iot.search_index(queryString=f"thingName:{name} AND connectivity.connected:true")["things"]:
                pass
            lags["connect"].append((time.perf_counter() - t) * 1000)
            raw.send(b"\xe0\x00")
            assert raw.closed()
            t = time.perf_counter()
            while not iot.search_index(queryString=f"thingName:{name} AND connectivity.connected:false")["things"]:
                pass
            lags["disconnect"].append((time.perf_counter() - t) * 1000)
            raw.close()
        print(f"\nindex lag after an MQTT connect / disconnect ({runs} each, {things} things; ms, includes "
              f"one SearchIndex through boto3; store {args.store}); load average {os.getloadavg()[0]:.1f}")
        for kind, samples in lags.items():
            samples.sort()
            print(f"  {kind:<10} p50 {statistics.median(samples):.2f}  p99 "
                  f"{samples[min(len(samples) - 1, int(len(samples) * 0.99))]:.2f}  max {samples[-1]:.2f}")


def large(args, probe: str) -> None:
    with local_server(background_period=0) as server:
        iot = client(server.endpoint)
        data = client(server.endpoint, "iot-data")
        iot.update_indexing_configuration(thingIndexingConfiguration={
            "thingIndexingMode": "REGISTRY_AND_SHADOW",
            "customFields": [{"name": "shadow.reported.temp", "type": "Number"}]})
        t = time.perf_counter()
        seed_localiot(server, args.things)
        print(f"seeded {args.things} things with shadows in {time.perf_counter() - t:.1f} s")
        print(f"\nSearchIndex on {args.things} things (ms, maxResults 100); load average {os.getloadavg()[0]:.1f}")
        print(f"{'query':<18} {'boto3 p50':>10} {'boto3 p99':>10} {'http p50':>9} {'http p99':>9} "
              f"{'handler p50':>12} {'handler p99':>12} {'hits':>6}")
        for label, query in QUERIES.items():
            query = query.format(probe=probe, probe4=probe[:4])
            hits = len(iot.search_index(queryString=query, maxResults=100)["things"])
            p50, p99 = timed(lambda: iot.search_index(queryString=query, maxResults=100), args.runs)
            r50, r99 = http_timed(server.endpoint, query, args.runs)
            h50, h99 = handler_timed(server, query, args.runs)
            print(f"{label:<18} {p50:10.2f} {p99:10.2f} {r50:9.2f} {r99:9.2f} {h50:12.2f} {h99:12.2f} {hits:6d}")
        d50, d99 = timed(lambda: iot.describe_thing(thingName=f"thing-{probe}"), args.runs)
        print(f"{'(DescribeThing)':<18} {d50:10.2f} {d99:10.2f}   (boto3 + HTTP floor of one small call)")
        lags = []
        for i in range(args.runs):
            name = f"thing-{(i * 7919) % args.things:06d}"
            data.update_thing_shadow(thingName=name, payload=json.dumps(
                {"state": {"reported": {"marker": i}}}).encode())
            t = time.perf_counter()
            while not iot.search_index(queryString=f"shadow.reported.marker:{i} AND thingName:{name}")["things"]:
                pass
            lags.append((time.perf_counter() - t) * 1000)
        lags.sort()
        print(f"\nindex lag after UpdateThingShadow (ms, includes one SearchIndex): "
              f"p50 {statistics.median(lags):.2f}  p99 {lags[int(len(lags) * 0.99) - 1]:.2f}")


WRITE_MODES = ("OFF", "REGISTRY", "REGISTRY_AND_SHADOW")


def writes(args) -> None:
    """What the index hook adds to a write: UpdateThingShadow (classic shadow, two reported
    values), then CreateThing (two attributes), timed at the handler in its unit of work,
    commit included, on three servers seeded alike, one per thingIndexingMode, in
    interleaved blocks of --runs calls."""
    import contextlib

    with contextlib.ExitStack() as stack:
        servers = {mode: stack.enter_context(local_server(background_period=0)) for mode in WRITE_MODES}
        for mode, server in servers.items():
            if mode != "OFF":
                client(server.endpoint).update_indexing_configuration(thingIndexingConfiguration={
                    "thingIndexingMode": mode, "customFields": [{"name": "shadow.reported.temp", "type": "Number"}]})
            seed_localiot(server, args.write_things)
        update = next(fn for (_, op), fn in HANDLERS.items() if op == "UpdateThingShadow")
        create = HANDLERS[("iot", "CreateThing")]

        def shadow_update(ctx, i: int) -> None:
            payload = json.dumps({"state": {"reported": {"temp": i % 100, "step": i}}}).encode()
            update(ctx, {"thingName": f"thing-{(i * 7919) % args.write_things:06d}", "payload": payload})

        def create_thing(ctx, i: int) -> None:
            create(ctx, {"thingName": f"new-thing-{i:07d}", "attributePayload": {"attributes": {
                "building": f"b{i % 50}", "serial": f"sn-{i * 7919 % 1000003:07d}"}}})

        for label, write in (("UpdateThingShadow", shadow_update), ("CreateThing", create_thing)):
            samples: dict[str, list] = {mode: [] for mode in WRITE_MODES}

            def block(server, start: int, operation=label, write=write) -> list[float]:
                out, runtime = [], server.app.runtime
                for i in range(start, start + args.runs):
                    t = time.perf_counter()
                    with unit_of_work(runtime, ACCOUNT, REGION, "iot", operation) as ctx:
                        write(ctx, i)
                    out.append((time.perf_counter() - t) * 1e6)
                return out

            for round_ in range(max(3, args.rounds) * 2):
                for mode in WRITE_MODES if round_ % 2 == 0 else WRITE_MODES[::-1]:
                    samples[mode] += servers[mode].call(block, servers[mode], round_ * args.runs)
            print(f"\n{label} at the handler, {args.write_things} things, commit included (us); "
                  f"load average {os.getloadavg()[0]:.1f}")
            off = statistics.median(samples["OFF"])
            for mode in WRITE_MODES:
                ordered = sorted(samples[mode])
                p50 = statistics.median(ordered)
                print(f"{mode:<20} p50 {p50:8.0f}  p99 {ordered[int(len(ordered) * 0.99) - 1]:8.0f}  "
                      f"mean {statistics.mean(ordered):8.0f}  p50 x OFF {p50 / off:5.2f}")


def versus_moto(args) -> None:
    from moto.iot.models import iot_backends

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    try:
        with local_server(background_period=0) as server:
            ours, theirs = client(server.endpoint), client(f"http://{host}:{port}")
            ours.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
            theirs.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
            seed_localiot(server, args.moto_things)
            backend = iot_backends[ACCOUNT][REGION]
            t = time.perf_counter()
            # moto's server runs in this process: its backend is seeded directly (as ours is
            # through its handlers), then searched over HTTP like ours
            for i in range(args.moto_things):
                backend.create_thing(f"thing-{i:06d}", None, {"attributes": {
                    "building": f"b{i % 50}", "floor": str(i % 10)}})
            print(f"\nseeded moto with {args.moto_things} things in {time.perf_counter() - t:.1f} s")
            ratios: dict[str, dict[str, list]] = {}
            for round_ in range(args.rounds):
                print(f"\nround {round_ + 1}/{args.rounds}: SearchIndex at {args.moto_things} things (ms, p50): "
                      f"localiot vs moto's server; load average {os.getloadavg()[0]:.1f}")
                print("  boto3: the call over HTTP; http: a lean client replaying the signed request; "
                      "cpu: the server's CPU per http request; "
                      "handler: ours in its unit of work, moto's backend search_index")
                print(f"{'query':<18} {'ours boto3':>10} {'moto boto3':>10} {'ratio':>7} "
                      f"{'ours http':>9} {'moto http':>9} {'ratio':>7} {'ours cpu':>8} {'moto cpu':>8} {'ratio':>7} "
                      f"{'ours handler':>12} {'moto handler':>12} {'ratio':>8} {'hits':>9}")
                for label, query in MOTO_QUERIES.items():
                    row = moto_row(args, server, ours, theirs, backend, f"http://{host}:{port}", query)
                    for column, ratio in row["ratios"].items():
                        ratios.setdefault(label, {}).setdefault(column, []).append(ratio)
                    print(f"{label:<18} {row['line']}")
            if args.rounds > 1:
                print(f"\nratio ranges (moto / ours, p50) over {args.rounds} rounds:")
                for label, columns in ratios.items():
                    print(f"{label:<18} " + "  ".join(f"{column} {min(v):.0f}-{max(v):.0f}x"
                                                      for column, v in columns.items()))
    finally:
        moto.stop()


def moto_row(args, server, ours, theirs, backend, moto_endpoint: str, query: str) -> dict:
    """One query on both servers, timed one way after the other in the same run. Ours is
    timed `--runs` times, moto's a tenth as often (at least 10; each takes ~100x longer)."""
    a = {t["thingName"] for t in ours.search_index(queryString=query, maxResults=100)["things"]}
    b = {t["thingName"] for t in theirs.search_index(queryString=query, maxResults=100)["things"]}
    runs = max(10, args.runs // 10)
    p50, _ = timed(lambda: ours.search_index(queryString=query, maxResults=100), args.runs)
    m50, _ = timed(lambda: theirs.search_index(queryString=query, maxResults=100), runs)
    r50, _, rcpu = http_timed_cpu(server.endpoint, query, args.runs)
    mr50, _, mrcpu = http_timed_cpu(moto_endpoint, query, runs)
    h50, _ = handler_timed(server, query, args.runs)
    mh50, _ = timed(lambda: backend.search_index(query), runs)
    line = (f"{p50:10.2f} {m50:10.2f} {m50 / p50:6.1f}x {r50:9.2f} {mr50:9.2f} {mr50 / r50:6.1f}x "
            f"{rcpu:8.3f} {mrcpu:8.2f} {mrcpu / rcpu:6.0f}x "
            f"{h50:12.2f} {mh50:12.2f} {mh50 / h50:7.0f}x {len(a):4d}/{len(b):<4d}")
    return {"line": line, "ratios": {"boto3": m50 / p50, "http": mr50 / r50, "server cpu": mrcpu / rcpu,
                                     "handler": mh50 / h50}}


if __name__ == "__main__":
    main()
