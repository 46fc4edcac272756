"""Role aliases: create, describe, update, delete, list with markers and order."""

import re

import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from localiot.testing import ACCOUNT, advance, error_of, make_client

ROLE = f"arn:aws:iam::{ACCOUNT}:role/iot-credentials"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/path/other-role"


@pytest.fixture
def raw_iot(localiot_server):
    """A client that skips botocore's own parameter checks, to reach the server's."""
    return make_client(localiot_server, config=BotoConfig(parameter_validation=False))


def test_create_and_describe(iot):
    out = iot.create_role_alias(roleAlias="creds", roleArn=ROLE, tags=[{"Key": "env", "Value": "dev"}])
    assert out["roleAlias"] == "creds"
    assert out["roleAliasArn"] == f"arn:aws:iot:us-east-1:{ACCOUNT}:rolealias/creds"
    desc = iot.describe_role_alias(roleAlias="creds")["roleAliasDescription"]
    assert desc["roleAlias"] == "creds"
    assert desc["roleAliasArn"] == out["roleAliasArn"]
    assert desc["roleArn"] == ROLE
    assert desc["owner"] == ACCOUNT
    assert desc["credentialDurationSeconds"] == 3600
    assert desc["creationDate"] == desc["lastModifiedDate"]
    assert desc["creationDate"].year >= 2024
    assert iot.list_tags_for_resource(resourceArn=out["roleAliasArn"])["tags"] == [{"Key": "env", "Value": "dev"}]


def test_create_with_duration(iot):
    iot.create_role_alias(roleAlias="short", roleArn=ROLE, credentialDurationSeconds=900)
    iot.create_role_alias(roleAlias="long", roleArn=ROLE, credentialDurationSeconds=43200)
    assert iot.describe_role_alias(roleAlias="short")["roleAliasDescription"]["credentialDurationSeconds"] == 900
    assert iot.describe_role_alias(roleAlias="long")["roleAliasDescription"]["credentialDurationSeconds"] == 43200


def test_create_duplicate(iot):
    out = iot.create_role_alias(roleAlias="creds", roleArn=ROLE)
    with pytest.raises(ClientError) as info:
        iot.create_role_alias(roleAlias="creds", roleArn=OTHER_ROLE)
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)
    assert info.value.response["resourceArn"] == out["roleAliasArn"]
    assert iot.describe_role_alias(roleAlias="creds")["roleAliasDescription"]["roleArn"] == ROLE


@pytest.mark.parametrize("kw,fragment", [
    ({"credentialDurationSeconds": 899}, "greater than or equal to 900"),
    ({"credentialDurationSeconds": 43201}, "less than or equal to 43200"),
    ({"roleArn": "arn:aws:iam::1:role"}, "length greater than or equal to 20"),
    ({"roleAlias": "bad alias"}, "[\\w=,@-]+"),
])
def test_create_validation(raw_iot, kw, fragment):
    args = {"roleAlias": "creds", "roleArn": ROLE, **kw}
    with pytest.raises(ClientError) as info:
        raw_iot.create_role_alias(**args)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert fragment in info.value.response["Error"]["Message"]


def test_role_arn_must_name_an_iam_role(iot):
    with pytest.raises(ClientError) as info:
        iot.create_role_alias(roleAlias="creds", roleArn="arn:aws:iam::123456789012:user/someone")
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_role_alias(roleAlias="creds")


def test_describe_missing(iot):
    with pytest.raises(ClientError) as info:
        iot.describe_role_alias(roleAlias="ghost")
    assert error_of(info) == ("ResourceNotFoundException", 404)


def test_update(localiot_server, iot):
    iot.create_role_alias(roleAlias="creds", roleArn=ROLE)
    before = iot.describe_role_alias(roleAlias="creds")["roleAliasDescription"]
    advance(localiot_server, 120)
    out = iot.update_role_alias(roleAlias="creds", roleArn=OTHER_ROLE, credentialDurationSeconds=7200)
    assert out["roleAlias"] == "creds" and out["roleAliasArn"] == before["roleAliasArn"]
    after = iot.describe_role_alias(roleAlias="creds")["roleAliasDescription"]
    assert after["roleArn"] == OTHER_ROLE
    assert after["credentialDurationSeconds"] == 7200
    assert after["creationDate"] == before["creationDate"]
    assert (after["lastModifiedDate"] - before["lastModifiedDate"]).total_seconds() >= 119
    iot.update_role_alias(roleAlias="creds", credentialDurationSeconds=1000)
    after = iot.describe_role_alias(roleAlias="creds")["roleAliasDescription"]
    assert after["roleArn"] == OTHER_ROLE and after["credentialDurationSeconds"] == 1000


