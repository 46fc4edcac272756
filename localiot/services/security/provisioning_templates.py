"""Provisioning templates and their versions, RegisterThing, and the pre-provisioning hook.

A template is a "provisioningtemplate" document named after the template. Its
versions live inside it (`versions`, keyed by version ID as a string; at most
five), with `defaultVersionId` and `nextVersionId` (IDs are never reused).
The template engine is `localiot.provisioning`; the fleet-provisioning MQTT
topics reuse `get`, `default_body` and `run_pre_provisioning_hook` from here.
"""

from __future__ import annotations

import json
import logging
import re

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.provisioning import TemplateError, evaluate, validate_template
from localiot.provisioning.apply import apply_plan
from localiot.services import Affects, operation
from localiot.services.common import apply_tags, page, tags_to_dict
from localiot.services.iam import is_role_arn
from localiot.services.tagging import taggable

log = logging.getLogger("localiot.provisioning")

KIND = "provisioningtemplate"
CA_KIND = "cacert"  # CA certificates (ca_certificates.py) index registrationConfig.templateName as "template"
FLEET_PROVISIONING, JITP = "FLEET_PROVISIONING", "JITP"
# AWS IoT quotas: 256 provisioning templates per account and region, five versions per template.
MAX_TEMPLATES = 256
MAX_VERSIONS = 5
DEFAULT_PAYLOAD_VERSION = "2020-04-01"
_LAMBDA_ARN = re.compile(r"^arn:aws[\w-]*:lambda:[\w-]+:\d{12}:function:[\w-]+(:[\w$-]+)?$")

taggable("provisioningtemplate", lambda tx, name: tx.get(KIND, name) is not None)


# lookups ---------------------------------------------------------------------
def arn(ctx, name: str) -> str:
    return ctx.arn(f"provisioningtemplate/{name}")


def get(ctx, name: str) -> dict:
    doc = ctx.tx.get(KIND, name)
    if doc is None:
        raise not_found(f"The provisioning template {name} does not exist.")
    return doc


def default_body(doc: dict) -> str:
    return doc["versions"][str(doc["defaultVersionId"])]["templateBody"]


def _version(doc: dict, version_id: int) -> dict:
    version = doc["versions"].get(str(version_id))
    if version is None:
        raise not_found(f"Version {version_id} of provisioning template {doc['templateName']} does not exist.")
    return version


def _check_body(body: str) -> None:
    try:
        validate_template(body)
    except TemplateError as e:
        raise invalid(f"The provisioning template body is not valid: {e}") from None


def _check_role(role_arn: str) -> None:
    if not is_role_arn(role_arn):
        raise invalid(f"provisioningRoleArn {role_arn} is not an IAM role ARN.")


def _hook(given: dict, template_type: str) -> dict:
    if template_type != FLEET_PROVISIONING:
        raise invalid("A pre-provisioning hook is only supported for templates of type FLEET_PROVISIONING.")
    if not _LAMBDA_ARN.match(given["targetArn"]):
        raise invalid(f"The pre-provisioning hook target {given['targetArn']} is not a Lambda function ARN.")
    return {"targetArn": given["targetArn"], "payloadVersion": given.get("payloadVersion") or DEFAULT_PAYLOAD_VERSION}


# templates -------------------------------------------------------------------
@operation("iot")
def CreateProvisioningTemplate(ctx, req):
    name = req["templateName"]
    template_type = req.get("type") or FLEET_PROVISIONING
    _check_body(req["templateBody"])
    _check_role(req["provisioningRoleArn"])
    hook = _hook(req["preProvisioningHook"], template_type) if req.get("preProvisioningHook") else None
    if ctx.tx.get(KIND, name) is not None:
        raise ServiceError("ResourceAlreadyExistsException", f"The provisioning template {name} already exists.",
                           resourceId=name, resourceArn=arn(ctx, name))
    if ctx.tx.count(KIND) >= MAX_TEMPLATES:
        raise ServiceError("LimitExceededException", f"An account can have at most {MAX_TEMPLATES} provisioning templates.")
    now = ctx.now()
    doc = {
        "templateName": name,
        "templateArn": arn(ctx, name),
        "description": req.get("description"),
        "enabled": bool(req.get("enabled")),
        "provisioningRoleArn": req["provisioningRoleArn"],
        "preProvisioningHook": hook,
        "type": template_type,
        "creationDate": now,
        "lastModifiedDate": now,
        "defaultVersionId": 1,
        "nextVersionId": 2,
        "versions": {"1": {"versionId": 1, "templateBody": req["templateBody"], "creationDate": now}},
    }
    ctx.tx.put(KIND, name, doc)
    apply_tags(ctx, doc["templateArn"], tags_to_dict(req.get("tags")))
    return {"templateArn": doc["templateArn"], "templateName": name, "defaultVersionId": 1}


