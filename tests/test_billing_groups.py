"""Billing groups through boto3 against the real server: lifecycle, the one
billing group of a thing, listing and pagination."""

import time

import pytest
from botocore.exceptions import ClientError

from localiot.testing import ACCOUNT, error_of


def billing_arn(name):
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:billinggroup/{name}"


def thing_arn(name):
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/{name}"


def walk(call, key, page_size, **kwargs):
    seen, token, pages = [], None, 0
    while True:
        page = call(maxResults=page_size, **kwargs, **({"nextToken": token} if token else {}))
        assert len(page[key]) <= page_size
        seen += page[key]
        pages += 1
        token = page.get("nextToken")
        if not token:
            return seen, pages


def test_create_and_describe(iot):
    before = time.time()
    out = iot.create_billing_group(billingGroupName="fleet",
                                   billingGroupProperties={"billingGroupDescription": "the fleet"},
                                   tags=[{"Key": "cost-center", "Value": "42"}])
    assert out["billingGroupName"] == "fleet"
    assert out["billingGroupArn"] == billing_arn("fleet")
    assert len(out["billingGroupId"]) == 36
    group = iot.describe_billing_group(billingGroupName="fleet")
    assert group["billingGroupId"] == out["billingGroupId"]
    assert group["billingGroupArn"] == billing_arn("fleet")
    assert group["version"] == 1
    assert group["billingGroupProperties"] == {"billingGroupDescription": "the fleet"}
    assert before - 1 <= group["billingGroupMetadata"]["creationDate"].timestamp() <= time.time() + 1
    assert iot.list_tags_for_resource(resourceArn=billing_arn("fleet"))["tags"] == [
        {"Key": "cost-center", "Value": "42"}]
    iot.create_billing_group(billingGroupName="bare")
    assert iot.describe_billing_group(billingGroupName="bare")["billingGroupProperties"] == {}


def test_create_is_idempotent_only_with_same_properties(iot):
    first = iot.create_billing_group(billingGroupName="b", billingGroupProperties={"billingGroupDescription": "d"})
    again = iot.create_billing_group(billingGroupName="b", billingGroupProperties={"billingGroupDescription": "d"})
    assert again["billingGroupId"] == first["billingGroupId"]
    for props in ({"billingGroupDescription": "other"}, {}):
        with pytest.raises(ClientError) as info:
            iot.create_billing_group(billingGroupName="b", billingGroupProperties=props)
        assert error_of(info) == ("ResourceAlreadyExistsException", 409)
        assert info.value.response["resourceId"] == first["billingGroupId"]
        assert info.value.response["resourceArn"] == first["billingGroupArn"]
    assert iot.describe_billing_group(billingGroupName="b")["billingGroupProperties"] == {
        "billingGroupDescription": "d"}


def test_describe_missing(iot):
    with pytest.raises(ClientError) as info:
        iot.describe_billing_group(billingGroupName="ghost")
    assert error_of(info) == ("ResourceNotFoundException", 404)


@pytest.mark.parametrize("name,fragment", [
    ("bad name", "regular expression pattern: [a-zA-Z0-9:_-]+"),
    ("x" * 129, "length less than or equal to 128"),
])
def test_name_validation(iot, name, fragment):
    with pytest.raises(ClientError) as info:
        iot.create_billing_group(billingGroupName=name)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert fragment in info.value.response["Error"]["Message"]
    assert iot.list_billing_groups()["billingGroups"] == []


def test_update_versions_and_conflicts(iot):
    iot.create_billing_group(billingGroupName="b", billingGroupProperties={"billingGroupDescription": "one"})
    out = iot.update_billing_group(billingGroupName="b", billingGroupProperties={"billingGroupDescription": "two"})
    assert out["version"] == 2
    group = iot.describe_billing_group(billingGroupName="b")
    assert group["version"] == 2 and group["billingGroupProperties"] == {"billingGroupDescription": "two"}
    with pytest.raises(ClientError) as info:
        iot.update_billing_group(billingGroupName="b", expectedVersion=1,
                                 billingGroupProperties={"billingGroupDescription": "three"})
    assert error_of(info) == ("VersionConflictException", 409)
    assert iot.describe_billing_group(billingGroupName="b")["billingGroupProperties"] == {
        "billingGroupDescription": "two"}
    # No description given: unchanged; an empty one clears it.
    assert iot.update_billing_group(billingGroupName="b", expectedVersion=2, billingGroupProperties={})["version"] == 3
    assert iot.describe_billing_group(billingGroupName="b")["billingGroupProperties"] == {
        "billingGroupDescription": "two"}
    iot.update_billing_group(billingGroupName="b", billingGroupProperties={"billingGroupDescription": ""})
    group = iot.describe_billing_group(billingGroupName="b")
    assert group["billingGroupProperties"] == {} and group["version"] == 4
    with pytest.raises(ClientError) as info:
        iot.update_billing_group(billingGroupName="ghost", billingGroupProperties={})
    assert error_of(info) == ("ResourceNotFoundException", 404)


