"""Static thing groups: hierarchy, properties, membership of things.

A group is a "thinggroup" document. Its parent never changes (AWS has no call
to move a group), so the path from the root is stored with it at creation:
`ancestors` lists {groupName, groupArn, groupId} from the root to the direct
parent, and stays valid because a group with children cannot be deleted.
Index entries: "parent" (direct parent), "ancestor" (every ancestor, to list
all descendants with one keyset query) and "depth" ("1" for root groups).
Dynamic thing groups (fleet indexing) share the kind with `dynamic: True`
and should be written through `save()` so they get the same index entries.

Membership is the link things.MEMBER_OF (src=group name, dst=thing name).
"""

from __future__ import annotations

import uuid

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import Affects, hooks, operation
from localiot.services.common import apply_tags, check_version, new_id, page, resource_name, tags_to_dict
from localiot.services.registry import events, things
from localiot.services.registry.things import MEMBER_OF
from localiot.services.tagging import taggable

KIND = "thinggroup"
# AWS IoT quotas: a thing group hierarchy is at most 7 levels deep, a thing
# belongs to at most 10 thing groups, and (API reference,
# AddThingsToThingGroupParams) never to two groups of the same hierarchy.
MAX_DEPTH = 7
MAX_GROUPS_PER_THING = 10
_MEMBERSHIP_NS = uuid.UUID("2f0c8d8e-6a57-4b7e-9a5e-3d1c1f6b7a10")

taggable("thinggroup", lambda tx, name: tx.get(KIND, name) is not None)


# lookups ---------------------------------------------------------------------
def arn(ctx, name: str) -> str:
    return ctx.arn(f"thinggroup/{name}")


def get(ctx, name: str) -> dict:
    doc = ctx.tx.get(KIND, name)
    if doc is None:
        raise not_found(f"Thing Group {name} cannot be found.")
    return doc


def _static(ctx, name: str) -> dict:
    doc = get(ctx, name)
    if doc.get("dynamic"):
        raise invalid(f"Thing group {name} is a dynamic thing group; this operation applies to static thing groups only.")
    return doc


def save(ctx, doc: dict) -> None:
    ancestors = [a["groupName"] for a in doc.get("ancestors") or []]
    ctx.tx.put(KIND, doc["thingGroupName"], doc, {
        "parent": doc.get("parentGroupName"),
        "ancestor": ancestors,
        "depth": str(len(ancestors) + 1),
    })


def root_of(doc: dict) -> str:
    ancestors = doc.get("ancestors") or []
    return ancestors[0]["groupName"] if ancestors else doc["thingGroupName"]


def _properties(given: dict | None) -> dict:
    """Stored form of ThingGroupProperties: only what is set, no `merge` flag."""
    given = given or {}
    props = {}
    if given.get("thingGroupDescription"):
        props["thingGroupDescription"] = given["thingGroupDescription"]
    attributes = (given.get("attributePayload") or {}).get("attributes") or {}
    if attributes:
        props["attributePayload"] = {"attributes": dict(attributes)}
    return props


def _attributes(doc: dict) -> dict:
    return (doc["thingGroupProperties"].get("attributePayload") or {}).get("attributes") or {}


# events ----------------------------------------------------------------------
def emit_group_event(ctx, doc: dict, op: str) -> None:
    ancestors = doc.get("ancestors") or []
    events.emit(ctx, "THING_GROUP", f"$aws/events/thingGroup/{doc['thingGroupName']}/{op.lower()}", op, {
        "thingGroupId": doc["thingGroupId"],
        "thingGroupName": doc["thingGroupName"],
        "versionNumber": doc["version"],
        "parentGroupName": doc.get("parentGroupName"),
        "parentGroupId": ancestors[-1]["groupId"] if ancestors else None,
        "description": doc["thingGroupProperties"].get("thingGroupDescription"),
        "rootToParentThingGroups": [{"groupArn": a["groupArn"], "groupId": a["groupId"]} for a in ancestors],
        "attributes": _attributes(doc),
        "dynamicGroupMappingId": doc.get("dynamicGroupMappingId"),
    })


