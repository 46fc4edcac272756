"""Thing types: create, describe, list, update, deprecate/undeprecate, delete."""

from __future__ import annotations

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import operation
from localiot.services.common import apply_tags, new_id, page, tags_to_dict
from localiot.services.registry import events
from localiot.services.tagging import taggable

KIND = "thingtype"
# The developer guide: a deprecated thing type can be deleted five minutes later.
DELETE_AFTER_DEPRECATION_SECONDS = 300
# The developer guide: "you can specify up to three attributes as searchable".
MAX_SEARCHABLE_ATTRIBUTES = 3

taggable("thingtype", lambda tx, name: tx.get(KIND, name) is not None)


def get(ctx, name: str) -> dict:
    thing_type = ctx.tx.get(KIND, name)
    if thing_type is None:
        raise not_found(f"Thing Type {name} cannot be found.")
    return thing_type


def _check_properties(props: dict) -> None:
    if len(props.get("searchableAttributes") or []) > MAX_SEARCHABLE_ATTRIBUTES:
        raise invalid(f"A thing type can have at most {MAX_SEARCHABLE_ATTRIBUTES} searchable attributes.")


def _emit(ctx, doc: dict, op: str) -> None:
    props = doc["thingTypeProperties"]
    meta = doc["thingTypeMetadata"]
    events.emit(ctx, "THING_TYPE", f"$aws/events/thingType/{doc['thingTypeName']}/{op.lower()}", op, {
        "thingTypeId": doc["thingTypeId"],
        "thingTypeName": doc["thingTypeName"],
        "isDeprecated": bool(meta.get("deprecated")),
        "deprecationDate": int(meta["deprecationDate"] * 1000) if meta.get("deprecationDate") else None,
        "searchableAttributes": props.get("searchableAttributes", []),
        "propagatingAttributes": (props.get("mqtt5Configuration") or {}).get("propagatingAttributes", []),
        "description": props.get("thingTypeDescription"),
    })


@operation("iot")
def CreateThingType(ctx, req):
    name = req["thingTypeName"]
    props = req.get("thingTypeProperties") or {}
    _check_properties(props)
    existing = ctx.tx.get(KIND, name)
    if existing is not None:
        if existing["thingTypeProperties"] == props:
            return {"thingTypeName": name, "thingTypeArn": existing["thingTypeArn"], "thingTypeId": existing["thingTypeId"]}
        raise ServiceError(
            "ResourceAlreadyExistsException", f"Thing Type {name} already exists with different properties",
            resourceId=existing["thingTypeId"], resourceArn=existing["thingTypeArn"],
        )
    doc = {
        "thingTypeName": name,
        "thingTypeId": new_id(),
        "thingTypeArn": ctx.arn(f"thingtype/{name}"),
        "thingTypeProperties": props,
        "thingTypeMetadata": {"deprecated": False, "creationDate": ctx.now()},
    }
    ctx.tx.put(KIND, name, doc)
    apply_tags(ctx, doc["thingTypeArn"], tags_to_dict(req.get("tags")))
    _emit(ctx, doc, "CREATED")
    return {"thingTypeName": name, "thingTypeArn": doc["thingTypeArn"], "thingTypeId": doc["thingTypeId"]}


def _describe(doc: dict) -> dict:
    return {
        "thingTypeName": doc["thingTypeName"],
        "thingTypeId": doc["thingTypeId"],
        "thingTypeArn": doc["thingTypeArn"],
        "thingTypeProperties": doc["thingTypeProperties"],
        "thingTypeMetadata": doc["thingTypeMetadata"],
    }


@operation("iot")
def DescribeThingType(ctx, req):
    return _describe(get(ctx, req["thingTypeName"]))


@operation("iot")
def ListThingTypes(ctx, req):
    wanted = req.get("thingTypeName")

    def fetch(after, limit):
        if wanted:
            doc = ctx.tx.get(KIND, wanted)
            return [(wanted, doc)] if doc is not None and (after is None or wanted > after) else []
        return ctx.tx.scan(KIND, after=after, limit=limit)

    rows, token = page(fetch, req)
    return {
        "thingTypes": [
            {k: v for k, v in _describe(doc).items() if k != "thingTypeId"} for _, doc in rows
        ],
        "nextToken": token,
    }


@operation("iot")
def UpdateThingType(ctx, req):
    doc = get(ctx, req["thingTypeName"])
    props = dict(doc["thingTypeProperties"])
    props.update(req.get("thingTypeProperties") or {})
    _check_properties(props)
    doc["thingTypeProperties"] = props
    ctx.tx.put(KIND, doc["thingTypeName"], doc)
    _emit(ctx, doc, "UPDATED")
    return {}


@operation("iot")
def DeprecateThingType(ctx, req):
    doc = get(ctx, req["thingTypeName"])
    meta = doc["thingTypeMetadata"]
    if req.get("undoDeprecate"):
        meta["deprecated"] = False
        meta.pop("deprecationDate", None)
    else:
        meta["deprecated"] = True
        meta["deprecationDate"] = ctx.now()
    ctx.tx.put(KIND, doc["thingTypeName"], doc)
    _emit(ctx, doc, "UPDATED")
    return {}


@operation("iot")
def DeleteThingType(ctx, req):
    name = req["thingTypeName"]
    doc = get(ctx, name)
    meta = doc["thingTypeMetadata"]
    if not meta.get("deprecated"):
        raise invalid(f"Thing type {name} must be deprecated before it can be deleted.")
    waited = ctx.now() - meta["deprecationDate"]
    if waited < DELETE_AFTER_DEPRECATION_SECONDS:
        raise invalid(
            f"Thing type {name} was deprecated {int(waited)} seconds ago; it can be deleted "
            f"{DELETE_AFTER_DEPRECATION_SECONDS} seconds after deprecation."
        )
    if ctx.tx.count("thing", "thingType", name):
        raise invalid(f"Thing type {name} still has things associated with it.")
    ctx.tx.delete(KIND, name)
    ctx.tx.drop_tags(doc["thingTypeArn"])
    _emit(ctx, doc, "DELETED")
    return {}
