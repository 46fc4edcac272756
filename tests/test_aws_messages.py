"""Error answers whose text AWS documents or is known to send, matched exactly
(issue 11 items 8-11), and the call changes nothing."""

import json

import pytest
from botocore.exceptions import ClientError

POLICY = json.dumps({"Version": "2012-10-17",
                     "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]})


def answer(info):
    error = info.value.response["Error"]
    return error["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"], error["Message"]


def test_delete_thing_with_principals_attached(iot):
    iot.create_thing(thingName="lamp")
    arn = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_thing_principal(thingName="lamp", principal=arn)
    with pytest.raises(ClientError) as info:
        iot.delete_thing(thingName="lamp")
    assert answer(info) == ("InvalidRequestException", 400,
                            "Cannot delete. Thing lamp is still attached to one or more principals")
    assert iot.list_thing_principals(thingName="lamp")["principals"] == [arn]


def test_list_thing_principals_of_a_missing_thing(iot):
    with pytest.raises(ClientError) as info:
        iot.list_thing_principals(thingName="ghost")
    assert answer(info) == ("ResourceNotFoundException", 404,
                            "Failed to list principals for thing ghost because the thing does not exist in your account")


def test_list_targets_for_an_unknown_policy(iot):
    with pytest.raises(ClientError) as info:
        iot.list_targets_for_policy(policyName="nope")
    assert answer(info) == ("ResourceNotFoundException", 404, "Policy not found")


def test_create_policy_version_at_the_limit(iot):
    iot.create_policy(policyName="p", policyDocument=POLICY)
    for _ in range(4):
        iot.create_policy_version(policyName="p", policyDocument=POLICY)
    with pytest.raises(ClientError) as info:
        iot.create_policy_version(policyName="p", policyDocument=POLICY, setAsDefault=True)
    assert answer(info) == ("VersionsLimitExceededException", 409,
                            "The policy p already has the maximum number of versions (5)")
    versions = iot.list_policy_versions(policyName="p")["policyVersions"]
    assert sorted(v["versionId"] for v in versions) == ["1", "2", "3", "4", "5"]
    assert [v["versionId"] for v in versions if v["isDefaultVersion"]] == ["1"]