@operation("iot")
def DescribeProvisioningTemplate(ctx, req):
    doc = get(ctx, req["templateName"])
    return {
        "templateArn": doc["templateArn"],
        "templateName": doc["templateName"],
        "description": doc.get("description"),
        "creationDate": doc["creationDate"],
        "lastModifiedDate": doc["lastModifiedDate"],
        "defaultVersionId": doc["defaultVersionId"],
        "templateBody": default_body(doc),
        "enabled": doc["enabled"],
        "provisioningRoleArn": doc["provisioningRoleArn"],
        "preProvisioningHook": doc.get("preProvisioningHook"),
        "type": doc["type"],
    }


@operation("iot")
def UpdateProvisioningTemplate(ctx, req):
    doc = get(ctx, req["templateName"])
    if req.get("removePreProvisioningHook") and req.get("preProvisioningHook"):
        raise invalid("Cannot specify both preProvisioningHook and removePreProvisioningHook.")
    if req.get("defaultVersionId") is not None:
        _version(doc, req["defaultVersionId"])
        doc["defaultVersionId"] = req["defaultVersionId"]
    if req.get("provisioningRoleArn"):
        _check_role(req["provisioningRoleArn"])
        doc["provisioningRoleArn"] = req["provisioningRoleArn"]
    if req.get("preProvisioningHook"):
        doc["preProvisioningHook"] = _hook(req["preProvisioningHook"], doc["type"])
    elif req.get("removePreProvisioningHook"):
        doc["preProvisioningHook"] = None
    if "description" in req and req["description"] is not None:
        doc["description"] = req["description"]
    if req.get("enabled") is not None:
        doc["enabled"] = bool(req["enabled"])
    doc["lastModifiedDate"] = ctx.now()
    ctx.tx.put(KIND, doc["templateName"], doc)
    return {}


@operation("iot")
def DeleteProvisioningTemplate(ctx, req):
    doc = get(ctx, req["templateName"])
    # A CA certificate's registration configuration can name the template (JITP).
    users = ctx.tx.find(CA_KIND, "template", doc["templateName"], limit=1)
    if users:
        raise ServiceError(
            "DeleteConflictException",
            f"The provisioning template {doc['templateName']} is used by CA certificate {users[0][0]}; "
            "remove it from the CA's registration configuration first.",
        )
    ctx.tx.delete(KIND, doc["templateName"])
    ctx.tx.drop_tags(doc["templateArn"])
    return {}


@operation("iot")
def ListProvisioningTemplates(ctx, req):
    def fetch(after, limit):
        return ctx.tx.scan(KIND, after=after, limit=limit)

    rows, token = page(fetch, req)
    return {
        "templates": [
            {
                "templateArn": doc["templateArn"],
                "templateName": doc["templateName"],
                "description": doc.get("description"),
                "creationDate": doc["creationDate"],
                "lastModifiedDate": doc["lastModifiedDate"],
                "enabled": doc["enabled"],
                "type": doc["type"],
            }
            for _, doc in rows
        ],
        "nextToken": token,
    }


# versions --------------------------------------------------------------------
@operation("iot")
def CreateProvisioningTemplateVersion(ctx, req):
    doc = get(ctx, req["templateName"])
    _check_body(req["templateBody"])
    if len(doc["versions"]) >= MAX_VERSIONS:
        raise ServiceError(
            "VersionsLimitExceededException",
            f"The provisioning template {doc['templateName']} already has the maximum of {MAX_VERSIONS} versions; "
            "delete a version before creating another.",
        )
    version_id = doc["nextVersionId"]
    now = ctx.now()
    doc["versions"][str(version_id)] = {"versionId": version_id, "templateBody": req["templateBody"], "creationDate": now}
    doc["nextVersionId"] = version_id + 1
    if req.get("setAsDefault"):
        doc["defaultVersionId"] = version_id
    doc["lastModifiedDate"] = now
    ctx.tx.put(KIND, doc["templateName"], doc)
    return {
        "templateArn": doc["templateArn"],
        "templateName": doc["templateName"],
        "versionId": version_id,
        "isDefaultVersion": doc["defaultVersionId"] == version_id,
    }


