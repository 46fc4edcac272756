"""Things through boto3 against the real server: success paths, errors, pagination."""

import pytest
from botocore.exceptions import ClientError

from localiot.testing import error_of, make_client


def test_create_describe_thing(iot):
    out = iot.create_thing(thingName="dev-1", attributePayload={"attributes": {"color": "red"}})
    assert out["thingName"] == "dev-1"
    assert out["thingArn"] == "arn:aws:iot:us-east-1:123456789012:thing/dev-1"
    assert len(out["thingId"]) == 36
    thing = iot.describe_thing(thingName="dev-1")
    assert thing["thingId"] == out["thingId"]
    assert thing["defaultClientId"] == "dev-1"
    assert thing["attributes"] == {"color": "red"}
    assert thing["version"] == 1
    assert "thingTypeName" not in thing


def test_create_is_idempotent_only_with_same_configuration(iot):
    first = iot.create_thing(thingName="t", attributePayload={"attributes": {"a": "1"}})
    again = iot.create_thing(thingName="t", attributePayload={"attributes": {"a": "1"}})
    assert again["thingId"] == first["thingId"]
    with pytest.raises(ClientError) as info:
        iot.create_thing(thingName="t", attributePayload={"attributes": {"a": "2"}})
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)
    assert info.value.response["resourceId"] == first["thingId"]
    assert info.value.response["resourceArn"] == first["thingArn"]


def test_describe_missing_thing(iot):
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as info:
        iot.describe_thing(thingName="ghost")
    assert error_of(info) == ("ResourceNotFoundException", 404)


@pytest.mark.parametrize("name,fragment", [
    ("bad name", "regular expression pattern: [a-zA-Z0-9:_-]+"),
    ("x" * 129, "length less than or equal to 128"),
])
def test_thing_name_validation(iot, name, fragment):
    with pytest.raises(ClientError) as info:
        iot.create_thing(thingName=name)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert fragment in info.value.response["Error"]["Message"]
    assert "1 validation error detected" in info.value.response["Error"]["Message"]


def test_attribute_limits(iot):
    four = {f"k{i}": "v" for i in range(4)}
    with pytest.raises(ClientError) as info:
        iot.create_thing(thingName="t", attributePayload={"attributes": four})
    assert error_of(info) == ("InvalidRequestException", 400)
    iot.create_thing_type(thingTypeName="sensor")
    iot.create_thing(thingName="t", thingTypeName="sensor", attributePayload={"attributes": four})
    assert len(iot.describe_thing(thingName="t")["attributes"]) == 4
    with pytest.raises(ClientError) as info:
        iot.create_thing(thingName="bad-value", attributePayload={"attributes": {"k": "no spaces"}})
    assert "attributePayload.attributes" in info.value.response["Error"]["Message"]


def test_unknown_thing_type_and_deprecated_thing_type(iot):
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_thing(thingName="t", thingTypeName="nope")
    iot.create_thing_type(thingTypeName="old")
    iot.deprecate_thing_type(thingTypeName="old")
    with pytest.raises(ClientError) as info:
        iot.create_thing(thingName="t", thingTypeName="old")
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName="t")


def test_update_thing_merges_and_removes_attributes(iot):
    iot.create_thing(thingName="t", attributePayload={"attributes": {"a": "1", "b": "2"}})
    iot.update_thing(thingName="t", attributePayload={"attributes": {"b": "", "c": "3"}, "merge": True})
    thing = iot.describe_thing(thingName="t")
    assert thing["attributes"] == {"a": "1", "c": "3"}
    assert thing["version"] == 2
    iot.update_thing(thingName="t", attributePayload={"attributes": {"z": "9"}})
    thing = iot.describe_thing(thingName="t")
    assert thing["attributes"] == {"z": "9"}
    assert thing["version"] == 3


def test_update_thing_type_association(iot):
    iot.create_thing_type(thingTypeName="tt")
    iot.create_thing(thingName="t")
    iot.update_thing(thingName="t", thingTypeName="tt")
    assert iot.describe_thing(thingName="t")["thingTypeName"] == "tt"
    with pytest.raises(ClientError) as info:
        iot.update_thing(thingName="t", thingTypeName="tt", removeThingType=True)
    assert error_of(info) == ("InvalidRequestException", 400)
    iot.update_thing(thingName="t", removeThingType=True)
    assert "thingTypeName" not in iot.describe_thing(thingName="t")


