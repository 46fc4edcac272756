"""JSON text that every later step can handle: bounded nesting, no lone surrogates.

Python's json module accepts `[[[[...` until it overflows the interpreter's
stack (RecursionError), and accepts `"\\ud800"`, a lone UTF-16 surrogate that
no UTF-8 encoder (SQLite, the serializers, MQTT) will write back. `loads`
refuses both once, where JSON enters, with `JsonRefused` (a ValueError, so
callers that treat ValueError as "not JSON" keep working); `check` does the
same for values that arrived by other means (headers decoded with
surrogateescape, strings from a parsed body).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

MAX_DEPTH = 100  # far beyond any modelled shape; well below the interpreter's recursion limit

_SURROGATE = re.compile("[\ud800-\udfff]")
# In JSON text a surrogate can only arrive as an escape (raw surrogates are not UTF-8).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class JsonRefused(ValueError):
    """JSON nested deeper than allowed (`too_deep`) or text holding a lone surrogate."""

    def __init__(self, message: str, *, too_deep: bool = False, where: str = ""):
        super().__init__(message)
        self.message = message
        self.too_deep = too_deep
        self.where = where


def has_lone_surrogate(text: str) -> bool:
    # Python strings hold code points: a well-formed pair escaped in JSON is
    # already one code point above U+FFFF, so any surrogate left is a lone one.
    return _SURROGATE.search(text) is not None


# Integers orjson would read as floats (beyond 64 bits) have at least 19 digits.
_LONG_NUMBER = re.compile(r"[0-9]{19}")


def loads(text: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH, surrogates: bool = False, **kwargs) -> Any:
    """json.loads, refusing nesting deeper than `max_depth` and (unless
    `surrogates`, for callers that check the values they keep) lone surrogates.

    orjson reads the text first (~5x faster) where its result is json's: no hook
    other than parse_constant asked for and no 19-digit number (orjson reads
    integers beyond 64 bits as floats). Whatever orjson refuses (NaN and
    Infinity, 1e400, lone surrogate escapes, nesting past 1024, malformed text)
    is read by json as before, with json's result or error."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")  # UnicodeDecodeError is a ValueError too
    value = _MISSING
    if (not kwargs or kwargs.keys() == {"parse_constant"}) and _LONG_NUMBER.search(text) is None:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        if value is _MISSING:
            value = json.loads(text, **kwargs)
    except RecursionError:
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels", too_deep=True) from None
    # Cheap cases first: no surrogate escape and too few brackets to be deep.
    if text.count("[") + text.count("{") > max_depth:
        check(value, max_depth=max_depth, surrogates=surrogates)
    elif not surrogates and _SURROGATE_ESCAPE.search(text) is not None:
        check(value, max_depth=max_depth)
    return value


_MISSING = object()


def _orjson_safe(value) -> bool:
    """Whether orjson writes `value` exactly as json does: only dicts, lists,
    strings, ints, bools, None and floats that json writes without an exponent
    (finite, 0 or 1e-4 <= |x| < 1e16, where both write the shortest repr)."""
    cls = value.__class__
    if cls is dict:
        values = value.values()
    elif cls is list:
        values = value
    elif cls is float:
        return value == 0.0 or 1e-4 <= abs(value) < 1e16
    else:
        return cls is str or cls is int or cls is bool or value is None
    for item in values:
        c = item.__class__
        if not (c is str or c is int or c is bool or item is None or _orjson_safe(item)):
            return False
    return True


