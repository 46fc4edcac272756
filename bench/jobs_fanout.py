#!/usr/bin/env python
"""Jobs at fleet scale: fan-out of one job and device updates under load.

One run starts localiot in this process (a real SQLite file, its own loop
thread) and prints:

  * fan-out: the time from CreateJob on a thing group of ``--things``
    things until every execution is QUEUED, running the jobs timer
    (``tick``) back to back as the background task would, with the
    CreateJob latency, the number of ticks, executions/s and the
    jobs/notify + notify-next messages published;
  * device updates: StartNextPendingJobExecution + UpdateJobExecution
    (SUCCEEDED) for every thing, from ``--workers`` load-generator
    processes (one keep-alive HTTP connection each, so the client does not
    share the server's interpreter), as UpdateJobExecution/s, with p50/p99
    latency and the job's final jobProcessDetails.

The things and the group are written straight into the store (setting up
10,000 things through the API is not what is measured). moto's server has
no iot-jobs-data API and does not fan jobs out to thing groups, so there is
no peer to take a ratio against; the figures are absolute.

Usage:  .venv/bin/python bench/jobs_fanout.py [--things N] [--workers W]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import sys
import time
from urllib.parse import urlparse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

ACCOUNT = "123456789012"
REGION = "us-east-1"
AUTH = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/iot-jobs-data/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)


def name_of(i: int) -> str:
    return f"bench-{i:06d}"


def populate(app, count: int) -> None:
    """`count` things in one static thing group, written through the store."""
    from localiot.services.context import RequestContext
    from localiot.services.registry import thing_groups, things

    with app.store.transaction(ACCOUNT, REGION) as tx:
        ctx = RequestContext(ACCOUNT, REGION, tx, app.runtime, "iot", "bench")
        thing_groups.CreateThingGroup(ctx, {"thingGroupName": "fleet"})
        now = ctx.now()
        for i in range(count):
            name = name_of(i)
            things.save(ctx, {"thingName": name, "thingId": f"id-{i}", "thingArn": ctx.arn(f"thing/{name}"),
                              "thingTypeName": None, "attributes": {}, "version": 1,
                              "billingGroupName": None, "creationDate": now})
            tx.link(things.MEMBER_OF, "fleet", name)


def queued(app, job_id: str) -> int:
    from localiot.services.jobs import model

    with app.store.transaction(ACCOUNT, REGION, write=False) as tx:
        return tx.count(model.EXEC, "jobstatus", f"{job_id}|QUEUED")


def fan_out(server, iot, count: int) -> None:
    from localiot.services.jobs import tick

    notes = [0]
    stop = server.app.bus.subscribe(lambda a, r, topic, p: notes.__setitem__(0, notes[0] + ("/jobs/notify" in topic)))
    started = time.perf_counter()
    iot.create_job(jobId="fanout", targets=[f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/fleet"],
                   document=json.dumps({"operation": "update", "firmware": "2.0"}))
    created = time.perf_counter()
    ticks = 0
    while server.call(queued, server.app, "fanout") < count:
        server.call(tick, server.app.store, server.app.runtime)
        ticks += 1
        if ticks > 1000:
            raise SystemExit("fan-out did not finish")
    done = time.perf_counter()
    stop()
    total = done - started
    print(f"fan-out of one job to {count:,} things")
    print(f"  CreateJob answered in      {1000 * (created - started):8.1f} ms")
    print(f"  all executions QUEUED in   {total:8.2f} s  ({ticks} ticks after CreateJob)")
    print(f"  executions created/s       {count / total:10,.0f}")
    print(f"  notify + notify-next sent  {notes[0]:10,d}")


def _device_worker(args) -> list[float]:
    endpoint, names = args
    url = urlparse(endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port)
    headers = {"Authorization": AUTH, "X-Amz-Date": "20260101T000000Z", "Content-Type": "application/json"}
    latencies = []
    for name in names:
        connection.request("PUT", f"/things/{name}/jobs/$next", body=b"{}", headers=headers)
        reply = connection.getresponse()
        body = json.loads(reply.read())
        if reply.status != 200 or body["execution"]["status"] != "IN_PROGRESS":
            raise RuntimeError(f"start-next for {name}: {reply.status} {body}")
        version = body["execution"]["versionNumber"]
        payload = json.dumps({"status": "SUCCEEDED", "expectedVersion": version,
                              "statusDetails": {"result": "ok"}}).encode()
        begin = time.perf_counter()
        connection.request("POST", f"/things/{name}/jobs/fanout", body=payload, headers=headers)
        reply = connection.getresponse()
        reply.read()
        latencies.append(time.perf_counter() - begin)
        if reply.status != 200:
            raise RuntimeError(f"update for {name}: {reply.status}")
    connection.close()
    return latencies


def device_updates(server, iot, count: int, workers: int) -> None:
    names = [name_of(i) for i in range(count)]
    slices = [(server.endpoint, names[w::workers]) for w in range(workers)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        pool.map(_device_worker, [(server.endpoint, [])] * workers)  # warm the processes up
        started = time.perf_counter()
        results = pool.map(_device_worker, slices)
        elapsed = time.perf_counter() - started
    latencies = sorted(x for chunk in results for x in chunk)
    details = iot.describe_job(jobId="fanout")
    print(f"device updates: start-next + UpdateJobExecution for {count:,} things, {workers} connections")
    print(f"  UpdateJobExecution/s       {count / elapsed:10,.0f}  (with as many StartNext calls)")
    print(f"  update latency p50 / p99  {1000 * latencies[len(latencies) // 2]:8.2f} / "
          f"{1000 * latencies[int(len(latencies) * 0.99)]:.2f} ms")
    print(f"  job status {details['job']['status']}, succeeded "
          f"{details['job']['jobProcessDetails']['numberOfSucceededThings']:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--things", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    import boto3

    from localiot.testing import local_server

    with local_server(log_level="ERROR") as server:
        iot = boto3.client("iot", endpoint_url=server.endpoint, region_name=REGION,
                           aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
        started = time.perf_counter()
        server.call(populate, server.app, args.things)
        print(f"setup: {args.things:,} things in one group in {time.perf_counter() - started:.1f} s "
              f"(store: {server.app.store.path})")
        fan_out(server, iot, args.things)
        device_updates(server, iot, args.things, args.workers)


if __name__ == "__main__":
    main()
