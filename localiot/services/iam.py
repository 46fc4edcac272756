"""IAM names the IoT API checks: one role-ARN grammar for every family that
takes a role (rule actions and destinations, role aliases, provisioning
templates, bulk registration).

IAM's own grammar (IAM API reference, CreateRole; botocore's iotfleetwise
model states it as the IAMRoleArn pattern): the path is "/" or "/.../" made
of ASCII from "!" to DEL, up to 512 characters; the role name is 1-64 of
letters, digits and "+=,.@_-"; the partition is aws, aws-cn, aws-us-gov ...
"""

from __future__ import annotations

import re

ROLE_ARN = re.compile(r"^arn:aws[a-zA-Z0-9-]*:iam::\d{12}:role/(?:[\x21-\x7f]{1,510}/)?[\w+=,.@-]{1,64}$", re.ASCII)


def is_role_arn(value: str | None) -> bool:
    return bool(value) and ROLE_ARN.match(value) is not None
