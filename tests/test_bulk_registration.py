"""Bulk registration (StartThingRegistrationTask ...) against a real server, with moto's S3 downstream."""

import asyncio
import functools
import json
import time
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from localiot.services.registry import bulk_registration
from localiot.services.registry.bulk_registration import (
    run_pending_tasks,
    run_pending_tasks_async,
)
from localiot.testing import ACCOUNT, NOT_AUTHORIZED, REGION, advance, error_of, make_client

ROLE = f"arn:aws:iam::{ACCOUNT}:role/BulkRegistration"
POLICY_TEXT = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["iot:Connect"], "Resource": ["*"]}],
})
THING_ONLY = json.dumps({
    "Parameters": {"ThingName": {"Type": "String"}, "SerialNumber": {"Type": "String", "Default": "none"}},
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "ThingName": {"Ref": "ThingName"},
                "AttributePayload": {"serial": {"Ref": "SerialNumber"}, "model": "X1"},
            },
        },
    },
})
WITH_CERTIFICATE = json.dumps({
    "Parameters": {
        "ThingName": {"Type": "String"},
        "SerialNumber": {"Type": "String"},
        "CSR": {"Type": "String"},
    },
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "ThingName": {"Ref": "ThingName"},
                "AttributePayload": {"serial": {"Ref": "SerialNumber"}, "model": "X1"},
            },
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {"CertificateSigningRequest": {"Ref": "CSR"}, "Status": "ACTIVE"},
        },
        "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "BulkPolicy", "PolicyDocument": POLICY_TEXT}},
    },
})


# fixtures ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def localiot_settings(localiot_moto):
    return {"aws_endpoint_url": localiot_moto}


@pytest.fixture
def s3(localiot_moto):
    return make_client(localiot_moto, "s3")


@pytest.fixture
def bucket(s3):
    name = f"bulk-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


# helpers ----------------------------------------------------------------------------
def run(server, **kwargs):
    return server.call(functools.partial(run_pending_tasks, server.app.store, server.app.runtime, **kwargs))


def upload(s3, bucket, lines, key="input/devices.json"):
    body = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return key


def start(iot, bucket, key, body=THING_ONLY):
    return iot.start_thing_registration_task(templateBody=body, inputFileBucket=bucket, inputFileKey=key,
                                             roleArn=ROLE)["taskId"]


def describe(iot, task_id):
    return iot.describe_thing_registration_task(taskId=task_id)


def make_csr(common_name):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(Encoding.PEM).decode()


def report_links(iot, task_id, report_type, **kwargs):
    out = iot.list_thing_registration_task_reports(taskId=task_id, reportType=report_type, **kwargs)
    assert out["reportType"] == report_type
    return out


def fetch(url):
    with urllib.request.urlopen(url) as response:
        return [json.loads(line) for line in response.read().decode().splitlines() if line]


def report_lines(iot, task_id, report_type):
    lines = []
    for url in report_links(iot, task_id, report_type)["resourceLinks"]:
        lines += fetch(url)
    return lines


def thing_arn(name):
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"