def test_update_errors(iot, raw_iot):
    with pytest.raises(ClientError) as info:
        iot.update_role_alias(roleAlias="ghost", roleArn=ROLE)
    assert error_of(info) == ("ResourceNotFoundException", 404)
    iot.create_role_alias(roleAlias="creds", roleArn=ROLE)
    with pytest.raises(ClientError) as info:
        iot.update_role_alias(roleAlias="creds", roleArn="arn:aws:s3:::bucket/not-a-role")
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        raw_iot.update_role_alias(roleAlias="creds", credentialDurationSeconds=50000)
    assert error_of(info) == ("InvalidRequestException", 400)
    desc = iot.describe_role_alias(roleAlias="creds")["roleAliasDescription"]
    assert desc["roleArn"] == ROLE and desc["credentialDurationSeconds"] == 3600


def test_delete(iot):
    arn = iot.create_role_alias(roleAlias="creds", roleArn=ROLE, tags=[{"Key": "a", "Value": "b"}])["roleAliasArn"]
    iot.delete_role_alias(roleAlias="creds")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_role_alias(roleAlias="creds")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_tags_for_resource(resourceArn=arn)
    with pytest.raises(ClientError) as info:
        iot.delete_role_alias(roleAlias="creds")
    assert error_of(info) == ("ResourceNotFoundException", 404)
    # The name is free again, with no leftover tags.
    iot.create_role_alias(roleAlias="creds", roleArn=OTHER_ROLE)
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == []


def test_list_order_and_pages(iot):
    assert iot.list_role_aliases()["roleAliases"] == []
    for alias in ["m", "b", "z", "a", "q"]:
        iot.create_role_alias(roleAlias=alias, roleArn=ROLE)
    out = iot.list_role_aliases()
    assert out["roleAliases"] == ["a", "b", "m", "q", "z"]
    assert "nextMarker" not in out
    assert iot.list_role_aliases(ascendingOrder=True)["roleAliases"] == ["a", "b", "m", "q", "z"]
    assert iot.list_role_aliases(ascendingOrder=False)["roleAliases"] == ["z", "q", "m", "b", "a"]
    page1 = iot.list_role_aliases(pageSize=2)
    assert page1["roleAliases"] == ["a", "b"]
    assert re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", page1["nextMarker"])
    page2 = iot.list_role_aliases(pageSize=2, marker=page1["nextMarker"])
    assert page2["roleAliases"] == ["m", "q"]
    page3 = iot.list_role_aliases(pageSize=2, marker=page2["nextMarker"])
    assert page3["roleAliases"] == ["z"] and "nextMarker" not in page3
    down1 = iot.list_role_aliases(pageSize=3, ascendingOrder=False)
    assert down1["roleAliases"] == ["z", "q", "m"]
    down2 = iot.list_role_aliases(pageSize=3, ascendingOrder=False, marker=down1["nextMarker"])
    assert down2["roleAliases"] == ["b", "a"] and "nextMarker" not in down2
    pages = list(iot.get_paginator("list_role_aliases").paginate(PaginationConfig={"PageSize": 2}))
    assert [alias for page in pages for alias in page["roleAliases"]] == ["a", "b", "m", "q", "z"]
    assert len(pages) == 3
    for bad in ["@@", "abc", "//79"]:  # off-pattern, bad padding, not UTF-8
        with pytest.raises(ClientError) as info:
            iot.list_role_aliases(marker=bad)
        assert error_of(info) == ("InvalidRequestException", 400)


def test_tags(iot):
    arn = iot.create_role_alias(roleAlias="creds", roleArn=ROLE)["roleAliasArn"]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "x", "Value": "1"}])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "x", "Value": "1"}]
    iot.untag_resource(resourceArn=arn, tagKeys=["x"])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == []
