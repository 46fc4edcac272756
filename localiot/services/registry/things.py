"""Things: create, describe, update, delete, list with attribute search."""

from __future__ import annotations

from localiot.protocol import jsontext
from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.protocol.serializer import JsonText
from localiot.services import Affects, hooks, operation
from localiot.services.common import check_version, decode_token, encode_token, new_id, page
from localiot.services.registry import events, thing_types
from localiot.services.registry.resources import BILLING_GROUP
from localiot.store import summaries

KIND = "thing"
MEMBER_OF = "thinggroup-member"  # links: thing group -> thing
PRINCIPALS = "thing-principal"  # links: thing -> principal (identity family)
MAX_ATTRIBUTES_UNTYPED = 3
MAX_ATTRIBUTES_TYPED = 50


def arn(ctx, name: str) -> str:
    return ctx.arn(f"thing/{name}")


def get(ctx, name: str) -> dict:
    thing = ctx.tx.get(KIND, name)
    if thing is None:
        raise not_found(f"Thing {name} cannot be found.")
    return thing


def save(ctx, thing: dict) -> None:
    index = {f"attr:{k}": v for k, v in thing["attributes"].items()}
    index["thingType"] = thing.get("thingTypeName")
    index["billingGroup"] = thing.get("billingGroupName")
    ctx.tx.put(KIND, thing["thingName"], thing, index)


def _check_attribute_count(thing_type: str | None, attributes: dict) -> None:
    limit = MAX_ATTRIBUTES_TYPED if thing_type else MAX_ATTRIBUTES_UNTYPED
    if len(attributes) > limit:
        raise invalid(
            f"Maximum number of attributes is {limit} for a thing "
            f"{'with' if thing_type else 'without'} a thing type."
        )


def _usable_thing_type(ctx, name: str) -> None:
    thing_type = thing_types.get(ctx, name)
    if thing_type["thingTypeMetadata"].get("deprecated"):
        raise invalid(f"Can not create or update a thing with deprecated thing type {name}")


def _emit(ctx, thing: dict, op: str) -> None:
    if not events.is_enabled(ctx, "THING"):  # (usually off: the event's payload is not built)
        return
    events.send(ctx, "THING", f"$aws/events/thing/{thing['thingName']}/{op.lower()}", op, {
        "thingId": thing["thingId"],
        "thingName": thing["thingName"],
        "versionNumber": thing["version"],
        "thingTypeName": thing.get("thingTypeName"),
        "attributes": thing["attributes"],
    })


def _emit_type_association(ctx, thing: dict, thing_type: str, op: str) -> None:
    events.emit(
        ctx, "THING_TYPE_ASSOCIATION",
        f"$aws/events/thingTypeAssociation/thing/{thing['thingName']}/{thing_type}", op,
        {"thingId": thing["thingId"], "thingName": thing["thingName"], "thingTypeName": thing_type},
    )


@operation("iot")
def CreateThing(ctx, req):
    name = req["thingName"]
    attributes = (req.get("attributePayload") or {}).get("attributes") or {}
    thing_type = req.get("thingTypeName")
    billing_group = req.get("billingGroupName")
    existing = ctx.tx.get(KIND, name)
    if existing is not None:
        same = (
            existing.get("thingTypeName") == thing_type
            and existing["attributes"] == attributes
            and (billing_group is None or existing.get("billingGroupName") == billing_group)
        )
        if not same:
            raise ServiceError(
                "ResourceAlreadyExistsException",
                f"Thing {name} already exists in account with different attributes",
                resourceId=existing["thingId"], resourceArn=existing["thingArn"],
            )
        return {"thingName": name, "thingArn": existing["thingArn"], "thingId": existing["thingId"]}
    if thing_type:
        _usable_thing_type(ctx, thing_type)
    _check_attribute_count(thing_type, attributes)
    if billing_group:
        BILLING_GROUP.get(ctx, billing_group)
    thing = {"thingName": name, "thingId": new_id(), "thingArn": f"arn:aws:iot:{ctx.region}:{ctx.account}:thing/{name}"}
    # No type or billing group: stored absent, not null (every reader takes .get; a null in
    # the text sent the store's writer down its float walk, ~4% of a CreateThing)
    if thing_type is not None:
        thing["thingTypeName"] = thing_type
    thing["attributes"], thing["version"] = attributes, 1
    if billing_group is not None:
        thing["billingGroupName"] = billing_group
    thing["creationDate"] = ctx.runtime.clock.now()
    if attributes or thing_type or billing_group:
        save(ctx, thing)
    else:  # nothing to index, and the name is new (no entries to drop): save's index of Nones, skipped
        ctx.tx.put(KIND, name, thing)
    _emit(ctx, thing, "CREATED")
    if thing_type:
        _emit_type_association(ctx, thing, thing_type, "ADDED")
    return {"thingName": name, "thingArn": thing["thingArn"], "thingId": thing["thingId"]}