# the whole flow -------------------------------------------------------------------
def test_bulk_registration_end_to_end(iot, s3, bucket, localiot_server):
    key = upload(s3, bucket, [
        {"ThingName": "dev-1", "SerialNumber": "001", "CSR": make_csr("dev-1")},  # 0
        "",  # 1: blank lines are skipped
        {"ThingName": "dev-2", "SerialNumber": 2, "CSR": make_csr("dev-2")},  # 2: numbers are fine
        "this is not json",  # 3
        {"ThingName": "dev-3"},  # 4: parameters missing
        {"ThingName": "bad name!", "SerialNumber": "9", "CSR": make_csr("bad")},  # 5: CreateThing refuses
        "[1, 2]",  # 6: not an object
    ])
    task_id = start(iot, bucket, key, WITH_CERTIFICATE)
    uuid.UUID(task_id)

    task = describe(iot, task_id)
    assert task["status"] == "InProgress"
    assert (task["successCount"], task["failureCount"], task["percentageProgress"]) == (0, 0, 0)
    assert (task["inputFileBucket"], task["inputFileKey"], task["roleArn"]) == (bucket, key, ROLE)
    assert task["templateBody"] == WITH_CERTIFICATE
    assert task["creationDate"] == task["lastModifiedDate"]
    assert report_links(iot, task_id, "RESULTS")["resourceLinks"] == []

    assert run(localiot_server) == 6
    task = describe(iot, task_id)
    assert task["status"] == "Completed"
    assert (task["successCount"], task["failureCount"], task["percentageProgress"]) == (2, 4, 100)
    assert "message" not in task
    assert task["lastModifiedDate"] >= task["creationDate"]
    assert run(localiot_server) == 0  # nothing left to do

    # the things, with their certificates and the policy attached
    assert sorted(t["thingName"] for t in iot.list_things()["things"]) == ["dev-1", "dev-2"]
    assert iot.describe_thing(thingName="dev-1")["attributes"] == {"serial": "001", "model": "X1"}
    assert iot.describe_thing(thingName="dev-2")["attributes"] == {"serial": "2", "model": "X1"}
    certificates = iot.list_certificates()["certificates"]
    assert len(certificates) == 2  # the refused line's certificate was rolled back with it
    assert {c["status"] for c in certificates} == {"ACTIVE"}
    principals = iot.list_thing_principals(thingName="dev-1")["principals"]
    assert len(principals) == 1 and principals[0] in {c["certificateArn"] for c in certificates}
    assert [p["policyName"] for p in iot.list_attached_policies(target=principals[0])["policies"]] == ["BulkPolicy"]

    # the reports: a presigned link per object, the object itself in the input bucket
    results = report_lines(iot, task_id, "RESULTS")
    assert [r["referenceId"] for r in results] == ["0", "2"]
    first = results[0]["response"]
    assert first["ResourceArns"]["thing"] == thing_arn("dev-1")
    assert first["ResourceArns"]["certificate"] == principals[0]
    assert first["ResourceArns"]["policy"].endswith(":policy/BulkPolicy")
    assert first["CertificatePem"].startswith("-----BEGIN CERTIFICATE-----")
    errors = report_lines(iot, task_id, "ERRORS")
    assert [(e["referenceId"], e["errorCode"]) for e in errors] == [
        ("3", "InvalidRequestException"),
        ("4", "InvalidRequestException"),
        ("5", "ResourceRegistrationFailureException"),
        ("6", "InvalidRequestException"),
    ]
    assert "SerialNumber" in errors[1]["errorMessage"] or "CSR" in errors[1]["errorMessage"]
    assert all(e["errorMessage"] for e in errors)

    obj = s3.get_object(Bucket=bucket, Key=f"ThingRegistration/{task_id}/results-00001.json")
    assert [json.loads(line)["referenceId"] for line in obj["Body"].read().decode().splitlines()] == ["0", "2"]
    obj = s3.get_object(Bucket=bucket, Key=f"ThingRegistration/{task_id}/errors-00001.json")
    assert len(obj["Body"].read().decode().splitlines()) == 4


def test_task_without_certificate_and_existing_thing(iot, s3, bucket, localiot_server):
    iot.create_thing(thingName="dev-0", attributePayload={"attributes": {"serial": "old"}})
    key = upload(s3, bucket, [{"ThingName": "dev-0", "SerialNumber": "new"}, {"ThingName": "dev-1"}])
    task_id = start(iot, bucket, key)
    run(localiot_server)
    task = describe(iot, task_id)
    assert (task["status"], task["successCount"], task["failureCount"]) == ("Completed", 2, 0)
    # an existing thing keeps its attributes unless the template's OverrideSettings say otherwise
    assert iot.describe_thing(thingName="dev-0")["attributes"] == {"serial": "old"}
    assert iot.describe_thing(thingName="dev-1")["attributes"] == {"serial": "none", "model": "X1"}
    results = report_lines(iot, task_id, "RESULTS")
    assert results == [
        {"referenceId": "0", "response": {"ResourceArns": {"thing": thing_arn("dev-0")}}},
        {"referenceId": "1", "response": {"ResourceArns": {"thing": thing_arn("dev-1")}}},
    ]
    assert report_links(iot, task_id, "ERRORS")["resourceLinks"] == []


