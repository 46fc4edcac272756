"""Dynamic thing groups: a thing group whose members are the things matching
a fleet indexing query.

The group is a registry thing group document (`dynamic: True`, written
through thing_groups.save so the registry lists, describes and refuses to
treat it as static); its query lives beside it (kind maintain.DYNAMIC) so
the index maintenance (localiot.services.indexing.maintain) re-evaluates it
for every thing it indexes again: membership follows registry, shadow and
connectivity changes in the same unit of work. Joining and leaving go
through localiot.services.indexing.membership (events, jobs, device rights,
the 10-groups-per-thing limit).
"""

from __future__ import annotations

from localiot.indexing import fields
from localiot.protocol.errors import ServiceError, invalid
from localiot.services import Affects, operation
from localiot.services.common import apply_tags, check_version, new_id, tags_to_dict
from localiot.services.indexing import maintain, membership
from localiot.services.indexing.search import checked_query, matching
from localiot.services.registry import thing_groups
from localiot.services.registry.things import KIND as THING, MEMBER_OF

MAX_DYNAMIC_GROUPS = 100  # AWS IoT quota per account and region


def _query(ctx, req) -> tuple:
    index = req.get("indexName") or fields.THINGS
    if index != fields.THINGS:
        raise invalid(f"Dynamic thing groups query index {fields.THINGS}, not {index}.")
    return checked_query(ctx, {**req, "indexName": index}, ready=False)


def _refresh_members(ctx, group: dict, node, predicate) -> None:
    """Make the group's members exactly the things the query matches now (as room allows)."""
    name = group["thingGroupName"]
    current = set(ctx.tx.linked(MEMBER_OF, name))
    wanted = set()
    for thing_name, _ in matching(ctx.tx, fields.THINGS, node, predicate):
        wanted.add(thing_name)
        if thing_name not in current:
            thing = ctx.tx.get(THING, thing_name)
            if thing is not None:
                membership.join(ctx, ctx.tx, group, thing)
    for thing_name in current - wanted:
        membership.leave(ctx, ctx.tx, group, thing_name)


def _spec(req, index: str) -> dict:
    return {"queryString": req["queryString"], "indexName": index, "queryVersion": req.get("queryVersion")}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def CreateDynamicThingGroup(ctx, req):
    name = req["thingGroupName"]
    existing = ctx.tx.get(thing_groups.KIND, name)
    if existing is not None:
        raise ServiceError("ResourceAlreadyExistsException", f"Thing Group {name} already exists in current account",
                           resourceId=existing["thingGroupId"], resourceArn=existing["thingGroupArn"])
    index, _, node, predicate = _query(ctx, req)
    if len(ctx.tx.scan(maintain.DYNAMIC, limit=MAX_DYNAMIC_GROUPS)) >= MAX_DYNAMIC_GROUPS:
        raise ServiceError("LimitExceededException", f"An account can have at most {MAX_DYNAMIC_GROUPS} dynamic thing groups.")
    doc = {
        "thingGroupName": name,
        "thingGroupId": new_id(),
        "thingGroupArn": thing_groups.arn(ctx, name),
        "version": 1,
        "thingGroupProperties": thing_groups._properties(req.get("thingGroupProperties")),
        "parentGroupName": None,
        "ancestors": [],
        "creationDate": ctx.now(),
        "dynamic": True,
        "dynamicGroupMappingId": new_id(),  # the registry events' id of the query mapping
        "status": "ACTIVE",
        **_spec(req, index),
    }
    thing_groups.save(ctx, doc)
    ctx.tx.put(maintain.DYNAMIC, name, _spec(req, index))
    apply_tags(ctx, doc["thingGroupArn"], tags_to_dict(req.get("tags")))
    _refresh_members(ctx, doc, node, predicate)
    thing_groups.emit_group_event(ctx, doc, "CREATED")
    return {"thingGroupName": name, "thingGroupArn": doc["thingGroupArn"], "thingGroupId": doc["thingGroupId"],
            "indexName": index, "queryString": doc["queryString"], "queryVersion": doc.get("queryVersion")}


def _dynamic(ctx, name: str) -> dict:
    doc = thing_groups.get(ctx, name)
    if not doc.get("dynamic"):
        raise invalid(f"Thing group {name} is not a dynamic thing group.")
    return doc


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def UpdateDynamicThingGroup(ctx, req):
    name = req["thingGroupName"]
    doc = _dynamic(ctx, name)
    check_version("thing group", name, doc["version"], req.get("expectedVersion"))
    props = thing_groups.updated_properties(doc, req.get("thingGroupProperties") or {})
    spec = {"queryString": req.get("queryString") or doc["queryString"],
            "queryVersion": req.get("queryVersion") or doc.get("queryVersion")}
    index, _, node, predicate = _query(ctx, {**spec, "indexName": req.get("indexName") or doc.get("indexName")})
    doc.update(thingGroupProperties=props, version=doc["version"] + 1, indexName=index, **spec)
    thing_groups.save(ctx, doc)
    ctx.tx.put(maintain.DYNAMIC, name, {**spec, "indexName": index})
    _refresh_members(ctx, doc, node, predicate)
    thing_groups.emit_group_event(ctx, doc, "UPDATED")
    return {"version": doc["version"]}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def DeleteDynamicThingGroup(ctx, req):
    name = req["thingGroupName"]
    doc = ctx.tx.get(thing_groups.KIND, name)
    if doc is None:
        return {}  # as for static groups, deleting a group that is not there succeeds
    if not doc.get("dynamic"):
        raise invalid(f"Thing group {name} is not a dynamic thing group; delete it with DeleteThingGroup.")
    check_version("thing group", name, doc["version"], req.get("expectedVersion"))
    ctx.tx.delete(maintain.DYNAMIC, name)  # first: the members are indexed again without it
    for thing_name in ctx.tx.linked(MEMBER_OF, name):
        membership.leave(ctx, ctx.tx, doc, thing_name)
    ctx.tx.delete(thing_groups.KIND, name)
    ctx.tx.drop_tags(doc["thingGroupArn"])
    ctx.tx.unlink_all("policy-target", dst=doc["thingGroupArn"])
    thing_groups.emit_group_event(ctx, doc, "DELETED")
    return {}
