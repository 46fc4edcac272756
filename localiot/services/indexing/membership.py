"""A thing joining or leaving a dynamic thing group: the one place both the
query's (re-)evaluation (Create/UpdateDynamicThingGroup) and the index
maintenance (a thing indexed again) change dynamic membership.

What follows a change, as for static groups:
- the registry's `$aws/events/thingGroupMembership/thingGroup/<group>/thing/<thing>/added|removed`
  event (when THING_GROUP_MEMBERSHIP events are on);
- hooks.THING_ADDED_TO_GROUP on joining (continuous jobs reach the thing);
- when policies are attached to the group, the unit of work declares that it
  changed device rights (ctx.also_affects), so connected devices' cached grants
  are recomputed after the commit whatever operation moved the thing (an
  UpdateThingShadow over HTTP or MQTT, an UpdateThing, a connection...).

A thing belongs to at most thing_groups.MAX_GROUPS_PER_THING groups, static
and dynamic: static memberships take priority, so a thing already at the limit
stays out of a dynamic group it matches (it joins once it has room and is
indexed again); AddThingToThingGroup's overrideDynamicGroups makes room.
"""

from __future__ import annotations

from localiot.services import Affects, hooks
from localiot.services.registry import thing_groups
from localiot.services.registry.things import KIND as THING, MEMBER_OF

POLICY_TARGET = "policy-target"  # the security family's policy attachment links (dst = group ARN)


def has_room(tx, thing_name: str) -> bool:
    return len(tx.linked_to(MEMBER_OF, thing_name)) < thing_groups.MAX_GROUPS_PER_THING


def join(ctx, tx, group: dict, thing: dict) -> bool:
    """Add `thing` to dynamic `group` if it has room; True when it joined."""
    name = thing["thingName"]
    if tx.is_linked(MEMBER_OF, group["thingGroupName"], name):
        return False
    if not has_room(tx, name):
        return False
    tx.link(MEMBER_OF, group["thingGroupName"], name)
    _announce(ctx, tx, group, thing, "ADDED")
    return True


def leave(ctx, tx, group: dict, thing_name: str) -> bool:
    """Remove the thing from dynamic `group`; True when it was a member."""
    if not tx.unlink(MEMBER_OF, group["thingGroupName"], thing_name):
        return False
    thing = tx.get(THING, thing_name)
    if thing is not None:
        _announce(ctx, tx, group, thing, "REMOVED")
    elif _rights_follow(tx, group) and ctx is not None:
        ctx.also_affects(Affects.DEVICE_RIGHTS)
    return True


def _rights_follow(tx, group: dict) -> bool:
    return bool(tx.count_links(POLICY_TARGET, dst=group["thingGroupArn"]))


def _announce(ctx, tx, group: dict, thing: dict, op: str) -> None:
    if ctx is None:
        return
    same_scope = (tx.account, tx.region) == (ctx.account, ctx.region)
    if _rights_follow(tx, group):
        ctx.also_affects(Affects.DEVICE_RIGHTS if same_scope else Affects.DEVICE_RIGHTS | Affects.ALL_ACCOUNTS)
    if not same_scope:  # events and hooks speak for the unit of work's own scope
        return
    thing_groups.emit_membership(ctx, group, thing, op)
    if op == "ADDED":
        hooks.fire(hooks.THING_ADDED_TO_GROUP, ctx, group, thing)