def test_empty_input_file_completes(iot, s3, bucket, localiot_server):
    key = upload(s3, bucket, ["", "  "])
    task_id = start(iot, bucket, key)
    assert run(localiot_server) == 0
    task = describe(iot, task_id)
    assert (task["status"], task["successCount"], task["failureCount"], task["percentageProgress"]) == (
        "Completed", 0, 0, 100)
    assert report_links(iot, task_id, "RESULTS")["resourceLinks"] == []


def test_async_runner_on_the_server_loop(iot, s3, bucket, localiot_server):
    key = upload(s3, bucket, [{"ThingName": f"dev-{i}"} for i in range(3)])
    task_id = start(iot, bucket, key)
    coroutine = run_pending_tasks_async(localiot_server.app.store, localiot_server.app.runtime)
    assert asyncio.run_coroutine_threadsafe(coroutine, localiot_server.loop).result(30) == 3
    task = describe(iot, task_id)
    assert (task["status"], task["successCount"]) == ("Completed", 3)
    assert [r["referenceId"] for r in report_lines(iot, task_id, "RESULTS")] == ["0", "1", "2"]


# connected devices ----------------------------------------------------------------
POLICY_FOR_EXISTING = json.dumps({
    "Parameters": {"ThingName": {"Type": "String"}, "CertificateId": {"Type": "String"}},
    "Resources": {
        "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "ThingName"}}},
        "certificate": {"Type": "AWS::IoT::Certificate",
                        "Properties": {"CertificateId": {"Ref": "CertificateId"}, "Status": "ACTIVE"}},
        "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "BulkPublish", "PolicyDocument": json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iot:Publish",
                           "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/bulk/*"}]})}},
    },
})


def test_a_connected_device_gets_the_policy_a_task_attaches_without_reconnecting(iot, s3, bucket, localiot_server,
                                                                               devices):
    """Each line's RegisterThing runs the commit listeners, as the API's does: the broker
    drops the cached grants of a device whose certificate got a policy."""
    connect_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect",
                                                            "Resource": "*"}]}
    device = devices.tls("bulk-lamp", policy=connect_only)
    assert device.publish("bulk/lamp", b"on") == NOT_AUTHORIZED  # the grants are now cached

    key = upload(s3, bucket, [{"ThingName": "bulk-lamp", "CertificateId": device.cert.id}])
    task_id = start(iot, bucket, key, POLICY_FOR_EXISTING)
    advance(localiot_server, 1)  # the server's time-driven work runs the task
    task = describe(iot, task_id)
    assert (task["status"], task["successCount"], task["failureCount"]) == ("Completed", 1, 0)
    policies = iot.list_attached_policies(target=device.cert.arn)["policies"]
    assert sorted(p["policyName"] for p in policies) == ["BulkPublish", device.cert.policy_name]
    assert iot.list_thing_principals(thingName="bulk-lamp")["principals"] == [device.cert.arn]

    assert device.publish("bulk/lamp", b"on") == 0  # same connection, fresh grants
    assert device.publish("elsewhere/lamp", b"on") == NOT_AUTHORIZED
    assert not device.closed.is_set()


