"""One IAM role-ARN grammar (localiot.services.iam) for every operation that
takes a role: role aliases, provisioning templates, bulk registration and
topic rule actions accept and refuse the same ARNs."""

import json

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
TEMPLATE = json.dumps({"Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "t"}}}})

GOOD = [
    f"arn:aws:iam::{ACCOUNT}:role/iot-credentials",
    f"arn:aws:iam::{ACCOUNT}:role/service-role/path.two/Role+=,.@_-1",
    f"arn:aws-cn:iam::{ACCOUNT}:role/cn-role",
    f"arn:aws:iam::{ACCOUNT}:role/" + "r" * 64,
]
BAD = [
    f"arn:aws:iam::{ACCOUNT}:user/someone",  # not a role
    f"arn:aws:iam::{ACCOUNT}:role/",  # no name
    f"arn:aws:iam::{ACCOUNT}:role/path/",  # a path without a name
    f"arn:aws:iam::{ACCOUNT}:role/has space",  # not an IAM name character
    f"arn:aws:iam::{ACCOUNT}:role/rôle",  # IAM names are ASCII
    f"arn:aws:iam::{ACCOUNT}:role/" + "r" * 65,  # IAM role names are 1-64 characters
    "arn:aws:iam::12345:role/short-account",
    f"arn:aws:s3:::{ACCOUNT}:role/not-iam",
]


def _role_alias(iot, role, n):
    return iot.create_role_alias(roleAlias=f"alias{n}", roleArn=role)


def _provisioning_template(iot, role, n):
    return iot.create_provisioning_template(templateName=f"tpl{n}", templateBody=TEMPLATE, provisioningRoleArn=role)


def _bulk_registration(iot, role, n):
    return iot.start_thing_registration_task(templateBody=TEMPLATE, inputFileBucket="bucket",
                                             inputFileKey=f"k{n}", roleArn=role)


def _topic_rule(iot, role, n):
    return iot.create_topic_rule(ruleName=f"rule{n}", topicRulePayload={
        "sql": "SELECT * FROM 'in'", "actions": [{"republish": {"topic": "out", "roleArn": role}}]})


OPERATIONS = [_role_alias, _provisioning_template, _bulk_registration, _topic_rule]


@pytest.mark.parametrize("call", OPERATIONS, ids=lambda fn: fn.__name__.lstrip("_"))
def test_every_operation_accepts_iam_role_arns(iot, call):
    for n, role in enumerate(GOOD):
        call(iot, role, n)


@pytest.mark.parametrize("call", OPERATIONS, ids=lambda fn: fn.__name__.lstrip("_"))
def test_every_operation_refuses_what_is_not_a_role_arn(iot, call):
    for n, role in enumerate(BAD):
        with pytest.raises(ClientError) as info:
            call(iot, role, n)
        error = info.value.response["Error"]
        assert (error["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
            "InvalidRequestException", 400), role
        assert "role ARN" in error["Message"], role
    assert iot.list_role_aliases()["roleAliases"] == []
    assert iot.list_provisioning_templates()["templates"] == []
    assert iot.list_thing_registration_tasks()["taskIds"] == []
    assert iot.list_topic_rules()["rules"] == []
