"""Index maintenance writes only the entries that changed (services/indexing/
entry_changes.py, tx.change_index): after every kind of change, through boto3, the entries
stored for a thing are exactly those a full rewrite of its index document
writes, and queries on the old values stop matching while the new ones match;
changes the configuration does not index (a shadow under REGISTRY) leave the
index document as it was."""

from __future__ import annotations

import json

from localiot.services.indexing import settings
from localiot.services.indexing.maintain import entries
from localiot.testing import make_client


def _execute(store, sql, args=()):
    if hasattr(store, "db"):
        return store.db.execute(sql, args)
    return store.connection().execute(sql.replace("?", "%s"), args)


def _stored(server, name: str) -> tuple[set, set]:
    """(entries stored for the thing, entries a full rewrite of its stored index document writes)."""
    store = server.app.runtime.store

    def read():
        rows = _execute(store, "SELECT key, value FROM object_index WHERE kind=? AND name=?",
                        (settings.THING_INDEX, name)).fetchall()
        doc = _execute(store, "SELECT doc FROM objects WHERE kind=? AND name=?", (settings.THING_INDEX, name)).fetchone()
        return rows, doc

    rows, doc = server.call(read)
    expected = entries(json.loads(doc[0])["fields"]) if doc else {}
    return {tuple(row) for row in rows}, {(key, value) for key, values in expected.items() for value in values}


def _names(iot, query: str) -> list[str]:
    return sorted(t["thingName"] for t in iot.search_index(queryString=query, maxResults=100)["things"])


def test_every_change_leaves_the_entries_a_full_rewrite_writes(localiot_server):
    iot, data = make_client(localiot_server), make_client(localiot_server, "iot-data")
    iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY_AND_SHADOW", "namedShadowIndexingMode": "ON",
        "customFields": [{"name": "shadow.reported.temp", "type": "Number"}]})
    iot.create_thing(thingName="w-1", attributePayload={"attributes": {"site": "north", "floor": "3"}})
    iot.create_thing(thingName="w-2", attributePayload={"attributes": {"site": "north"}})
    iot.create_thing_group(thingGroupName="wg")
    iot.create_thing_type(thingTypeName="wt")

    def shadow(state, name=None):
        data.update_thing_shadow(thingName="w-1", payload=json.dumps({"state": state}).encode(),
                                 **({"shadowName": name} if name else {}))

    steps = [  # (change, a query that matches w-1 after it, one that no longer does)
        (lambda: shadow({"reported": {"temp": 20.5, "mode": "eco", "tags": ["a", "b"]}}),
         "shadow.reported.temp:20.5", None),
        (lambda: shadow({"reported": {"temp": 21, "tags": ["b", "c"]}}), "shadow.reported.tags:c",
         "shadow.reported.temp:20.5"),
        (lambda: shadow({"reported": {"mode": None}}), "shadow.reported.temp:21", "shadow.reported.mode:eco"),
        (lambda: shadow({"reported": {"mode": "eco"}, "desired": {"mode": "boost"}}), "shadow.hasDelta:true",
         "shadow.reported.tags:a"),
        (lambda: shadow({"reported": {"level": 4}}, "extra"), "shadow.name.extra.reported.level:4", None),
        (lambda: iot.update_thing(thingName="w-1", attributePayload={"attributes": {"site": "south", "floor": ""},
                                                                     "merge": True}),
         "attributes.site:south", "attributes.floor:3"),
        (lambda: iot.add_thing_to_thing_group(thingGroupName="wg", thingName="w-1"), "thingGroupNames:wg", None),
        (lambda: iot.update_thing(thingName="w-1", thingTypeName="wt"), "thingTypeName:wt", None),
        (lambda: iot.remove_thing_from_thing_group(thingGroupName="wg", thingName="w-1"), "thingTypeName:wt",
         "thingGroupNames:wg"),
        (lambda: data.delete_thing_shadow(thingName="w-1"), "shadow.name.extra.reported.level:4",
         "shadow.reported.temp:21"),
        (lambda: data.delete_thing_shadow(thingName="w-1", shadowName="extra"), "attributes.site:south",
         "shadow.name.extra.reported.level:4"),
    ]
    for i, (change, matches, stale) in enumerate(steps):
        change()
        stored, rewritten = _stored(localiot_server, "w-1")
        assert stored == rewritten, f"step {i}"
        assert _names(iot, matches) == ["w-1"], f"step {i}"
        if stale:
            assert _names(iot, stale) == [], f"step {i}"
    assert _names(iot, "attributes.site:north") == ["w-2"]
    stored, rewritten = _stored(localiot_server, "w-2")
    assert stored == rewritten and stored


def test_a_change_the_configuration_does_not_index_leaves_the_index_document(localiot_server):
    iot, data = make_client(localiot_server), make_client(localiot_server, "iot-data")
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    iot.create_thing(thingName="r-1", attributePayload={"attributes": {"site": "east"}})
    store = localiot_server.app.runtime.store

    def index_doc():
        return _execute(store, "SELECT doc FROM objects WHERE kind=? AND name=?",
                        (settings.THING_INDEX, "r-1")).fetchone()[0]

    before = localiot_server.call(index_doc)
    for i in range(3):
        data.update_thing_shadow(thingName="r-1", payload=json.dumps({"state": {"reported": {"n": i}}}).encode())
    assert localiot_server.call(index_doc) == before
    assert _names(iot, "attributes.site:east") == ["r-1"]
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY_AND_SHADOW"})
    for _ in range(100):  # rebuilt with the shadow (BUILDING until done)
        if iot.describe_index(indexName="AWS_Things")["indexStatus"] == "ACTIVE":
            break
    assert _names(iot, "shadow.reported.n:2") == ["r-1"]
    stored, rewritten = _stored(localiot_server, "r-1")
    assert stored == rewritten