def test_delete_releases_things_and_tags(iot):
    iot.create_billing_group(billingGroupName="b", tags=[{"Key": "k", "Value": "v"}])
    iot.create_thing(thingName="t1", billingGroupName="b")
    iot.create_thing(thingName="t2")
    iot.add_thing_to_billing_group(billingGroupName="b", thingName="t2")
    with pytest.raises(ClientError) as info:
        iot.delete_billing_group(billingGroupName="b", expectedVersion=2)
    assert error_of(info) == ("VersionConflictException", 409)
    assert iot.describe_thing(thingName="t1")["billingGroupName"] == "b"
    iot.delete_billing_group(billingGroupName="b", expectedVersion=1)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_billing_group(billingGroupName="b")
    for name in ("t1", "t2"):
        thing = iot.describe_thing(thingName=name)
        assert "billingGroupName" not in thing
        assert thing["version"] == 1
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_tags_for_resource(resourceArn=billing_arn("b"))
    iot.create_billing_group(billingGroupName="b")
    assert iot.list_things_in_billing_group(billingGroupName="b")["things"] == []
    assert iot.list_tags_for_resource(resourceArn=billing_arn("b"))["tags"] == []
    # Deleting a billing group that does not exist succeeds.
    iot.delete_billing_group(billingGroupName="never")
    iot.delete_billing_group(billingGroupName="never", expectedVersion=3)


def test_list_billing_groups_prefix_and_pagination(iot):
    fleet = [f"fleet-{i:02d}" for i in range(14)]
    lab = [f"lab-{i:02d}" for i in range(8)]
    for name in fleet + lab:
        iot.create_billing_group(billingGroupName=name)
    seen, pages = walk(iot.list_billing_groups, "billingGroups", 5)
    assert [g["groupName"] for g in seen] == fleet + lab and pages == 5
    assert seen[0] == {"groupName": "fleet-00", "groupArn": billing_arn("fleet-00")}
    seen, pages = walk(iot.list_billing_groups, "billingGroups", 4, namePrefixFilter="lab-")
    assert [g["groupName"] for g in seen] == lab and pages == 2
    assert iot.list_billing_groups(namePrefixFilter="nothing")["billingGroups"] == []
    paginated = [g["groupName"] for p in iot.get_paginator("list_billing_groups").paginate(
        namePrefixFilter="fleet-", PaginationConfig={"PageSize": 6}) for g in p["billingGroups"]]
    assert paginated == fleet


def test_add_move_and_remove_things(iot):
    iot.create_billing_group(billingGroupName="b1")
    iot.create_billing_group(billingGroupName="b2")
    iot.create_thing(thingName="t")
    iot.add_thing_to_billing_group(billingGroupName="b1", thingName="t")
    assert iot.describe_thing(thingName="t")["billingGroupName"] == "b1"
    assert iot.list_things_in_billing_group(billingGroupName="b1")["things"] == ["t"]
    # A thing is in one billing group at most: adding it to another moves it.
    iot.add_thing_to_billing_group(billingGroupArn=billing_arn("b2"), thingArn=thing_arn("t"))
    thing = iot.describe_thing(thingName="t")
    assert thing["billingGroupName"] == "b2"
    assert thing["version"] == 1
    assert iot.list_things_in_billing_group(billingGroupName="b1")["things"] == []
    assert iot.list_things_in_billing_group(billingGroupName="b2")["things"] == ["t"]
    # Removing it from a group it is not in leaves its membership alone.
    iot.remove_thing_from_billing_group(billingGroupName="b1", thingName="t")
    assert iot.describe_thing(thingName="t")["billingGroupName"] == "b2"
    iot.remove_thing_from_billing_group(billingGroupArn=billing_arn("b2"), thingArn=thing_arn("t"))
    assert "billingGroupName" not in iot.describe_thing(thingName="t")
    assert iot.list_things_in_billing_group(billingGroupName="b2")["things"] == []