def _emit_hierarchy(ctx, parent: dict, child: dict, op: str) -> None:
    events.emit(
        ctx, "THING_GROUP_HIERARCHY",
        f"$aws/events/thingGroupHierarchy/thingGroup/{parent['groupName']}"
        f"/childThingGroup/{child['thingGroupName']}/{op.lower()}",
        op,
        {
            "thingGroupId": parent["groupId"],
            "thingGroupName": parent["groupName"],
            "childGroupId": child["thingGroupId"],
            "childGroupName": child["thingGroupName"],
        },
    )


def emit_membership(ctx, group: dict, thing: dict, op: str) -> None:
    events.emit(
        ctx, "THING_GROUP_MEMBERSHIP",
        f"$aws/events/thingGroupMembership/thingGroup/{group['thingGroupName']}"
        f"/thing/{thing['thingName']}/{op.lower()}",
        op,
        {
            "groupArn": group["thingGroupArn"],
            "groupId": group["thingGroupId"],
            "thingArn": thing["thingArn"],
            "thingId": thing["thingId"],
            # Stable for one (group, thing) pair, so ADDED and REMOVED match.
            "membershipId": str(uuid.uuid5(_MEMBERSHIP_NS, f"{group['thingGroupId']}/{thing['thingId']}")),
        },
    )


# groups ----------------------------------------------------------------------
def _created(doc: dict) -> dict:
    return {"thingGroupName": doc["thingGroupName"], "thingGroupArn": doc["thingGroupArn"], "thingGroupId": doc["thingGroupId"]}


@operation("iot")
def CreateThingGroup(ctx, req):
    name = req["thingGroupName"]
    parent_name = req.get("parentGroupName")
    props = _properties(req.get("thingGroupProperties"))
    existing = ctx.tx.get(KIND, name)
    if existing is not None:
        same = (
            not existing.get("dynamic")
            and existing["thingGroupProperties"] == props
            and existing.get("parentGroupName") == parent_name
        )
        if same:
            return _created(existing)
        raise ServiceError(
            "ResourceAlreadyExistsException",
            f"Thing Group {name} already exists in current account with different properties",
            resourceId=existing["thingGroupId"], resourceArn=existing["thingGroupArn"],
        )
    ancestors: list[dict] = []
    if parent_name:
        parent = get(ctx, parent_name)
        if parent.get("dynamic"):
            raise invalid(f"Dynamic thing group {parent_name} cannot be the parent of a thing group.")
        ancestors = list(parent.get("ancestors") or []) + [
            {"groupName": parent_name, "groupArn": parent["thingGroupArn"], "groupId": parent["thingGroupId"]}
        ]
        if len(ancestors) + 1 > MAX_DEPTH:
            raise invalid(
                f"Cannot create thing group {name} under {parent_name}: a thing group hierarchy "
                f"can be at most {MAX_DEPTH} levels deep."
            )
    doc = {
        "thingGroupName": name,
        "thingGroupId": new_id(),
        "thingGroupArn": arn(ctx, name),
        "version": 1,
        "thingGroupProperties": props,
        "parentGroupName": parent_name,
        "ancestors": ancestors,
        "creationDate": ctx.now(),
    }
    save(ctx, doc)
    apply_tags(ctx, doc["thingGroupArn"], tags_to_dict(req.get("tags")))
    emit_group_event(ctx, doc, "CREATED")
    if ancestors:
        _emit_hierarchy(ctx, ancestors[-1], doc, "ADDED")
    return _created(doc)


@operation("iot")
def DescribeThingGroup(ctx, req):
    doc = get(ctx, req["thingGroupName"])
    metadata = {"creationDate": doc["creationDate"]}
    if doc.get("parentGroupName"):
        metadata["parentGroupName"] = doc["parentGroupName"]
        metadata["rootToParentThingGroups"] = [
            {"groupName": a["groupName"], "groupArn": a["groupArn"]} for a in doc["ancestors"]
        ]
    out = {
        "thingGroupName": doc["thingGroupName"],
        "thingGroupId": doc["thingGroupId"],
        "thingGroupArn": doc["thingGroupArn"],
        "version": doc["version"],
        "thingGroupProperties": doc["thingGroupProperties"],
        "thingGroupMetadata": metadata,
    }
    if doc.get("dynamic"):
        for key in ("indexName", "queryString", "queryVersion", "status"):
            out[key] = doc.get(key)
    return out


