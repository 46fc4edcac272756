"""Job documents in S3 and presigned URLs, against moto's server as the
downstream AWS endpoint (LOCALIOT_AWS_ENDPOINT_URL)."""

import json
import urllib.parse
import urllib.request

import pytest
from botocore.exceptions import ClientError

from localiot.testing import ACCOUNT, error_of, make_client

FIRMWARE = b"\x7fELF firmware 2.0"
DOC = {"operation": "update", "url": "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/fw-bucket/images/fw.bin}"}


@pytest.fixture(scope="module")
def localiot_settings(localiot_moto):
    s3 = make_client(localiot_moto, "s3")
    s3.create_bucket(Bucket="fw-bucket")
    s3.put_object(Bucket="fw-bucket", Key="jobs/update.json", Body=json.dumps(DOC).encode())
    s3.put_object(Bucket="fw-bucket", Key="images/fw.bin", Body=FIRMWARE)
    return {"aws_endpoint_url": localiot_moto, "downstream_access_key": "testing",
            "downstream_secret_key": "testing"}


@pytest.fixture
def clients(localiot_server, iot):
    iot.create_thing(thingName="dev")
    return iot, make_client(localiot_server, "iot-jobs-data")


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