# In orjson's bytes, the only float forms json writes differently: 0.00001 (json: 1e-05)
# and 1.5e-7 (json: 1.5e-07); NaN and infinities come out as null (json: NaN,
# Infinity). Bytes holding none of these substrings (plain `in` tests: a regex took
# ~4x the walk's time on a small document; bytes.find) hold no float json writes differently;
# text that merely holds one (a name with "e-") only costs the walk (_orjson_safe).
# orjson writes dataclasses, datetimes and subclasses of str/int/dict/list natively;
# json refuses or writes them its own way: these go to json.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def dumps(value: Any, *, ensure_ascii: bool = True) -> bytes:
    """Compact JSON bytes, exactly json.dumps(value, separators=(",", ":"),
    ensure_ascii=ensure_ascii).encode(): written by orjson where its bytes are
    json's (no float json writes differently: see the note above, else _orjson_safe;
    with ensure_ascii, only pure ASCII output with no escape json would write
    differently), else by json. (What json cannot write at all but orjson can, an
    Enum or a UUID, orjson writes by its value.)"""
    return dumps_by(value, ensure_ascii)[0]


def dumps_by(value: Any, ensure_ascii: bool = True) -> tuple[bytes, bool]:
    """`dumps`, and whether orjson wrote the bytes: then every integer in them fits in
    64 bits (orjson refuses larger ones), so orjson reads them back exactly."""
    try:
        out = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: non-string keys, integers beyond 64 bits, lone surrogates
        pass
    else:
        find = out.find  # (bytes.find: `in` first tries the needle as an integer, raising and clearing a TypeError)
        if ((find(b"null") < 0 and find(b"e-") < 0 and find(b"0.0000") < 0) or _orjson_safe(value)) and (
                not ensure_ascii or (out.isascii() and find(b"\\u") < 0 and find(b"\x7f") < 0)):
            return out, True
    return (_ASCII if ensure_ascii else _UTF8)(value).encode(), False


_ASCII = json.JSONEncoder(separators=(",", ":")).encode
_UTF8 = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


# Values the walk below passes over (neither text nor a container).
_LEAVES = frozenset({int, float, bool, bytes, type(None)})


def check(value: Any, *, max_depth: int = MAX_DEPTH, where: str = "", surrogates: bool = False) -> None:
    """Raise JsonRefused when `value` (dicts, lists, strings ...) nests deeper than
    `max_depth` or holds a string (or key) with a lone surrogate. Iterative, so
    it cannot overflow the stack itself. `where` names the value in messages;
    `surrogates` lets lone surrogates pass (only the depth is checked)."""
    if value.__class__ is dict and max_depth > 0:  # most inputs: a flat dict of strings and scalars, at once
        for key, item in value.items():
            if key.__class__ is not str or not (surrogates or key.isascii()):
                break  # the walk below decides (and names the member)
            if item.__class__ is str:
                if not (surrogates or item.isascii()):
                    break
            elif item.__class__ not in _LEAVES:
                break
        else:
            return
    stack = [(value, 0, where)]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            if not surrogates and _SURROGATE.search(item):
                raise JsonRefused("text holds a lone UTF-16 surrogate, which is not a Unicode character",
                                  where=path)
            continue
        if isinstance(item, dict):
            children = item.items()
        elif isinstance(item, (list, tuple)):
            children = ((f"{i + 1}.member", v) for i, v in enumerate(item))
        else:
            continue
        if depth >= max_depth:
            raise JsonRefused(f"JSON nested deeper than {max_depth} levels", too_deep=True, where=path)
        for key, child in children:
            name = f"{path}.{key}" if path else str(key)
            if not surrogates and isinstance(item, dict) and isinstance(key, str) and _SURROGATE.search(key):
                raise JsonRefused("text holds a lone UTF-16 surrogate, which is not a Unicode character",
                                  where=path or "key")
            stack.append((child, depth + 1, name))


def scrub(value: Any) -> Any:
    """`value` with every lone surrogate replaced by U+FFFD, as a UTF-8 encoder
    that does not fail would write it (for data that must flow on, such as a
    message through the rules engine). Call it on values `loads` bounded."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def may_hold_surrogate(text: str) -> bool:
    """Whether JSON `text` has a surrogate escape (only then can a parse yield a lone one)."""
    return _SURROGATE_ESCAPE.search(text) is not None
