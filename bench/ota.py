"""MQTT-based file delivery benchmark: stream download throughput for one
device and for N devices at once, against the same file over HTTP (a
presigned S3 GET, the other protocol an OTA update offers) in the same run.

    .venv/bin/python bench/ota.py [--megabytes 1] [--devices 100] [--block-size 4096] [--format cbor]

Starts moto's server (the downstream S3, in this process) and `localiot serve
--in-memory` as a subprocess with LOCALIOT_AWS_ENDPOINT_URL pointing at it,
puts a `--megabytes` file in S3, makes a stream of it and `--devices` things
with certificates. Each device is a small asyncio MQTT 3.1.1 client over
mutual TLS (this file; paho's thread per client would measure the client)
that does what a device does: subscribe to `.../data/<fmt>` and
`.../rejected/<fmt>`, ask for the missing blocks with a bitmap (at most 32
blocks, and 128 KB, per request, as the service answers), take the blocks,
ask again until the file is whole, and check its SHA-256.

Measured: MB/s of file bytes delivered (file size x devices / wall time from
the first request to the last block) for one device alone, then for all the
devices at once; the same downloads as presigned HTTP GETs from moto's S3;
and the server's CPU seconds during the all-devices download (MB per server
CPU-second: what the server could deliver if the clients were not in the
way).
The first download of a stream version reads S3 once (the server caches the
file per stream version), so a warm-up download comes first. The clients run
in this one process and share the machine with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import signal
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
import cbor2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from localiot.services.ota import file_delivery as fd  # noqa: E402

REGION, KEYS = "us-east-1", dict(aws_access_key_id="bench", aws_secret_access_key="bench")
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}


# a minimal MQTT 3.1.1 client ----------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


class Client:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, host: str, port: int, context: ssl.SSLContext, client_id: str) -> "Client":
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        client = cls(reader, writer)
        writer.write(_packet(0x10, _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 300) + _string(client_id)))
        kind, body = await client.read()
        assert kind == 0x20 and body[1] == 0, f"CONNACK {body!r}"
        return client

    async def read(self) -> tuple[int, bytes]:
        first = (await self.reader.readexactly(1))[0]
        length, shift = 0, 0
        while True:
            byte = (await self.reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return first & 0xF0, await self.reader.readexactly(length)

    async def subscribe(self, *topics: str) -> None:
        body = struct.pack("!H", 1) + b"".join(_string(t) + b"\x00" for t in topics)
        self.writer.write(_packet(0x82, body))
        kind, _ = await self.read()
        assert kind == 0x90

    def publish(self, topic: str, payload: bytes) -> None:
        self.writer.write(_packet(0x30, _string(topic) + payload))

    async def message(self) -> tuple[str, bytes]:
        while True:
            kind, body = await self.read()
            if kind == 0x30:
                size = struct.unpack("!H", body[:2])[0]
                return body[2:2 + size].decode(), body[2 + size:]

    def close(self) -> None:
        self.writer.write(b"\xe0\x00")
        self.writer.close()


# a device downloading the stream ---------------------------------------------------------
async def download(client: Client, thing: str, stream: str, size: int, block_size: int, fmt: str) -> bytes:
    base = f"$aws/things/{thing}/streams/{stream}"
    total = fd.block_count(size, block_size)
    per_request = min(32, fd.RESPONSE_LIMIT // block_size)
    blocks: dict[int, bytes] = {}
    while len(blocks) < total:
        missing = [b for b in range(total) if b not in blocks]
        bitmap = fd.bitmap_of(missing, missing[0])
        request = {"c": "b", "f": 0, "l": block_size, "o": missing[0], "n": per_request,
                   "b": bitmap if fmt == "cbor" else bitmap.hex()}
        client.publish(f"{base}/get/{fmt}", cbor2.dumps(request) if fmt == "cbor" else json.dumps(request).encode())
        for _ in range(min(per_request, len(missing))):
            topic, payload = await client.message()
            reply = cbor2.loads(payload) if fmt == "cbor" else json.loads(payload)
            if topic.endswith("/rejected/" + fmt):
                raise RuntimeError(f"{thing}: rejected {reply}")
            blocks[reply["i"]] = fd.payload_of(reply)
    return b"".join(blocks[b] for b in range(total))


async def run_devices(clients, stream, size, block_size, fmt, digest) -> tuple[float, list[float]]:
    async def one(thing, client):
        started = time.perf_counter()
        data = await download(client, thing, stream, size, block_size, fmt)
        assert hashlib.sha256(data).hexdigest() == digest, f"{thing}: the file came back different"
        return time.perf_counter() - started

    started = time.perf_counter()
    times = await asyncio.gather(*(one(thing, client) for thing, client in clients))
    return time.perf_counter() - started, list(times)


async def run_http(url: str, count: int, digest: str) -> float:
    def get():
        with urllib.request.urlopen(url) as response:
            assert hashlib.sha256(response.read()).hexdigest() == digest

    started = time.perf_counter()
    await asyncio.gather(*(asyncio.to_thread(get) for _ in range(count)))
    return time.perf_counter() - started


# set-up ----------------------------------------------------------------------------------
def start_localiot(logdir: str, s3_url: str, profile: str | None):
    env = dict(os.environ, LOCALIOT_AWS_ENDPOINT_URL=s3_url, LOCALIOT_AWS_ACCESS_KEY_ID="bench",
               LOCALIOT_AWS_SECRET_ACCESS_KEY="bench")
    args = ["serve", "--port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0", "--in-memory",
            "--log-level", "WARNING"]
    if profile:
        argv = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "localiot", *args]
    else:
        argv = [os.path.join(os.path.dirname(sys.executable), "localiot"), *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env,
                            stderr=open(os.path.join(logdir, "localiot.log"), "wb"), stdin=subprocess.DEVNULL)
    for line in proc.stdout:
        found = re.search(rb"localiot ready on (http://\S+)", line)
        if found:
            return proc, found.group(1).decode()
    raise SystemExit(f"localiot did not start; see {logdir}/localiot.log")


def make_devices(iot, count: int, folder: str) -> list[tuple[str, ssl.SSLContext]]:
    iot.create_policy(policyName="bench", policyDocument=json.dumps(POLICY))
    with urllib.request.urlopen(iot.meta.endpoint_url + "/_localiot/ca.pem") as response:
        ca = os.path.join(folder, "ca.pem")
        open(ca, "wb").write(response.read())
    devices = []
    for i in range(count):
        thing = f"bench-{i:03d}"
        iot.create_thing(thingName=thing)
        made = iot.create_keys_and_certificate(setAsActive=True)
        iot.attach_policy(policyName="bench", target=made["certificateArn"])
        cert, key = os.path.join(folder, f"{thing}.crt"), os.path.join(folder, f"{thing}.key")
        open(cert, "w").write(made["certificatePem"])
        open(key, "w").write(made["keyPair"]["PrivateKey"])
        context = ssl.create_default_context(cafile=ca)
        context.load_cert_chain(cert, key)
        devices.append((thing, context))
    return devices


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of process `pid` so far (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(args, pid: int, iot, s3, folder: str) -> dict:
    size = int(args.megabytes * 1024 * 1024)
    image = os.urandom(size)
    digest = hashlib.sha256(image).hexdigest()
    s3.create_bucket(Bucket="firmware")
    s3.put_object(Bucket="firmware", Key="image.bin", Body=image)
    iot.create_stream(streamId="bench", roleArn="arn:aws:iam::123456789012:role/bench",
                      files=[{"fileId": 0, "s3Location": {"bucket": "firmware", "key": "image.bin"}}])
    host, port = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"].rsplit(":", 1)
    devices = await asyncio.to_thread(make_devices, iot, args.devices, folder)
    clients = []
    for thing, context in devices:
        client = await Client.connect(host, int(port), context, thing)
        await client.subscribe(f"$aws/things/{thing}/streams/bench/data/{args.format}",
                               f"$aws/things/{thing}/streams/bench/rejected/{args.format}")
        clients.append((thing, client))
    try:  # warm-up: the server reads S3 once
        await asyncio.wait_for(run_devices(clients[:1], "bench", size, args.block_size, args.format, digest), 60)
    except asyncio.TimeoutError:
        raise SystemExit("no answer on the stream topics within 60 s") from None
    one, _ = await run_devices(clients[:1], "bench", size, args.block_size, args.format, digest)
    before = cpu_seconds(pid)
    many, times = await run_devices(clients, "bench", size, args.block_size, args.format, digest)
    server_cpu = cpu_seconds(pid) - before
    for _, client in clients:
        client.close()
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "firmware", "Key": "image.bin"}, ExpiresIn=600)
    await run_http(url, 1, digest)
    http_one = await run_http(url, 1, digest)
    http_many = await run_http(url, args.devices, digest)
    mb = size / 1e6
    return {"one device": (mb / one, mb / http_one),
            f"{args.devices} devices": (mb * args.devices / many, mb * args.devices / http_many),
            "per-device p50/max s": (statistics.median(times), max(times)),
            "server": (server_cpu, mb * args.devices / max(server_cpu, 0.01))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=1)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--block-size", type=int, default=4096)
    parser.add_argument("--format", choices=("cbor", "json"), default="cbor")
    parser.add_argument("--profile-localiot", metavar="FILE", help="run localiot under cProfile, writing FILE on exit")
    args = parser.parse_args()
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    s3_url = "http://%s:%d" % moto.get_host_and_port()
    folder = tempfile.mkdtemp(prefix="bench-ota-")
    proc, endpoint = start_localiot(folder, s3_url, args.profile_localiot)
    try:
        iot = boto3.client("iot", endpoint_url=endpoint, region_name=REGION, **KEYS)
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name=REGION, **KEYS)
        results = asyncio.run(measure(args, proc.pid, iot, s3, folder))
    finally:
        proc.send_signal(signal.SIGINT)  # a clean exit (cProfile writes its file)
        proc.wait(30)
        moto.stop()
    print(f"{args.megabytes:g} MB file, {args.block_size}-byte blocks, {args.format}, {args.devices} devices")
    print(f"{'load':<22} {'MQTT stream MB/s':>18} {'HTTP (moto S3) MB/s':>21}")
    server_cpu, per_cpu = results.pop("server")
    for key, (mqtt, http) in results.items():
        if key.startswith("per-device"):
            print(f"{key:<22} {mqtt:>9.2f}/{http:<8.2f}")
        else:
            print(f"{key:<22} {mqtt:>18.2f} {http:>21.2f}")
    print(f"localiot used {server_cpu:.2f} CPU seconds for the {args.devices}-device download: "
          f"{per_cpu:.0f} MB per server CPU-second (the clients, in this one process, are the bottleneck "
          "when that is well above the MB/s)")


if __name__ == "__main__":
    main()
