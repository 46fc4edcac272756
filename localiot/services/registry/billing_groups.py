"""Billing groups: create, describe, update, delete, list, and their things.

A thing belongs to at most one billing group: membership is the thing's own
`billingGroupName` field (DescribeThing reports it), indexed by things.save()
under "billingGroup", so adding a thing to another billing group moves it.
"""

from __future__ import annotations

from localiot.services import operation
from localiot.services.common import check_version, new_id, page, resource_name, tags_to_dict
from localiot.services.registry import things
from localiot.services.registry.resources import BILLING_GROUP

KIND = BILLING_GROUP.kind
arn = BILLING_GROUP.arn
get = BILLING_GROUP.get


def _properties(given: dict | None) -> dict:
    given = given or {}
    return {"billingGroupDescription": given["billingGroupDescription"]} if given.get("billingGroupDescription") else {}


def _created(doc: dict) -> dict:
    return {
        "billingGroupName": doc["billingGroupName"],
        "billingGroupArn": doc["billingGroupArn"],
        "billingGroupId": doc["billingGroupId"],
    }


@operation("iot")
def CreateBillingGroup(ctx, req):
    name = req["billingGroupName"]
    props = _properties(req.get("billingGroupProperties"))
    existing = BILLING_GROUP.find(ctx, name)
    if existing is not None and existing["billingGroupProperties"] == props:
        return _created(existing)
    BILLING_GROUP.ensure_absent(ctx, name)
    doc = {
        "billingGroupName": name,
        "billingGroupId": new_id(),
        "billingGroupArn": arn(ctx, name),
        "version": 1,
        "billingGroupProperties": props,
        "creationDate": ctx.now(),
    }
    BILLING_GROUP.create(ctx, name, doc, tags_to_dict(req.get("tags")))
    return _created(doc)


@operation("iot")
def DescribeBillingGroup(ctx, req):
    doc = get(ctx, req["billingGroupName"])
    return {
        **_created(doc),
        "version": doc["version"],
        "billingGroupProperties": doc["billingGroupProperties"],
        "billingGroupMetadata": {"creationDate": doc["creationDate"]},
    }


@operation("iot")
def UpdateBillingGroup(ctx, req):
    name = req["billingGroupName"]
    doc = get(ctx, name)
    check_version("billing group", name, doc["version"], req.get("expectedVersion"))
    given = req.get("billingGroupProperties") or {}
    props = dict(doc["billingGroupProperties"])
    if "billingGroupDescription" in given:
        # An empty description clears it.
        props = _properties(given)
    doc.update(billingGroupProperties=props, version=doc["version"] + 1)
    ctx.tx.put(KIND, name, doc)
    return {"version": doc["version"]}


@operation("iot")
def DeleteBillingGroup(ctx, req):
    name = req["billingGroupName"]
    doc = BILLING_GROUP.find(ctx, name)
    if doc is None:
        return {}  # like the other registry deletes: a missing billing group is not an error
    check_version("billing group", name, doc["version"], req.get("expectedVersion"))
    # AWS documents no refusal for a billing group that still has things: they leave it.
    for _, thing in ctx.tx.find(things.KIND, "billingGroup", name):
        thing["billingGroupName"] = None
        things.save(ctx, thing)
    BILLING_GROUP.delete(ctx, name)
    return {}


@operation("iot")
def ListBillingGroups(ctx, req):
    prefix = req.get("namePrefixFilter")

    def fetch(after, limit):
        return ctx.tx.scan(KIND, after=after, prefix=prefix, limit=limit)

    rows, token = page(fetch, req)
    return {
        "billingGroups": [{"groupName": name, "groupArn": doc["billingGroupArn"]} for name, doc in rows],
        "nextToken": token,
    }


def _membership_request(ctx, req) -> tuple[dict, dict]:
    group = get(ctx, resource_name(ctx, req.get("billingGroupName"), req.get("billingGroupArn"), "billinggroup", "billing group"))
    thing = things.get(ctx, resource_name(ctx, req.get("thingName"), req.get("thingArn"), "thing", "thing"))
    return group, thing


@operation("iot")
def AddThingToBillingGroup(ctx, req):
    group, thing = _membership_request(ctx, req)
    if thing.get("billingGroupName") != group["billingGroupName"]:
        # A thing is in at most one billing group: this moves it.
        thing["billingGroupName"] = group["billingGroupName"]
        things.save(ctx, thing)
    return {}


@operation("iot")
def RemoveThingFromBillingGroup(ctx, req):
    group, thing = _membership_request(ctx, req)
    if thing.get("billingGroupName") == group["billingGroupName"]:
        thing["billingGroupName"] = None
        things.save(ctx, thing)
    return {}


@operation("iot")
def ListThingsInBillingGroup(ctx, req):
    name = req["billingGroupName"]
    get(ctx, name)

    def fetch(after, limit):
        return [n for n, _ in ctx.tx.find(things.KIND, "billingGroup", name, after=after, limit=limit)]

    rows, token = page(fetch, req)
    return {"things": rows, "nextToken": token}
