"""Device Shadow document semantics as a table of cases, run through every door.

Each case is data: a thing's shadow (classic unless `shadow` is given) and a
sequence of steps, each a request with what AWS answers and publishes for
it. A door (the service functions, HTTP via boto3, later MQTT) implements
`Door` and `run_case(case, door)` plays the steps and compares:

- update: `accepted` is the reply (HTTP body, `/update/accepted`), and it is
  also what gets published on `/update/accepted`; `delta` is the
  `/update/delta` body, None meaning nothing is published there;
  `documents` the `/update/documents` body; `error` the error document
  (`/update/rejected` body: code, message, clientToken when the request had
  a valid one), in which case nothing at all is published.
- get: `reply` or `error`. delete: `reply` or `error`.
- advance: moves the clock. Every case starts at T; the clock is set before
  each step, so timestamps are exact.

An expectation left out of a step is not checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

T = 1_700_000_000
THING = "dev"


def ts(offset: int = 0) -> dict:
    return {"timestamp": T + offset}


M = ts(0)

_UNSET = object()


def update(payload, accepted=_UNSET, delta=_UNSET, documents=_UNSET, error=None, shadow=_UNSET) -> dict:
    step = {"op": "update", "payload": payload}
    for key, value in (("accepted", accepted), ("delta", delta), ("documents", documents), ("shadow", shadow)):
        if value is not _UNSET:
            step[key] = value
    if error is not None:
        step["error"] = error
    return step


def get(reply=None, error=None, shadow=_UNSET) -> dict:
    step = {"op": "get"}
    if reply is not None:
        step["reply"] = reply
    if error is not None:
        step["error"] = error
    if shadow is not _UNSET:
        step["shadow"] = shadow
    return step


def delete(reply=None, error=None, shadow=_UNSET) -> dict:
    step = get(reply, error, shadow)
    step["op"] = "delete"
    return step


def advance(seconds: int) -> dict:
    return {"op": "advance", "seconds": seconds}


def err(code: int, message: str, client_token: str | None = None) -> dict:
    doc = {"code": code, "message": message}
    if client_token is not None:
        doc["clientToken"] = client_token
    return doc


def desired(values: dict, **extra) -> dict:
    return {"state": {"desired": values}, **extra}


def reported(values: dict, **extra) -> dict:
    return {"state": {"reported": values}, **extra}


def case(name: str, *steps, shadow: str | None = None) -> dict:
    return {"name": name, "shadow": shadow, "steps": list(steps)}


INVALID_JSON = err(400, "Payload contains invalid json")
MISSING_STATE = err(400, "Missing required node: state")
INVALID_NODE = err(400, "State contains an invalid node")
INVALID_VERSION = err(400, "Invalid version")
INVALID_TOKEN = err(400, "Invalid clientToken")
TOO_DEEP = err(400, "JSON contains too many levels of nesting; maximum is 6")
TOO_LARGE = err(413, "The payload exceeds the maximum size allowed")
NOT_FOUND = err(404, f"No shadow exists with name: '{THING}'")

CASES = [
    # --- creation, merge, delta --------------------------------------------
    case(
        "desired creates the shadow and the whole desired state is the delta",
        update(desired({"color": "red", "on": True}),
               accepted={"state": {"desired": {"color": "red", "on": True}},
                         "metadata": {"desired": {"color": M, "on": M}}, "version": 1, "timestamp": T},
               delta={"version": 1, "timestamp": T, "state": {"color": "red", "on": True},
                      "metadata": {"color": M, "on": M}},
               documents={"previous": None,
                          "current": {"state": {"desired": {"color": "red", "on": True}},
                                      "metadata": {"desired": {"color": M, "on": M}}, "version": 1},
                          "timestamp": T}),
        get({"state": {"desired": {"color": "red", "on": True}, "delta": {"color": "red", "on": True}},
             "metadata": {"desired": {"color": M, "on": M}}, "version": 1, "timestamp": T}),
    ),
    case(
        "reported alone creates the shadow without a delta",
        update(reported({"temp": 21}),
               accepted={"state": {"reported": {"temp": 21}}, "metadata": {"reported": {"temp": M}},
                         "version": 1, "timestamp": T},
               delta=None,
               documents={"previous": None,
                          "current": {"state": {"reported": {"temp": 21}}, "metadata": {"reported": {"temp": M}},
                                      "version": 1},
                          "timestamp": T}),
        get({"state": {"reported": {"temp": 21}}, "metadata": {"reported": {"temp": M}}, "version": 1,
             "timestamp": T}),
    ),
    case(
        "reported catching up with desired clears the delta",
        update(desired({"color": "red"})),
        advance(5),
        update(reported({"color": "red"}),
               accepted={"state": {"reported": {"color": "red"}}, "metadata": {"reported": {"color": ts(5)}},
                         "version": 2, "timestamp": T + 5},
               delta=None,
               documents={"previous": {"state": {"desired": {"color": "red"}},
                                       "metadata": {"desired": {"color": M}}, "version": 1},
                          "current": {"state": {"desired": {"color": "red"}, "reported": {"color": "red"}},
                                      "metadata": {"desired": {"color": M}, "reported": {"color": ts(5)}},
                                      "version": 2},
                          "timestamp": T + 5}),
        get({"state": {"desired": {"color": "red"}, "reported": {"color": "red"}},
             "metadata": {"desired": {"color": M}, "reported": {"color": ts(5)}}, "version": 2,
             "timestamp": T + 5}),
    ),
    case(
        "the delta holds only the desired fields that differ from reported",
        update(reported({"color": "green", "engine": "ON"})),
        update(desired({"color": "red", "engine": "ON", "state": "STOP"}),
               delta={"version": 2, "timestamp": T, "state": {"color": "red", "state": "STOP"},
                      "metadata": {"color": M, "state": M}}),
        get({"state": {"desired": {"color": "red", "engine": "ON", "state": "STOP"},
                       "reported": {"color": "green", "engine": "ON"},
                       "delta": {"color": "red", "state": "STOP"}},
             "metadata": {"desired": {"color": M, "engine": M, "state": M},
                          "reported": {"color": M, "engine": M}},
             "version": 2, "timestamp": T}),
    ),
    case(
        "reporting unrelated fields republishes every outstanding difference",
        update(desired({"a": 1, "b": 2})),
        advance(10),
        update(reported({"c": 3}),
               delta={"version": 2, "timestamp": T + 10, "state": {"a": 1, "b": 2},
                      "metadata": {"a": M, "b": M}}),
    ),
    case(
        "updates merge into the stored section",
        update(desired({"a": 1})),
        advance(3),
        update(desired({"b": 2}),
               accepted={"state": {"desired": {"b": 2}}, "metadata": {"desired": {"b": ts(3)}}, "version": 2,
                         "timestamp": T + 3}),
        get({"state": {"desired": {"a": 1, "b": 2}, "delta": {"a": 1, "b": 2}},
             "metadata": {"desired": {"a": M, "b": ts(3)}}, "version": 2, "timestamp": T + 3}),
    ),
    case(
        "overwriting a value moves only that leaf's timestamp",
        update(reported({"a": 1, "b": 1})),
        advance(7),
        update(reported({"a": 2})),
        get({"state": {"reported": {"a": 2, "b": 1}}, "metadata": {"reported": {"a": ts(7), "b": M}},
             "version": 2, "timestamp": T + 7}),
    ),
    case(
        "null deletes a key and the accepted document echoes the null",
        update(desired({"a": 1, "b": 2})),
        update(desired({"a": None}),
               accepted={"state": {"desired": {"a": None}}, "metadata": {"desired": {"a": M}}, "version": 2,
                         "timestamp": T},
               delta={"version": 2, "timestamp": T, "state": {"b": 2}, "metadata": {"b": M}}),
        get({"state": {"desired": {"b": 2}, "delta": {"b": 2}}, "metadata": {"desired": {"b": M}}, "version": 2,
             "timestamp": T}),
    ),
    case(
        "deleting the last key removes the section and leaves an empty shadow",
        update(reported({"a": 1})),
        update(reported({"a": None}),
               delta=None,
               documents={"previous": {"state": {"reported": {"a": 1}}, "metadata": {"reported": {"a": M}},
                                       "version": 1},
                          "current": {"state": {}, "metadata": {}, "version": 2}, "timestamp": T}),
        get({"state": {}, "metadata": {}, "version": 2, "timestamp": T}),
    ),
    case(
        "a nested null removes the objects it leaves empty",
        update(desired({"a": {"b": {"c": 1}}, "x": 1})),
        update(desired({"a": {"b": {"c": None}}})),
        get({"state": {"desired": {"x": 1}, "delta": {"x": 1}}, "metadata": {"desired": {"x": M}}, "version": 2,
             "timestamp": T}),
    ),
    case(
        "a nested null keeps its siblings",
        update(reported({"light": {"r": 1, "g": 2}})),
        advance(1),
        update(reported({"light": {"r": None}}),
               accepted={"state": {"reported": {"light": {"r": None}}},
                         "metadata": {"reported": {"light": {"r": ts(1)}}}, "version": 2, "timestamp": T + 1}),
        get({"state": {"reported": {"light": {"g": 2}}}, "metadata": {"reported": {"light": {"g": M}}},
             "version": 2, "timestamp": T + 1}),
    ),
    case(
        "desired: null removes the desired section and its delta",
        update({"state": {"desired": {"a": 1}, "reported": {"b": 2}}},
               delta={"version": 1, "timestamp": T, "state": {"a": 1}, "metadata": {"a": M}}),
        update({"state": {"desired": None}},
               accepted={"state": {"desired": None}, "metadata": {"desired": M}, "version": 2, "timestamp": T},
               delta=None),
        get({"state": {"reported": {"b": 2}}, "metadata": {"reported": {"b": M}}, "version": 2, "timestamp": T}),
    ),
    case(
        "state: null clears the document but the shadow and its version remain",
        update({"state": {"desired": {"a": 1}, "reported": {"a": 2}}}),
        update({"state": None},
               accepted={"state": None, "metadata": M, "version": 2, "timestamp": T},
               delta=None,
               documents={"previous": {"state": {"desired": {"a": 1}, "reported": {"a": 2}},
                                       "metadata": {"desired": {"a": M}, "reported": {"a": M}}, "version": 1},
                          "current": {"state": {}, "metadata": {}, "version": 2}, "timestamp": T}),
        get({"state": {}, "metadata": {}, "version": 2, "timestamp": T}),
        update(desired({"a": 3}), accepted={"state": {"desired": {"a": 3}}, "metadata": {"desired": {"a": M}},
                                            "version": 3, "timestamp": T}),
    ),
    case(
        "null for a key that is not there changes nothing but the version",
        update(desired({"a": 1})),
        update(desired({"zzz": None}),
               accepted={"state": {"desired": {"zzz": None}}, "metadata": {"desired": {"zzz": M}}, "version": 2,
                         "timestamp": T},
               delta={"version": 2, "timestamp": T, "state": {"a": 1}, "metadata": {"a": M}}),
        get({"state": {"desired": {"a": 1}, "delta": {"a": 1}}, "metadata": {"desired": {"a": M}}, "version": 2,
             "timestamp": T}),
    ),
    case(
        "a new object made only of nulls stores nothing",
        update(desired({"a": {"b": None}}),
               accepted={"state": {"desired": {"a": {"b": None}}}, "metadata": {"desired": {"a": {"b": M}}},
                         "version": 1, "timestamp": T},
               delta=None,
               documents={"previous": None, "current": {"state": {}, "metadata": {}, "version": 1},
                          "timestamp": T}),
        get({"state": {}, "metadata": {}, "version": 1, "timestamp": T}),
    ),
    case(
        "an empty desired object is accepted and writes nothing",
        update(desired({"a": 1})),
        update(desired({}),
               accepted={"state": {"desired": {}}, "metadata": {"desired": {}}, "version": 2, "timestamp": T}),
        get({"state": {"desired": {"a": 1}, "delta": {"a": 1}}, "metadata": {"desired": {"a": M}}, "version": 2,
             "timestamp": T}),
    ),
    case(
        "an empty object replacing a value leaves nothing there",
        update(reported({"a": 1, "b": 1})),
        update(reported({"a": {}})),
        get({"state": {"reported": {"b": 1}}, "metadata": {"reported": {"b": M}}, "version": 2, "timestamp": T}),
    ),
    # --- nested objects ---------------------------------------------------------
    case(
        "a nested delta holds the path down to the differing leaf",
        update(reported({"lights": {"color": {"r": 255, "g": 0, "b": 255}}})),
        update(desired({"lights": {"color": {"r": 255, "g": 255, "b": 255}}}),
               delta={"version": 2, "timestamp": T, "state": {"lights": {"color": {"g": 255}}},
                      "metadata": {"lights": {"color": {"g": M}}}}),
    ),
    case(
        "an object missing from reported goes whole into the delta",
        update(reported({"other": 1})),
        update(desired({"cfg": {"mode": "eco", "level": {"max": 3}}}),
               delta={"version": 2, "timestamp": T, "state": {"cfg": {"mode": "eco", "level": {"max": 3}}},
                      "metadata": {"cfg": {"mode": M, "level": {"max": M}}}}),
    ),
    case(
        "an object desired where a value is reported goes whole into the delta",
        update(reported({"cfg": "off"})),
        update(desired({"cfg": {"mode": "eco"}}),
               delta={"version": 2, "timestamp": T, "state": {"cfg": {"mode": "eco"}},
                      "metadata": {"cfg": {"mode": M}}}),
    ),
    case(
        "a value can become an object and back, metadata following",
        update(desired({"a": 1})),
        advance(1),
        update(desired({"a": {"b": 2}})),
        get({"state": {"desired": {"a": {"b": 2}}, "delta": {"a": {"b": 2}}},
             "metadata": {"desired": {"a": {"b": ts(1)}}}, "version": 2, "timestamp": T + 1}),
        advance(1),
        update(desired({"a": 3})),
        get({"state": {"desired": {"a": 3}, "delta": {"a": 3}}, "metadata": {"desired": {"a": ts(2)}},
             "version": 3, "timestamp": T + 2}),
    ),
    case(
        "merging into a nested object keeps the other leaves' timestamps",
        update(reported({"cfg": {"a": 1, "b": {"c": 2, "d": 3}}})),
        advance(9),
        update(reported({"cfg": {"b": {"d": 4}}})),
        get({"state": {"reported": {"cfg": {"a": 1, "b": {"c": 2, "d": 4}}}},
             "metadata": {"reported": {"cfg": {"a": M, "b": {"c": M, "d": ts(9)}}}}, "version": 2,
             "timestamp": T + 9}),
    ),
    # --- arrays -----------------------------------------------------------------
    case(
        "an update to an array replaces the whole array",
        update(desired({"colors": ["RED", "GREEN", "BLUE"]})),
        advance(2),
        update(desired({"colors": ["RED"]}),
               accepted={"state": {"desired": {"colors": ["RED"]}}, "metadata": {"desired": {"colors": [ts(2)]}},
                         "version": 2, "timestamp": T + 2}),
        get({"state": {"desired": {"colors": ["RED"]}, "delta": {"colors": ["RED"]}},
             "metadata": {"desired": {"colors": [ts(2)]}}, "version": 2, "timestamp": T + 2}),
    ),
    case(
        "array metadata has one entry per element",
        update(reported({"seq": [1, 2, 3]}),
               accepted={"state": {"reported": {"seq": [1, 2, 3]}}, "metadata": {"reported": {"seq": [M, M, M]}},
                         "version": 1, "timestamp": T}),
    ),
    case(
        "objects inside arrays get metadata per field",
        update(reported({"items": [{"id": 1, "tags": ["a"]}, 5]}),
               accepted={"state": {"reported": {"items": [{"id": 1, "tags": ["a"]}, 5]}},
                         "metadata": {"reported": {"items": [{"id": M, "tags": [M]}, M]}}, "version": 1,
                         "timestamp": T}),
    ),
    case(
        "a differing array goes whole into the delta",
        update(reported({"l": [1, 2]})),
        update(desired({"l": [1, 2, 3]}),
               delta={"version": 2, "timestamp": T, "state": {"l": [1, 2, 3]}, "metadata": {"l": [M, M, M]}}),
    ),
    case(
        "equal arrays give no delta",
        update(desired({"l": [1, {"a": 2}]}),
               delta={"version": 1, "timestamp": T, "state": {"l": [1, {"a": 2}]},
                      "metadata": {"l": [M, {"a": M}]}}),
        update(reported({"l": [1, {"a": 2}]}), delta=None),
        get({"state": {"desired": {"l": [1, {"a": 2}]}, "reported": {"l": [1, {"a": 2}]}},
             "metadata": {"desired": {"l": [M, {"a": M}]}, "reported": {"l": [M, {"a": M}]}}, "version": 2,
             "timestamp": T}),
    ),
    case(
        "arrays in another order differ",
        update(reported({"l": [1, 2]})),
        update(desired({"l": [2, 1]}),
               delta={"version": 2, "timestamp": T, "state": {"l": [2, 1]}, "metadata": {"l": [M, M]}}),
    ),
    case(
        "an empty array is a value",
        update(desired({"l": []}),
               accepted={"state": {"desired": {"l": []}}, "metadata": {"desired": {"l": []}}, "version": 1,
                         "timestamp": T},
               delta={"version": 1, "timestamp": T, "state": {"l": []}, "metadata": {"l": []}}),
        update(reported({"l": []}), delta=None),
    ),
    case(
        "arrays cannot hold null",
        update(desired({"colors": [None, "RED"]}), error=INVALID_NODE),
        update(desired({"m": [[1, None]]}), error=INVALID_NODE),
        get(error=NOT_FOUND),
    ),
    # --- value comparison -------------------------------------------------------
    case(
        "true is not 1 in the delta",
        update(reported({"on": 1})),
        update(desired({"on": True}), delta={"version": 2, "timestamp": T, "state": {"on": True},
                                             "metadata": {"on": M}}),
    ),
    case(
        "1 and 1.0 are the same number",
        update(reported({"v": 1.0})),
        update(desired({"v": 1}), delta=None),
    ),
    case(
        "a string is not a number",
        update(reported({"v": "1"})),
        update(desired({"v": 1}), delta={"version": 2, "timestamp": T, "state": {"v": 1}, "metadata": {"v": M}}),
    ),
    case(
        "numbers and unicode come back unchanged",
        update(reported({"big": 12345678901234567890, "f": 1.5, "neg": -3, "s": "h\u00e9llo \u2713",
                         "\u043a\u043b\u044e\u0447": None, "z": 0})),
        get({"state": {"reported": {"big": 12345678901234567890, "f": 1.5, "neg": -3, "s": "h\u00e9llo \u2713",
                                    "z": 0}},
             "metadata": {"reported": {"big": M, "f": M, "neg": M, "s": M, "z": M}}, "version": 1,
             "timestamp": T}),
    ),
    # --- versions ---------------------------------------------------------------
    case(
        "every update increments the version, identical ones too, and republishes the delta",
        update(desired({"a": 1}), delta={"version": 1, "timestamp": T, "state": {"a": 1}, "metadata": {"a": M}}),
        advance(1),
        update(desired({"a": 1}),
               accepted={"state": {"desired": {"a": 1}}, "metadata": {"desired": {"a": ts(1)}}, "version": 2,
                         "timestamp": T + 1},
               delta={"version": 2, "timestamp": T + 1, "state": {"a": 1}, "metadata": {"a": ts(1)}}),
    ),
    case(
        "an update giving the current version is accepted",
        update(desired({"a": 1})),
        update(desired({"a": 2}, version=1),
               accepted={"state": {"desired": {"a": 2}}, "metadata": {"desired": {"a": M}}, "version": 2,
                         "timestamp": T}),
    ),
    case(
        "a version conflict is rejected and changes nothing",
        update(desired({"a": 1})),
        update(desired({"a": 2}, version=5, clientToken="t1"), error=err(409, "Version conflict", "t1")),
        get({"state": {"desired": {"a": 1}, "delta": {"a": 1}}, "metadata": {"desired": {"a": M}}, "version": 1,
             "timestamp": T}),
    ),
    case(
        "a stale version after another writer conflicts",
        update(desired({"a": 1})),
        update(desired({"a": 2})),
        update(reported({"a": 2}, version=1), error=err(409, "Version conflict")),
        update(reported({"a": 2}, version=2), accepted={"state": {"reported": {"a": 2}},
                                                        "metadata": {"reported": {"a": M}}, "version": 3,
                                                        "timestamp": T}),
    ),
    case(
        "a new shadow takes version 0 and conflicts with any other",
        update(desired({"a": 1}, version=3), error=err(409, "Version conflict")),
        get(error=NOT_FOUND),
        update(desired({"a": 1}, version=0), accepted={"state": {"desired": {"a": 1}},
                                                       "metadata": {"desired": {"a": M}}, "version": 1,
                                                       "timestamp": T}),
    ),
    case(
        "a version that is not a non-negative integer is invalid",
        update(desired({"a": 1}, version="1"), error=INVALID_VERSION),
        update(desired({"a": 1}, version=-1), error=INVALID_VERSION),
        update(desired({"a": 1}, version=1.5), error=INVALID_VERSION),
        update(desired({"a": 1}, version=True, clientToken="c"), error=err(400, "Invalid version", "c")),
        get(error=NOT_FOUND),
    ),
    # --- client tokens ----------------------------------------------------------
    case(
        "the clientToken is echoed in accepted, delta and documents",
        update(desired({"a": 1}, clientToken="abc-123"),
               accepted={"state": {"desired": {"a": 1}}, "metadata": {"desired": {"a": M}}, "version": 1,
                         "timestamp": T, "clientToken": "abc-123"},
               delta={"version": 1, "timestamp": T, "state": {"a": 1}, "metadata": {"a": M},
                      "clientToken": "abc-123"},
               documents={"previous": None, "current": {"state": {"desired": {"a": 1}},
                                                        "metadata": {"desired": {"a": M}}, "version": 1},
                          "timestamp": T, "clientToken": "abc-123"}),
    ),
    case(
        "a clientToken may have 64 bytes, not 65",
        update(reported({"a": 1}, clientToken="x" * 64),
               accepted={"state": {"reported": {"a": 1}}, "metadata": {"reported": {"a": M}}, "version": 1,
                         "timestamp": T, "clientToken": "x" * 64}),
        update(reported({"a": 2}, clientToken="x" * 65), error=INVALID_TOKEN),
    ),
    case(
        "a clientToken's length counts UTF-8 bytes",
        update(reported({"a": 1}, clientToken="\u00e9" * 32),
               accepted={"state": {"reported": {"a": 1}}, "metadata": {"reported": {"a": M}}, "version": 1,
                         "timestamp": T, "clientToken": "\u00e9" * 32}),
        update(reported({"a": 2}, clientToken="\u00e9" * 33), error=INVALID_TOKEN),
    ),
    case(
        "a clientToken must be a string",
        update(reported({"a": 1}, clientToken=42), error=INVALID_TOKEN),
        update(reported({"a": 1}, clientToken={"t": 1}), error=INVALID_TOKEN),
    ),
    # --- malformed requests -----------------------------------------------------
    case(
        "a payload that is not JSON",
        update(b'{"state": {"desired": ', error=INVALID_JSON),
        update(b"hello", error=INVALID_JSON),
        get(error=NOT_FOUND),
    ),
    case(
        "NaN and Infinity are not JSON",
        update(b'{"state": {"desired": {"a": NaN}}}', error=INVALID_JSON),
        update(b'{"state": {"desired": {"a": -Infinity}}}', error=INVALID_JSON),
    ),
    case(
        "a lone UTF-16 surrogate is not text: the payload is invalid JSON",
        update(b'{"state": {"desired": {"a": "\\ud800"}}}', error=INVALID_JSON),
        update(b'{"state": {"reported": {"\\udfff": 1}}}', error=INVALID_JSON),
        update(b'{"state": {"reported": {"emoji": "\\ud83d\\ude00"}}}',
               accepted={"state": {"reported": {"emoji": "\U0001f600"}}, "metadata": {"reported": {"emoji": M}},
                         "version": 1, "timestamp": T}),
    ),
    case(
        "JSON nested past any limit is refused as too deep, not a failure",
        update(b'{"state": {"desired": ' + b"[" * 60_000 + b"]" * 60_000 + b"}}", error=TOO_DEEP),
        update(b'{"state": {"desired": ' + b'{"a":' * 5_000 + b"1" + b"}" * 5_000 + b"}}", error=TOO_DEEP),
        get(error=NOT_FOUND),
    ),
    case(
        "a payload must be UTF-8",
        update(b'{"state": {"desired": {"a": "\xff"}}}',
               error=err(415, "Unsupported documented encoding; supported encoding is UTF-8")),
    ),
    case(
        "a request without state is rejected with its clientToken",
        update({"desired": {"a": 1}}, error=MISSING_STATE),
        update({"clientToken": "ct", "version": 1}, error=err(400, "Missing required node: state", "ct")),
    ),
    case(
        "a JSON document that is not an object has no state",
        update(b"[1, 2]", error=MISSING_STATE),
        update(b"66", error=MISSING_STATE),
        update(b"null", error=MISSING_STATE),
    ),
    case(
        "state must be an object or null",
        update({"state": 5}, error=err(400, "State node must be an object")),
        update({"state": ["desired"]}, error=err(400, "State node must be an object")),
    ),
    case(
        "desired and reported must be objects or null",
        update({"state": {"desired": "on"}}, error=err(400, "Desired node must be an object")),
        update({"state": {"reported": [1]}}, error=err(400, "Reported node must be an object")),
        update({"state": {"reported": 0}}, error=err(400, "Reported node must be an object")),
    ),
    case(
        "state accepts only desired and reported",
        update({"state": {"delta": {"a": 1}}}, error=INVALID_NODE),
        update({"state": {"desired": {"a": 1}, "color": "red"}}, error=INVALID_NODE),
        get(error=NOT_FOUND),
    ),
    case(
        "fields outside state are ignored",
        update({"state": {"reported": {"a": 1}}, "metadata": {"reported": {"a": {"timestamp": 1}}},
                "timestamp": 5, "extra": "x"},
               accepted={"state": {"reported": {"a": 1}}, "metadata": {"reported": {"a": M}}, "version": 1,
                         "timestamp": T}),
    ),
    # --- limits -----------------------------------------------------------------
    case(
        "six levels of nesting are allowed, seven are not",
        update(desired({"one": {"two": {"three": {"four": {"five": {"v": 1}}}}}}),
               accepted={"state": {"desired": {"one": {"two": {"three": {"four": {"five": {"v": 1}}}}}}},
                         "metadata": {"desired": {"one": {"two": {"three": {"four": {"five": {"v": M}}}}}}},
                         "version": 1, "timestamp": T}),
        update(reported({"one": {"two": {"three": {"four": {"five": {"six": {"v": 1}}}}}}}), error=TOO_DEEP),
    ),
    case(
        "arrays count as nesting levels",
        update(reported({"l": [[[[[1]]]]]})),
        update(reported({"l": [[[[[[1]]]]]]}), error=TOO_DEEP),
        get({"state": {"reported": {"l": [[[[[1]]]]]}}, "metadata": {"reported": {"l": [[[[[M]]]]]}},
             "version": 1, "timestamp": T}),
    ),
    case(
        "desired plus reported may hold 8 KB, metadata not counted",
        update(desired({"a": "x" * 8184}), accepted={"state": {"desired": {"a": "x" * 8184}},
                                                     "metadata": {"desired": {"a": M}}, "version": 1,
                                                     "timestamp": T}),
        update(reported({"b": 1}), error=TOO_LARGE),
        update(desired({"a": "x" * 8185}), error=TOO_LARGE),
        update(desired({"a": "y"}), accepted={"state": {"desired": {"a": "y"}}, "metadata": {"desired": {"a": M}},
                                              "version": 2, "timestamp": T}),
    ),
    case(
        "a request over 128 KB is too large",
        update(desired({"a": "x" * (128 * 1024)}), error=TOO_LARGE),
        get(error=NOT_FOUND),
    ),
    # --- get and delete ---------------------------------------------------------
    case(
        "getting a shadow that never existed",
        get(error=NOT_FOUND),
        delete(error=NOT_FOUND),
    ),
    case(
        "a missing named shadow is named in the error",
        get(error=err(404, "No shadow exists with name: 'config'")),
        delete(error=err(404, "No shadow exists with name: 'config'")),
        shadow="config",
    ),
    case(
        "delete answers the deleted version, and the shadow is gone",
        update(desired({"a": 1})),
        advance(30),
        update(reported({"a": 1})),
        delete({"version": 2, "timestamp": T + 30}),
        get(error=NOT_FOUND),
        delete(error=NOT_FOUND),
    ),
    case(
        "a shadow created again within 48 hours continues the version",
        update(desired({"a": 1})),
        update(desired({"a": 2})),
        delete({"version": 2, "timestamp": T}),
        advance(48 * 3600),
        update(reported({"b": 1}),
               accepted={"state": {"reported": {"b": 1}}, "metadata": {"reported": {"b": ts(48 * 3600)}},
                         "version": 3, "timestamp": T + 48 * 3600},
               documents={"previous": None,
                          "current": {"state": {"reported": {"b": 1}},
                                      "metadata": {"reported": {"b": ts(48 * 3600)}}, "version": 3},
                          "timestamp": T + 48 * 3600}),
    ),
    case(
        "after 48 hours a shadow created again starts at version 1",
        update(desired({"a": 1})),
        update(desired({"a": 2})),
        delete({"version": 2, "timestamp": T}),
        advance(48 * 3600 + 1),
        update(desired({"a": 3}), accepted={"state": {"desired": {"a": 3}},
                                            "metadata": {"desired": {"a": ts(48 * 3600 + 1)}}, "version": 1,
                                            "timestamp": T + 48 * 3600 + 1}),
    ),
    case(
        "the version of a recently deleted shadow is the one to give",
        update(desired({"a": 1})),
        update(desired({"a": 2})),
        delete({"version": 2, "timestamp": T}),
        update(desired({"a": 3}, version=0), error=err(409, "Version conflict")),
        update(desired({"a": 3}, version=2), accepted={"state": {"desired": {"a": 3}},
                                                       "metadata": {"desired": {"a": M}}, "version": 3,
                                                       "timestamp": T}),
    ),
    # --- named shadows ----------------------------------------------------------
    case(
        "a named shadow has the same semantics",
        update(desired({"fw": "2.0"}), delta={"version": 1, "timestamp": T, "state": {"fw": "2.0"},
                                              "metadata": {"fw": M}}),
        update(reported({"fw": "2.0"}), delta=None),
        get({"state": {"desired": {"fw": "2.0"}, "reported": {"fw": "2.0"}},
             "metadata": {"desired": {"fw": M}, "reported": {"fw": M}}, "version": 2, "timestamp": T}),
        delete({"version": 2, "timestamp": T}),
        shadow="firmware",
    ),
    case(
        "the classic shadow and named shadows of a thing are separate",
        update(desired({"a": 1})),
        update(desired({"a": 1}), shadow="n1"),
        update(desired({"a": 2}), shadow="n1"),
        get({"state": {"desired": {"a": 1}, "delta": {"a": 1}}, "metadata": {"desired": {"a": M}}, "version": 1,
             "timestamp": T}),
        delete({"version": 2, "timestamp": T}, shadow="n1"),
        get(error=err(404, "No shadow exists with name: 'n1'"), shadow="n1"),
        get({"state": {"desired": {"a": 1}, "delta": {"a": 1}}, "metadata": {"desired": {"a": M}}, "version": 1,
             "timestamp": T}),
    ),
    case(
        "a shadow name may start with $",
        update(reported({"v": "1.2"}), accepted={"state": {"reported": {"v": "1.2"}},
                                                 "metadata": {"reported": {"v": M}}, "version": 1,
                                                 "timestamp": T}),
        get({"state": {"reported": {"v": "1.2"}}, "metadata": {"reported": {"v": M}}, "version": 1,
             "timestamp": T}),
        shadow="$package",
    ),
]


# the runner shared by the doors ------------------------------------------------
@dataclass
class Outcome:
    reply: dict | None = None  # accepted / get / delete document
    error: dict | None = None  # error document: code, message, clientToken
    published: dict[str, dict] = field(default_factory=dict)  # "update/delta" -> body, this request's topics


class Door(Protocol):
    def set_time(self, epoch: float) -> None: ...

    def update(self, thing: str, shadow: str | None, payload: bytes) -> Outcome: ...

    def get(self, thing: str, shadow: str | None) -> Outcome: ...

    def delete(self, thing: str, shadow: str | None) -> Outcome: ...


def encode(payload) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload).encode()


def run_case(case_: dict, door: Door) -> None:
    now = T
    for index, step in enumerate(case_["steps"]):
        where = f"{case_['name']}: step {index} ({step['op']})"
        if step["op"] == "advance":
            now += step["seconds"]
            continue
        door.set_time(now)
        shadow = step.get("shadow", case_["shadow"])
        if step["op"] == "update":
            out = door.update(THING, shadow, encode(step["payload"]))
        elif step["op"] == "get":
            out = door.get(THING, shadow)
        else:
            out = door.delete(THING, shadow)
        check(step, out, where)


def check(step: dict, out: Outcome, where: str) -> None:
    published = {topic: body for topic, body in out.published.items() if not topic.endswith("/rejected")}
    if "error" in step:
        assert out.error == step["error"], f"{where}: error {out.error} != {step['error']}"
        assert not published, f"{where}: a rejected request published {published}"
        return
    assert out.error is None, f"{where}: unexpected error {out.error}"
    op = step["op"]
    if op == "update":
        assert published.get("update/accepted") == out.reply, f"{where}: /update/accepted differs from the reply"
        if "accepted" in step:
            assert out.reply == step["accepted"], f"{where}: accepted {out.reply} != {step['accepted']}"
        if "delta" in step:
            got = published.get("update/delta")
            assert got == step["delta"], f"{where}: delta {got} != {step['delta']}"
        if "documents" in step:
            got = published.get("update/documents")
            assert got == step["documents"], f"{where}: documents {got} != {step['documents']}"
        assert "update/documents" in published, f"{where}: no /update/documents"
    else:
        if "reply" in step:
            assert out.reply == step["reply"], f"{where}: reply {out.reply} != {step['reply']}"
        if op == "delete":
            assert published.get("delete/accepted") == out.reply, f"{where}: /delete/accepted differs"