# progress, stopping, resuming ------------------------------------------------------
def test_stop_while_the_async_runner_works(iot, s3, bucket, localiot_server):
    """API calls go on between lines; a stop lands between two lines and the books still balance."""
    key = upload(s3, bucket, [{"ThingName": f"dev-{i:03d}"} for i in range(150)])
    task_id = start(iot, bucket, key)
    future = asyncio.run_coroutine_threadsafe(
        run_pending_tasks_async(localiot_server.app.store, localiot_server.app.runtime), localiot_server.loop)
    deadline = time.monotonic() + 20
    while describe(iot, task_id)["successCount"] == 0:
        assert time.monotonic() < deadline, "the runner made no progress"
    try:
        iot.stop_thing_registration_task(taskId=task_id)
        stopped = True
    except ClientError as e:  # it finished first
        assert error_of(e) == ("InvalidRequestException", 400)
        stopped = False
    done = future.result(30)
    task = describe(iot, task_id)
    assert task["status"] == ("Cancelled" if stopped and task["successCount"] < 150 else "Completed")
    things = [t["thingName"] for p in iot.get_paginator("list_things").paginate() for t in p["things"]]
    assert len(things) == task["successCount"] == done == len(report_lines(iot, task_id, "RESULTS"))


def test_stop_cancels_between_lines(iot, s3, bucket, localiot_server):
    key = upload(s3, bucket, [{"ThingName": f"dev-{i}"} for i in range(4)] + ["oops"])
    task_id = start(iot, bucket, key)
    assert run(localiot_server, max_lines=2) == 2
    task = describe(iot, task_id)
    assert (task["status"], task["successCount"], task["failureCount"], task["percentageProgress"]) == (
        "InProgress", 2, 0, 40)

    iot.stop_thing_registration_task(taskId=task_id)
    assert describe(iot, task_id)["status"] == "Cancelling"
    assert iot.list_thing_registration_tasks(status="Cancelling")["taskIds"] == [task_id]
    iot.stop_thing_registration_task(taskId=task_id)  # again while cancelling: fine

    assert run(localiot_server) == 0
    task = describe(iot, task_id)
    assert (task["status"], task["successCount"], task["failureCount"], task["percentageProgress"]) == (
        "Cancelled", 2, 0, 40)
    assert sorted(t["thingName"] for t in iot.list_things()["things"]) == ["dev-0", "dev-1"]
    assert [r["referenceId"] for r in report_lines(iot, task_id, "RESULTS")] == ["0", "1"]
    assert report_links(iot, task_id, "ERRORS")["resourceLinks"] == []

    with pytest.raises(ClientError) as e:
        iot.stop_thing_registration_task(taskId=task_id)
    assert error_of(e) == ("InvalidRequestException", 400)


def test_stop_before_any_line_cancels_at_once(iot, s3, bucket, localiot_server):
    key = upload(s3, bucket, [{"ThingName": "dev-0"}])
    task_id = start(iot, bucket, key)
    iot.stop_thing_registration_task(taskId=task_id)
    assert describe(iot, task_id)["status"] == "Cancelled"
    assert run(localiot_server) == 0
    assert describe(iot, task_id)["status"] == "Cancelled"
    assert iot.list_things()["things"] == []


def test_a_budgeted_runner_resumes_where_it_stopped(iot, s3, bucket, localiot_server):
    key = upload(s3, bucket, [{"ThingName": "dev-0"}, "", "bad", {"ThingName": "dev-3"}, {"ThingName": "dev-4"}])
    task_id = start(iot, bucket, key)
    progress = []
    while describe(iot, task_id)["status"] == "InProgress":
        assert run(localiot_server, max_lines=1) <= 1
        progress.append(describe(iot, task_id)["percentageProgress"])
    assert progress == [25, 50, 75, 100]
    task = describe(iot, task_id)
    assert (task["status"], task["successCount"], task["failureCount"]) == ("Completed", 3, 1)
    assert [r["referenceId"] for r in report_lines(iot, task_id, "RESULTS")] == ["0", "3", "4"]
    assert [r["referenceId"] for r in report_lines(iot, task_id, "ERRORS")] == ["2"]


