"""ListThings pages are spliced from summaries stored beside each thing
(localiot.store.summaries): the reply bytes must be exactly those of the
summaries built from the documents and serialized by the protocol engine,
as every ListThings reply was before the summaries existed."""

import urllib.request

import pytest

from localiot.protocol import serializer
from localiot.services.registry import things
from localiot.services.unit_of_work import read_only
from localiot.testing import ACCOUNT, REGION


def _make_fleet(iot):
    iot.create_thing_type(thingTypeName="sensor")
    iot.create_thing_type(thingTypeName="gone")
    iot.create_billing_group(billingGroupName="billing")
    iot.create_thing(thingName="bare")
    iot.create_thing(thingName="typed", thingTypeName="sensor",
                     attributePayload={"attributes": {"model": "m-1", "floor": "3", "b": "[x]#=@,./:_"}})
    iot.create_thing(thingName="untyped", attributePayload={"attributes": {"model": "m-2", "empty": ""}})
    iot.create_thing(thingName="billed", billingGroupName="billing",
                     attributePayload={"attributes": {"model": "m-10"}})
    iot.create_thing(thingName="versions", thingTypeName="gone", attributePayload={"attributes": {"a": "1"}})
    iot.update_thing(thingName="versions", attributePayload={"attributes": {"a": "2", "z": "3"}, "merge": True})
    iot.update_thing(thingName="versions", removeThingType=True)
    iot.create_thing(thingName="retyped")
    iot.update_thing(thingName="retyped", thingTypeName="sensor")
    iot.add_thing_to_billing_group(billingGroupName="billing", thingName="retyped")
    for i in range(12):
        typed = {"thingTypeName": "sensor"} if i % 2 else {}
        iot.create_thing(thingName=f"many-{i:02d}", attributePayload={"attributes": {"model": f"m-{i}"}}, **typed)


def _raw(server, query: str) -> bytes:
    with urllib.request.urlopen(f"{server.endpoint}/things{query}") as response:
        assert response.status == 200
        return response.read()


def _operation(server):
    return next(s for s in server.app.services if s.name == "iot").model.operation_model("ListThings")


def _reference(server, rows: list[dict], token) -> bytes:
    """The reply as it was built before summaries: documents -> summary dicts -> serializer."""
    output = {"things": [things.summary(doc) for doc in rows], "nextToken": token}
    return serializer.serialize_rest(_operation(server), output).body


def _documents(server, keep=lambda doc: True) -> list[dict]:
    def read():
        with read_only(server.app.runtime, ACCOUNT, REGION) as ctx:
            return [doc for _, doc in ctx.tx.scan(things.KIND) if keep(doc)]

    return server.call(read)


CASES = [
    ("?maxResults=250", lambda doc: True),
    ("?thingTypeName=sensor", lambda doc: doc.get("thingTypeName") == "sensor"),
    ("?attributeName=model&attributeValue=m-1&usePrefixAttributeValue=true",
     lambda doc: doc["attributes"].get("model", "").startswith("m-1")),
    ("?attributeName=model&attributeValue=m-2", lambda doc: doc["attributes"].get("model") == "m-2"),
    ("?attributeName=model&attributeValue=m-1&usePrefixAttributeValue=true&thingTypeName=sensor",
     lambda doc: doc["attributes"].get("model", "").startswith("m-1") and doc.get("thingTypeName") == "sensor"),
]


@pytest.mark.parametrize("query, keep", CASES)
def test_list_things_reply_bytes_equal_the_reference(localiot_server, iot, query, keep):
    _make_fleet(iot)
    docs = _documents(localiot_server, keep)
    assert docs  # every case selects some things
    assert _raw(localiot_server, query) == _reference(localiot_server, docs, None)


def test_pages_and_their_tokens_equal_the_reference(localiot_server, iot):
    _make_fleet(iot)
    docs = _documents(localiot_server)
    first = iot.list_things(maxResults=5)
    token = first["nextToken"]
    assert _raw(localiot_server, "?maxResults=5") == _reference(localiot_server, docs[:5], token)
    second = _raw(localiot_server, "?maxResults=5&nextToken=" + urllib.request.quote(token, safe=""))
    assert second == _reference(localiot_server, docs[5:10], iot.list_things(maxResults=5, nextToken=token)["nextToken"])


def _forget_summaries(store) -> None:
    """Rows as a store written before the summary column held them: NULL."""
    sql = "UPDATE objects SET summary = NULL"
    if hasattr(store, "db"):  # SQLite
        store.db.execute(sql)
    else:  # PostgreSQL
        with store.connection().transaction():
            store.connection().execute(sql)


def test_rows_without_a_stored_summary_read_the_same(localiot_server, iot):
    _make_fleet(iot)
    before = _raw(localiot_server, "?maxResults=250")
    localiot_server.call(_forget_summaries, localiot_server.app.store)
    assert _raw(localiot_server, "?maxResults=250") == before
    assert _raw(localiot_server, "?thingTypeName=sensor") == _reference(
        localiot_server, _documents(localiot_server, lambda doc: doc.get("thingTypeName") == "sensor"), None)
    iot.update_thing(thingName="bare", attributePayload={"attributes": {"k": "v"}})  # written again: summary stored
    assert [t for t in iot.list_things()["things"] if t["thingName"] == "bare"][0]["attributes"] == {"k": "v"}


def test_summaries_outside_ascii_are_written_as_json_writes_them(localiot_server):
    """No API input puts text outside ASCII in a thing's summary (the model's patterns), but
    other writers may: a page with one takes the json path and still equals the reference."""
    thing = {"thingName": "t", "thingArn": "arn:aws:iot:us-east-1:123456789012:thing/t", "thingTypeName": None,
             "attributes": {"city": "Zürich \u2603 \x7f \"q\" \\", "n": "1"}, "version": 3}
    plain = {**thing, "thingName": "p", "attributes": {}}
    operation = _operation(localiot_server)
    texts = [things.summary_text(thing), things.summary_text(plain)]
    reference = serializer.serialize_rest(operation, {"things": [things.summary(thing), things.summary(plain)]})
    for spliced in ({"things": [serializer.JsonText(text) for text in texts]},  # items
                    {"things": serializer.JsonText("[" + ",".join(texts) + "]")}):  # the whole list
        assert serializer.serialize_rest(operation, spliced).body == reference.body
    assert b"\\u00fc" in reference.body
