"""The steps and the runner of the Device Shadow case table (tests/shadow_cases.py):
request builders, the errors AWS answers, and `run_case(case, door)`."""

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
