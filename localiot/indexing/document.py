"""The indexed form of a thing: flattened fields for queries, and the
ThingDocument SearchIndex returns. Pure: the caller reads the parts."""

from __future__ import annotations

import json

from localiot.indexing import geo


def flatten(prefix: str, value, out: dict[str, list]) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            flatten(f"{prefix}.{key}", child, out)
    elif isinstance(value, list):
        for child in value:
            flatten(prefix, child, out)
    elif value is not None:
        out.setdefault(prefix, []).append(value)


def _shadow_view(stored: dict) -> dict:
    from localiot.shadows.document import delta_of

    state = stored.get("state") or {}
    view = {section: state[section] for section in ("reported", "desired") if section in state}
    if stored.get("metadata"):
        view["metadata"] = stored["metadata"]
    view["version"] = stored.get("version")
    view["hasDelta"] = bool(delta_of(state.get("desired"), state.get("reported")))
    return view


def build(thing: dict, groups: list[str], config: dict, *, classic: dict | None = None,
          named: dict[str, dict] | None = None, connectivity: dict | None = None,
          defender: dict | None = None) -> dict:
    """{"fields": {field: [values]}, "result": ThingDocument} for `thing` under `config`
    (the thing indexing configuration; shadows/connectivity only when their mode is on)."""
    fields: dict[str, list] = {}
    result = {"thingName": thing["thingName"], "thingId": thing["thingId"]}
    fields["thingName"] = [thing["thingName"]]
    fields["thingId"] = [thing["thingId"]]
    fields["registry.version"] = [thing.get("version", 1)]
    if thing.get("thingTypeName"):
        result["thingTypeName"] = thing["thingTypeName"]
        fields["thingTypeName"] = fields["registry.thingTypeName"] = [thing["thingTypeName"]]
    if groups:
        result["thingGroupNames"] = sorted(groups)
        fields["thingGroupNames"] = fields["registry.thingGroupNames"] = sorted(groups)
    attributes = thing.get("attributes") or {}
    result["attributes"] = dict(attributes)
    for key, value in attributes.items():
        fields[f"attributes.{key}"] = [value]
    shadow: dict = {}
    if config.get("thingIndexingMode") == "REGISTRY_AND_SHADOW" and classic is not None:
        view = _shadow_view(classic)
        shadow.update(view)
        flatten("shadow", view, fields)
    if config.get("namedShadowIndexingMode") == "ON" and named:
        wanted = (config.get("filter") or {}).get("namedShadowNames")
        views = {name: _shadow_view(doc) for name, doc in sorted(named.items()) if wanted is None or name in wanted}
        if views:
            shadow["name"] = views
            for name, view in views.items():
                flatten(f"shadow.name.{name}", view, fields)
    if shadow:
        result["shadow"] = json.dumps(shadow, separators=(",", ":"))
        for target in (config.get("filter") or {}).get("geoLocations") or []:
            where = geo.point(geo.value_at(shadow, target["name"]), target.get("order") or "LatLon")
            if where is not None:
                fields[geo.field_key(target["name"])] = [geo.encode(where)]
                fields[geo.latitude_key(target["name"])] = [where[0]]
    if config.get("thingConnectivityIndexingMode") == "STATUS":
        conn = {"connected": bool(connectivity and connectivity.get("connected"))}
        if connectivity and connectivity.get("timestamp") is not None:
            conn["timestamp"] = int(connectivity["timestamp"])
        if connectivity and not conn["connected"] and connectivity.get("disconnectReason"):
            conn["disconnectReason"] = connectivity["disconnectReason"]
        result["connectivity"] = conn
        flatten("connectivity", conn, fields)
    if config.get("deviceDefenderIndexingMode") == "VIOLATIONS" and defender:
        result["deviceDefender"] = json.dumps(defender, separators=(",", ":"))
        flatten("deviceDefender", defender, fields)
    return {"fields": fields, "result": result}


def defender_view(violations) -> dict:
    """The deviceDefender part of a thing document from its Device Defender
    violations: violationCount (active ones) and, per security profile and
    behavior, inViolation, lastViolationTime (ms) and lastViolationValue of
    its current (else latest) violation."""
    latest: dict[tuple[str, str], dict] = {}
    for v in violations:
        key = (v["securityProfileName"], v["behavior"]["name"])
        rank = (bool(v.get("active")), v.get("lastViolationTime") or 0)
        if key not in latest or rank > (bool(latest[key].get("active")), latest[key].get("lastViolationTime") or 0):
            latest[key] = v
    view: dict = {"violationCount": sum(1 for v in latest.values() if v.get("active"))}
    for (profile, behavior), v in sorted(latest.items()):
        entry: dict = {"inViolation": bool(v.get("active"))}
        if v.get("lastViolationTime") is not None:
            entry["lastViolationTime"] = int(v["lastViolationTime"] * 1000)
        if v.get("lastViolationValue"):
            entry["lastViolationValue"] = v["lastViolationValue"]
        view.setdefault(profile, {})[behavior] = entry
    return view


def build_group(group: dict) -> dict:
    """The indexed form of a thing group (AWS_ThingGroups)."""
    props = group.get("thingGroupProperties") or {}
    attributes = (props.get("attributePayload") or {}).get("attributes") or {}
    parents = [a["groupName"] for a in group.get("ancestors") or []]
    result = {"thingGroupName": group["thingGroupName"], "thingGroupId": group["thingGroupId"],
              "attributes": dict(attributes), "parentGroupNames": parents}
    fields: dict[str, list] = {"thingGroupName": [group["thingGroupName"]], "thingGroupId": [group["thingGroupId"]]}
    if props.get("thingGroupDescription"):
        result["thingGroupDescription"] = props["thingGroupDescription"]
        fields["thingGroupDescription"] = [props["thingGroupDescription"]]
    if parents:
        fields["parentGroupNames"] = parents
    for key, value in attributes.items():
        fields[f"attributes.{key}"] = [value]
    return {"fields": fields, "result": result}
