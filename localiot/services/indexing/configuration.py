"""UpdateIndexingConfiguration, GetIndexingConfiguration, DescribeIndex, ListIndices."""

from __future__ import annotations

import re

from localiot.indexing import fields
from localiot.protocol.errors import invalid, not_found
from localiot.services import operation
from localiot.services.common import paginate
from localiot.services.indexing import maintain, settings

# What changes the content of an indexed thing (custom fields only type queries).
_THING_SHAPE = ("thingIndexingMode", "thingConnectivityIndexingMode", "deviceDefenderIndexingMode",
                "namedShadowIndexingMode", "filter")
MAX_NAMED_SHADOW_FILTER = 10
MAX_GEO_LOCATIONS = 1  # AWS's default quota of geolocation targets
_CLASSIC_GEO = re.compile(r"^shadow\.(reported|desired)\..+$")
_NAMED_GEO = re.compile(r"^shadow\.name\.([^.]+)\.(reported|desired)\..+$")


def _custom_fields(given: list | None, index: str) -> list[dict]:
    out: dict[str, str] = {}
    for field in given or []:
        name, kind = field.get("name"), field.get("type")
        if not name:
            raise invalid("A custom field needs a name.")
        if not kind:
            raise invalid(f"Custom field {name} needs a type (Number, String or Boolean).")
        if fields.managed_type(index, name) is not None:
            raise invalid(f"{name} is a managed field and cannot be declared as a custom field.")
        if not fields.known(index, name):
            raise invalid(f"Custom field {name} is not a field of index {index}.")
        if name in out and out[name] != kind:
            raise invalid(f"Custom field {name} is declared with two types.")
        out[name] = kind
    return [{"name": n, "type": t} for n, t in out.items()]


def _thing_part(given: dict) -> dict:
    mode = given["thingIndexingMode"]
    part = {
        "thingIndexingMode": mode,
        "thingConnectivityIndexingMode": given.get("thingConnectivityIndexingMode") or "OFF",
        "deviceDefenderIndexingMode": given.get("deviceDefenderIndexingMode") or "OFF",
        "namedShadowIndexingMode": given.get("namedShadowIndexingMode") or "OFF",
        "customFields": _custom_fields(given.get("customFields"), fields.THINGS),
    }
    if mode == "OFF":
        for key in ("thingConnectivityIndexingMode", "deviceDefenderIndexingMode", "namedShadowIndexingMode"):
            if part[key] != "OFF":
                raise invalid(f"{key[0].upper()}{key[1:]} cannot be {part[key]} when ThingIndexingMode is OFF.")
        if part["customFields"]:
            raise invalid("Custom fields cannot be declared when ThingIndexingMode is OFF.")
    flt = given.get("filter")
    if flt:
        names = flt.get("namedShadowNames")
        if names is not None:
            if part["namedShadowIndexingMode"] != "ON":
                raise invalid("A named shadow filter needs NamedShadowIndexingMode ON.")
            if len(names) > MAX_NAMED_SHADOW_FILTER:
                raise invalid(f"At most {MAX_NAMED_SHADOW_FILTER} named shadows can be indexed.")
        _check_geo(part, flt)
        part["filter"] = {k: v for k, v in flt.items() if v is not None}
    return part


def _check_geo(part: dict, flt: dict) -> None:
    """Each geolocation target names a field of a shadow this configuration indexes."""
    targets = flt.get("geoLocations")
    if not targets:
        return
    if len(targets) > MAX_GEO_LOCATIONS:
        raise invalid(f"At most {MAX_GEO_LOCATIONS} geolocation target can be indexed.")
    for target in targets:
        name = target.get("name") or ""
        named = _NAMED_GEO.match(name)
        if named:
            shadows = flt.get("namedShadowNames")
            if part["namedShadowIndexingMode"] != "ON" or (shadows is not None and named.group(1) not in shadows):
                raise invalid(f"Geolocation target {name} needs NamedShadowIndexingMode ON and shadow "
                              f"{named.group(1)} in the namedShadowNames filter.")
        elif _CLASSIC_GEO.match(name):
            if part["thingIndexingMode"] != "REGISTRY_AND_SHADOW":
                raise invalid(f"Geolocation target {name} needs ThingIndexingMode REGISTRY_AND_SHADOW.")
        else:
            raise invalid(f"Geolocation target {name!r} is not a field of a classic or named shadow "
                          "(shadow.reported.<field> or shadow.name.<shadow>.reported.<field>).")


