"""Streams control plane (CreateStream, DescribeStream, UpdateStream, DeleteStream,
ListStreams) through boto3 against the real server."""

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ota-streams"


def files(*ids, bucket="fw", key="image.bin"):
    return [{"fileId": i, "s3Location": {"bucket": bucket, "key": f"{i}-{key}"}} for i in ids]


def code(excinfo):
    error = excinfo.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]


def test_create_describe_update_delete(iot):
    created = iot.create_stream(streamId="fw-1", description="firmware", files=files(0, 1), roleArn=ROLE,
                                tags=[{"Key": "team", "Value": "ota"}])
    arn = f"arn:aws:iot:us-east-1:{ACCOUNT}:stream/fw-1"
    assert created["streamId"] == "fw-1" and created["streamArn"] == arn
    assert created["streamVersion"] == 1 and created["description"] == "firmware"
    info = iot.describe_stream(streamId="fw-1")["streamInfo"]
    assert info["files"] == files(0, 1) and info["roleArn"] == ROLE and info["streamVersion"] == 1
    assert info["createdAt"] == info["lastUpdatedAt"]
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "team", "Value": "ota"}]

    updated = iot.update_stream(streamId="fw-1", files=files(2))
    assert updated["streamVersion"] == 2 and updated["description"] == "firmware"
    info = iot.describe_stream(streamId="fw-1")["streamInfo"]
    assert info["files"] == files(2) and info["streamVersion"] == 2
    assert iot.update_stream(streamId="fw-1", description="v3")["streamVersion"] == 3
    assert iot.describe_stream(streamId="fw-1")["streamInfo"]["files"] == files(2)

    iot.delete_stream(streamId="fw-1")
    with pytest.raises(ClientError) as e:
        iot.describe_stream(streamId="fw-1")
    assert code(e) == ("ResourceNotFoundException", 404)
    assert e.value.response["Error"]["Message"] == "Stream fw-1 cannot be found."
    with pytest.raises(ClientError) as e:
        iot.list_tags_for_resource(resourceArn=arn)
    assert code(e) == ("ResourceNotFoundException", 404)


def test_object_version_is_kept(iot):
    versioned = [{"fileId": 7, "s3Location": {"bucket": "fw", "key": "a.bin", "version": "v-123"}}]
    iot.create_stream(streamId="versioned", files=versioned, roleArn=ROLE)
    assert iot.describe_stream(streamId="versioned")["streamInfo"]["files"] == versioned


def test_bad_input_changes_nothing(iot):
    iot.create_stream(streamId="taken", files=files(0), roleArn=ROLE)
    with pytest.raises(ClientError) as e:
        iot.create_stream(streamId="taken", files=files(1), roleArn=ROLE)
    assert code(e) == ("ResourceAlreadyExistsException", 409)
    assert e.value.response["resourceId"] == "taken"
    bad = [
        dict(files=files(0, 0)),  # the same fileId twice
        dict(files=[{"fileId": 1}]),  # no location
        dict(files=[{"s3Location": {"bucket": "b", "key": "k"}}]),  # no fileId
        dict(files=[{"fileId": 256, "s3Location": {"bucket": "b", "key": "k"}}]),  # fileId out of range
        dict(files=files(*range(51))),  # at most 50
        dict(files=files(0), roleArn="arn:aws:iam::123456789012:user/not-a-role"),
    ]
    for kwargs in bad:
        with pytest.raises(ClientError) as e:
            iot.create_stream(**{"streamId": "bad", "roleArn": ROLE, **kwargs})
        assert code(e) == ("InvalidRequestException", 400), kwargs
    assert [s["streamId"] for s in iot.list_streams()["streams"]] == ["taken"]
    with pytest.raises(ClientError) as e:
        iot.update_stream(streamId="taken", files=files(3, 3))
    assert code(e) == ("InvalidRequestException", 400)
    assert iot.describe_stream(streamId="taken")["streamInfo"]["streamVersion"] == 1
    for call in (lambda: iot.update_stream(streamId="missing"), lambda: iot.delete_stream(streamId="missing")):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == ("ResourceNotFoundException", 404)


def test_list_order_and_pages(iot):
    names = [f"s-{i:02d}" for i in range(7)]
    for name in reversed(names):
        iot.create_stream(streamId=name, files=files(0), roleArn=ROLE, description=f"d {name}")
    first = iot.list_streams(maxResults=3)
    assert [s["streamId"] for s in first["streams"]] == names[:3]
    assert first["streams"][0] == {"streamId": "s-00", "streamArn": f"arn:aws:iot:us-east-1:{ACCOUNT}:stream/s-00",
                                   "streamVersion": 1, "description": "d s-00"}
    seen, token = [], None
    while True:
        page = iot.list_streams(maxResults=3, **({"nextToken": token} if token else {}))
        seen += [s["streamId"] for s in page["streams"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == names
    assert [s["streamId"] for s in iot.list_streams(ascendingOrder=True)["streams"]] == names
    assert [s["streamId"] for s in iot.list_streams(ascendingOrder=False)["streams"]] == names[::-1]
    paginator = iot.get_paginator("list_streams")
    assert [s["streamId"] for p in paginator.paginate(PaginationConfig={"PageSize": 2}) for s in p["streams"]] == names
    with pytest.raises(ClientError) as e:
        iot.list_streams(nextToken="not a token")
    assert code(e) == ("InvalidRequestException", 400)
