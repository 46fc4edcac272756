"""The Device Shadow service: one implementation for both doors.

The iot-data handlers (GetThingShadow, UpdateThingShadow, DeleteThingShadow,
ListNamedShadowsForThing) and the broker's reserved shadow topics call these
functions inside the caller's transaction. Topics are queued with
`ctx.publish`, so they go out only if the call commits:

- update: `/update/accepted`, `/update/delta` (when desired differs from
  reported), `/update/documents`, whichever door the request came through;
- delete: `/delete/accepted`;
- get: `/get/accepted` only when asked (`publish_accepted=True`), because AWS
  answers an HTTP GET in the response alone;
- `/rejected`: only when asked (`publish_rejected=True`, the MQTT door). Then
  the failure is queued on `<op>/rejected` and the function returns None
  instead of raising, so the caller commits and the rejection is delivered.
  A failed request has written nothing.

Behaviour AWS documents and this follows: a shadow does not need a
registered thing (and deleting a thing leaves its shadows); deleting a
shadow does not reset its version: a shadow created again within 48 hours
continues from the deleted one's version, later it starts again (version 1
after its first update). There is no quota on named shadows per thing.
"""

from __future__ import annotations

from localiot.protocol.errors import ServiceError
from localiot.protocol.jsontext import dumps_by
from localiot.services.common import decode_token, encode_token
from localiot.shadows import document
from localiot.shadows.document import ShadowError
from localiot.store.documents import _loads as read_stored

KIND = "shadow"
NAMED_INDEX = "named"  # index key: thing name, on live named shadows only
VERSION_MEMORY_SECONDS = 48 * 3600
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100


def topic_prefix(thing: str, shadow_name: str | None = None) -> str:
    base = f"$aws/things/{thing}/shadow"
    return f"{base}/name/{shadow_name}" if shadow_name else base


def _key(thing: str, shadow_name: str | None) -> str:
    # Neither name can hold "/", so "<thing>/" prefixes exactly one thing's shadows.
    return f"{thing}/{shadow_name or ''}"


def _now(ctx) -> int:
    return int(ctx.runtime.clock.now())  # (ctx.now(), without its two calls in between)


def _load(ctx, thing: str, shadow_name: str | None, now: int) -> tuple[dict | None, int]:
    """The live shadow (or None) and the version a new one would continue from."""
    stored = ctx.tx.get(KIND, _key(thing, shadow_name))
    if stored is None:
        return None, 0
    deleted_at = stored.get("deletedAt")
    if deleted_at is not None:
        return None, stored["version"] if now - deleted_at <= VERSION_MEMORY_SECONDS else 0
    return stored, stored["version"]


def _save(ctx, thing: str, shadow_name: str | None, doc: dict, *, live: bool) -> None:
    if shadow_name:
        doc = {"thingName": thing, "shadowName": shadow_name, **doc}
        ctx.tx.put(KIND, _key(thing, shadow_name), doc, {NAMED_INDEX: thing} if live else {})
    else:  # a classic shadow never has index entries: none to drop
        # (stored without `"shadowName": null`: a null in the text sends the store's
        # writer down its slow path; documents stored with it read the same)
        ctx.tx.put(KIND, _key(thing, None), {"thingName": thing, **doc})


def _fail(ctx, error: ShadowError, thing: str, shadow_name: str | None, op: str, publish_rejected: bool):
    if not publish_rejected:
        raise error
    ctx.publish(f"{topic_prefix(thing, shadow_name)}/{op}/rejected", error.document())
    return None


def get_shadow(ctx, thing: str, shadow_name: str | None = None, client_token: str | None = None, *,
               publish_accepted: bool = False, publish_rejected: bool = False) -> dict | None:
    """The shadow document (state with delta, metadata, version, timestamp)."""
    try:
        document.validate_names(thing, shadow_name)
        now = _now(ctx)
        stored, _ = _load(ctx, thing, shadow_name, now)
        if stored is None:
            raise document.not_found(thing, shadow_name, client_token)
    except ShadowError as error:
        return _fail(ctx, error, thing, shadow_name, "get", publish_rejected)
    reply = document.get_document(stored, now, client_token)
    if publish_accepted:
        ctx.publish(f"{topic_prefix(thing, shadow_name)}/get/accepted", reply)
    return reply


