#!/usr/bin/env python
"""Rules engine: rule evaluations/s with many rules, and the latency a republish rule adds.

One in-process localiot server (SQLite in memory) with the rules engine:

  * throughput: ``--rules`` rules spread over ``--topics`` topics
    (``SELECT temp, topic(2) AS t FROM 'bench/tN' WHERE temp > <limit>``,
    with a WHERE that is false, so the numbers are matching + SQL
    evaluation, not actions); ``--messages`` messages are put on the bus
    round robin over the topics from the server's loop, and the run lasts
    until the engine is idle. Reported: messages/s and rule evaluations/s
    (evaluations = messages x rules per topic).
  * latency: in another region (its own rule scope), one rule
    ``SELECT * FROM 'lat/in'`` republishing to ``lat/out``; one message at a
    time, the time from bus.publish of ``lat/in`` to the republished message
    reaching a bus subscriber. Reported: p50 / p99 / max over
    ``--samples`` messages. The same is measured for a bus subscriber of
    ``lat/in`` itself (the floor: the bus hop alone), so the rule's own cost
    is the difference.

There is no peer to compare with: moto's server stores topic rules but does
not run them.

Usage:  .venv/bin/python bench/rules_engine.py [--rules 1000] [--topics 10] [--messages 2000] [--samples 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

import boto3

sys.path.insert(0, __file__.rsplit("/bench/", 1)[0])

from localiot.services.rules.engine import start_rules_engine
from localiot.testing import local_server

ACCOUNT = "123456789012"
ROLE = "arn:aws:iam::123456789012:role/bench"


def _client(server, region):
    return boto3.client("iot", endpoint_url=server.endpoint, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def create_rules(server, rules: int, topics: int) -> None:
    iot = _client(server, "us-east-1")
    for i in range(rules):
        sql = f"SELECT temp, topic(2) AS t FROM 'bench/t{i % topics}' WHERE temp > {1000 + i}"
        iot.create_topic_rule(ruleName=f"bench_{i}", topicRulePayload={
            "sql": sql, "actions": [{"republish": {"topic": "bench/out", "roleArn": ROLE}}]})


def throughput(server, engine, messages: int, topics: int) -> tuple[float, int, int]:
    payload = json.dumps({"temp": 21.5, "device": "bench"}).encode()
    bus = server.app.bus

    async def run():
        before = engine.stats["evaluations"]
        started = time.perf_counter()
        for i in range(messages):
            bus.publish(ACCOUNT, "us-east-1", f"bench/t{i % topics}", payload)
            if i % 200 == 199:
                await asyncio.sleep(0)  # let the engine take its share of the loop
        await engine.drain(600)
        return time.perf_counter() - started, engine.stats["evaluations"] - before

    elapsed, evaluations = asyncio.run_coroutine_threadsafe(run(), server.loop).result(900)
    return elapsed, evaluations, messages


def latency(server, engine, samples: int, with_rule: bool) -> list[float]:
    region = "eu-west-1"
    listen = "lat/out" if with_rule else "lat/in"
    bus = server.app.bus
    payload = json.dumps({"temp": 1}).encode()

    async def run():
        loop = asyncio.get_running_loop()
        waiting: list[asyncio.Future] = []

        def receive(account, reg, topic, data):
            if reg == region and topic == listen and waiting:
                waiting.pop().set_result(time.perf_counter())

        unsubscribe = bus.subscribe(receive)
        out = []
        try:
            for _ in range(samples):
                future = loop.create_future()
                waiting.append(future)
                started = time.perf_counter()
                bus.publish(ACCOUNT, region, "lat/in", payload)
                out.append(await asyncio.wait_for(future, 10) - started)
                await engine.drain(10)
        finally:
            unsubscribe()
        return out

    return asyncio.run_coroutine_threadsafe(run(), server.loop).result(600)


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()

    with local_server(in_memory=True) as server:
        engine = server.call(start_rules_engine, server.app)
        started = time.perf_counter()
        create_rules(server, args.rules, args.topics)
        print(f"created {args.rules} rules in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        throughput(server, engine, min(args.messages, 100), args.topics)  # warm the compiled-rule cache
        elapsed, evaluations, messages = throughput(server, engine, args.messages, args.topics)

        _client(server, "eu-west-1").create_topic_rule(ruleName="latency", topicRulePayload={
            "sql": "SELECT * FROM 'lat/in'", "actions": [{"republish": {"topic": "lat/out", "roleArn": ROLE}}]})
        latency(server, engine, 20, True)  # warm-up
        floor = latency(server, engine, args.samples, False)
        with_rule = latency(server, engine, args.samples, True)

    print(f"rules engine, {args.rules} rules on {args.topics} topics "
          f"({args.rules // args.topics} rules per topic), {messages} messages")
    print(f"  throughput: {messages / elapsed:,.0f} messages/s, {evaluations / elapsed:,.0f} rule evaluations/s "
          f"({evaluations} evaluations in {elapsed:.2f}s)")
    print(f"  bus hop alone (lat/in to a subscriber): p50 {_ms(floor, 0.5):.3f} ms, p99 {_ms(floor, 0.99):.3f} ms")
    print(f"  republish rule (lat/in to lat/out):     p50 {_ms(with_rule, 0.5):.3f} ms, "
          f"p99 {_ms(with_rule, 0.99):.3f} ms, max {max(with_rule) * 1000:.3f} ms, "
          f"mean {statistics.mean(with_rule) * 1000:.3f} ms")


if __name__ == "__main__":
    main()
