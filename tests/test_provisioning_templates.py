"""Provisioning templates and their versions through boto3 against the real server
(RegisterThing is in test_register_thing.py)."""

import json

import pytest
from botocore.exceptions import ClientError

from localiot.testing import ACCOUNT, error_message, error_of
from provisioning_helpers import BODY, HOOK, ROLE, create, template_arn


# templates ---------------------------------------------------------------------
def test_create_and_describe_template(iot):
    out = create(iot, description="lights", enabled=True)
    assert out == {
        "templateArn": template_arn("tpl"), "templateName": "tpl", "defaultVersionId": 1,
        "ResponseMetadata": out["ResponseMetadata"],
    }
    desc = iot.describe_provisioning_template(templateName="tpl")
    assert desc["templateArn"] == template_arn("tpl")
    assert desc["description"] == "lights"
    assert desc["enabled"] is True
    assert desc["type"] == "FLEET_PROVISIONING"
    assert desc["templateBody"] == BODY
    assert desc["provisioningRoleArn"] == ROLE
    assert desc["defaultVersionId"] == 1
    assert desc["creationDate"] == desc["lastModifiedDate"]
    assert "preProvisioningHook" not in desc


def test_defaults_enabled_false_and_jitp_type(iot):
    create(iot, "jitp", type="JITP")
    desc = iot.describe_provisioning_template(templateName="jitp")
    assert (desc["enabled"], desc["type"]) == (False, "JITP")


def test_duplicate_template(iot):
    create(iot)
    with pytest.raises(ClientError) as info:
        create(iot)
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)


@pytest.mark.parametrize("body,fragment", [
    ("{oops", "not valid JSON"),
    (json.dumps({"Resources": {"x": {"Type": "AWS::IoT::Widget", "Properties": {}}}}), "unsupported resource type"),
    (json.dumps({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "Nope"}}}}}),
     "Ref to undefined parameter 'Nope'"),
    (json.dumps({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Magic": []}}}}}),
     "unsupported intrinsic function 'Fn::Magic'"),
])
def test_invalid_template_body(iot, body, fragment):
    with pytest.raises(ClientError) as info:
        create(iot, templateBody=body)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert fragment in error_message(info)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_provisioning_template(templateName="tpl")


def test_model_constraints_and_role_arn(iot):
    with pytest.raises(ClientError) as info:
        create(iot, "bad name!")
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        create(iot, provisioningRoleArn="arn:aws:s3:::bucket/whatever")
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "IAM role" in error_message(info)


def test_pre_provisioning_hook_only_for_fleet_provisioning(iot):
    with pytest.raises(ClientError) as info:
        create(iot, "j", type="JITP", preProvisioningHook={"targetArn": HOOK})
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        create(iot, "f", preProvisioningHook={"targetArn": "arn:aws:sns:us-east-1:123456789012:topic"})
    assert error_of(info) == ("InvalidRequestException", 400)
    create(iot, "f", preProvisioningHook={"targetArn": HOOK})
    assert iot.describe_provisioning_template(templateName="f")["preProvisioningHook"] == {
        "targetArn": HOOK, "payloadVersion": "2020-04-01",
    }


def test_update_template(iot, localiot_server):
    create(iot)
    before = iot.describe_provisioning_template(templateName="tpl")
    localiot_server.clock.advance(60)
    iot.update_provisioning_template(
        templateName="tpl", description="new", enabled=True,
        provisioningRoleArn=f"arn:aws:iam::{ACCOUNT}:role/Other",
        preProvisioningHook={"targetArn": HOOK, "payloadVersion": "2020-04-01"},
    )
    after = iot.describe_provisioning_template(templateName="tpl")
    assert (after["description"], after["enabled"]) == ("new", True)
    assert after["provisioningRoleArn"].endswith("role/Other")
    assert after["preProvisioningHook"]["targetArn"] == HOOK
    assert after["lastModifiedDate"] > before["lastModifiedDate"]
    assert after["creationDate"] == before["creationDate"]
    iot.update_provisioning_template(templateName="tpl", removePreProvisioningHook=True)
    assert "preProvisioningHook" not in iot.describe_provisioning_template(templateName="tpl")
    with pytest.raises(ClientError) as info:
        iot.update_provisioning_template(templateName="tpl", removePreProvisioningHook=True,
                                         preProvisioningHook={"targetArn": HOOK})
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        iot.update_provisioning_template(templateName="tpl", defaultVersionId=7)
    assert error_of(info) == ("ResourceNotFoundException", 404)


def test_missing_template_everywhere(iot):
    calls = [
        lambda: iot.describe_provisioning_template(templateName="ghost"),
        lambda: iot.update_provisioning_template(templateName="ghost", enabled=True),
        lambda: iot.delete_provisioning_template(templateName="ghost"),
        lambda: iot.create_provisioning_template_version(templateName="ghost", templateBody=BODY),
        lambda: iot.describe_provisioning_template_version(templateName="ghost", versionId=1),
        lambda: iot.list_provisioning_template_versions(templateName="ghost"),
        lambda: iot.delete_provisioning_template_version(templateName="ghost", versionId=1),
    ]
    for call in calls:
        with pytest.raises(ClientError) as info:
            call()
        assert error_of(info) == ("ResourceNotFoundException", 404)