def test_tasks_run_oldest_first_and_a_leftover_lease_is_taken(iot, s3, bucket, localiot_server):
    first = start(iot, bucket, upload(s3, bucket, [{"ThingName": "a"}], key="a.json"))
    localiot_server.clock.advance(1)
    second = start(iot, bucket, upload(s3, bucket, [{"ThingName": "b"}], key="b.json"))

    def lease_of_a_stopped_process(store):
        with store.transaction(ACCOUNT, REGION) as tx:
            doc = tx.get(bulk_registration.KIND, first)
            doc["lease"], doc["leaseUntil"] = "another-process:1", 9e18
            tx.put(bulk_registration.KIND, first, doc)

    localiot_server.call(lease_of_a_stopped_process, localiot_server.app.store)
    assert run(localiot_server, max_lines=1) == 1
    assert describe(iot, first)["status"] == "Completed"
    assert describe(iot, second)["status"] == "InProgress"
    assert run(localiot_server) == 1
    assert describe(iot, second)["status"] == "Completed"


def test_a_task_leased_by_a_live_runner_is_left_alone(iot, s3, bucket, localiot_server):
    task_id = start(iot, bucket, upload(s3, bucket, [{"ThingName": "a"}]))

    def leased(store):
        with store.transaction(ACCOUNT, REGION) as tx:
            doc = tx.get(bulk_registration.KIND, task_id)
            doc["lease"], doc["leaseUntil"] = f"{bulk_registration.PROCESS_ID}:other", 9e18
            tx.put(bulk_registration.KIND, task_id, doc)

    localiot_server.call(leased, localiot_server.app.store)
    assert run(localiot_server) == 0
    assert describe(iot, task_id)["status"] == "InProgress"
    # a runner is on it, so stopping winds it down rather than cancelling at once
    iot.stop_thing_registration_task(taskId=task_id)
    assert describe(iot, task_id)["status"] == "Cancelling"


# errors ---------------------------------------------------------------------------
def test_invalid_template_is_refused(iot, bucket):
    with pytest.raises(ClientError) as e:
        start(iot, bucket, "x.json", body='{"Resources": {"x": {"Type": "AWS::IoT::Gizmo"}}}')
    assert error_of(e) == ("InvalidRequestException", 400)
    assert "AWS::IoT::Gizmo" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        start(iot, bucket, "x.json", body="not json")
    assert error_of(e) == ("InvalidRequestException", 400)
    assert "not valid JSON" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        iot.start_thing_registration_task(templateBody=THING_ONLY, inputFileBucket=bucket, inputFileKey="x.json",
                                          roleArn="arn:aws:iam::123456789012:user/someone")
    assert error_of(e) == ("InvalidRequestException", 400)
    assert iot.list_thing_registration_tasks()["taskIds"] == []


