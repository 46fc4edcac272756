"""The indexing configuration of one (account, region), kept in the store,
with the build state of each index (BUILDING / REBUILDING / ACTIVE)."""

from __future__ import annotations

from localiot.indexing import fields, plan
from localiot.protocol.errors import ServiceError, not_found
from localiot.store import kept

KIND = "indexing-config"
NAME = "config"
kept.keep(KIND)  # every write reads it (maintain.on_unit_ending)
THING_INDEX = "fleet-index"  # kind of the indexed things, named by thing
GROUP_INDEX = "fleet-index-group"  # kind of the indexed thing groups
DEFAULT_THING = {"thingIndexingMode": "OFF", "thingConnectivityIndexingMode": "OFF",
                 "deviceDefenderIndexingMode": "OFF", "namedShadowIndexingMode": "OFF"}
DEFAULT_GROUP = {"thingGroupIndexingMode": "OFF"}
# The shape of the index entries (localiot.indexing.plan.FORMAT): 2 = text entries plus
# ordered numeric entries, 3 = also reversed text entries. An index built by an older
# version is upgraded in place (maintain.upgrade_step) and planned with the entries it
# has until then.
ENTRY_FORMAT = plan.FORMAT
ENTRIES = {fields.THINGS: "thingEntries", fields.THING_GROUPS: "groupEntries"}


def load(tx) -> dict:
    doc = tx.get(KIND, NAME)
    if doc is None:
        return {"thing": dict(DEFAULT_THING), "group": dict(DEFAULT_GROUP), "thingStatus": None, "groupStatus": None}
    return doc


def save(tx, doc: dict) -> None:
    tx.put(KIND, NAME, doc)


def things_on(doc: dict) -> bool:
    return doc["thing"].get("thingIndexingMode", "OFF") != "OFF"


def groups_on(doc: dict) -> bool:
    return doc["group"].get("thingGroupIndexingMode", "OFF") != "OFF"


def entry_format(doc: dict, index: str) -> int:
    """The format of this index's entries (1: text entries only, from before formats were recorded)."""
    return doc.get(ENTRIES[index]) or 1


def current_entries(doc: dict, index: str) -> bool:
    return entry_format(doc, index) >= ENTRY_FORMAT


def custom_types(doc: dict, index: str) -> dict[str, str]:
    """Declared field types: custom fields, and the location fields of geoLocations ("Geo")."""
    part = doc["thing"] if index == fields.THINGS else doc["group"]
    types = {f["name"]: f["type"] for f in part.get("customFields") or [] if f.get("type")}
    if index == fields.THINGS:
        for target in (part.get("filter") or {}).get("geoLocations") or []:
            types.setdefault(target["name"], "Geo")
    return types


def schema(thing: dict) -> str:
    """DescribeIndex's schema for the thing index."""
    shadow = thing.get("thingIndexingMode") == "REGISTRY_AND_SHADOW"
    connectivity = thing.get("thingConnectivityIndexingMode") == "STATUS"
    if thing.get("namedShadowIndexingMode") == "ON" or thing.get("deviceDefenderIndexingMode") == "VIOLATIONS":
        return "MULTI_INDEXING_MODE"
    if shadow and connectivity:
        return "REGISTRY_AND_SHADOW_AND_CONNECTIVITY_STATUS"
    if connectivity:
        return "REGISTRY_AND_CONNECTIVITY_STATUS"
    return "REGISTRY_AND_SHADOW" if shadow else "REGISTRY"


def require_index(ctx, index_name: str | None, *, ready: bool = True) -> tuple[str, dict]:
    """(index name, configuration) of a queryable index, or AWS's error."""
    index = index_name or fields.THINGS
    doc = load(ctx.tx)
    on = things_on(doc) if index == fields.THINGS else groups_on(doc) if index == fields.THING_GROUPS else False
    if not on:
        raise not_found(f"Index {index} does not exist.")
    status = doc["thingStatus"] if index == fields.THINGS else doc["groupStatus"]
    if ready and status != "ACTIVE":
        raise ServiceError("IndexNotReadyException", f"Index {index} is not ready: it is {status}.")
    return index, doc