def test_expected_version_conflicts(iot):
    iot.create_thing(thingName="t")
    with pytest.raises(ClientError) as info:
        iot.update_thing(thingName="t", expectedVersion=5, attributePayload={"attributes": {"a": "1"}})
    assert error_of(info) == ("VersionConflictException", 409)
    assert iot.describe_thing(thingName="t")["attributes"] == {}
    iot.update_thing(thingName="t", expectedVersion=1, attributePayload={"attributes": {"a": "1"}})
    with pytest.raises(ClientError) as info:
        iot.delete_thing(thingName="t", expectedVersion=1)
    assert error_of(info) == ("VersionConflictException", 409)
    iot.delete_thing(thingName="t", expectedVersion=2)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName="t")


def test_update_and_delete_missing(iot):
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing(thingName="ghost", attributePayload={"attributes": {}})
    # AWS: deleting a thing that does not exist succeeds.
    iot.delete_thing(thingName="ghost")


def test_list_things_pagination(iot):
    names = [f"thing-{i:03d}" for i in range(23)]
    for name in names:
        iot.create_thing(thingName=name)
    seen, token = [], None
    while True:
        kwargs = {"maxResults": 5}
        if token:
            kwargs["nextToken"] = token
        page = iot.list_things(**kwargs)
        assert len(page["things"]) <= 5
        seen += [t["thingName"] for t in page["things"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == names
    paginated = [t["thingName"] for p in iot.get_paginator("list_things").paginate(PaginationConfig={"PageSize": 7})
                 for t in p["things"]]
    assert paginated == names


def test_list_things_filters(iot):
    iot.create_thing_type(thingTypeName="lamp")
    iot.create_thing(thingName="a", attributePayload={"attributes": {"room": "kitchen"}}, thingTypeName="lamp")
    iot.create_thing(thingName="b", attributePayload={"attributes": {"room": "kit"}})
    iot.create_thing(thingName="c", attributePayload={"attributes": {"room": "bath"}})
    iot.create_thing(thingName="d")

    def names(**kw):
        return [t["thingName"] for t in iot.list_things(**kw)["things"]]

    assert names(attributeName="room", attributeValue="kitchen") == ["a"]
    assert names(attributeName="room", attributeValue="kit", usePrefixAttributeValue=True) == ["a", "b"]
    assert names(attributeName="room", attributeValue="kit") == ["b"]
    assert names(thingTypeName="lamp") == ["a"]
    assert names(thingTypeName="lamp", attributeName="room", attributeValue="kit",
                 usePrefixAttributeValue=True) == ["a"]
    listed = iot.list_things()["things"]
    assert [t["thingName"] for t in listed] == ["a", "b", "c", "d"]
    assert listed[0] == {"thingName": "a", "thingTypeName": "lamp", "attributes": {"room": "kitchen"},
                         "thingArn": "arn:aws:iot:us-east-1:123456789012:thing/a", "version": 1}


def test_invalid_next_token(iot):
    with pytest.raises(ClientError) as info:
        iot.list_things(nextToken="!!not-a-token")
    assert error_of(info) == ("InvalidRequestException", 400)


def test_max_results_range(iot):
    with pytest.raises(ClientError) as info:
        iot.list_things(maxResults=251)
    assert "less than or equal to 250" in info.value.response["Error"]["Message"]


def test_resources_are_isolated_per_account_and_region(localiot_server):
    default = make_client(localiot_server)
    other_region = make_client(localiot_server, region="eu-west-1")
    other_account = make_client(localiot_server, access_key="111122223333")
    default.create_thing(thingName="shared-name")
    assert other_region.list_things()["things"] == []
    assert other_account.list_things()["things"] == []
    made = other_account.create_thing(thingName="shared-name")
    assert made["thingArn"] == "arn:aws:iot:us-east-1:111122223333:thing/shared-name"
    made = other_region.create_thing(thingName="shared-name")
    assert made["thingArn"] == "arn:aws:iot:eu-west-1:123456789012:thing/shared-name"


def test_thing_events_reach_the_bus_only_when_enabled_and_committed(localiot_server, iot):
    seen = []
    unsubscribe = localiot_server.app.bus.subscribe(lambda a, r, topic, payload: seen.append(topic))
    try:
        iot.create_thing(thingName="quiet")
        assert seen == []
        iot.update_event_configurations(eventConfigurations={"THING": {"Enabled": True}})
        conf = iot.describe_event_configurations()
        assert conf["eventConfigurations"]["THING"] == {"Enabled": True}
        assert conf["eventConfigurations"]["JOB"] == {"Enabled": False}
        iot.create_thing(thingName="loud")
        iot.update_thing(thingName="loud", attributePayload={"attributes": {"a": "1"}})
        with pytest.raises(ClientError):
            iot.update_thing(thingName="loud", expectedVersion=99, attributePayload={"attributes": {}})
        iot.delete_thing(thingName="loud")
        assert seen == ["$aws/events/thing/loud/created", "$aws/events/thing/loud/updated",
                        "$aws/events/thing/loud/deleted"]
    finally:
        unsubscribe()
