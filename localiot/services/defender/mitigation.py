"""Mitigation actions: a named, typed action with its parameters and the role
it runs as. Kind "mitigation-action" (name = actionName, index "type")."""

from __future__ import annotations

from localiot.protocol.errors import invalid
from localiot.services import operation
from localiot.services.common import Resource, new_id, paginate, tags_to_dict
from localiot.services.defender import catalog
from localiot.services.defender.configuration import ROLE_ARN, SNS_ARN

ACTION = Resource("mitigation-action", "mitigationaction/{name}",
                  not_found="Mitigation action {name} does not exist.",
                  exists="Mitigation action {name} already exists.", id_field="actionId", arn_field="actionArn",
                  taggable=True)
GROUP_KIND = "thinggroup"


def action_type(ctx, params: dict) -> str:
    given = [key for key, value in (params or {}).items() if value is not None]
    if len(given) != 1:
        raise invalid("actionParams must hold exactly one of " + ", ".join(catalog.ACTION_PARAMS) + ".")
    key = given[0]
    value = params[key]
    if key in ("updateDeviceCertificateParams", "updateCACertificateParams") and value.get("action") != "DEACTIVATE":
        raise invalid(f"{key}.action must be DEACTIVATE.")
    if key == "addThingsToThingGroupParams":
        names = value.get("thingGroupNames") or []
        if not names:
            raise invalid("addThingsToThingGroupParams.thingGroupNames must name at least one thing group.")
        for name in names:
            group = ctx.tx.get(GROUP_KIND, name)
            if group is None:
                raise invalid(f"Thing group {name} does not exist.")
            if group.get("dynamic"):
                raise invalid(f"Thing group {name} is dynamic; things cannot be added to it.")
    if key == "replaceDefaultPolicyVersionParams" and value.get("templateName") != "BLANK_POLICY":
        raise invalid("replaceDefaultPolicyVersionParams.templateName must be BLANK_POLICY.")
    if key == "enableIoTLoggingParams":
        if not ROLE_ARN.match(value.get("roleArnForLogging") or "") or not value.get("logLevel"):
            raise invalid("enableIoTLoggingParams needs an IAM role ARN in roleArnForLogging and a logLevel.")
    if key == "publishFindingToSnsParams" and not SNS_ARN.match(value.get("topicArn") or ""):
        raise invalid("publishFindingToSnsParams.topicArn must be an SNS topic ARN.")
    return catalog.ACTION_PARAMS[key]


def _role(value: str) -> None:
    if not ROLE_ARN.match(value):
        raise invalid(f"roleArn {value} is not a valid IAM role ARN.")


@operation("iot")
def CreateMitigationAction(ctx, req):
    name = req["actionName"]
    ACTION.ensure_absent(ctx, name)
    _role(req["roleArn"])
    kind = action_type(ctx, req["actionParams"])
    now = ctx.now()
    doc = {"actionName": name, "actionType": kind, "actionArn": ACTION.arn(ctx, name), "actionId": new_id(),
           "roleArn": req["roleArn"], "actionParams": req["actionParams"], "creationDate": now,
           "lastModifiedDate": now}
    ACTION.create(ctx, name, doc, tags_to_dict(req.get("tags")), {"type": kind})
    return {"actionArn": doc["actionArn"], "actionId": doc["actionId"]}


@operation("iot")
def DescribeMitigationAction(ctx, req):
    return dict(ACTION.get(ctx, req["actionName"]))


@operation("iot")
def UpdateMitigationAction(ctx, req):
    doc = ACTION.get(ctx, req["actionName"])
    if req.get("roleArn") is not None:
        _role(req["roleArn"])
        doc["roleArn"] = req["roleArn"]
    if req.get("actionParams") is not None:
        kind = action_type(ctx, req["actionParams"])
        if kind != doc["actionType"]:
            raise invalid(f"Mitigation action {doc['actionName']} is of type {doc['actionType']}; its parameters "
                          f"cannot become {kind}.")
        doc["actionParams"] = req["actionParams"]
    doc["lastModifiedDate"] = ctx.now()
    ACTION.put(ctx, doc["actionName"], doc, {"type": doc["actionType"]})
    return {"actionArn": doc["actionArn"], "actionId": doc["actionId"]}


@operation("iot")
def DeleteMitigationAction(ctx, req):
    ACTION.delete(ctx, req["actionName"])  # AWS answers 200 for an action that is not there
    return {}


@operation("iot")
def ListMitigationActions(ctx, req):
    rows = ctx.tx.find(ACTION.kind, "type", req["actionType"]) if req.get("actionType") else ACTION.list(ctx)
    found, extra = paginate(ctx, req, rows, key=lambda row: row[0])
    return {"actionIdentifiers": [{"actionName": d["actionName"], "actionArn": d["actionArn"],
                                   "creationDate": d["creationDate"]} for _, d in found], **extra}
