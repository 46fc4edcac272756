"""Which fields an index knows, and their types (Number, String, Boolean).

Managed fields are AWS's (GetIndexingConfiguration lists them for the modes
that are on); custom fields are declared by the user with a type. A field
neither managed nor declared may still be searched when its family is one
AWS indexes (attributes.*, shadow.reported.* ...); its type is then
inferred from each value."""

from __future__ import annotations

import re

THINGS = "AWS_Things"
THING_GROUPS = "AWS_ThingGroups"

_THING_EXACT = {
    "thingName": "String", "thingId": "String", "thingTypeName": "String", "thingGroupNames": "String",
    "registry.version": "Number", "registry.thingTypeName": "String", "registry.thingGroupNames": "String",
    "shadow.version": "Number", "shadow.hasDelta": "Boolean",
    "connectivity.connected": "Boolean", "connectivity.timestamp": "Number",
    "connectivity.disconnectReason": "String", "connectivity.version": "Number",
    "deviceDefender.violationCount": "Number",
}
_THING_OPEN = re.compile(
    r"^(attributes\.|shadow\.(reported|desired|metadata)\.|deviceDefender\.|"
    r"shadow\.name\.[^.]+\.(reported|desired|metadata)\.).+$"
)
_NAMED_MANAGED = re.compile(r"^shadow\.name\.[^.]+\.(version|hasDelta)$")
# Device Defender violations: deviceDefender.<security profile>.<behavior>.<what>
_DEFENDER_MANAGED = re.compile(r"^deviceDefender\.[^.]+\.[^.]+\.(inViolation|lastViolationTime)$")
_GROUP_EXACT = {"thingGroupName": "String", "thingGroupId": "String", "thingGroupDescription": "String",
                "parentGroupNames": "String"}
_GROUP_OPEN = re.compile(r"^attributes\..+$")

DEFAULT_FIELD = {THINGS: "thingName", THING_GROUPS: "thingGroupName"}


def known(index: str, field: str) -> bool:
    if index == THINGS:
        return field in _THING_EXACT or bool(_THING_OPEN.match(field) or _NAMED_MANAGED.match(field))
    return field in _GROUP_EXACT or bool(_GROUP_OPEN.match(field))


def managed_type(index: str, field: str) -> str | None:
    if index == THINGS:
        if field in _THING_EXACT:
            return _THING_EXACT[field]
        match = _NAMED_MANAGED.match(field)
        if match:
            return "Number" if match.group(1) == "version" else "Boolean"
        match = _DEFENDER_MANAGED.match(field)
        if match:
            return "Boolean" if match.group(1) == "inViolation" else "Number"
        return None
    return _GROUP_EXACT.get(field)


def field_type(index: str, field: str, custom: dict[str, str]) -> str | None:
    """The declared or managed type of `field`, None when it is inferred per value."""
    return managed_type(index, field) or custom.get(field)


def managed_fields(thing_config: dict) -> list[dict]:
    """The managed fields GetIndexingConfiguration reports for a thing indexing configuration."""
    fields = [("registry.version", "Number"), ("registry.thingTypeName", "String"),
              ("registry.thingGroupNames", "String")]
    mode = thing_config.get("thingIndexingMode", "OFF")
    if mode == "OFF":
        return []
    if mode == "REGISTRY_AND_SHADOW":
        fields += [("shadow.version", "Number"), ("shadow.hasDelta", "Boolean")]
    if thing_config.get("namedShadowIndexingMode") == "ON":
        fields += [("shadow.name.*.version", "Number"), ("shadow.name.*.hasDelta", "Boolean")]
    if thing_config.get("thingConnectivityIndexingMode") == "STATUS":
        fields += [("connectivity.timestamp", "Number"), ("connectivity.version", "Number"),
                   ("connectivity.connected", "Boolean"), ("connectivity.disconnectReason", "String")]
    if thing_config.get("deviceDefenderIndexingMode") == "VIOLATIONS":
        fields += [("deviceDefender.violationCount", "Number"), ("deviceDefender.*.*.inViolation", "Boolean"),
                   ("deviceDefender.*.*.lastViolationTime", "Number")]
    return [{"name": n, "type": t} for n, t in fields]


def group_managed_fields(group_config: dict) -> list[dict]:
    if group_config.get("thingGroupIndexingMode", "OFF") == "OFF":
        return []
    return [{"name": n, "type": t} for n, t in (("description", "String"), ("parentGroupNames", "String"),
                                               ("thingGroupId", "String"), ("thingGroupName", "String"),
                                               ("version", "Number"))]