def test_membership_errors(iot):
    iot.create_billing_group(billingGroupName="b")
    iot.create_thing(thingName="t")
    cases = [
        (iot.add_thing_to_billing_group, {"billingGroupName": "ghost", "thingName": "t"}, "ResourceNotFoundException"),
        (iot.add_thing_to_billing_group, {"billingGroupName": "b", "thingName": "ghost"}, "ResourceNotFoundException"),
        (iot.add_thing_to_billing_group, {"billingGroupArn": billing_arn("ghost"), "thingName": "t"},
         "ResourceNotFoundException"),
        (iot.add_thing_to_billing_group, {"billingGroupName": "b", "thingArn": thing_arn("ghost")},
         "ResourceNotFoundException"),
        (iot.add_thing_to_billing_group, {"thingName": "t"}, "InvalidRequestException"),
        (iot.add_thing_to_billing_group, {"billingGroupName": "b"}, "InvalidRequestException"),
        (iot.add_thing_to_billing_group, {"billingGroupArn": thing_arn("b"), "thingName": "t"},
         "InvalidRequestException"),
        (iot.add_thing_to_billing_group, {"billingGroupName": "bad name", "thingName": "t"},
         "InvalidRequestException"),
        (iot.remove_thing_from_billing_group, {"billingGroupName": "ghost", "thingName": "t"},
         "ResourceNotFoundException"),
        (iot.remove_thing_from_billing_group, {"billingGroupName": "b", "thingName": "ghost"},
         "ResourceNotFoundException"),
        (iot.list_things_in_billing_group, {"billingGroupName": "ghost"}, "ResourceNotFoundException"),
    ]
    for call, kwargs, code in cases:
        with pytest.raises(ClientError) as info:
            call(**kwargs)
        assert info.value.response["Error"]["Code"] == code, kwargs
    assert "billingGroupName" not in iot.describe_thing(thingName="t")


def test_create_thing_in_billing_group(iot):
    with pytest.raises(ClientError) as info:
        iot.create_thing(thingName="t", billingGroupName="ghost")
    assert error_of(info) == ("ResourceNotFoundException", 404)
    iot.create_billing_group(billingGroupName="b")
    iot.create_thing(thingName="t", billingGroupName="b")
    assert iot.describe_thing(thingName="t")["billingGroupName"] == "b"
    assert iot.list_things_in_billing_group(billingGroupName="b")["things"] == ["t"]
    iot.delete_thing(thingName="t")
    assert iot.list_things_in_billing_group(billingGroupName="b")["things"] == []


def test_list_things_in_billing_group_pagination(iot):
    iot.create_billing_group(billingGroupName="b")
    iot.create_billing_group(billingGroupName="other")
    members = [f"thing-{i:02d}" for i in range(17)]
    for i, name in enumerate(members):
        iot.create_thing(thingName=name)
        iot.add_thing_to_billing_group(billingGroupName="b", thingName=name)
        iot.create_thing(thingName=f"{name}-x")
        iot.add_thing_to_billing_group(billingGroupName="other", thingName=f"{name}-x")
    seen, pages = walk(iot.list_things_in_billing_group, "things", 5, billingGroupName="b")
    assert seen == members and pages == 4
    paginated = [t for p in iot.get_paginator("list_things_in_billing_group").paginate(
        billingGroupName="b", PaginationConfig={"PageSize": 6}) for t in p["things"]]
    assert paginated == members


def test_tag_billing_group(iot):
    iot.create_billing_group(billingGroupName="b")
    iot.tag_resource(resourceArn=billing_arn("b"), tags=[{"Key": "a", "Value": "1"}])
    assert iot.list_tags_for_resource(resourceArn=billing_arn("b"))["tags"] == [{"Key": "a", "Value": "1"}]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.tag_resource(resourceArn=billing_arn("ghost"), tags=[{"Key": "a", "Value": "1"}])
