"""Job documents in S3 and presigned URLs, against moto's server as the
downstream AWS endpoint (LOCALIOT_AWS_ENDPOINT_URL)."""

import json
import urllib.parse
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from localiot.testing import local_server

ACCOUNT = "123456789012"
FIRMWARE = b"\x7fELF firmware 2.0"
DOC = {"operation": "update", "url": "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/fw-bucket/images/fw.bin}"}


def error_of(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="fw-bucket")
    s3.put_object(Bucket="fw-bucket", Key="jobs/update.json", Body=json.dumps(DOC).encode())
    s3.put_object(Bucket="fw-bucket", Key="images/fw.bin", Body=FIRMWARE)
    yield url
    server.stop()


@pytest.fixture(scope="module")
def server(moto_url):
    with local_server(aws_endpoint_url=moto_url, downstream_access_key="testing",
                      downstream_secret_key="testing") as srv:
        yield srv


@pytest.fixture
def clients(server):
    server.reset()
    kwargs = dict(endpoint_url=server.endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
    iot = boto3.client("iot", **kwargs)
    iot.create_thing(thingName="dev")
    return iot, boto3.client("iot-jobs-data", **kwargs)


TARGET = [f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/dev"]


@pytest.mark.parametrize("source", [
    "https://s3.amazonaws.com/fw-bucket/jobs/update.json",
    "https://fw-bucket.s3.amazonaws.com/jobs/update.json",
    "https://s3.us-east-1.amazonaws.com/fw-bucket/jobs/update.json",
    "s3://fw-bucket/jobs/update.json",
])
def test_document_source(clients, source):
    iot, _ = clients
    iot.create_job(jobId="from-s3", targets=TARGET, documentSource=source)
    assert iot.describe_job(jobId="from-s3")["documentSource"] == source
    assert json.loads(iot.get_job_document(jobId="from-s3")["document"]) == DOC


def test_document_source_errors(clients):
    iot, _ = clients
    for source in ("https://s3.amazonaws.com/fw-bucket/missing.json", "s3://no-such-bucket/x.json"):
        with pytest.raises(ClientError) as e:
            iot.create_job(jobId="missing", targets=TARGET, documentSource=source)
        assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="notes3", targets=TARGET, documentSource="https://example.com/doc.json")
    assert error_of(e) == ("InvalidRequestException", 400)
    assert iot.list_jobs()["jobs"] == []


def test_presigned_url_in_device_documents(clients):
    iot, data = clients
    iot.create_job(jobId="ota", targets=TARGET, document=json.dumps(DOC),
                   presignedUrlConfig={"roleArn": f"arn:aws:iam::{ACCOUNT}:role/jobs-s3", "expiresInSec": 300})
    # the control plane keeps the placeholder
    assert json.loads(iot.get_job_document(jobId="ota")["document"]) == DOC
    execution = data.start_next_pending_job_execution(thingName="dev")["execution"]
    url = json.loads(execution["jobDocument"])["url"]
    assert "${aws:iot" not in url
    parsed = urllib.parse.urlparse(url)
    assert parsed.path == "/fw-bucket/images/fw.bin"
    query = urllib.parse.parse_qs(parsed.query)
    assert query["X-Amz-Expires"] == ["300"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    with urllib.request.urlopen(url) as response:  # the device downloads the firmware
        assert response.read() == FIRMWARE


def test_template_with_document_source(clients):
    iot, data = clients
    iot.create_job_template(jobTemplateId="s3tpl", description="from S3",
                            documentSource="https://s3.amazonaws.com/fw-bucket/jobs/update.json")
    assert iot.describe_job_template(jobTemplateId="s3tpl")["documentSource"].endswith("update.json")
    iot.create_job(jobId="tpl-job", targets=TARGET,
                   jobTemplateArn=f"arn:aws:iot:us-east-1:{ACCOUNT}:jobtemplate/s3tpl")
    assert json.loads(iot.get_job_document(jobId="tpl-job")["document"]) == DOC
    document = json.loads(data.describe_job_execution(thingName="dev", jobId="tpl-job")["execution"]["jobDocument"])
    assert document["url"].startswith("http") and "X-Amz" in document["url"]