def get_shadow_json(ctx, thing: str, shadow_name: str | None = None) -> bytes:
    """GetThingShadow's reply: `get_shadow`'s document as `document.dumps` writes it.

    A live shadow with no desired section (so no delta) answers its stored text with the
    names cut off and the time added: the same bytes, without reading the text into a
    document, building the reply and writing it again (bench/README.md, api_floor, ninth
    pass). Every version's `_save` writes a live shadow as thingName[, shadowName], state,
    metadata, version, in that order (`UpdateResult.shadow`): the text is taken when it starts
    with the names and `"state":` and ends with the version; anything else (a deleted shadow,
    an earlier version's `"shadowName":null`, a desired section) is read and built the long way."""
    document.validate_names(thing, shadow_name)
    now = _now(ctx)
    text = ctx.tx.get_text(KIND, _key(thing, shadow_name))
    if text is None:
        raise document.not_found(thing, shadow_name)
    if text.find('"desired"') < 0:  # (anywhere: a reported key of that name too goes the long way)
        # (the names need no escaping: validate_names allows no character JSON escapes)
        head = ('{"thingName":"' + thing + '","state":' if shadow_name is None
                else '{"thingName":"' + thing + '","shadowName":"' + shadow_name + '","state":')
        if text.startswith(head) and text[text.rfind(',"version":') + 11:-1].isdigit():
            return ("{" + text[len(head) - 8:-1] + f',"timestamp":{now}}}').encode()
    stored = read_stored(text)
    if stored.get("deletedAt") is not None:
        raise document.not_found(thing, shadow_name)
    return document.dumps(document.get_document(stored, now))


def update_shadow(ctx, thing: str, shadow_name: str | None, payload: bytes | str, *,
                  publish_rejected: bool = False, as_bytes: bool = False,
                  names_checked: bool = False) -> dict | bytes | None:
    """Apply an update request document; returns the accepted document (`as_bytes`:
    as its UTF-8 JSON, the HTTP reply's payload). `names_checked`: the caller checked
    the names against the API's rules (the HTTP door: the model's patterns are these)."""
    try:
        if not names_checked:
            document.validate_names(thing, shadow_name)
        request = document.parse_update(payload)
        now = int(ctx.runtime.clock.now())  # (_now's)
        stored, base_version = _load(ctx, thing, shadow_name, now)
        result = document.apply_update(stored, request, now, base_version)
    except ShadowError as error:
        return _fail(ctx, error, thing, shadow_name, "update", publish_rejected)
    _save(ctx, thing, shadow_name, result.shadow, live=True)
    prefix = topic_prefix(thing, shadow_name)
    wants = ctx.runtime.bus.wants
    account, region = ctx.account, ctx.region
    # Each event is built only when something could receive it (an MQTT subscription or
    # stored session, a rule, an in-process listener: `Bus.wants`); the reply always is.
    topic = f"{prefix}/update/accepted"
    if as_bytes:  # written once for the reply and the event (the same bytes when they hold only ASCII)
        accepted = dumps_by(result.accepted, False)[0]  # (document.dumps, without its two calls in between)
        if wants(account, region, topic):
            if accepted.isascii() and accepted.find(b"\x7f") < 0:
                ctx.publish_json(topic, accepted)
            else:
                ctx.publish(topic, result.accepted)
    else:
        accepted = result.accepted
        if wants(account, region, topic):
            ctx.publish(topic, accepted)
    topic = f"{prefix}/update/delta"
    if "desired" in result.shadow["state"] and wants(account, region, topic):  # (no desired: no delta)
        delta = result.delta  # (None: desired does not differ from reported)
        if delta is not None:
            ctx.publish(topic, delta)
    topic = f"{prefix}/update/documents"
    if wants(account, region, topic):
        ctx.publish(topic, result.documents)
    return accepted


def delete_shadow(ctx, thing: str, shadow_name: str | None = None, client_token: str | None = None, *,
                  publish_rejected: bool = False) -> dict | None:
    """Delete the shadow; its version is remembered for 48 hours."""
    try:
        document.validate_names(thing, shadow_name)
        now = _now(ctx)
        stored, _ = _load(ctx, thing, shadow_name, now)
        if stored is None:
            raise document.not_found(thing, shadow_name, client_token)
    except ShadowError as error:
        return _fail(ctx, error, thing, shadow_name, "delete", publish_rejected)
    _save(ctx, thing, shadow_name, {"version": stored["version"], "deletedAt": now}, live=False)
    reply = document.delete_document(stored, now, client_token)
    topic = f"{topic_prefix(thing, shadow_name)}/delete/accepted"
    if ctx.runtime.bus.wants(ctx.account, ctx.region, topic):
        ctx.publish(topic, reply)
    return reply


def list_named_shadows(ctx, thing: str, next_token: str | None = None, page_size: int | None = None) -> dict:
    """Names of the thing's named shadows (the classic one is not listed), in name order."""
    document.validate_names(thing, None)
    size = DEFAULT_PAGE_SIZE if page_size is None else page_size
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ShadowError(400, f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
    try:
        after = decode_token(next_token)
    except ServiceError as error:
        raise ShadowError(400, error.message) from None
    if after is not None and not (isinstance(after, str) and after.startswith(_key(thing, None))):
        raise ShadowError(400, "The specified nextToken is not valid.")
    rows = ctx.tx.find(KIND, NAMED_INDEX, thing, after=after, limit=size + 1)
    out = {"results": [doc["shadowName"] for _, doc in rows[:size]], "timestamp": _now(ctx)}
    if len(rows) > size:
        out["nextToken"] = encode_token(rows[size - 1][0])
    return out
