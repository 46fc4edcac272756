"""MQTT-based file delivery end to end: paho devices over mutual TLS, their
policies enforced, files in moto's S3 as the downstream endpoint.

The OTA case is the issue's "done means": CreateOTAUpdate to a group of two
devices; each reads its job, describes the stream, downloads a 1 MB file in
blocks with a bitmap (one in JSON, one in CBOR), checks the SHA-256 and
reports SUCCEEDED; the job ends COMPLETED and the OTA update CREATE_COMPLETE.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.request

import boto3
import cbor2
import pytest
from moto.server import ThreadedMotoServer

from localiot.services.ota import file_delivery as fd
from localiot.testing import local_server
from test_mqtt_tls import NOT_AUTHORIZED, address, ca_file, device_pool, new_certificate

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ota"
IMAGE = hashlib.sha256(b"seed").digest() * (1024 * 1024 // 32)  # 1 MB
SMALL = bytes(range(256)) * 10  # 2560 bytes: 10 blocks of 256
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
THING = "${iot:Connection.Thing.ThingName}"
DEVICE_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/{THING}"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
     "Resource": [f"{ARN}:topic/$aws/things/{THING}/streams/*", f"{ARN}:topic/$aws/things/{THING}/jobs/*"]},
    {"Effect": "Allow", "Action": "iot:Subscribe",
     "Resource": [f"{ARN}:topicfilter/$aws/things/{THING}/streams/*", f"{ARN}:topicfilter/$aws/things/{THING}/jobs/*"]},
]}


@pytest.fixture(scope="module")
def s3():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name=REGION,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="firmware")
    yield client
    server.stop()


@pytest.fixture(scope="module")
def server(s3):
    with local_server(aws_endpoint_url=s3.meta.endpoint_url, downstream_access_key="testing",
                      downstream_secret_key="testing", background_period=0) as srv:
        yield srv


@pytest.fixture
def iot(server, s3):
    server.reset()
    s3.put_object(Bucket="firmware", Key="app.bin", Body=IMAGE)
    s3.put_object(Bucket="firmware", Key="small.bin", Body=SMALL)
    return boto3.client("iot", endpoint_url=server.endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def device_for(server, iot, tmp_path):
    """device_for(thing) -> a connected Device whose certificate is attached to the thing."""
    _, port = address(iot)
    ca = ca_file(server, tmp_path)
    iot.create_policy(policyName="device", policyDocument=json.dumps(DEVICE_POLICY))
    with device_pool() as make:
        def connect(thing):
            iot.create_thing(thingName=thing)
            cert = new_certificate(iot, tmp_path, thing)
            iot.attach_policy(policyName="device", target=cert.arn)
            iot.attach_thing_principal(thingName=thing, principal=cert.arn)
            return make(port, thing, ca=ca, cert=cert).connect_ok()

        yield connect


def settle(server):
    request = urllib.request.Request(server.endpoint + "/_localiot/clock", method="POST",
                                     data=json.dumps({"advance": 0}).encode())
    urllib.request.urlopen(request).read()


class Streams:
    """A device's side of the protocol, as the guide tells a device to do it."""

    def __init__(self, device, thing: str, stream_id: str, fmt: str):
        self.device, self.fmt = device, fmt
        self.base = f"$aws/things/{thing}/streams/{stream_id}"
        for suffix in ("description", "data", "rejected"):
            assert device.subscribe(f"{self.base}/{suffix}/{fmt}") == [1]

    def encode(self, body: dict) -> bytes:
        return cbor2.dumps(body) if self.fmt == "cbor" else json.dumps(body).encode()

    def decode(self, payload: bytes) -> dict:
        return cbor2.loads(payload) if self.fmt == "cbor" else json.loads(payload)

    def ask(self, action: str, body: dict | bytes) -> None:
        payload = body if isinstance(body, bytes) else self.encode(body)
        assert self.device.publish(f"{self.base}/{action}/{self.fmt}", payload) == 0

    def answer(self) -> tuple[str, dict]:
        message = self.device.expect()
        while not message.topic.startswith(self.base):
            message = self.device.expect()
        return message.topic.rsplit("/", 2)[1], self.decode(message.payload)

    def rejected(self, action: str, body) -> dict:
        self.ask(action, body)
        kind, reply = self.answer()
        assert kind == "rejected", reply
        return reply

    def download(self, file_id: int, size: int, block_size: int, version: int | None = None) -> bytes:
        """Blocks by bitmap: ask for every missing block, take what comes, ask again for the rest."""
        total = fd.block_count(size, block_size)
        blocks: dict[int, bytes] = {}
        requests = 0
        while len(blocks) < total:
            missing = [b for b in range(total) if b not in blocks]
            offset = missing[0]
            bitmap = fd.bitmap_of(missing, offset)
            request = {"c": f"r{requests}", "f": file_id, "l": block_size, "o": offset, "n": 32,
                       "b": bitmap if self.fmt == "cbor" else bitmap.hex()}
            if version is not None:
                request["s"] = version
            self.ask("get", request)
            requests += 1
            expected = min(32, 131072 // block_size, len(missing))
            for _ in range(expected):
                kind, reply = self.answer()
                assert kind == "data", reply
                assert reply["c"] == request["c"] and reply["f"] == file_id
                payload = fd.payload_of(reply)
                assert reply["l"] == len(payload)
                blocks[reply["i"]] = payload
        return b"".join(blocks[b] for b in range(total))


class JobsClient:
    def __init__(self, device, thing: str):
        self.device, self.base = device, f"$aws/things/{thing}/jobs"
        assert device.subscribe(f"{self.base}/start-next/accepted") == [1]
        assert device.subscribe(f"{self.base}/+/update/accepted") == [1]

    def start_next(self) -> dict:
        assert self.device.publish(f"{self.base}/start-next", json.dumps({"clientToken": "s"})) == 0
        return json.loads(self.device.expect(f"{self.base}/start-next/accepted").payload)["execution"]

    def succeed(self, job_id: str) -> None:
        assert self.device.publish(f"{self.base}/{job_id}/update", json.dumps({"status": "SUCCEEDED"})) == 0
        self.device.expect(f"{self.base}/{job_id}/update/accepted")


def run_ota_device(device, thing: str, fmt: str, results: dict) -> None:
    try:
        jobs = JobsClient(device, thing)
        execution = jobs.start_next()
        ota = execution["jobDocument"]["afr_ota"]
        [file] = ota["files"]
        streams = Streams(device, thing, ota["streamname"], fmt)
        streams.ask("describe", {"c": "d"})
        kind, description = streams.answer()
        assert kind == "description" and description["c"] == "d"
        assert description["r"] == [{"f": file["fileid"], "z": file["filesize"]}]
        data = streams.download(file["fileid"], file["filesize"], 4096, version=description["s"])
        results[thing] = hashlib.sha256(data).hexdigest()
        jobs.succeed(execution["jobId"])
    except BaseException as error:  # reported by the test thread
        results[thing] = error


def test_ota_update_downloaded_by_two_devices_json_and_cbor(server, iot, device_for):
    iot.create_thing_group(thingGroupName="fleet")
    devices = {}
    for thing in ("dev-json", "dev-cbor"):
        devices[thing] = device_for(thing)
        iot.add_thing_to_thing_group(thingGroupName="fleet", thingName=thing)
    iot.create_ota_update(otaUpdateId="app-2", targets=[f"{ARN}:thinggroup/fleet"], roleArn=ROLE, files=[
        {"fileName": "/ota/app.bin", "fileLocation": {"s3Location": {"bucket": "firmware", "key": "app.bin"}}}])
    settle(server)
    assert iot.get_ota_update(otaUpdateId="app-2")["otaUpdateInfo"]["otaUpdateStatus"] == "CREATE_COMPLETE"

    results: dict = {}
    threads = [threading.Thread(target=run_ota_device, args=(devices[t], t, t.split("-")[1], results))
               for t in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    expected = hashlib.sha256(IMAGE).hexdigest()
    assert results == {"dev-json": expected, "dev-cbor": expected}
    job = iot.describe_job(jobId="AFR_OTA-app-2")["job"]
    assert job["status"] == "COMPLETED" and job["jobProcessDetails"]["numberOfSucceededThings"] == 2
    assert iot.get_ota_update(otaUpdateId="app-2")["otaUpdateInfo"]["otaUpdateStatus"] == "CREATE_COMPLETE"


@pytest.mark.parametrize("fmt", ["json", "cbor"])
def test_rejections_leave_the_stream_usable(iot, device_for, fmt):
    iot.create_stream(streamId="small", roleArn=ROLE,
                      files=[{"fileId": 1, "s3Location": {"bucket": "firmware", "key": "small.bin"}}])
    streams = Streams(device_for("dev"), "dev", "small", fmt)
    cases = [
        ({"c": "a", "f": 1, "l": 128}, "BlockSizeOutOfBounds", "a"),
        ({"c": "b", "f": 1, "l": 256, "s": 2}, "VersionMismatch", "b"),
        ({"c": "c", "f": 9, "l": 256}, "ResourceNotFound", "c"),
        ({"c": "d", "f": 1, "l": 256, "o": 10}, "ResourceNotFound", "d"),  # the block past the end
        ({"c": "e", "f": 1, "l": 256, "o": 98305}, "OffsetOutOfBounds", "e"),
        ({"c": "x" * 65, "f": 1, "l": 256}, "InvalidRequest", None),
    ]
    for request, code, token in cases:
        reply = streams.rejected("get", request)
        assert reply["o"] == code and reply.get("c") == token and reply["m"]
    assert streams.rejected("get", b"{broken")["o"] == ("InvalidCbor" if fmt == "cbor" else "InvalidJson")
    # nothing disturbed: the whole file still comes, the last block short
    assert streams.download(1, len(SMALL), 1024, version=1) == SMALL
    missing = Streams(streams.device, "dev", "no-such-stream", fmt)
    reply = missing.rejected("describe", {"c": "m"})
    assert reply["o"] == "ResourceNotFound" and reply["c"] == "m"


def test_changed_s3_object_and_stream_update(iot, s3, device_for):
    iot.create_stream(streamId="live", roleArn=ROLE, description="v1",
                      files=[{"fileId": 0, "s3Location": {"bucket": "firmware", "key": "small.bin"}}])
    streams = Streams(device_for("dev"), "dev", "live", "json")
    streams.ask("describe", {})
    assert streams.answer() == ("description", {"s": 1, "d": "v1", "r": [{"f": 0, "z": len(SMALL)}]})
    assert streams.download(0, len(SMALL), 512) == SMALL
    s3.put_object(Bucket="firmware", Key="small.bin", Body=SMALL[:1000])  # changed under the stream
    assert streams.rejected("describe", {"c": "e"})["o"] == "ETagMismatch"
    assert streams.rejected("get", {"c": "g", "f": 0, "l": 512})["o"] == "ETagMismatch"
    iot.update_stream(streamId="live", description="v2")  # a new version reads S3 again
    streams.ask("describe", {})
    assert streams.answer() == ("description", {"s": 2, "d": "v2", "r": [{"f": 0, "z": 1000}]})
    assert streams.download(0, 1000, 256, version=2) == SMALL[:1000]
    s3.delete_object(Bucket="firmware", Key="small.bin")
    iot.update_stream(streamId="live", description="v3")
    assert streams.rejected("get", {"f": 0, "l": 256})["o"] == "ResourceNotFound"


def test_policies_hold_on_stream_topics(iot, device_for):
    iot.create_stream(streamId="small", roleArn=ROLE,
                      files=[{"fileId": 1, "s3Location": {"bucket": "firmware", "key": "small.bin"}}])
    device = device_for("dev")
    device_for("other")
    # another thing's stream topics: neither publish nor subscribe
    assert device.publish("$aws/things/other/streams/small/get/json", b'{"f":1,"l":256}') == NOT_AUTHORIZED
    assert device.subscribe("$aws/things/other/streams/small/data/json") == [NOT_AUTHORIZED]
    # the answers are the service's to publish
    assert device.publish("$aws/things/dev/streams/small/data/json", b"{}") == NOT_AUTHORIZED
    assert Streams(device, "dev", "small", "json").download(1, len(SMALL), 256) == SMALL