def test_delete_template_and_its_tags(iot):
    create(iot, tags=[{"Key": "team", "Value": "fw"}])
    arn = template_arn("tpl")
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "team", "Value": "fw"}]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": "dev"}])
    assert len(iot.list_tags_for_resource(resourceArn=arn)["tags"]) == 2
    iot.delete_provisioning_template(templateName="tpl")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_provisioning_template(templateName="tpl")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_tags_for_resource(resourceArn=arn)
    create(iot)
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == []


def test_list_templates_paginates(iot):
    for i in range(7):
        create(iot, f"tpl-{i}", description=f"d{i}", type="JITP" if i % 2 else "FLEET_PROVISIONING")
    seen, token, pages = [], None, 0
    while True:
        page = iot.list_provisioning_templates(maxResults=3, **({"nextToken": token} if token else {}))
        assert len(page["templates"]) <= 3
        seen += page["templates"]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 3
    assert [t["templateName"] for t in seen] == [f"tpl-{i}" for i in range(7)]
    first = seen[1]
    assert first["templateArn"] == template_arn("tpl-1")
    assert (first["description"], first["type"], first["enabled"]) == ("d1", "JITP", False)
    assert "creationDate" in first and "lastModifiedDate" in first
    assert [t["templateName"] for t in iot.get_paginator("list_provisioning_templates").paginate(
        PaginationConfig={"PageSize": 2}).build_full_result()["templates"]] == [f"tpl-{i}" for i in range(7)]
    with pytest.raises(ClientError) as info:
        iot.list_provisioning_templates(nextToken="garbage")
    assert error_of(info) == ("InvalidRequestException", 400)


# versions ----------------------------------------------------------------------
def body_named(name):
    return json.dumps({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": name}}}})


def test_versions_lifecycle(iot):
    create(iot)
    v2 = iot.create_provisioning_template_version(templateName="tpl", templateBody=body_named("two"))
    assert (v2["versionId"], v2["isDefaultVersion"], v2["templateArn"]) == (2, False, template_arn("tpl"))
    assert iot.describe_provisioning_template(templateName="tpl")["defaultVersionId"] == 1
    v3 = iot.create_provisioning_template_version(templateName="tpl", templateBody=body_named("three"), setAsDefault=True)
    assert (v3["versionId"], v3["isDefaultVersion"]) == (3, True)
    desc = iot.describe_provisioning_template(templateName="tpl")
    assert (desc["defaultVersionId"], desc["templateBody"]) == (3, body_named("three"))
    version = iot.describe_provisioning_template_version(templateName="tpl", versionId=2)
    assert (version["versionId"], version["isDefaultVersion"], version["templateBody"]) == (2, False, body_named("two"))
    assert "creationDate" in version
    listed = iot.list_provisioning_template_versions(templateName="tpl")["versions"]
    assert [(v["versionId"], v["isDefaultVersion"]) for v in listed] == [(1, False), (2, False), (3, True)]
    iot.update_provisioning_template(templateName="tpl", defaultVersionId=2)
    assert iot.describe_provisioning_template(templateName="tpl")["templateBody"] == body_named("two")
    with pytest.raises(ClientError) as info:
        iot.describe_provisioning_template_version(templateName="tpl", versionId=9)
    assert error_of(info) == ("ResourceNotFoundException", 404)


def test_version_body_is_validated(iot):
    create(iot)
    with pytest.raises(ClientError) as info:
        iot.create_provisioning_template_version(templateName="tpl", templateBody='{"Resources": {"x": {"Type": "Nope"}}}')
    assert error_of(info) == ("InvalidRequestException", 400)
    assert len(iot.list_provisioning_template_versions(templateName="tpl")["versions"]) == 1


def test_version_limit_and_deletes(iot):
    create(iot)
    for i in range(4):
        iot.create_provisioning_template_version(templateName="tpl", templateBody=body_named(f"v{i}"))
    with pytest.raises(ClientError) as info:
        iot.create_provisioning_template_version(templateName="tpl", templateBody=body_named("six"))
    assert error_of(info) == ("VersionsLimitExceededException", 409)
    with pytest.raises(ClientError) as info:
        iot.delete_provisioning_template_version(templateName="tpl", versionId=1)
    assert error_of(info) == ("DeleteConflictException", 409)
    iot.delete_provisioning_template_version(templateName="tpl", versionId=3)
    with pytest.raises(ClientError) as info:
        iot.delete_provisioning_template_version(templateName="tpl", versionId=3)
    assert error_of(info) == ("ResourceNotFoundException", 404)
    again = iot.create_provisioning_template_version(templateName="tpl", templateBody=body_named("six"))
    assert again["versionId"] == 6  # IDs are not reused
    listed = iot.list_provisioning_template_versions(templateName="tpl")["versions"]
    assert [v["versionId"] for v in listed] == [1, 2, 4, 5, 6]


def test_list_versions_paginates(iot):
    create(iot)
    for i in range(4):
        iot.create_provisioning_template_version(templateName="tpl", templateBody=body_named(f"v{i}"))
    first = iot.list_provisioning_template_versions(templateName="tpl", maxResults=2)
    assert [v["versionId"] for v in first["versions"]] == [1, 2]
    second = iot.list_provisioning_template_versions(templateName="tpl", maxResults=2, nextToken=first["nextToken"])
    assert [v["versionId"] for v in second["versions"]] == [3, 4]
    third = iot.list_provisioning_template_versions(templateName="tpl", maxResults=2, nextToken=second["nextToken"])
    assert [v["versionId"] for v in third["versions"]] == [5]
    assert "nextToken" not in third