def updated_properties(doc: dict, given: dict) -> dict:
    """The group's thingGroupProperties after an update with `given` (static and
    dynamic groups alike): an empty description clears it; attributes replace,
    or merge when asked, and an empty value removes an attribute."""
    props = dict(doc["thingGroupProperties"])
    if "thingGroupDescription" in given:
        # An empty description clears it.
        if given["thingGroupDescription"]:
            props["thingGroupDescription"] = given["thingGroupDescription"]
        else:
            props.pop("thingGroupDescription", None)
    payload = given.get("attributePayload")
    if payload is not None:
        attributes = dict(_attributes(doc))
        new = payload.get("attributes") or {}
        if payload.get("merge"):
            for key, value in new.items():
                # An empty value removes the attribute when merging, as for things.
                if value == "":
                    attributes.pop(key, None)
                else:
                    attributes[key] = value
        else:
            attributes = {k: v for k, v in new.items() if v != ""}
        if attributes:
            props["attributePayload"] = {"attributes": attributes}
        else:
            props.pop("attributePayload", None)
    return props


@operation("iot")
def UpdateThingGroup(ctx, req):
    name = req["thingGroupName"]
    doc = _static(ctx, name)
    check_version("thing group", name, doc["version"], req.get("expectedVersion"))
    props = updated_properties(doc, req.get("thingGroupProperties") or {})
    doc.update(thingGroupProperties=props, version=doc["version"] + 1)
    save(ctx, doc)
    emit_group_event(ctx, doc, "UPDATED")
    return {"version": doc["version"]}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def DeleteThingGroup(ctx, req):
    name = req["thingGroupName"]
    doc = ctx.tx.get(KIND, name)
    if doc is None:
        return {}  # AWS: deleting a thing group that does not exist succeeds.
    if doc.get("dynamic"):
        raise invalid(f"Thing group {name} is a dynamic thing group; delete it with DeleteDynamicThingGroup.")
    check_version("thing group", name, doc["version"], req.get("expectedVersion"))
    if ctx.tx.find(KIND, "parent", name, limit=1):
        raise invalid(f"Cannot delete thing group : {name} when there are still child groups attached to it")
    members = ctx.tx.linked(MEMBER_OF, name)
    ctx.tx.unlink_all(MEMBER_OF, src=name)
    ctx.tx.delete(KIND, name)
    ctx.tx.drop_tags(doc["thingGroupArn"])
    # Policies attached to the group go with it (a group recreated later starts bare).
    ctx.tx.unlink_all("policy-target", dst=doc["thingGroupArn"])
    if members and events.is_enabled(ctx, "THING_GROUP_MEMBERSHIP"):
        for thing_name in members:
            thing = ctx.tx.get(things.KIND, thing_name)
            if thing is not None:
                emit_membership(ctx, doc, thing, "REMOVED")
    if doc.get("ancestors"):
        _emit_hierarchy(ctx, doc["ancestors"][-1], doc, "REMOVED")
    emit_group_event(ctx, doc, "DELETED")
    return {}


def _group_ref(ctx, name: str) -> dict:
    return {"groupName": name, "groupArn": arn(ctx, name)}


@operation("iot")
def ListThingGroups(ctx, req):
    tx = ctx.tx
    parent = req.get("parentGroup")
    prefix = req.get("namePrefixFilter")
    # AWS answers with every descendant when `recursive` is left out.
    recursive = req.get("recursive", True)
    if parent:
        get(ctx, parent)
        key, value = ("ancestor" if recursive else "parent"), parent
    elif not recursive:
        key, value = "depth", "1"  # root groups only
    else:
        key = value = None

    if key is None:
        def fetch(after, limit):
            return tx.scan(KIND, after=after, prefix=prefix, limit=limit)
    else:
        def fetch(after, limit):
            return tx.find(KIND, key, value, after=after, limit=limit)

        if prefix:
            fetch = things.filtered(fetch, lambda row: row[0].startswith(prefix))

    rows, token = page(fetch, req)
    return {"thingGroups": [_group_ref(ctx, name) for name, _ in rows], "nextToken": token}


