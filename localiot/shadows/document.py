"""Shadow documents as AWS IoT's Device Shadow service defines them.

Pure functions: no store, no clock, no topics. `parse_update` validates an
update request and `apply_update` merges it into a stored shadow, giving the
new stored shadow plus the three documents AWS publishes for it (the
`/update/accepted` body, which is also the HTTP reply, the `/update/delta`
body and the `/update/documents` body). `get_document` and `delete_document`
build the GET and DELETE replies. Failures raise `ShadowError`, whose
`document()` is the `/rejected` body.

A stored shadow is `{"state": {"desired"?, "reported"?}, "metadata":
{"desired"?, "reported"?}, "version": n}`; a section is present only when it
holds something, metadata mirrors state with `{"timestamp": t}` at each leaf
and a list of per-element metadata for each array, as AWS returns them.

Where the developer guide is silent, the choices follow what AWS's own edge
implementation of the same service (Greengrass shadow manager) and
captured AWS responses do; each is said where it is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from localiot.protocol import jsontext

SECTIONS = ("desired", "reported")

# Limits (AWS IoT Core quotas and the Device Shadow error messages).
MAX_PAYLOAD_BYTES = 128 * 1024  # an MQTT message or HTTP request body
MAX_STATE_BYTES = 8 * 1024  # desired + reported as stored, without metadata or whitespace
MAX_DEPTH = 6  # levels in desired/reported, the section's own object counting as one
MAX_CLIENT_TOKEN_BYTES = 64

THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
SHADOW_NAME = re.compile(r"[$a-zA-Z0-9:_-]{1,64}")

# The messages AWS puts in error responses (developer guide, "Device Shadow
# error messages"; "Payload contains invalid json" is the text the service
# actually answers for a body that does not parse).
INVALID_JSON = "Payload contains invalid json"
MISSING_STATE = "Missing required node: state"
STATE_NOT_OBJECT = "State node must be an object"
SECTION_NOT_OBJECT = {"desired": "Desired node must be an object", "reported": "Reported node must be an object"}
INVALID_NODE = "State contains an invalid node"
INVALID_VERSION = "Invalid version"
INVALID_CLIENT_TOKEN = "Invalid clientToken"
TOO_DEEP = f"JSON contains too many levels of nesting; maximum is {MAX_DEPTH}"
VERSION_CONFLICT = "Version conflict"
TOO_LARGE = "The payload exceeds the maximum size allowed"
BAD_ENCODING = "Unsupported documented encoding; supported encoding is UTF-8"


class ShadowError(Exception):
    """A rejected shadow request: `code` is the HTTP status AWS uses for it."""

    def __init__(self, code: int, message: str, client_token: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_token = client_token

    def document(self) -> dict:
        """The error response document (the `/rejected` topic's body)."""
        doc = {"code": self.code, "message": self.message}
        if self.client_token is not None:
            doc["clientToken"] = self.client_token
        return doc


def not_found(thing: str, shadow_name: str | None, client_token: str | None = None) -> ShadowError:
    # AWS names the shadow: the thing name for the classic shadow.
    return ShadowError(404, f"No shadow exists with name: '{shadow_name or thing}'", client_token)


def validate_names(thing: str, shadow_name: str | None) -> None:
    """The API's name rules, for callers that do not go through the HTTP model (MQTT topics)."""
    if not isinstance(thing, str) or not THING_NAME.fullmatch(thing):
        raise ShadowError(400, f"Invalid thing name: {thing}")
    if shadow_name is not None and (not isinstance(shadow_name, str) or not SHADOW_NAME.fullmatch(shadow_name)):
        raise ShadowError(400, f"Invalid shadow name: {shadow_name}")


def dumps(document) -> bytes:
    """Compact UTF-8 JSON, the way AWS writes shadow documents."""
    return jsontext.dumps(document, ensure_ascii=False)


# request parsing ------------------------------------------------------------
@dataclass
class UpdateRequest:
    state: dict | None  # None: `"state": null`, which clears both sections
    client_token: str | None
    version: int | None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity are not JSON


# What sends a request's bytes to jsontext.loads rather than straight to orjson (whose
# result jsontext.loads takes whenever neither is there): a run of 19 digits (an integer
# orjson would read as a float), found as 19 zeros once every digit is a zero (a regex scan
# took a third of the parse), or more brackets than jsontext's depth. (A lone surrogate
# escape needs no look: orjson refuses every one, and the long way says why.)
_ZEROED = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def _loads(payload: bytes | str, brackets: int | None = None):
    """A request document (`brackets`: the count of `{` and `[` in `payload`, if known)."""
    if payload.__class__ is bytes and \
            (payload.count(b"{") + payload.count(b"[") if brackets is None else brackets) <= jsontext.MAX_DEPTH \
            and payload.translate(_ZEROED).find(_LONG_RUN) < 0:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass  # not UTF-8, not JSON, NaN, a lone surrogate: the long way says which
    if isinstance(payload, str):
        text = payload
    else:
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError:
            raise ShadowError(415, BAD_ENCODING) from None
    try:
        # Bounded nesting, and no lone surrogate (which no UTF-8 writer can store or send back).
        return jsontext.loads(text, parse_constant=_reject_constant)
    except jsontext.JsonRefused as refused:
        raise ShadowError(400, TOO_DEEP if refused.too_deep else INVALID_JSON) from None
    except ValueError:
        raise ShadowError(400, INVALID_JSON) from None


def _client_token(doc: dict) -> str | None:
    if "clientToken" not in doc or doc["clientToken"] is None:
        return None
    token = doc["clientToken"]
    if not isinstance(token, str) or len(token.encode()) > MAX_CLIENT_TOKEN_BYTES:
        raise ShadowError(400, INVALID_CLIENT_TOKEN)
    return token


def client_token_from_payload(payload: bytes | str | None) -> str | None:
    """The clientToken of a GET or DELETE request over MQTT (an empty payload has none)."""
    if not payload:
        return None
    doc = _loads(payload)
    return _client_token(doc) if isinstance(doc, dict) else None


def _too_deep(value, level: int) -> bool:
    """Whether `value`, an object or array at nesting `level`, goes deeper than MAX_DEPTH."""
    if level > MAX_DEPTH:
        return True
    children = value.values() if isinstance(value, dict) else value
    return any(isinstance(c, (dict, list)) and _too_deep(c, level + 1) for c in children)


def _array_holds_null(value) -> bool:
    if isinstance(value, dict):
        return any(_array_holds_null(v) for v in value.values())
    if isinstance(value, list):
        return any(v is None or _array_holds_null(v) for v in value)
    return False


def parse_update(payload: bytes | str) -> UpdateRequest:
    """Validate an update request document; raise ShadowError as AWS rejects it."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ShadowError(413, TOO_LARGE)
    # The brackets, counted once: for the parse's depth look and for the state's below.
    text = payload if isinstance(payload, (str, bytes)) else bytes(payload)
    if isinstance(text, str):
        curly, square = text.count("{"), text.count("[")
    else:
        curly, square = text.count(b"{"), text.count(b"[")
    doc = _loads(payload, curly + square)
    if not isinstance(doc, dict):
        raise ShadowError(400, MISSING_STATE)
    token = _client_token(doc)
    version = doc.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
        raise ShadowError(400, INVALID_VERSION, token)
    if "state" not in doc:
        raise ShadowError(400, MISSING_STATE, token)
    state = doc["state"]
    if state is not None:
        if not isinstance(state, dict):
            raise ShadowError(400, STATE_NOT_OBJECT, token)
        for key, section in state.items():
            # Choice: only desired and reported may be written ("delta" and
            # "metadata" are the service's own), anything else is invalid.
            if key not in SECTIONS:
                raise ShadowError(400, INVALID_NODE, token)
            if section is not None and not isinstance(section, dict):
                raise ShadowError(400, SECTION_NOT_OBJECT[key], token)
        # No array in the text: none to hold a null. Too few brackets in it for the
        # root, state and MAX_DEPTH levels: no section can be too deep. (Brackets inside
        # strings only send a payload the long way.)
        if not square and curly <= MAX_DEPTH + 2:
            return UpdateRequest(state, token, version)
        for section in state.values():
            if section is None:
                continue
            if _too_deep(section, 1):
                raise ShadowError(400, TOO_DEEP, token)
            # The developer guide: "Arrays can't have null values ... will be rejected."
            if _array_holds_null(section):
                raise ShadowError(400, INVALID_NODE, token)
    return UpdateRequest(state, token, version)


# merging --------------------------------------------------------------------
def _copied(value):
    """A copy of a JSON value (what copy.deepcopy gives, for dicts, lists and scalars)."""
    cls = value.__class__
    if cls is dict:
        return {k: _copied(v) for k, v in value.items()}
    if cls is list:
        return [_copied(v) for v in value]
    return value


def _merge(base: dict, patch: dict) -> dict:
    """Merge `patch` into a copy of `base`: null deletes a key, objects merge
    into objects, anything else (arrays, values, an object over a value)
    replaces. An explicit {} is a value: it replaces a value, adds an empty
    object, and merged into an object leaves it unchanged; deleting an
    object's last key leaves it {} (as AWS, and its Greengrass shadow manager,
    store them). Only nulls vanish: a new object made of nothing but nulls
    stores nothing."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            current = out.get(key)
            if isinstance(current, dict):
                out[key] = _merge(current, value)
                continue
            tree = _without_nulls(value)
            if tree is None:
                out.pop(key, None)
            else:
                out[key] = tree
        else:
            out[key] = value if value.__class__ is not list else _copied(value)
    return out