@operation("iot")
def DescribeThing(ctx, req):
    thing = get(ctx, req["thingName"])
    return {
        "defaultClientId": thing["thingName"],
        "thingName": thing["thingName"],
        "thingId": thing["thingId"],
        "thingArn": thing["thingArn"],
        "thingTypeName": thing.get("thingTypeName"),
        "attributes": thing["attributes"],
        "version": thing["version"],
        "billingGroupName": thing.get("billingGroupName"),
    }


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def UpdateThing(ctx, req):
    name = req["thingName"]
    thing = get(ctx, name)
    check_version("thing", name, thing["version"], req.get("expectedVersion"))
    if req.get("removeThingType") and req.get("thingTypeName"):
        raise invalid("Cannot specify both thingTypeName and removeThingType.")
    old_type = thing.get("thingTypeName")
    new_type = old_type
    if req.get("removeThingType"):
        new_type = None
    elif req.get("thingTypeName") and req["thingTypeName"] != old_type:
        _usable_thing_type(ctx, req["thingTypeName"])
        new_type = req["thingTypeName"]
    attributes = dict(thing["attributes"])
    payload = req.get("attributePayload")
    if payload is not None:
        given = payload.get("attributes") or {}
        if payload.get("merge"):
            for key, value in given.items():
                # An empty value removes the attribute when merging, as AWS does.
                if value == "":
                    attributes.pop(key, None)
                else:
                    attributes[key] = value
        else:
            attributes = {k: v for k, v in given.items() if v != ""}
    _check_attribute_count(new_type, attributes)
    thing.update(thingTypeName=new_type, attributes=attributes, version=thing["version"] + 1)
    save(ctx, thing)
    _emit(ctx, thing, "UPDATED")
    if old_type != new_type:
        if old_type:
            _emit_type_association(ctx, thing, old_type, "REMOVED")
        if new_type:
            _emit_type_association(ctx, thing, new_type, "ADDED")
    return {}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def DeleteThing(ctx, req):
    name = req["thingName"]
    thing = ctx.tx.get(KIND, name)
    if thing is None:
        return {}  # AWS: deleting a thing that does not exist succeeds.
    check_version("thing", name, thing["version"], req.get("expectedVersion"))
    principals = ctx.tx.linked(PRINCIPALS, name)
    if principals:
        raise invalid(f"Cannot delete. Thing {name} is still attached to one or more principals")
    ctx.tx.delete(KIND, name)
    ctx.tx.unlink_all(MEMBER_OF, dst=name)
    hooks.fire(hooks.THING_DELETED, ctx, thing)
    _emit(ctx, thing, "DELETED")
    return {}


def summary(thing: dict) -> dict:
    return {
        "thingName": thing["thingName"],
        "thingTypeName": thing.get("thingTypeName"),
        "thingArn": thing["thingArn"],
        "attributes": thing["attributes"],
        "version": thing["version"],
    }


def summary_text(thing: dict) -> str | None:
    """ListThings' entry for `thing` as the reply writes it (the ThingAttribute converter
    drops absent members; json's form: compact, ASCII), stored beside every thing.
    None (nothing stored) for a document that is not a registry thing (a store test's)."""
    if "thingArn" not in thing:
        return None
    # summary()'s members in its order, those not None (built here without the dict in between)
    entry = {} if thing["thingName"] is None else {"thingName": thing["thingName"]}
    thing_type = thing.get("thingTypeName")
    if thing_type is not None:
        entry["thingTypeName"] = thing_type
    if thing["thingArn"] is not None:
        entry["thingArn"] = thing["thingArn"]
    if thing["attributes"] is not None:
        entry["attributes"] = thing["attributes"]
    if thing["version"] is not None:
        entry["version"] = thing["version"]
    return jsontext.dumps(entry).decode()


summaries.register(KIND, summary_text)


def filtered(fetch, keep):
    """Wrap a keyset fetch with a predicate, reading on until `limit` rows pass."""

    def run(after, limit):
        out = []
        while len(out) < limit:
            rows = fetch(after, limit)
            if not rows:
                break
            out.extend(r for r in rows if keep(r))
            after = rows[-1][0]
            if len(rows) < limit:
                break
        return out[:limit]

    return run


@operation("iot")
def ListThings(ctx, req):
    tx = ctx.tx
    attr_name = req.get("attributeName")
    attr_value = req.get("attributeValue")
    thing_type = req.get("thingTypeName")
    use_prefix = bool(req.get("usePrefixAttributeValue")) or attr_value is None
    if attr_name and thing_type:  # filtered on the thing type too: read the documents for the filter
        def fetch(after, limit):
            return tx.find(KIND, f"attr:{attr_name}", attr_value or "", prefix=use_prefix, after=after, limit=limit)

        rows, token = page(filtered(fetch, lambda row: row[1].get("thingTypeName") == thing_type), req)
        return {"things": [summary(doc) for _, doc in rows], "nextToken": token}
    # The entries are the things' stored summary texts, spliced into the reply unparsed.
    after, limit = decode_token(req.get("nextToken")), req.get("maxResults") or 50
    if attr_name:
        texts, last = tx.summary_page(KIND, key=f"attr:{attr_name}", value=attr_value or "", after=after, limit=limit,
                                      prefix=use_prefix)
    elif thing_type:
        texts, last = tx.summary_page(KIND, key="thingType", value=thing_type, after=after, limit=limit)
    else:
        texts, last = tx.summary_page(KIND, after=after, limit=limit)
    return {"things": JsonText("[" + texts + "]"), "nextToken": None if last is None else encode_token(last)}
