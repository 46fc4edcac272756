#!/usr/bin/env python
"""Device Defender detect: broker QoS 0 throughput with 10 security profiles
attached to 10,000 things vs none, same server, same run.

One in-process localiot (in memory, mutual TLS listener). N things are
registered; the publishers and the subscriber are devices whose client id is
their thing (a certificate attached to it), so the broker meters them
(localiot.metering) in both phases. Phase A: no security profile. Phase B:
10 profiles (a cloud-side behavior each) attached to all things. Each phase
runs twice, alternating (A B A B); a phase is P raw-socket publishers
sending pre-built QoS 0 PUBLISHes over TLS for D seconds to one subscriber
on '#', and its figure is messages/s counted by the subscriber. Prints the
best of each and B/A.

Usage: .venv/bin/python bench/detect.py [--things 10000] [--duration 5] [--publishers 4]
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from localiot.testing import local_server  # noqa: E402

POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}
TOPIC, PAYLOAD = b"bench/detect", b"x" * 64


def _len(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _len(len(body)) + body


def connect_packet(client_id: str) -> bytes:
    cid = client_id.encode()
    return packet(0x10, b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid)


PUBLISH = packet(0x30, len(TOPIC).to_bytes(2, "big") + TOPIC + PAYLOAD)


def open_device(port: int, context: ssl.SSLContext, client_id: str) -> ssl.SSLSocket:
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    sock.sendall(connect_packet(client_id))
    assert sock.recv(4)[:2] == b"\x20\x02", "no CONNACK"
    return sock


def device_context(iot, folder: Path, ca: str, thing: str) -> ssl.SSLContext:
    made = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName="bench", target=made["certificateArn"])
    iot.attach_thing_principal(thingName=thing, principal=made["certificateArn"])
    (folder / f"{thing}.crt").write_text(made["certificatePem"])
    (folder / f"{thing}.key").write_text(made["keyPair"]["PrivateKey"])
    context = ssl.create_default_context(cafile=ca)
    context.check_hostname = False
    context.load_cert_chain(str(folder / f"{thing}.crt"), str(folder / f"{thing}.key"))
    return context


def phase(port: int, contexts: list, sub_context, duration: float) -> float:
    sub = open_device(port, sub_context, "sub")
    sub.sendall(packet(0x82, b"\x00\x01\x00\x01#\x00"))
    assert sub.recv(5)[0] == 0x90
    size = len(PUBLISH)
    stop = threading.Event()
    received = [0]

    def count():
        sub.settimeout(0.5)
        while not stop.is_set():
            try:
                data = sub.recv(1 << 20)
            except (socket.timeout, ssl.SSLError):
                continue
            if not data:
                return
            received[0] += len(data)

    def publish(context, name):
        sock = open_device(port, context, name)
        batch = PUBLISH * 64
        while not stop.is_set():
            sock.sendall(batch)
        sock.close()

    reader = threading.Thread(target=count)
    reader.start()
    pubs = [threading.Thread(target=publish, args=(c, n)) for n, c in contexts]
    for t in pubs:
        t.start()
    time.sleep(1.0)  # warm-up
    before = received[0]
    time.sleep(duration)
    got = received[0] - before
    stop.set()
    for t in pubs:
        t.join()
    reader.join()
    sub.close()
    return got / size / duration


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--things", type=int, default=10000)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--publishers", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, local_server(in_memory=True, background_period=0) as server:
        folder = Path(folder)
        kw = dict(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        iot = boto3.client("iot", endpoint_url=server.endpoint, **kw)
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: iot.create_thing(thingName=f"thing-{i}"), range(args.things)))
        print(f"registered {args.things} things in {time.monotonic() - started:.1f}s")
        iot.create_policy(policyName="bench", policyDocument=json.dumps(POLICY))
        ca = str(folder / "ca.pem")
        with urllib.request.urlopen(server.endpoint + "/_localiot/ca.pem") as response:
            Path(ca).write_bytes(response.read())
        port = int(iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"].rsplit(":", 1)[1])
        iot.create_thing(thingName="sub")
        sub_context = device_context(iot, folder, ca, "sub")
        contexts = [(f"thing-{i}", device_context(iot, folder, ca, f"thing-{i}")) for i in range(args.publishers)]
        results = {"A": [], "B": []}
        for label in ("A", "B", "A", "B"):
            if label == "B" and not results["B"]:
                for p in range(10):
                    iot.create_security_profile(securityProfileName=f"p{p}", behaviors=[
                        {"name": "sent", "metric": "aws:num-messages-sent", "criteria": {
                            "comparisonOperator": "less-than", "value": {"count": 1000 + p}, "durationSeconds": 300}}])
                    iot.attach_security_profile(securityProfileName=f"p{p}",
                                                securityProfileTargetArn="arn:aws:iot:us-east-1:123456789012:all/things")
            if label == "A" and results["B"]:
                for p in range(10):
                    iot.delete_security_profile(securityProfileName=f"p{p}")
            rate = phase(port, contexts, sub_context, args.duration)
            results[label].append(rate)
            print(f"phase {label}: {rate:,.0f} msg/s")
        a, b = max(results["A"]), max(results["B"])
        print(f"QoS 0, {args.publishers} publishers -> 1 subscriber, metered things: "
              f"no profiles {a:,.0f} msg/s, 10 profiles on {args.things} things {b:,.0f} msg/s, ratio {b / a:.3f}")


if __name__ == "__main__":
    main()