def _without_nulls(value: dict) -> dict | None:
    """A new object as it is stored: nulls dropped, objects that only nulls
    emptied dropped with them (None when nothing is left of `value` because of
    nulls); explicit empty objects kept."""
    out = {}
    dropped = False
    for key, item in value.items():
        if isinstance(item, dict):
            item = _without_nulls(item)
        if item is None:
            dropped = True
        else:
            out[key] = item if item.__class__ is not list else _copied(item)
    return None if dropped and not out else out


def metadata_for(value, timestamp: int):
    """Metadata of a request value: a timestamp per leaf (null included), per element of arrays."""
    if isinstance(value, (dict, list)):
        return _metadata_of(value, timestamp)
    return {"timestamp": timestamp}


def _metadata_of(value: dict | list, timestamp: int):
    # (leaves inline: a call per leaf was most of the cost; loops, not comprehensions: a
    # comprehension is a call of its own)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out[k] = _metadata_of(v, timestamp) if isinstance(v, (dict, list)) else {"timestamp": timestamp}
        return out
    return [_metadata_of(v, timestamp) if isinstance(v, (dict, list)) else {"timestamp": timestamp} for v in value]


def _merge_metadata(new: dict, old_state: dict, old_meta: dict, request: dict, patch: dict, timestamp: int) -> dict:
    """Metadata of the merged section `new`: the request's timestamps where it wrote, the old ones elsewhere."""
    out = {}
    for key, value in new.items():
        if key in request:
            written = request[key]
            if isinstance(value, dict) and isinstance(written, dict):
                before = old_state.get(key)
                before_meta = old_meta.get(key) if isinstance(before, dict) else None
                out[key] = _merge_metadata(value, before if isinstance(before, dict) else {},
                                           before_meta if isinstance(before_meta, dict) else {},
                                           written, patch[key], timestamp)
            else:
                out[key] = patch[key]
        elif key in old_meta:
            out[key] = old_meta[key]
        else:  # not expected: every stored leaf has metadata
            out[key] = metadata_for(value, timestamp)
    return out


