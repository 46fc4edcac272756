"""Role aliases: create, describe, update, delete, list.

A role alias names an IAM role for the credentials provider. The role's own
maximum session duration is not checked (that would need IAM downstream).
"""

from __future__ import annotations


from localiot.protocol.errors import invalid
from localiot.services import operation
from localiot.services.common import Resource, marker_page, tags_to_dict
from localiot.services.iam import is_role_arn

KIND = "rolealias"
DEFAULT_DURATION = 3600  # "The default value is 3,600 seconds."

ROLE_ALIAS = Resource(KIND, "rolealias/{name}", not_found="Role alias {name} cannot be found.",
                      exists="Role alias {name} already exists.", id_field="roleAlias", arn_field="roleAliasArn",
                      taggable=True)
get = ROLE_ALIAS.get


def _check_role_arn(value: str) -> None:
    if not is_role_arn(value):
        raise invalid(f"roleArn {value!r} is not an IAM role ARN.")


@operation("iot")
def CreateRoleAlias(ctx, req):
    alias = req["roleAlias"]
    ROLE_ALIAS.ensure_absent(ctx, alias)
    _check_role_arn(req["roleArn"])
    now = ctx.now()
    doc = {
        "roleAlias": alias,
        "roleAliasArn": ROLE_ALIAS.arn(ctx, alias),
        "roleArn": req["roleArn"],
        "owner": ctx.account,
        "credentialDurationSeconds": req.get("credentialDurationSeconds") or DEFAULT_DURATION,
        "creationDate": now,
        "lastModifiedDate": now,
    }
    ROLE_ALIAS.create(ctx, alias, doc, tags_to_dict(req.get("tags")))
    return {"roleAlias": alias, "roleAliasArn": doc["roleAliasArn"]}


@operation("iot")
def DescribeRoleAlias(ctx, req):
    doc = get(ctx, req["roleAlias"])
    return {"roleAliasDescription": {
        "roleAlias": doc["roleAlias"],
        "roleAliasArn": doc["roleAliasArn"],
        "roleArn": doc["roleArn"],
        "owner": doc["owner"],
        "credentialDurationSeconds": doc["credentialDurationSeconds"],
        "creationDate": doc["creationDate"],
        "lastModifiedDate": doc["lastModifiedDate"],
    }}


@operation("iot")
def UpdateRoleAlias(ctx, req):
    alias = req["roleAlias"]
    doc = get(ctx, alias)
    if req.get("roleArn") is not None:
        _check_role_arn(req["roleArn"])
        doc["roleArn"] = req["roleArn"]
    if req.get("credentialDurationSeconds") is not None:
        doc["credentialDurationSeconds"] = req["credentialDurationSeconds"]
    doc["lastModifiedDate"] = ctx.now()
    ctx.tx.put(KIND, alias, doc)
    return {"roleAlias": alias, "roleAliasArn": doc["roleAliasArn"]}


@operation("iot")
def DeleteRoleAlias(ctx, req):
    ROLE_ALIAS.delete(ctx, get(ctx, req["roleAlias"])["roleAlias"])
    return {}


@operation("iot")
def ListRoleAliases(ctx, req):
    rows, marker = marker_page(ctx.tx, KIND, req)
    return {"roleAliases": [name for name, _ in rows], "nextMarker": marker}