def test_unknown_task(iot):
    missing = str(uuid.uuid4())
    for call in (
        lambda: iot.describe_thing_registration_task(taskId=missing),
        lambda: iot.stop_thing_registration_task(taskId=missing),
        lambda: iot.list_thing_registration_task_reports(taskId=missing, reportType="RESULTS"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("ResourceNotFoundException", 404)


def test_missing_input_fails_the_task(iot, s3, bucket, localiot_server):
    no_key = start(iot, bucket, "nothing/here.json")
    no_bucket = start(iot, "no-such-bucket-" + uuid.uuid4().hex[:8], "devices.json")
    run(localiot_server)
    task = describe(iot, no_key)
    assert (task["status"], task["successCount"], task["failureCount"], task["percentageProgress"]) == (
        "Failed", 0, 0, 0)
    assert f"s3://{bucket}/nothing/here.json" in task["message"] and "NoSuchKey" in task["message"]
    assert "NoSuchBucket" in describe(iot, no_bucket)["message"]
    assert report_links(iot, no_key, "ERRORS")["resourceLinks"] == []
    with pytest.raises(ClientError) as e:
        iot.stop_thing_registration_task(taskId=no_key)
    assert error_of(e) == ("InvalidRequestException", 400)


def test_input_that_is_not_text_fails_the_task(iot, s3, bucket, localiot_server):
    s3.put_object(Bucket=bucket, Key="binary", Body=b"\xff\xfe\x00garbage")
    task_id = start(iot, bucket, "binary")
    run(localiot_server)
    task = describe(iot, task_id)
    assert task["status"] == "Failed" and "UTF-8" in task["message"]


def test_report_type_is_checked(iot, s3, bucket):
    task_id = start(iot, bucket, "x.json")
    with pytest.raises(ClientError) as e:
        iot.list_thing_registration_task_reports(taskId=task_id, reportType="EVERYTHING")
    assert error_of(e)[1] == 400


# pagination -------------------------------------------------------------------------
def test_list_tasks_by_id_with_status_filter_and_pages(iot, s3, bucket, localiot_server):
    good = upload(s3, bucket, [{"ThingName": "t"}])
    created = []
    for i in range(5):
        created.append(start(iot, bucket, good if i % 2 == 0 else f"missing-{i}.json"))
        localiot_server.clock.advance(1)
    run(localiot_server)
    created.append(start(iot, bucket, good))  # still in progress
    newest_first = sorted(created)  # AWS documents no order: the one list order, ascending by id

    page = iot.list_thing_registration_tasks(maxResults=4)
    assert page["taskIds"] == newest_first[:4]
    rest = iot.list_thing_registration_tasks(maxResults=4, nextToken=page["nextToken"])
    assert rest["taskIds"] == newest_first[4:] and "nextToken" not in rest

    paginator = iot.get_paginator("list_thing_registration_tasks")
    ids = [i for p in paginator.paginate(PaginationConfig={"PageSize": 2}) for i in p["taskIds"]]
    assert ids == newest_first

    completed = [i for p in paginator.paginate(status="Completed", PaginationConfig={"PageSize": 2})
                 for i in p["taskIds"]]
    assert completed == sorted([created[4], created[2], created[0]])
    assert iot.list_thing_registration_tasks(status="Failed")["taskIds"] == sorted([created[3], created[1]])
    assert iot.list_thing_registration_tasks(status="InProgress")["taskIds"] == [created[5]]
    assert iot.list_thing_registration_tasks(status="Cancelled")["taskIds"] == []


def test_reports_are_split_into_objects_and_paged(iot, s3, bucket, localiot_server, monkeypatch):
    monkeypatch.setattr(bulk_registration, "REPORT_LINES_PER_OBJECT", 2)
    lines = [{"ThingName": f"dev-{i}"} for i in range(5)] + ["bad"] * 3
    task_id = start(iot, bucket, upload(s3, bucket, lines))
    run(localiot_server)
    assert describe(iot, task_id)["status"] == "Completed"

    first = report_links(iot, task_id, "RESULTS", maxResults=2)
    assert len(first["resourceLinks"]) == 2 and first["nextToken"]
    second = report_links(iot, task_id, "RESULTS", maxResults=2, nextToken=first["nextToken"])
    assert len(second["resourceLinks"]) == 1 and "nextToken" not in second
    links = first["resourceLinks"] + second["resourceLinks"]
    assert [f"results-0000{i}.json" in link for i, link in enumerate(links, 1)] == [True] * 3
    assert [r["referenceId"] for link in links for r in fetch(link)] == ["0", "1", "2", "3", "4"]

    paginator = iot.get_paginator("list_thing_registration_task_reports")
    pages = list(paginator.paginate(taskId=task_id, reportType="ERRORS", PaginationConfig={"PageSize": 1}))
    links = [link for p in pages for link in p["resourceLinks"]]
    assert len(links) == 2
    assert [r["referenceId"] for link in links for r in fetch(link)] == ["5", "6", "7"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"ThingRegistration/{task_id}/")["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed) == [
        "errors-00001.json", "errors-00002.json", "results-00001.json", "results-00002.json", "results-00003.json"]