# comparison and delta ---------------------------------------------------------
def json_equal(a, b) -> bool:
    """JSON equality: numbers by value (1 == 1.0), but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _diff(desired: dict, reported: dict) -> dict:
    out = {}
    for key, want in desired.items():
        if key not in reported:
            out[key] = want
            continue
        have = reported[key]
        if isinstance(want, dict) and isinstance(have, dict):
            sub = _diff(want, have)
            if sub:
                out[key] = sub
        elif not json_equal(want, have):  # arrays and values compare whole
            out[key] = want
    return out


def delta_of(desired: dict | None, reported: dict | None) -> dict | None:
    """Desired fields that differ from reported, nested objects down to the differing leaves."""
    if not desired:
        return None
    return _diff(desired, reported or {}) or None


def _delta_metadata(delta: dict, desired_meta) -> dict:
    """The delta's metadata: the desired section's metadata at the delta's paths."""
    out = {}
    for key, value in delta.items():
        meta = desired_meta.get(key) if isinstance(desired_meta, dict) else None
        out[key] = _delta_metadata(value, meta) if isinstance(value, dict) else meta
    return out


def _with_token(doc: dict, client_token: str | None) -> dict:
    if client_token is not None:
        doc["clientToken"] = client_token
    return doc


def _snapshot(shadow: dict) -> dict:
    return {"state": shadow["state"], "metadata": shadow["metadata"], "version": shadow["version"]}


# `{"desired":` / `,"reported":` and the closing brace: what the state's own text adds
# around its sections' texts.
_STATE_FRAMING = {s: len(f',"{s}":') for s in SECTIONS}


def state_size(state: dict) -> int:
    """What counts against the 8 KB limit: desired plus reported as compact JSON
    (the state's text, written once, less what frames its sections)."""
    if not state:
        return 0
    try:  # orjson's text where it is json's (as jsontext.dumps decides), without its steps
        text = orjson.dumps(state)
    except TypeError:  # an integer beyond 64 bits
        text = None
    if text is None or text.find(b"e-") >= 0 or text.find(b"0.0000") >= 0 or text.find(b"null") >= 0:
        text = dumps(state)
    size = len(text) - 1
    for section in state:
        size -= _STATE_FRAMING[section]
    return size


