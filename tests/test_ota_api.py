"""OTA updates through boto3, with moto's server as the downstream S3 (and
Signer): the afr_ota job, its stream, statuses, errors and deletion."""

import base64
import hashlib
import json
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from localiot.testing import local_server

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ota"
IMAGE = bytes(range(256)) * 4096  # 1 MB
SIGNATURE = b"0E\x02!\x00signature-bytes"


def arn(kind, name):
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:{kind}/{name}"


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="firmware")
    s3.put_object(Bucket="firmware", Key="images/app-2.0.bin", Body=IMAGE)
    yield url
    server.stop()


@pytest.fixture(scope="module")
def server(moto_url):
    with local_server(aws_endpoint_url=moto_url, downstream_access_key="testing",
                      downstream_secret_key="testing", background_period=0) as srv:
        yield srv


@pytest.fixture
def iot(server):
    server.reset()
    client = boto3.client("iot", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_thing_group(thingGroupName="fleet")
    for name in ("dev-1", "dev-2"):
        client.create_thing(thingName=name)
        client.add_thing_to_thing_group(thingGroupName="fleet", thingName=name)
    return client


def settle(server):
    """Move the clock by nothing: the background work runs and waits for OTA creations under way."""
    request = urllib.request.Request(server.endpoint + "/_localiot/clock", method="POST",
                                     data=json.dumps({"advance": 0}).encode())
    urllib.request.urlopen(request).read()


def s3_file(key="images/app-2.0.bin", **extra):
    return {"fileName": "/ota/app.bin", "fileLocation": {"s3Location": {"bucket": "firmware", "key": key}}, **extra}


SIGNED = {"customCodeSigning": {"signature": {"inlineDocument": SIGNATURE},
                                "certificateChain": {"certificateName": "ecdsa-signer.crt"},
                                "hashAlgorithm": "SHA256", "signatureAlgorithm": "ECDSA"}}


def test_create_from_s3_makes_the_stream_and_the_afr_ota_job(iot, server):
    created = iot.create_ota_update(otaUpdateId="app-2", targets=[arn("thinggroup", "fleet")],
                                    files=[s3_file(fileType=3, codeSigning=SIGNED)], roleArn=ROLE,
                                    description="app 2.0", tags=[{"Key": "release", "Value": "2.0"}])
    assert created["otaUpdateStatus"] == "CREATE_PENDING"
    assert created["awsIotJobId"] == "AFR_OTA-app-2" and created["awsIotJobArn"] == arn("job", "AFR_OTA-app-2")
    assert created["otaUpdateArn"] == arn("otaupdate", "app-2")
    settle(server)
    info = iot.get_ota_update(otaUpdateId="app-2")["otaUpdateInfo"]
    assert info["otaUpdateStatus"] == "CREATE_COMPLETE", info.get("errorInfo")
    assert info["awsIotJobId"] == "AFR_OTA-app-2" and info["protocols"] == ["MQTT"]
    assert info["targetSelection"] == "SNAPSHOT" and info["description"] == "app 2.0"
    assert info["otaUpdateFiles"][0]["codeSigning"]["customCodeSigning"]["signature"]["inlineDocument"] == SIGNATURE

    [stream] = iot.list_streams()["streams"]
    assert stream["streamId"].startswith("AFR_OTA-") and len(stream["streamId"]) == 44
    described = iot.describe_stream(streamId=stream["streamId"])["streamInfo"]
    assert described["files"] == [{"fileId": 0, "s3Location": {"bucket": "firmware", "key": "images/app-2.0.bin"}}]
    assert described["roleArn"] == ROLE

    job = iot.describe_job(jobId="AFR_OTA-app-2")["job"]
    assert job["targets"] == [arn("thinggroup", "fleet")] and job["status"] == "IN_PROGRESS"
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 2
    document = json.loads(iot.get_job_document(jobId="AFR_OTA-app-2")["document"])
    assert document == {"afr_ota": {"protocols": ["MQTT"], "streamname": stream["streamId"], "files": [{
        "filepath": "/ota/app.bin", "filesize": len(IMAGE), "fileid": 0, "certfile": "ecdsa-signer.crt",
        "fileType": 3, "sig-sha256-ecdsa": base64.b64encode(SIGNATURE).decode()}]}}
    assert iot.list_tags_for_resource(resourceArn=arn("otaupdate", "app-2"))["tags"] == [
        {"Key": "release", "Value": "2.0"}]
    assert [u["otaUpdateId"] for u in iot.list_ota_updates(otaUpdateStatus="CREATE_COMPLETE")["otaUpdates"]] \
        == ["app-2"]
    assert iot.list_ota_updates(otaUpdateStatus="CREATE_FAILED")["otaUpdates"] == []
    # the stream an OTA update uses cannot be deleted while the update exists
    with pytest.raises(ClientError) as e:
        iot.delete_stream(streamId=stream["streamId"])
    assert code(e) == "DeleteConflictException"


def test_job_configurations_are_carried(iot, server):
    iot.create_ota_update(
        otaUpdateId="paced", targets=[arn("thing", "dev-1")], files=[s3_file()], roleArn=ROLE,
        targetSelection="CONTINUOUS",
        awsJobExecutionsRolloutConfig={"maximumPerMinute": 10},
        awsJobAbortConfig={"abortCriteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                                                  "thresholdPercentage": 50, "minNumberOfExecutedThings": 2}]},
        awsJobTimeoutConfig={"inProgressTimeoutInMinutes": 30},
        awsJobPresignedUrlConfig={"expiresInSec": 600},
        additionalParameters={"note": "kept, not sent"})
    settle(server)
    info = iot.get_ota_update(otaUpdateId="paced")["otaUpdateInfo"]
    assert info["otaUpdateStatus"] == "CREATE_COMPLETE"
    assert info["awsJobExecutionsRolloutConfig"] == {"maximumPerMinute": 10}
    assert info["awsJobPresignedUrlConfig"] == {"expiresInSec": 600}
    assert info["additionalParameters"] == {"note": "kept, not sent"}
    job = iot.describe_job(jobId="AFR_OTA-paced")["job"]
    assert job["targetSelection"] == "CONTINUOUS"
    assert job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 10}
    assert job["abortConfig"]["criteriaList"][0]["thresholdPercentage"] == 50
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    assert job["presignedUrlConfig"] == {"roleArn": ROLE, "expiresInSec": 600}
    assert "note" not in iot.get_job_document(jobId="AFR_OTA-paced")["document"]


def test_http_protocol_gives_devices_a_presigned_url(iot, server):
    iot.create_ota_update(otaUpdateId="over-http", targets=[arn("thing", "dev-1")], files=[s3_file()],
                          roleArn=ROLE, protocols=["HTTP"], awsJobPresignedUrlConfig={"expiresInSec": 300})
    settle(server)
    assert iot.get_ota_update(otaUpdateId="over-http")["otaUpdateInfo"]["otaUpdateStatus"] == "CREATE_COMPLETE"
    assert iot.list_streams()["streams"] == []  # HTTP only: no stream
    stored = json.loads(iot.get_job_document(jobId="AFR_OTA-over-http")["document"])["afr_ota"]
    assert "streamname" not in stored
    assert stored["files"][0]["update_data_url"] == \
        "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/firmware/images/app-2.0.bin}"
    assert stored["files"][0]["auth_scheme"] == "aws.s3.presigned"
    jobs_data = boto3.client("iot-jobs-data", endpoint_url=server.endpoint, region_name="us-east-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing")
    execution = jobs_data.start_next_pending_job_execution(thingName="dev-1")["execution"]
    url = json.loads(execution["jobDocument"])["afr_ota"]["files"][0]["update_data_url"]
    assert "X-Amz-Expires=300" in url
    with urllib.request.urlopen(url) as response:
        assert hashlib.sha256(response.read()).digest() == hashlib.sha256(IMAGE).digest()


def test_existing_stream_is_used_and_kept(iot, server):
    iot.create_stream(streamId="mine", roleArn=ROLE,
                      files=[{"fileId": 4, "s3Location": {"bucket": "firmware", "key": "images/app-2.0.bin"}}])
    iot.create_ota_update(otaUpdateId="from-stream", targets=[arn("thing", "dev-2")], roleArn=ROLE,
                          files=[{"fileName": "app", "fileLocation": {"stream": {"streamId": "mine", "fileId": 4}}}])
    settle(server)
    assert iot.get_ota_update(otaUpdateId="from-stream")["otaUpdateInfo"]["otaUpdateStatus"] == "CREATE_COMPLETE"
    document = json.loads(iot.get_job_document(jobId="AFR_OTA-from-stream")["document"])["afr_ota"]
    assert document["streamname"] == "mine" and document["files"][0]["fileid"] == 4
    assert document["files"][0]["filesize"] == len(IMAGE)
    assert [s["streamId"] for s in iot.list_streams()["streams"]] == ["mine"]
    with pytest.raises(ClientError) as e:
        iot.delete_stream(streamId="mine")
    assert code(e) == "DeleteConflictException"
    iot.delete_ota_update(otaUpdateId="from-stream", deleteStream=True, forceDeleteAWSJob=True)
    assert [s["streamId"] for s in iot.list_streams()["streams"]] == ["mine"]  # yours is not deleted
    iot.delete_stream(streamId="mine")


@pytest.mark.parametrize("files, expected", [
    ([s3_file(key="images/missing.bin")], "ResourceNotFoundException"),
    ([{"fileLocation": {"stream": {"streamId": "no-such-stream", "fileId": 0}}}], "ResourceNotFoundException"),
])
def test_missing_files_fail_the_creation(iot, server, files, expected):
    iot.create_ota_update(otaUpdateId="broken", targets=[arn("thing", "dev-1")], files=files, roleArn=ROLE)
    settle(server)
    info = iot.get_ota_update(otaUpdateId="broken")["otaUpdateInfo"]
    assert info["otaUpdateStatus"] == "CREATE_FAILED"
    assert info["errorInfo"]["code"] == expected and info["errorInfo"]["message"]
    assert "awsIotJobId" not in info
    assert iot.list_streams()["streams"] == [] and iot.list_jobs()["jobs"] == []
    assert [u["otaUpdateId"] for u in iot.list_ota_updates(otaUpdateStatus="CREATE_FAILED")["otaUpdates"]] \
        == ["broken"]
    iot.delete_ota_update(otaUpdateId="broken")
    assert iot.list_ota_updates()["otaUpdates"] == []


def test_signing_goes_to_the_downstream_signer(iot, server):
    """moto's server has no StartSigningJob: the update fails with the signer's answer."""
    start = {"startSigningJobParameter": {"signingProfileName": "ota_profile",
                                          "destination": {"s3Destination": {"bucket": "firmware", "prefix": "signed/"}},
                                          "signingProfileParameter": {"certificatePathOnDevice": "/cert.pem"}}}
    iot.create_ota_update(otaUpdateId="signed", targets=[arn("thing", "dev-1")], roleArn=ROLE,
                          files=[s3_file(codeSigning=start)])
    settle(server)
    info = iot.get_ota_update(otaUpdateId="signed")["otaUpdateInfo"]
    assert info["otaUpdateStatus"] == "CREATE_FAILED"
    assert "Signer" in info["errorInfo"]["message"]
    assert iot.list_jobs()["jobs"] == []


def test_bad_requests_change_nothing(iot, server):
    iot.create_ota_update(otaUpdateId="taken", targets=[arn("thing", "dev-1")], files=[s3_file()], roleArn=ROLE)
    both = {"fileLocation": {"stream": {"streamId": "s", "fileId": 0},
                             "s3Location": {"bucket": "firmware", "key": "k"}}}
    mixed = [s3_file(), {"fileLocation": {"stream": {"streamId": "s", "fileId": 0}}}]
    two_ways = s3_file(codeSigning={**SIGNED, "awsSignerJobId": "job-1"})
    cases = [
        (dict(otaUpdateId="taken"), "ResourceAlreadyExistsException"),
        (dict(roleArn="arn:aws:iam::123456789012:user/me"), "InvalidRequestException"),
        (dict(targets=[arn("thing", "ghost")]), "ResourceNotFoundException"),
        (dict(targets=[arn("policy", "p")]), "InvalidRequestException"),
        (dict(files=[both]), "InvalidRequestException"),
        (dict(files=[{"fileName": "x"}]), "InvalidRequestException"),
        (dict(files=mixed), "InvalidRequestException"),
        (dict(files=[two_ways]), "InvalidRequestException"),
        (dict(otaUpdateId="x" * 57), "InvalidRequestException"),
        (dict(protocols=["MQTT", "MQTT"]), "InvalidRequestException"),
    ]
    for change, expected in cases:
        request = {"otaUpdateId": "new", "targets": [arn("thing", "dev-1")], "files": [s3_file()], "roleArn": ROLE,
                   **change}
        with pytest.raises(ClientError) as e:
            iot.create_ota_update(**request)
        assert code(e) == expected, change
    assert [u["otaUpdateId"] for u in iot.list_ota_updates()["otaUpdates"]] == ["taken"]
    with pytest.raises(ClientError) as e:
        iot.get_ota_update(otaUpdateId="new")
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        iot.delete_ota_update(otaUpdateId="new")
    assert code(e) == "ResourceNotFoundException"


def test_delete_needs_force_while_the_job_runs(iot, server):
    iot.create_ota_update(otaUpdateId="running", targets=[arn("thinggroup", "fleet")], files=[s3_file()],
                          roleArn=ROLE)
    settle(server)
    [stream] = iot.list_streams()["streams"]
    with pytest.raises(ClientError) as e:
        iot.delete_ota_update(otaUpdateId="running", deleteStream=True)
    assert code(e) == "InvalidRequestException"
    assert iot.get_ota_update(otaUpdateId="running")["otaUpdateInfo"]["otaUpdateStatus"] == "CREATE_COMPLETE"
    assert iot.describe_job(jobId="AFR_OTA-running")["job"]["status"] == "IN_PROGRESS"
    iot.delete_ota_update(otaUpdateId="running", deleteStream=True, forceDeleteAWSJob=True)
    with pytest.raises(ClientError) as e:
        iot.describe_stream(streamId=stream["streamId"])
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        iot.describe_job(jobId="AFR_OTA-running")
    assert code(e) == "ResourceNotFoundException"
    assert iot.list_ota_updates()["otaUpdates"] == []


def test_list_pages(iot, server):
    for i in range(5):
        iot.create_ota_update(otaUpdateId=f"u{i}", targets=[arn("thing", "dev-1")], files=[s3_file()], roleArn=ROLE)
    pages = list(iot.get_paginator("list_ota_updates").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["otaUpdates"]) for p in pages] == [2, 2, 1]
    assert sorted(u["otaUpdateId"] for p in pages for u in p["otaUpdates"]) == [f"u{i}" for i in range(5)]
    settle(server)
    assert len(iot.list_ota_updates(otaUpdateStatus="CREATE_COMPLETE")["otaUpdates"]) == 5
    assert iot.list_ota_updates(otaUpdateStatus="CREATE_PENDING")["otaUpdates"] == []
