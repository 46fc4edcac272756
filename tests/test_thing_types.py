"""Thing types: create, describe, list, update, deprecate, delete after five minutes."""

import pytest
from botocore.exceptions import ClientError

from localiot.testing import advance


def test_create_describe_list(iot):
    made = iot.create_thing_type(thingTypeName="sensor", thingTypeProperties={
        "thingTypeDescription": "a sensor", "searchableAttributes": ["room"]},
        tags=[{"Key": "team", "Value": "a"}])
    assert made["thingTypeArn"] == "arn:aws:iot:us-east-1:123456789012:thingtype/sensor"
    described = iot.describe_thing_type(thingTypeName="sensor")
    assert described["thingTypeId"] == made["thingTypeId"]
    assert described["thingTypeProperties"] == {"thingTypeDescription": "a sensor", "searchableAttributes": ["room"]}
    assert described["thingTypeMetadata"]["deprecated"] is False
    assert described["thingTypeMetadata"]["creationDate"].year >= 2024
    assert iot.list_tags_for_resource(resourceArn=made["thingTypeArn"])["tags"] == [{"Key": "team", "Value": "a"}]
    iot.create_thing_type(thingTypeName="actuator")
    listed = iot.list_thing_types()["thingTypes"]
    assert [t["thingTypeName"] for t in listed] == ["actuator", "sensor"]
    assert [t["thingTypeName"] for t in iot.list_thing_types(thingTypeName="sensor")["thingTypes"]] == ["sensor"]


def test_duplicate_with_different_properties(iot):
    iot.create_thing_type(thingTypeName="x", thingTypeProperties={"thingTypeDescription": "one"})
    iot.create_thing_type(thingTypeName="x", thingTypeProperties={"thingTypeDescription": "one"})
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_thing_type(thingTypeName="x", thingTypeProperties={"thingTypeDescription": "two"})


def test_searchable_attributes_limit(iot):
    with pytest.raises(ClientError) as info:
        iot.create_thing_type(thingTypeName="x", thingTypeProperties={"searchableAttributes": ["a", "b", "c", "d"]})
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"


def test_update_thing_type(iot):
    iot.create_thing_type(thingTypeName="x", thingTypeProperties={"thingTypeDescription": "d"})
    iot.update_thing_type(thingTypeName="x", thingTypeProperties={
        "mqtt5Configuration": {"propagatingAttributes": [{"userPropertyKey": "k", "thingAttribute": "a"}]}})
    props = iot.describe_thing_type(thingTypeName="x")["thingTypeProperties"]
    assert props["thingTypeDescription"] == "d"
    assert props["mqtt5Configuration"]["propagatingAttributes"] == [{"userPropertyKey": "k", "thingAttribute": "a"}]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing_type(thingTypeName="nope", thingTypeProperties={})


def test_delete_requires_deprecation_five_minutes_and_no_things(localiot_server, iot):
    iot.create_thing_type(thingTypeName="old")
    iot.create_thing(thingName="t", thingTypeName="old")
    with pytest.raises(ClientError) as info:
        iot.delete_thing_type(thingTypeName="old")
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    iot.deprecate_thing_type(thingTypeName="old")
    meta = iot.describe_thing_type(thingTypeName="old")["thingTypeMetadata"]
    assert meta["deprecated"] is True and "deprecationDate" in meta
    with pytest.raises(ClientError):
        iot.delete_thing_type(thingTypeName="old")  # not five minutes yet
    advance(localiot_server, 301)
    with pytest.raises(ClientError):
        iot.delete_thing_type(thingTypeName="old")  # a thing still uses it
    iot.update_thing(thingName="t", removeThingType=True)
    iot.delete_thing_type(thingTypeName="old")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_type(thingTypeName="old")


def test_undeprecate(iot):
    iot.create_thing_type(thingTypeName="x")
    iot.deprecate_thing_type(thingTypeName="x")
    iot.deprecate_thing_type(thingTypeName="x", undoDeprecate=True)
    assert iot.describe_thing_type(thingTypeName="x")["thingTypeMetadata"]["deprecated"] is False
    iot.create_thing(thingName="t", thingTypeName="x")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.deprecate_thing_type(thingTypeName="nope")


def test_thing_type_pagination(iot):
    for i in range(12):
        iot.create_thing_type(thingTypeName=f"type-{i:02d}")
    names = [t["thingTypeName"] for p in iot.get_paginator("list_thing_types").paginate(
        PaginationConfig={"PageSize": 5}) for t in p["thingTypes"]]
    assert names == [f"type-{i:02d}" for i in range(12)]


def test_tag_untag(iot):
    arn = iot.create_thing_type(thingTypeName="x")["thingTypeArn"]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    iot.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.tag_resource(resourceArn=arn.replace("thingtype/x", "thingtype/ghost"), tags=[{"Key": "a", "Value": "1"}])
    with pytest.raises(ClientError) as info:
        iot.tag_resource(resourceArn="not-an-arn", tags=[{"Key": "a", "Value": "1"}])
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
