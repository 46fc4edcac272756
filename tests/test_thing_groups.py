"""Static thing groups through boto3 against the real server: hierarchy,
properties, membership, listing and pagination, registry events."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from localiot.testing import ACCOUNT, error_of


def group_arn(name):
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/{name}"


def thing_arn(name):
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/{name}"


def walk(call, key, page_size, **kwargs):
    """Every item of a listing, fetched `page_size` at a time through nextToken."""
    seen, token, pages = [], None, 0
    while True:
        page = call(maxResults=page_size, **kwargs, **({"nextToken": token} if token else {}))
        assert len(page[key]) <= page_size
        seen += page[key]
        pages += 1
        token = page.get("nextToken")
        if not token:
            return seen, pages


def names(groups):
    return [g["groupName"] for g in groups]


def make_tree(iot):
    """root-a -> {a1 -> a1x, a2};  root-b."""
    iot.create_thing_group(thingGroupName="root-a")
    iot.create_thing_group(thingGroupName="a1", parentGroupName="root-a")
    iot.create_thing_group(thingGroupName="a2", parentGroupName="root-a")
    iot.create_thing_group(thingGroupName="a1x", parentGroupName="a1")
    iot.create_thing_group(thingGroupName="root-b")


# create / describe -------------------------------------------------------------
def test_create_and_describe_root_group(iot):
    before = time.time()
    out = iot.create_thing_group(
        thingGroupName="lights",
        thingGroupProperties={"thingGroupDescription": "all the lights",
                              "attributePayload": {"attributes": {"floor": "3"}}},
        tags=[{"Key": "team", "Value": "ops"}],
    )
    assert out["thingGroupName"] == "lights"
    assert out["thingGroupArn"] == group_arn("lights")
    assert len(out["thingGroupId"]) == 36
    group = iot.describe_thing_group(thingGroupName="lights")
    assert group["thingGroupId"] == out["thingGroupId"]
    assert group["thingGroupArn"] == group_arn("lights")
    assert group["version"] == 1
    assert group["thingGroupProperties"] == {"thingGroupDescription": "all the lights",
                                             "attributePayload": {"attributes": {"floor": "3"}}}
    metadata = group["thingGroupMetadata"]
    assert "parentGroupName" not in metadata
    assert "rootToParentThingGroups" not in metadata
    assert before - 1 <= metadata["creationDate"].timestamp() <= time.time() + 1
    assert iot.list_tags_for_resource(resourceArn=group_arn("lights"))["tags"] == [{"Key": "team", "Value": "ops"}]


def test_group_without_properties_describes_empty_properties(iot):
    iot.create_thing_group(thingGroupName="plain")
    assert iot.describe_thing_group(thingGroupName="plain")["thingGroupProperties"] == {}


def test_create_is_idempotent_only_with_same_configuration(iot):
    props = {"thingGroupDescription": "d", "attributePayload": {"attributes": {"a": "1"}}}
    iot.create_thing_group(thingGroupName="parent")
    first = iot.create_thing_group(thingGroupName="g", parentGroupName="parent", thingGroupProperties=props)
    again = iot.create_thing_group(thingGroupName="g", parentGroupName="parent", thingGroupProperties=props)
    assert again == {k: first[k] for k in ("thingGroupName", "thingGroupArn", "thingGroupId")} | {
        "ResponseMetadata": again["ResponseMetadata"]}
    for changed in (
        {"parentGroupName": "parent", "thingGroupProperties": {"thingGroupDescription": "other"}},
        {"parentGroupName": "parent",
         "thingGroupProperties": {**props, "attributePayload": {"attributes": {"a": "2"}}}},
        {"thingGroupProperties": props},  # same properties, but no parent
    ):
        with pytest.raises(ClientError) as info:
            iot.create_thing_group(thingGroupName="g", **changed)
        assert error_of(info) == ("ResourceAlreadyExistsException", 409)
        assert info.value.response["resourceId"] == first["thingGroupId"]
        assert info.value.response["resourceArn"] == first["thingGroupArn"]
    assert iot.describe_thing_group(thingGroupName="g")["version"] == 1


def test_create_under_missing_parent(iot):
    with pytest.raises(ClientError) as info:
        iot.create_thing_group(thingGroupName="orphan", parentGroupName="nowhere")
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName="orphan")


def test_describe_missing_group(iot):
    with pytest.raises(ClientError) as info:
        iot.describe_thing_group(thingGroupName="ghost")
    assert error_of(info) == ("ResourceNotFoundException", 404)


@pytest.mark.parametrize("name,fragment", [
    ("bad name", "regular expression pattern: [a-zA-Z0-9:_-]+"),
    ("x" * 129, "length less than or equal to 128"),
])
def test_group_name_validation(iot, name, fragment):
    with pytest.raises(ClientError) as info:
        iot.create_thing_group(thingGroupName=name)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert fragment in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        iot.create_thing_group(thingGroupName="ok", parentGroupName=name)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "parentGroupName" in info.value.response["Error"]["Message"]
    assert iot.list_thing_groups()["thingGroups"] == []


def test_hierarchy_metadata_from_root_to_parent(iot):
    make_tree(iot)
    leaf = iot.describe_thing_group(thingGroupName="a1x")["thingGroupMetadata"]
    assert leaf["parentGroupName"] == "a1"
    assert leaf["rootToParentThingGroups"] == [
        {"groupName": "root-a", "groupArn": group_arn("root-a")},
        {"groupName": "a1", "groupArn": group_arn("a1")},
    ]
    child = iot.describe_thing_group(thingGroupName="a2")["thingGroupMetadata"]
    assert child["parentGroupName"] == "root-a"
    assert child["rootToParentThingGroups"] == [{"groupName": "root-a", "groupArn": group_arn("root-a")}]


def test_hierarchy_is_at_most_seven_levels_deep(iot):
    iot.create_thing_group(thingGroupName="level-1")
    for level in range(2, 8):
        iot.create_thing_group(thingGroupName=f"level-{level}", parentGroupName=f"level-{level - 1}")
    deepest = iot.describe_thing_group(thingGroupName="level-7")["thingGroupMetadata"]
    assert names(deepest["rootToParentThingGroups"]) == [f"level-{i}" for i in range(1, 7)]
    with pytest.raises(ClientError) as info:
        iot.create_thing_group(thingGroupName="level-8", parentGroupName="level-7")
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "7 levels" in info.value.response["Error"]["Message"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName="level-8")


# update ----------------------------------------------------------------------
def test_update_properties_merge_replace_and_clear(iot):
    iot.create_thing_group(thingGroupName="g", thingGroupProperties={
        "thingGroupDescription": "first", "attributePayload": {"attributes": {"a": "1", "b": "2"}}})
    out = iot.update_thing_group(thingGroupName="g", thingGroupProperties={
        "attributePayload": {"attributes": {"b": "", "c": "3"}, "merge": True}})
    assert out["version"] == 2
    group = iot.describe_thing_group(thingGroupName="g")
    assert group["version"] == 2
    # Merge: b removed by its empty value, c added, a and the description kept.
    assert group["thingGroupProperties"] == {"thingGroupDescription": "first",
                                             "attributePayload": {"attributes": {"a": "1", "c": "3"}}}
    assert iot.update_thing_group(thingGroupName="g", thingGroupProperties={
        "thingGroupDescription": "second", "attributePayload": {"attributes": {"z": "9"}}})["version"] == 3
    assert iot.describe_thing_group(thingGroupName="g")["thingGroupProperties"] == {
        "thingGroupDescription": "second", "attributePayload": {"attributes": {"z": "9"}}}
    # An empty description and an empty replacing attribute set clear them.
    iot.update_thing_group(thingGroupName="g", thingGroupProperties={
        "thingGroupDescription": "", "attributePayload": {"attributes": {}}})
    group = iot.describe_thing_group(thingGroupName="g")
    assert group["thingGroupProperties"] == {}
    assert group["version"] == 4


def test_update_expected_version_and_missing_group(iot):
    iot.create_thing_group(thingGroupName="g")
    with pytest.raises(ClientError) as info:
        iot.update_thing_group(thingGroupName="g", expectedVersion=7,
                               thingGroupProperties={"thingGroupDescription": "x"})
    assert error_of(info) == ("VersionConflictException", 409)
    group = iot.describe_thing_group(thingGroupName="g")
    assert group["version"] == 1 and group["thingGroupProperties"] == {}
    assert iot.update_thing_group(thingGroupName="g", expectedVersion=1,
                                  thingGroupProperties={"thingGroupDescription": "x"})["version"] == 2
    with pytest.raises(ClientError) as info:
        iot.update_thing_group(thingGroupName="ghost", thingGroupProperties={"thingGroupDescription": "x"})
    assert error_of(info) == ("ResourceNotFoundException", 404)


# delete ----------------------------------------------------------------------
def test_delete_group_rules(iot):
    make_tree(iot)
    with pytest.raises(ClientError) as info:
        iot.delete_thing_group(thingGroupName="a1")
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "child groups" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        iot.delete_thing_group(thingGroupName="a1x", expectedVersion=3)
    assert error_of(info) == ("VersionConflictException", 409)
    iot.delete_thing_group(thingGroupName="a1x", expectedVersion=1)
    iot.delete_thing_group(thingGroupName="a1")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName="a1")
    assert names(iot.list_thing_groups()["thingGroups"]) == ["a2", "root-a", "root-b"]
    # Deleting a group that does not exist succeeds, with or without a version.
    iot.delete_thing_group(thingGroupName="a1")
    iot.delete_thing_group(thingGroupName="never", expectedVersion=4)


def test_delete_group_removes_memberships_and_tags(iot):
    iot.create_thing_group(thingGroupName="g", tags=[{"Key": "k", "Value": "v"}])
    iot.create_thing(thingName="t")
    iot.add_thing_to_thing_group(thingGroupName="g", thingName="t")
    iot.delete_thing_group(thingGroupName="g")
    assert iot.list_thing_groups_for_thing(thingName="t")["thingGroups"] == []
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_tags_for_resource(resourceArn=group_arn("g"))
    again = iot.create_thing_group(thingGroupName="g")
    assert iot.list_tags_for_resource(resourceArn=again["thingGroupArn"])["tags"] == []
    assert iot.list_things_in_thing_group(thingGroupName="g")["things"] == []


def test_tag_and_untag_thing_group(iot):
    iot.create_thing_group(thingGroupName="g")
    iot.tag_resource(resourceArn=group_arn("g"), tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    iot.untag_resource(resourceArn=group_arn("g"), tagKeys=["a"])
    assert iot.list_tags_for_resource(resourceArn=group_arn("g"))["tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.tag_resource(resourceArn=group_arn("ghost"), tags=[{"Key": "a", "Value": "1"}])


# list ------------------------------------------------------------------------
def test_list_thing_groups_by_parent_recursion_and_prefix(iot):
    make_tree(iot)

    def listed(**kw):
        page = iot.list_thing_groups(**kw)
        assert "nextToken" not in page
        return names(page["thingGroups"])

    assert listed() == ["a1", "a1x", "a2", "root-a", "root-b"]
    assert listed(recursive=True) == ["a1", "a1x", "a2", "root-a", "root-b"]
    assert listed(recursive=False) == ["root-a", "root-b"]
    # Without `recursive`, AWS lists every descendant of the parent.
    assert listed(parentGroup="root-a") == ["a1", "a1x", "a2"]
    assert listed(parentGroup="root-a", recursive=True) == ["a1", "a1x", "a2"]
    assert listed(parentGroup="root-a", recursive=False) == ["a1", "a2"]
    assert listed(parentGroup="a1", recursive=False) == ["a1x"]
    assert listed(parentGroup="root-b") == []
    assert listed(namePrefixFilter="a1") == ["a1", "a1x"]
    assert listed(namePrefixFilter="root", recursive=False) == ["root-a", "root-b"]
    assert listed(parentGroup="root-a", namePrefixFilter="a1") == ["a1", "a1x"]
    assert listed(parentGroup="root-a", namePrefixFilter="a1", recursive=False) == ["a1"]
    assert iot.list_thing_groups(namePrefixFilter="a2")["thingGroups"] == [
        {"groupName": "a2", "groupArn": group_arn("a2")}]
    with pytest.raises(ClientError) as info:
        iot.list_thing_groups(parentGroup="ghost")
    assert error_of(info) == ("ResourceNotFoundException", 404)


def test_list_thing_groups_pagination(iot):
    iot.create_thing_group(thingGroupName="top")
    children = [f"child-{i:02d}" for i in range(13)]
    others = [f"other-{i:02d}" for i in range(9)]
    for name in children:
        iot.create_thing_group(thingGroupName=name, parentGroupName="top")
    for name in others:
        iot.create_thing_group(thingGroupName=name, parentGroupName="top")
    everything = sorted(children + others + ["top"])

    seen, pages = walk(iot.list_thing_groups, "thingGroups", 5)
    assert names(seen) == everything and pages == 5
    seen, pages = walk(iot.list_thing_groups, "thingGroups", 4, parentGroup="top", recursive=False,
                       namePrefixFilter="child-")
    assert names(seen) == children and pages == 4
    seen, _ = walk(iot.list_thing_groups, "thingGroups", 3, parentGroup="top", namePrefixFilter="other-")
    assert names(seen) == others
    paginated = [g["groupName"] for p in iot.get_paginator("list_thing_groups").paginate(
        parentGroup="top", PaginationConfig={"PageSize": 6}) for g in p["thingGroups"]]
    assert paginated == sorted(children + others)


# membership ------------------------------------------------------------------
def test_add_and_remove_things_by_name_and_arn(iot):
    iot.create_thing_group(thingGroupName="g")
    for name in ("t1", "t2", "t3"):
        iot.create_thing(thingName=name)
    iot.add_thing_to_thing_group(thingGroupName="g", thingName="t1")
    iot.add_thing_to_thing_group(thingGroupArn=group_arn("g"), thingArn=thing_arn("t2"))
    iot.add_thing_to_thing_group(thingGroupName="g", thingArn=thing_arn("t3"), overrideDynamicGroups=True)
    iot.add_thing_to_thing_group(thingGroupName="g", thingName="t1")  # already a member: no change
    assert iot.list_things_in_thing_group(thingGroupName="g")["things"] == ["t1", "t2", "t3"]
    assert iot.list_thing_groups_for_thing(thingName="t2")["thingGroups"] == [
        {"groupName": "g", "groupArn": group_arn("g")}]
    iot.remove_thing_from_thing_group(thingGroupArn=group_arn("g"), thingArn=thing_arn("t2"))
    iot.remove_thing_from_thing_group(thingGroupName="g", thingName="t3")
    iot.remove_thing_from_thing_group(thingGroupName="g", thingName="t3")  # not a member: no error
    assert iot.list_things_in_thing_group(thingGroupName="g")["things"] == ["t1"]
    assert iot.list_thing_groups_for_thing(thingName="t2")["thingGroups"] == []


def test_membership_errors(iot):
    iot.create_thing_group(thingGroupName="g")
    iot.create_thing(thingName="t")
    cases = [
        (iot.add_thing_to_thing_group, {"thingGroupName": "ghost", "thingName": "t"}, "ResourceNotFoundException"),
        (iot.add_thing_to_thing_group, {"thingGroupName": "g", "thingName": "ghost"}, "ResourceNotFoundException"),
        (iot.add_thing_to_thing_group, {"thingGroupArn": group_arn("ghost"), "thingName": "t"},
         "ResourceNotFoundException"),
        (iot.add_thing_to_thing_group, {"thingName": "t"}, "InvalidRequestException"),
        (iot.add_thing_to_thing_group, {"thingGroupName": "g"}, "InvalidRequestException"),
        (iot.add_thing_to_thing_group, {"thingGroupArn": "not-an-arn", "thingName": "t"}, "InvalidRequestException"),
        (iot.add_thing_to_thing_group, {"thingGroupArn": thing_arn("g"), "thingName": "t"},
         "InvalidRequestException"),
        (iot.add_thing_to_thing_group,
         {"thingGroupArn": f"arn:aws:iot:eu-west-1:{ACCOUNT}:thinggroup/g", "thingName": "t"},
         "ResourceNotFoundException"),
        (iot.add_thing_to_thing_group, {"thingGroupName": "g", "thingName": "bad name"}, "InvalidRequestException"),
        (iot.remove_thing_from_thing_group, {"thingGroupName": "ghost", "thingName": "t"},
         "ResourceNotFoundException"),
        (iot.remove_thing_from_thing_group, {"thingGroupName": "g", "thingArn": thing_arn("ghost")},
         "ResourceNotFoundException"),
        (iot.list_things_in_thing_group, {"thingGroupName": "ghost"}, "ResourceNotFoundException"),
        (iot.list_thing_groups_for_thing, {"thingName": "ghost"}, "ResourceNotFoundException"),
    ]
    for call, kwargs, code in cases:
        with pytest.raises(ClientError) as info:
            call(**kwargs)
        assert info.value.response["Error"]["Code"] == code, kwargs
    assert iot.list_things_in_thing_group(thingGroupName="g")["things"] == []


def test_thing_cannot_be_in_two_groups_of_one_hierarchy(iot):
    make_tree(iot)
    iot.create_thing(thingName="t")
    iot.add_thing_to_thing_group(thingGroupName="a1", thingName="t")
    for group in ("a2", "root-a", "a1x"):  # sibling, ancestor, descendant
        with pytest.raises(ClientError) as info:
            iot.add_thing_to_thing_group(thingGroupName=group, thingName="t")
        assert error_of(info) == ("InvalidRequestException", 400)
        assert "same hierarchy" in info.value.response["Error"]["Message"]
    iot.add_thing_to_thing_group(thingGroupName="root-b", thingName="t")  # another hierarchy
    assert names(iot.list_thing_groups_for_thing(thingName="t")["thingGroups"]) == ["a1", "root-b"]


def test_thing_belongs_to_at_most_ten_groups(iot):
    iot.create_thing(thingName="t")
    for i in range(11):
        iot.create_thing_group(thingGroupName=f"g{i:02d}")
    for i in range(10):
        iot.add_thing_to_thing_group(thingGroupName=f"g{i:02d}", thingName="t")
    with pytest.raises(ClientError) as info:
        iot.add_thing_to_thing_group(thingGroupName="g10", thingName="t", overrideDynamicGroups=True)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "10" in info.value.response["Error"]["Message"]
    assert iot.list_things_in_thing_group(thingGroupName="g10")["things"] == []
    iot.remove_thing_from_thing_group(thingGroupName="g00", thingName="t")
    iot.add_thing_to_thing_group(thingGroupName="g10", thingName="t")
    seen, pages = walk(iot.list_thing_groups_for_thing, "thingGroups", 3, thingName="t")
    assert names(seen) == [f"g{i:02d}" for i in range(1, 11)] and pages == 4
    paginated = [g["groupName"] for p in iot.get_paginator("list_thing_groups_for_thing").paginate(
        thingName="t", PaginationConfig={"PageSize": 4}) for g in p["thingGroups"]]
    assert paginated == [f"g{i:02d}" for i in range(1, 11)]


def test_update_thing_groups_for_thing(iot):
    make_tree(iot)
    iot.create_thing_group(thingGroupName="solo")
    iot.create_thing(thingName="t")
    iot.update_thing_groups_for_thing(thingName="t", thingGroupsToAdd=["a1", "root-b"])
    assert names(iot.list_thing_groups_for_thing(thingName="t")["thingGroups"]) == ["a1", "root-b"]
    # Move within one hierarchy in a single call: removals apply before additions.
    iot.update_thing_groups_for_thing(thingName="t", thingGroupsToAdd=["a2", "solo"],
                                      thingGroupsToRemove=["a1"], overrideDynamicGroups=False)
    assert names(iot.list_thing_groups_for_thing(thingName="t")["thingGroups"]) == ["a2", "root-b", "solo"]


def test_update_thing_groups_for_thing_is_all_or_nothing(iot):
    make_tree(iot)
    iot.create_thing(thingName="t")
    iot.add_thing_to_thing_group(thingGroupName="a1", thingName="t")
    before = ["a1"]
    with pytest.raises(ClientError) as info:
        iot.update_thing_groups_for_thing(thingName="t", thingGroupsToAdd=["root-b", "ghost"],
                                          thingGroupsToRemove=["a1"])
    assert error_of(info) == ("ResourceNotFoundException", 404)
    assert names(iot.list_thing_groups_for_thing(thingName="t")["thingGroups"]) == before
    with pytest.raises(ClientError) as info:
        # root-b would be fine, a1x is in a1's hierarchy: nothing happens.
        iot.update_thing_groups_for_thing(thingName="t", thingGroupsToAdd=["root-b", "a1x"])
    assert error_of(info) == ("InvalidRequestException", 400)
    assert names(iot.list_thing_groups_for_thing(thingName="t")["thingGroups"]) == before
    assert iot.list_things_in_thing_group(thingGroupName="root-b")["things"] == []
    with pytest.raises(ClientError) as info:
        iot.update_thing_groups_for_thing(thingName="ghost", thingGroupsToAdd=["root-b"])
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.update_thing_groups_for_thing(thingGroupsToAdd=["root-b"])
    assert error_of(info) == ("InvalidRequestException", 400)


def test_list_things_in_thing_group_recursive_and_pagination(iot):
    make_tree(iot)
    spread = {"root-a": [], "a1": [], "a2": [], "a1x": []}
    groups = list(spread)
    for i in range(22):
        name = f"thing-{i:02d}"
        group = groups[i % 4]  # interleave names across the groups
        iot.create_thing(thingName=name)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)
        spread[group].append(name)
    iot.create_thing(thingName="elsewhere")
    iot.add_thing_to_thing_group(thingGroupName="root-b", thingName="elsewhere")

    assert iot.list_things_in_thing_group(thingGroupName="a1")["things"] == spread["a1"]
    assert iot.list_things_in_thing_group(thingGroupName="a1", recursive=False)["things"] == spread["a1"]
    assert iot.list_things_in_thing_group(thingGroupName="a1", recursive=True)["things"] == sorted(
        spread["a1"] + spread["a1x"])
    everything = sorted(sum(spread.values(), []))
    seen, pages = walk(iot.list_things_in_thing_group, "things", 5, thingGroupName="root-a", recursive=True)
    assert seen == everything and pages == 5
    seen, pages = walk(iot.list_things_in_thing_group, "things", 2, thingGroupName="a2")
    assert seen == spread["a2"] and pages == 3
    paginated = [t for p in iot.get_paginator("list_things_in_thing_group").paginate(
        thingGroupName="root-a", recursive=True, PaginationConfig={"PageSize": 7}) for t in p["things"]]
    assert paginated == everything


def test_deleting_a_thing_leaves_its_groups(iot):
    iot.create_thing_group(thingGroupName="g")
    iot.create_thing(thingName="t")
    iot.add_thing_to_thing_group(thingGroupName="g", thingName="t")
    iot.delete_thing(thingName="t")
    assert iot.list_things_in_thing_group(thingGroupName="g")["things"] == []


def plant_dynamic_group(server, name, members=()):
    """A dynamic group as fleet indexing will store it (it has no API here yet)."""
    from localiot.services.registry import thing_groups, things

    def plant():
        with server.app.store.transaction(ACCOUNT, "us-east-1") as tx:
            tx.put(thing_groups.KIND, name, {
                "thingGroupName": name, "thingGroupId": f"{name}-id", "thingGroupArn": group_arn(name),
                "version": 1, "thingGroupProperties": {}, "parentGroupName": None, "ancestors": [],
                "creationDate": 1.0, "dynamic": True, "indexName": "AWS_Things",
                "queryString": "attributes.a:1", "queryVersion": "2017-09-30", "status": "ACTIVE",
            }, {"depth": "1"})
            for member in members:
                tx.link(things.MEMBER_OF, name, member)

    server.call(plant)


def test_static_operations_refuse_a_dynamic_group(localiot_server, iot):
    iot.create_thing(thingName="t")
    plant_dynamic_group(localiot_server, "dyn")
    described = iot.describe_thing_group(thingGroupName="dyn")
    assert described["queryString"] == "attributes.a:1" and described["status"] == "ACTIVE"
    assert names(iot.list_thing_groups(recursive=False)["thingGroups"]) == ["dyn"]
    refusals = [
        lambda: iot.add_thing_to_thing_group(thingGroupName="dyn", thingName="t"),
        lambda: iot.remove_thing_from_thing_group(thingGroupName="dyn", thingName="t"),
        lambda: iot.update_thing_groups_for_thing(thingName="t", thingGroupsToAdd=["dyn"]),
        lambda: iot.update_thing_group(thingGroupName="dyn", thingGroupProperties={"thingGroupDescription": "x"}),
        lambda: iot.delete_thing_group(thingGroupName="dyn"),
        lambda: iot.create_thing_group(thingGroupName="child", parentGroupName="dyn"),
    ]
    for refuse in refusals:
        with pytest.raises(ClientError) as info:
            refuse()
        assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        iot.create_thing_group(thingGroupName="dyn")
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)


def test_override_dynamic_groups_at_the_ten_group_limit(localiot_server, iot):
    iot.create_thing(thingName="t")
    for i in range(10):
        iot.create_thing_group(thingGroupName=f"g{i:02d}")
    for i in range(9):
        iot.add_thing_to_thing_group(thingGroupName=f"g{i:02d}", thingName="t")
    plant_dynamic_group(localiot_server, "dyn", members=["t"])
    assert len(iot.list_thing_groups_for_thing(thingName="t")["thingGroups"]) == 10
    with pytest.raises(ClientError) as info:
        iot.add_thing_to_thing_group(thingGroupName="g09", thingName="t")
    assert error_of(info) == ("InvalidRequestException", 400)
    iot.add_thing_to_thing_group(thingGroupName="g09", thingName="t", overrideDynamicGroups=True)
    assert names(iot.list_thing_groups_for_thing(thingName="t")["thingGroups"]) == [f"g{i:02d}" for i in range(10)]
    assert iot.list_things_in_thing_group(thingGroupName="dyn")["things"] == []


# events ----------------------------------------------------------------------
def test_registry_events(localiot_server, iot):
    seen = []
    unsubscribe = localiot_server.app.bus.subscribe(
        lambda account, region, topic, payload: seen.append((topic, json.loads(payload))))
    try:
        iot.create_thing_group(thingGroupName="quiet")
        assert seen == []
        iot.update_event_configurations(eventConfigurations={
            t: {"Enabled": True} for t in ("THING_GROUP", "THING_GROUP_MEMBERSHIP", "THING_GROUP_HIERARCHY")})
        root = iot.create_thing_group(thingGroupName="root")
        child = iot.create_thing_group(thingGroupName="child", parentGroupName="root", thingGroupProperties={
            "thingGroupDescription": "kid", "attributePayload": {"attributes": {"a": "1"}}})
        thing = iot.create_thing(thingName="t")
        iot.add_thing_to_thing_group(thingGroupName="child", thingName="t")
        iot.update_thing_group(thingGroupName="child", thingGroupProperties={"thingGroupDescription": "grown"})
        with pytest.raises(ClientError):  # refused: no event
            iot.delete_thing_group(thingGroupName="root")
        iot.remove_thing_from_thing_group(thingGroupName="child", thingName="t")
        iot.delete_thing_group(thingGroupName="child")

        assert [topic for topic, _ in seen] == [
            "$aws/events/thingGroup/root/created",
            "$aws/events/thingGroup/child/created",
            "$aws/events/thingGroupHierarchy/thingGroup/root/childThingGroup/child/added",
            "$aws/events/thingGroupMembership/thingGroup/child/thing/t/added",
            "$aws/events/thingGroup/child/updated",
            "$aws/events/thingGroupMembership/thingGroup/child/thing/t/removed",
            "$aws/events/thingGroupHierarchy/thingGroup/root/childThingGroup/child/removed",
            "$aws/events/thingGroup/child/deleted",
        ]
        created = seen[1][1]
        assert created["eventType"] == "THING_GROUP_EVENT" and created["operation"] == "CREATED"
        assert created["accountId"] == ACCOUNT
        assert {k: created[k] for k in (
            "thingGroupId", "thingGroupName", "versionNumber", "parentGroupName", "parentGroupId", "description",
            "rootToParentThingGroups", "attributes", "dynamicGroupMappingId")} == {
            "thingGroupId": child["thingGroupId"], "thingGroupName": "child", "versionNumber": 1,
            "parentGroupName": "root", "parentGroupId": root["thingGroupId"], "description": "kid",
            "rootToParentThingGroups": [{"groupArn": group_arn("root"), "groupId": root["thingGroupId"]}],
            "attributes": {"a": "1"}, "dynamicGroupMappingId": None,
        }
        assert seen[0][1]["parentGroupName"] is None and seen[0][1]["rootToParentThingGroups"] == []
        hierarchy = seen[2][1]
        assert hierarchy["eventType"] == "THING_GROUP_HIERARCHY_EVENT" and hierarchy["operation"] == "ADDED"
        assert {k: hierarchy[k] for k in ("thingGroupId", "thingGroupName", "childGroupId", "childGroupName")} == {
            "thingGroupId": root["thingGroupId"], "thingGroupName": "root",
            "childGroupId": child["thingGroupId"], "childGroupName": "child"}
        added, removed = seen[3][1], seen[5][1]
        assert added["eventType"] == "THING_GROUP_MEMBERSHIP_EVENT"
        assert (added["operation"], removed["operation"]) == ("ADDED", "REMOVED")
        assert {k: added[k] for k in ("groupArn", "groupId", "thingArn", "thingId")} == {
            "groupArn": group_arn("child"), "groupId": child["thingGroupId"],
            "thingArn": thing["thingArn"], "thingId": thing["thingId"]}
        assert added["membershipId"] == removed["membershipId"]
        updated = seen[4][1]
        assert updated["versionNumber"] == 2 and updated["description"] == "grown"
        assert seen[7][1]["operation"] == "DELETED"
    finally:
        unsubscribe()