def _too_large(state: dict) -> bool:
    """state_size(state) > MAX_STATE_BYTES. orjson's text of a state differs from json's
    (which the limit counts) only where a float is written with a negative exponent, by a
    byte at most in four or more (orjson `1e-7`, json `1e-07`): when orjson's text is no more
    than half the limit, json's is under it and not worked out (state_size looks at the text
    for such floats, and at its framing)."""
    try:
        if len(orjson.dumps(state)) * 2 <= MAX_STATE_BYTES:
            return False
    except TypeError:  # an integer beyond 64 bits: state_size writes it with json
        pass
    return state_size(state) > MAX_STATE_BYTES


# operations -------------------------------------------------------------------
class UpdateResult:
    """A merged update: the new stored shadow and the documents AWS publishes for it.
    `delta` and `documents` are built when first read: an update nobody subscribed to
    never builds them."""

    __slots__ = ("shadow", "accepted", "_previous", "_now", "_token", "_delta", "_documents")

    def __init__(self, shadow: dict, accepted: dict, previous: dict | None, now: int, token: str | None):
        self.shadow = shadow  # the new stored shadow
        self.accepted = accepted  # /update/accepted and the HTTP reply
        self._previous, self._now, self._token = previous, now, token
        self._delta = self._documents = _UNBUILT

    @property
    def delta(self) -> dict | None:
        """/update/delta, only when desired differs from reported (else None)."""
        if self._delta is _UNBUILT:
            state, version = self.shadow["state"], self.shadow["version"]
            delta = delta_of(state.get("desired"), state.get("reported"))
            self._delta = None if not delta else _with_token(
                {"version": version, "timestamp": self._now, "state": delta,
                 "metadata": _delta_metadata(delta, self.shadow["metadata"].get("desired"))}, self._token)
        return self._delta

    @property
    def documents(self) -> dict:
        """/update/documents: the shadow before and after."""
        if self._documents is _UNBUILT:
            previous = self._previous
            self._documents = _with_token({"previous": _snapshot(previous) if previous is not None else None,
                                           "current": _snapshot(self.shadow), "timestamp": self._now}, self._token)
        return self._documents


_UNBUILT = object()


def apply_update(stored: dict | None, request: UpdateRequest, now: int, base_version: int = 0) -> UpdateResult:
    """Apply a parsed update to `stored` (None: no shadow yet, whose version is `base_version`)."""
    token = request.client_token
    current = stored["version"] if stored is not None else base_version
    # Optimistic locking: a given version must be the shadow's current one.
    if request.version is not None and request.version != current:
        raise ShadowError(409, VERSION_CONFLICT, token)
    old_state = stored["state"] if stored is not None else {}
    old_meta = stored["metadata"] if stored is not None else {}
    written = request.state
    patch = metadata_for(written, now)
    state, metadata = {}, {}  # built in SECTIONS order, as stored
    if written is not None:  # (`"state": null` clears both sections)
        for section in SECTIONS:
            if section not in written:  # kept as it was
                if section in old_state:
                    state[section] = old_state[section]
                if section in old_meta:
                    metadata[section] = old_meta[section]
                continue
            value = written[section]
            if value is None:  # null: the section goes
                continue
            before = old_state.get(section, _EMPTY)
            merged = _merge(before, value)
            if merged:  # (merged down to nothing: the section goes)
                state[section] = merged
                metadata[section] = _merge_metadata(merged, before, old_meta.get(section, _EMPTY), value,
                                                    patch[section], now)
    if _too_large(state):
        raise ShadowError(413, TOO_LARGE, token)
    version = current + 1
    # The accepted document echoes what was written (nulls included) with a
    # timestamp for each leaf written, as AWS does.
    # (`written` itself: nothing changes it, and the accepted document is written out at once)
    accepted = {"state": written, "metadata": patch, "version": version, "timestamp": now}
    if token is not None:
        accepted["clientToken"] = token
    return UpdateResult({"state": state, "metadata": metadata, "version": version}, accepted, stored, now, token)


_EMPTY: dict = {}  # read only: a section not stored yet


def update(stored: dict | None, payload: bytes | str, now: int, base_version: int = 0) -> UpdateResult:
    return apply_update(stored, parse_update(payload), now, base_version)


def get_document(stored: dict, now: int, client_token: str | None = None) -> dict:
    """The full shadow, as GET returns it: state with its delta, metadata, version."""
    state = dict(stored["state"])
    delta = delta_of(state.get("desired"), state.get("reported"))
    if delta:
        state["delta"] = delta
    return _with_token({"state": state, "metadata": stored["metadata"], "version": stored["version"],
                        "timestamp": now}, client_token)


def delete_document(stored: dict, now: int, client_token: str | None = None) -> dict:
    """The DELETE reply: the version of the shadow deleted and the time."""
    return _with_token({"version": stored["version"], "timestamp": now}, client_token)