@operation("iot")
def DescribeProvisioningTemplateVersion(ctx, req):
    doc = get(ctx, req["templateName"])
    version = _version(doc, req["versionId"])
    return {
        "versionId": version["versionId"],
        "creationDate": version["creationDate"],
        "templateBody": version["templateBody"],
        "isDefaultVersion": doc["defaultVersionId"] == version["versionId"],
    }


@operation("iot")
def ListProvisioningTemplateVersions(ctx, req):
    doc = get(ctx, req["templateName"])
    # Keyset on the zero-padded version ID, so tokens order like the IDs.
    keyed = sorted((f"{v['versionId']:010d}", v) for v in doc["versions"].values())

    def fetch(after, limit):
        return [row for row in keyed if after is None or row[0] > after][:limit]

    rows, token = page(fetch, req)
    return {
        "versions": [
            {
                "versionId": v["versionId"],
                "creationDate": v["creationDate"],
                "isDefaultVersion": doc["defaultVersionId"] == v["versionId"],
            }
            for _, v in rows
        ],
        "nextToken": token,
    }


@operation("iot")
def DeleteProvisioningTemplateVersion(ctx, req):
    doc = get(ctx, req["templateName"])
    version = _version(doc, req["versionId"])
    if version["versionId"] == doc["defaultVersionId"]:
        raise ServiceError(
            "DeleteConflictException",
            f"Version {version['versionId']} is the default version of provisioning template "
            f"{doc['templateName']} and cannot be deleted.",
        )
    del doc["versions"][str(version["versionId"])]
    doc["lastModifiedDate"] = ctx.now()
    ctx.tx.put(KIND, doc["templateName"], doc)
    return {}


# provisioning ----------------------------------------------------------------
@operation("iot", affects=Affects.DEVICE_RIGHTS)
def RegisterThing(ctx, req):
    try:
        plan = evaluate(validate_template(req["templateBody"]), req.get("parameters") or {},
                        region=ctx.region, account=ctx.account)
    except TemplateError as e:
        raise invalid(str(e)) from None
    return apply_plan(ctx, plan).register_thing_response()


def run_pre_provisioning_hook(
    runtime,
    region: str,
    template_doc: dict,
    parameters: dict,
    *,
    claim_certificate_id: str | None = None,
    certificate_id: str | None = None,
    certificate_pem: str | None = None,
    client_id: str | None = None,
) -> tuple[bool, dict[str, str]]:
    """Ask the template's pre-provisioning hook whether to provision, and with which overrides.

    Returns (allowProvisioning, parameterOverrides); (True, {}) without a hook.
    The Lambda is invoked synchronously through `runtime.aws_client`: call
    this outside the store transaction (from a worker thread on the broker).
    A failing invocation, a function error or an answer that is not an
    object with "allowProvisioning": true refuses provisioning, as AWS does
    (the device then gets ACCESS_DENIED); the reason is logged.
    """
    hook = template_doc.get("preProvisioningHook")
    if not hook:
        return True, {}
    payload = {
        "claimCertificateId": claim_certificate_id,
        "certificateId": certificate_id,
        "certificatePem": certificate_pem,
        "templateArn": template_doc["templateArn"],
        "clientId": client_id,
        "parameters": dict(parameters or {}),
    }
    target = hook["targetArn"]
    try:
        client = runtime.aws_client("lambda", region)
        response = client.invoke(
            FunctionName=target, InvocationType="RequestResponse", Payload=json.dumps(payload).encode()
        )
        body = response["Payload"].read() if hasattr(response.get("Payload"), "read") else response.get("Payload")
    except Exception as e:  # botocore client, connection and endpoint errors alike
        log.warning("pre-provisioning hook %s of %s failed: %s", target, template_doc["templateName"], e)
        return False, {}
    if response.get("FunctionError"):
        log.warning("pre-provisioning hook %s returned a function error: %s", target, body)
        return False, {}
    try:
        answer = json.loads(body or b"null")
    except ValueError:
        log.warning("pre-provisioning hook %s answered with something that is not JSON: %r", target, body)
        return False, {}
    if not isinstance(answer, dict):
        log.warning("pre-provisioning hook %s answered %r, not an object", target, answer)
        return False, {}
    allowed = answer.get("allowProvisioning")
    if isinstance(allowed, str):
        allowed = allowed.strip().lower() == "true"
    if allowed is not True:
        return False, {}
    overrides = answer.get("parameterOverrides") or {}
    if not isinstance(overrides, dict):
        log.warning("pre-provisioning hook %s answered parameterOverrides %r, not an object", target, overrides)
        return False, {}
    return True, {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in overrides.items()}