def _group_part(given: dict) -> dict:
    mode = given["thingGroupIndexingMode"]
    part = {"thingGroupIndexingMode": mode,
            "customFields": _custom_fields(given.get("customFields"), fields.THING_GROUPS)}
    if mode == "OFF" and part["customFields"]:
        raise invalid("Custom fields cannot be declared when ThingGroupIndexingMode is OFF.")
    return part


@operation("iot")
def UpdateIndexingConfiguration(ctx, req):
    config = settings.load(ctx.tx)
    given_thing, given_group = req.get("thingIndexingConfiguration"), req.get("thingGroupIndexingConfiguration")
    if given_thing is not None:
        part = _thing_part(given_thing)
        was_on = settings.things_on(config)
        if part["thingIndexingMode"] == "OFF":
            if ctx.tx.scan(maintain.DYNAMIC, limit=1):
                raise invalid("Thing indexing cannot be turned off while dynamic thing groups exist.")
            if was_on:
                maintain.drop_things(ctx.tx)
            config["thingStatus"] = config["thingCursor"] = None
        elif not was_on or any(config["thing"].get(k) != part.get(k) for k in _THING_SHAPE):
            config["thingStatus"], config["thingCursor"] = ("REBUILDING" if was_on else "BUILDING"), None
        config["thing"] = part
    if given_group is not None:
        part = _group_part(given_group)
        was_on = settings.groups_on(config)
        if part["thingGroupIndexingMode"] == "OFF":
            if was_on:
                maintain.drop_groups(ctx.tx)
            config["groupStatus"] = None
        elif not was_on:
            config["groupStatus"] = "BUILDING"
        config["group"] = part
    settings.save(ctx.tx, config)
    if maintain.build_step(ctx):
        ctx.after_commit(lambda: maintain.continue_build(ctx.runtime, ctx.account, ctx.region))
    return {}


@operation("iot")
def GetIndexingConfiguration(ctx, req):
    config = settings.load(ctx.tx)
    thing = {k: v for k, v in config["thing"].items() if k != "customFields"}
    thing["managedFields"] = fields.managed_fields(config["thing"])
    thing["customFields"] = list(config["thing"].get("customFields") or [])
    group = {"thingGroupIndexingMode": config["group"].get("thingGroupIndexingMode", "OFF"),
             "managedFields": fields.group_managed_fields(config["group"]),
             "customFields": list(config["group"].get("customFields") or [])}
    return {"thingIndexingConfiguration": thing, "thingGroupIndexingConfiguration": group}


def _indices(config: dict) -> list[str]:
    names = []
    if settings.things_on(config):
        names.append(fields.THINGS)
    if settings.groups_on(config):
        names.append(fields.THING_GROUPS)
    return names


@operation("iot")
def DescribeIndex(ctx, req):
    name = req["indexName"]
    config = settings.load(ctx.tx)
    if name not in _indices(config):
        raise not_found(f"Index {name} does not exist.")
    if name == fields.THINGS:
        return {"indexName": name, "indexStatus": config["thingStatus"], "schema": settings.schema(config["thing"])}
    return {"indexName": name, "indexStatus": config["groupStatus"]}


@operation("iot")
def ListIndices(ctx, req):
    names, extra = paginate(ctx, req, sorted(_indices(settings.load(ctx.tx))))
    return {"indexNames": names, **extra}