# membership ------------------------------------------------------------------
def _add(ctx, group: dict, thing: dict, override_dynamic: bool) -> None:
    group_name, thing_name = group["thingGroupName"], thing["thingName"]
    if group.get("dynamic"):
        raise invalid(f"Cannot add things to dynamic thing group {group_name}.")
    if ctx.tx.is_linked(MEMBER_OF, group_name, thing_name):
        return
    current = [ctx.tx.get(KIND, n) for n in ctx.tx.linked_to(MEMBER_OF, thing_name)]
    current = [g for g in current if g is not None]
    root = root_of(group)
    for other in current:
        if not other.get("dynamic") and root_of(other) == root:
            raise invalid(
                f"Cannot add thing {thing_name} to thing group {group_name}: it already belongs to "
                f"thing group {other['thingGroupName']} in the same hierarchy."
            )
    if len(current) >= MAX_GROUPS_PER_THING:
        dynamic = [g for g in current if g.get("dynamic")]
        if not (override_dynamic and dynamic):
            raise invalid(
                f"Cannot add thing {thing_name} to thing group {group_name}: a thing can belong "
                f"to at most {MAX_GROUPS_PER_THING} thing groups."
            )
        # overrideDynamicGroups: the thing leaves the last dynamic group.
        dropped = dynamic[-1]
        ctx.tx.unlink(MEMBER_OF, dropped["thingGroupName"], thing_name)
        emit_membership(ctx, dropped, thing, "REMOVED")
    ctx.tx.link(MEMBER_OF, group_name, thing_name)
    emit_membership(ctx, group, thing, "ADDED")
    hooks.fire(hooks.THING_ADDED_TO_GROUP, ctx, group, thing)


def _remove(ctx, group: dict, thing: dict) -> None:
    if group.get("dynamic"):
        raise invalid(f"Cannot remove things from dynamic thing group {group['thingGroupName']}.")
    if ctx.tx.unlink(MEMBER_OF, group["thingGroupName"], thing["thingName"]):
        emit_membership(ctx, group, thing, "REMOVED")


def _membership_request(ctx, req) -> tuple[dict, dict]:
    group = get(ctx, resource_name(ctx, req.get("thingGroupName"), req.get("thingGroupArn"), "thinggroup", "thing group"))
    thing = things.get(ctx, resource_name(ctx, req.get("thingName"), req.get("thingArn"), "thing", "thing"))
    return group, thing


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def AddThingToThingGroup(ctx, req):
    group, thing = _membership_request(ctx, req)
    _add(ctx, group, thing, bool(req.get("overrideDynamicGroups")))
    return {}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def RemoveThingFromThingGroup(ctx, req):
    group, thing = _membership_request(ctx, req)
    _remove(ctx, group, thing)
    return {}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def UpdateThingGroupsForThing(ctx, req):
    if not req.get("thingName"):
        raise invalid("thingName must be specified.")
    thing = things.get(ctx, req["thingName"])
    to_remove = [get(ctx, n) for n in req.get("thingGroupsToRemove") or []]
    to_add = [get(ctx, n) for n in req.get("thingGroupsToAdd") or []]
    # Removals first, so a thing can move between groups of one hierarchy.
    # One transaction: any refusal below undoes the whole call.
    for group in to_remove:
        _remove(ctx, group, thing)
    override = bool(req.get("overrideDynamicGroups"))
    for group in to_add:
        _add(ctx, group, thing, override)
    return {}


@operation("iot")
def ListThingsInThingGroup(ctx, req):
    name = req["thingGroupName"]
    get(ctx, name)
    tx = ctx.tx
    if req.get("recursive"):
        groups = [name] + [n for n, _ in tx.find(KIND, "ancestor", name)]

        def fetch(after, limit):
            found: set[str] = set()
            for group in groups:
                found.update(tx.linked(MEMBER_OF, group, after=after, limit=limit))
            return sorted(found)[:limit]
    else:
        def fetch(after, limit):
            return tx.linked(MEMBER_OF, name, after=after, limit=limit)

    rows, token = page(fetch, req)
    return {"things": rows, "nextToken": token}


@operation("iot")
def ListThingGroupsForThing(ctx, req):
    name = req["thingName"]
    things.get(ctx, name)

    def fetch(after, limit):
        return ctx.tx.linked_to(MEMBER_OF, name, after=after, limit=limit)

    rows, token = page(fetch, req)
    return {"thingGroups": [_group_ref(ctx, g) for g in rows], "nextToken": token}
