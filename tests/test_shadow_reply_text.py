"""GetThingShadow answers a stored shadow's text with the names cut off and the time added
(when it has no desired section) instead of building the document and writing it again:
the reply's bytes are exactly those of the document built and written the long way."""

from __future__ import annotations

import json

import pytest

from localiot.shadows import document
from localiot.testing import make_client

ACCOUNT, REGION = "123456789012", "us-east-1"

STATES = {
    "plain": {"reported": {"temperature": 21, "status": "ok"}},
    "nested": {"reported": {"a": {"b": {"c": [1, 2, {"d": True}]}}, "e": None, "f": "x"}},
    "text": {"reported": {"name": "Zürich ☃ \U0001f600", "quote": "a \"b\" \\ c", "control": "tab\tnew\nline\x01"}},
    "numbers": {"reported": {"small": 0.00001, "exp": 1.5e-7, "big": 18446744073709551616, "neg": -3, "f": 2.5}},
    "empty": {"reported": {}},
    "desired": {"desired": {"on": True}, "reported": {"on": False}},
    "desired in sync": {"desired": {"on": True}, "reported": {"on": True}},
    "desired only": {"desired": {"level": 3}},
    "a key named desired": {"reported": {"desired": 1, "state": {"version": 2}}},
}


def _stored(server, key: str) -> dict:
    def read():
        with server.app.runtime.store.transaction(ACCOUNT, REGION, write=False) as tx:
            return tx.get("shadow", key)
    return server.call(read)


@pytest.mark.parametrize("shadow_name", [None, "named-1"])
@pytest.mark.parametrize("case", list(STATES))
def test_the_reply_is_the_document_written_the_long_way(localiot_server, case, shadow_name):
    data = make_client(localiot_server, "iot-data")
    thing = "reply-" + case.replace(" ", "-")
    named = {"shadowName": shadow_name} if shadow_name else {}
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": STATES[case]}).encode(), **named)
    data.update_thing_shadow(thingName=thing, payload=b'{"state":{"reported":{"second":2}}}', **named)
    body = data.get_thing_shadow(thingName=thing, **named)["payload"].read()
    stored = _stored(localiot_server, f"{thing}/{shadow_name or ''}")
    timestamp = json.loads(body)["timestamp"]
    assert body == document.dumps(document.get_document(stored, timestamp))
    assert json.loads(body)["version"] == 2 and json.loads(body)["state"]["reported"]["second"] == 2


def test_a_deleted_shadow_is_not_found_and_a_new_one_continues_its_version(localiot_server):
    data = make_client(localiot_server, "iot-data")
    data.update_thing_shadow(thingName="reply-deleted", payload=b'{"state":{"reported":{"a":1}}}')
    data.delete_thing_shadow(thingName="reply-deleted")
    with pytest.raises(data.exceptions.ResourceNotFoundException) as raised:
        data.get_thing_shadow(thingName="reply-deleted")
    assert "No shadow exists with name: 'reply-deleted'" in str(raised.value)
    data.update_thing_shadow(thingName="reply-deleted", payload=b'{"state":{"reported":{"a":2}}}')
    body = json.loads(data.get_thing_shadow(thingName="reply-deleted")["payload"].read())
    assert body["version"] == 2 and body["state"] == {"reported": {"a": 2}}


def test_a_stored_document_of_another_shape_is_answered_the_long_way(localiot_server):
    """A classic shadow stored with `"shadowName": null` (as an earlier version wrote it) or with
    a key after its version: the reply is built from the document."""
    data = make_client(localiot_server, "iot-data")
    now = 1_700_000_000
    docs = {
        "reply-old-null": {"thingName": "reply-old-null", "shadowName": None, "state": {"reported": {"a": 1}},
                           "metadata": {"reported": {"a": {"timestamp": now}}}, "version": 4},
        "reply-extra-key": {"thingName": "reply-extra-key", "state": {"reported": {"a": 1}},
                            "metadata": {"reported": {"a": {"timestamp": now}}}, "version": 5, "extra": 1},
    }

    def write():
        with localiot_server.app.runtime.store.transaction(ACCOUNT, REGION) as tx:
            for name, doc in docs.items():
                tx.put("shadow", f"{name}/", doc)
    localiot_server.call(write)
    for name, doc in docs.items():
        body = data.get_thing_shadow(thingName=name)["payload"].read()
        assert body == document.dumps(document.get_document(doc, json.loads(body)["timestamp"]))
        assert b"extra" not in body and b"shadowName" not in body
