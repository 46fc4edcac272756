"""The PostgreSQL store: the same answers as SQLite (order included), and no
lost update when two nodes (two stores, two servers) race on one database."""

from __future__ import annotations

import json
import threading

import pytest

from localiot.config import Config
from localiot.store import open_store
from localiot.store.migrations import MIGRATIONS
from localiot.store.sqlite import SQLiteStore
from botocore.exceptions import ClientError

from localiot.testing import local_server, make_client

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def dsn(localiot_postgres):
    dsn = localiot_postgres.create_database()
    yield dsn
    localiot_postgres.drop_database(dsn)


def error_code(call, **kwargs) -> str | None:
    """None when the call succeeds, else its error code."""
    try:
        call(**kwargs)
    except ClientError as error:
        return error.response["Error"]["Code"]
    return None


def _race(threads: int, fn) -> list:
    """Run fn(i) on `threads` threads started together; their results (or errors)."""
    barrier = threading.Barrier(threads)
    results: list = [None] * threads

    def body(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as error:  # the caller looks at it
            results[i] = error

    workers = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return results


def test_store_selection_and_schema(dsn):
    assert Config.from_env(environ={"LOCALIOT_STORE": dsn}).store == dsn
    first, second = open_store(dsn), open_store(dsn)  # a second node migrates nothing twice
    try:
        assert first.schema_version == second.schema_version == max(version for version, _ in MIGRATIONS)
        assert "@" in first.path and first.path.startswith("postgresql://")
    finally:
        first.close()
        second.close()


NAMES = ["b", "B", "a\x00b", "a\x01", "a\x00", "a", "a-1", "a_1", "a.1", "aa", "Z", "zeta", "é", "ß", "日本", "a b", "~", "0", "10", "9"]


def test_scans_and_pagination_order_like_sqlite(dsn):
    """COLLATE "C": byte order, the order SQLite's BINARY gives."""
    pg, lite = open_store(dsn), SQLiteStore(":memory:")
    try:
        for store in (pg, lite):
            with store.transaction(ACCOUNT, REGION) as tx:
                for i, name in enumerate(NAMES):
                    tx.put("thing", name, {"n": i, "v": {"k": [1, "x"]}}, {"type": "t" if i % 2 else "u"})
                    tx.link("member", "g", name)
                tx.put_tags("arn:x", {name: str(i) for i, name in enumerate(NAMES)})
        answers = []
        for store in (pg, lite):
            with store.transaction(ACCOUNT, REGION, write=False) as tx:
                answers.append((
                    tx.scan("thing"), tx.scan("thing", after="a", limit=4), tx.scan("thing", prefix="a"),
                    tx.find("thing", "type", "t"), tx.find("thing", "type", "", prefix=True, after="a1"),
                    tx.linked("member", "g", after="Z", limit=5), tx.linked_to("member", "zeta"),
                    list(tx.get_tags("arn:x").items()), tx.count("thing"), tx.count("thing", "type", "u"),
                    tx.count_links("member", src="g"),
                ))
        assert answers[0] == answers[1]
        assert [name for name, _ in answers[0][0]] == sorted(NAMES, key=lambda n: n.encode())
        assert pg.scan_all_scopes("thing", {"n": 3}) == lite.scan_all_scopes("thing", {"n": 3})
        assert pg.scopes_indexing("thing", "type", "t") == [(ACCOUNT, REGION)]
    finally:
        pg.close()
        lite.close()


PATTERNS = ["*", "a*", "a?", "?", "*1", "a[.]1", "a[-_]1", "[^a]*", "[]]*", "日*", "*[*]*", "é", "[0-9]*", "a[^-]1"]


def test_find_names_matches_sqlite(dsn):
    """find_names (fleet indexing's ranges and wildcards): the same names as SQLite's
    GLOB and string ranges. (SQLite's GLOB stops reading a value at a NUL, so values
    holding one are checked on PostgreSQL alone: there ? and * match NUL and the
    escape character like any other.)"""
    pg, lite = open_store(dsn), SQLiteStore(":memory:")
    values = [name for name in NAMES if "\x00" not in name] + ["a*1", "]x"]
    try:
        for store in (pg, lite):
            with store.transaction(ACCOUNT, REGION) as tx:
                for i, value in enumerate(values):
                    tx.put("thing", f"t{i}", {}, {"v": value})
        answers = []
        for store in (pg, lite):
            with store.transaction(ACCOUNT, REGION, write=False) as tx:
                answer = [sorted(tx.find_names("thing", "v", pattern=p)) for p in PATTERNS]
                answer.append(sorted(tx.find_names("thing", "v")))
                answer.append(sorted(tx.find_names("thing", "v", low="a", high="b", include_high=False)))
                answer.append(sorted(tx.find_names("thing", "v", low="a", include_low=False, pattern="*1")))
                answer.append(sorted(tx.find_names("thing", "v", high="a\x01")))
                answers.append(answer)
        for pattern, got, expected in zip(PATTERNS, answers[0], answers[1]):
            assert got == expected, pattern
        assert answers[0] == answers[1]
        assert len(answers[1][0]) == len(values) and answers[1][1]  # the patterns do select
        with pg.transaction(ACCOUNT, REGION) as tx:
            for i, value in enumerate(["b\x00", "b\x01", "b\x00c", "bc"]):
                tx.put("nul", f"n{i}", {}, {"v": value})
        with pg.transaction(ACCOUNT, REGION, write=False) as tx:
            assert sorted(tx.find_names("nul", "v", pattern="b?")) == ["n0", "n1", "n3"]
            assert sorted(tx.find_names("nul", "v", pattern="b?c")) == ["n2"]
            assert sorted(tx.find_names("nul", "v", pattern="b*")) == ["n0", "n1", "n2", "n3"]
    finally:
        pg.close()
        lite.close()


def test_two_stores_racing_read_modify_write_lose_nothing(dsn):
    """The shape of a shadow update: get, version + 1, put. 2 nodes x 40 updates."""
    stores = [open_store(dsn), open_store(dsn)]
    with stores[0].transaction(ACCOUNT, REGION) as tx:
        tx.put("shadow", "t1", {"version": 0, "writers": []})

    def node(i):
        for n in range(40):
            with stores[i].transaction(ACCOUNT, REGION) as tx:
                doc = tx.get("shadow", "t1")
                doc["version"] += 1
                doc["writers"].append(f"{i}-{n}")
                tx.put("shadow", "t1", doc)

    try:
        assert _race(2, node) == [None, None]
        with stores[1].transaction(ACCOUNT, REGION, write=False) as tx:
            doc = tx.get("shadow", "t1")
        assert doc["version"] == 80 and len(set(doc["writers"])) == 80
    finally:
        for store in stores:
            store.close()


def test_two_stores_racing_the_same_create_see_each_other(dsn):
    """The shape of CreateThing: absent? then put. Exactly one of the racers creates."""
    stores = [open_store(dsn) for _ in range(4)]

    def node(i):
        with stores[i].transaction(ACCOUNT, REGION) as tx:
            if tx.get("thing", "same") is not None:
                return "exists"
            tx.put("thing", "same", {"by": i})
            return "created"

    try:
        for attempt in range(5):
            for store in stores:
                store.reset()
            results = _race(4, node)
            assert sorted(results) == ["created", "exists", "exists", "exists"], results
    finally:
        for store in stores:
            store.close()


@pytest.fixture
def two_nodes(dsn):
    """Two localiot servers sharing one PostgreSQL database: what two nodes are."""
    with local_server(store=dsn, background_period=0) as a, local_server(store=dsn, background_period=0) as b:
        yield a, b


def test_two_nodes_racing_shadow_updates_lose_no_update(two_nodes):
    clients = [make_client(node, "iot-data") for node in two_nodes]
    make_client(two_nodes[0]).create_thing(thingName="raced")

    def writer(i):
        for n in range(15):
            state = {"state": {"reported": {f"w{i}_{n}": n}}}
            clients[i % 2].update_thing_shadow(thingName="raced", payload=json.dumps(state).encode())

    assert _race(4, writer) == [None] * 4
    for client in clients:
        shadow = json.loads(client.get_thing_shadow(thingName="raced")["payload"].read())
        assert shadow["version"] == 60
        assert len(shadow["state"]["reported"]) == 60


def test_two_nodes_racing_the_same_expected_version_one_wins(two_nodes):
    clients = [make_client(node, "iot-data") for node in two_nodes]
    clients[0].update_thing_shadow(thingName="v", payload=b'{"state":{"desired":{"x":0}}}')

    def version():
        return json.loads(clients[1].get_thing_shadow(thingName="v")["payload"].read())["version"]

    for round_ in range(3):
        expected = version()

        def update(i):
            body = {"state": {"desired": {"x": i + 1}}, "version": expected}
            return error_code(clients[i % 2].update_thing_shadow, thingName="v", payload=json.dumps(body).encode())

        results = _race(2, update)
        assert sorted(map(str, results)) == ["ConflictException", "None"], results
        assert version() == expected + 1


def test_two_nodes_racing_create_thing_one_thing(two_nodes):
    iots = [make_client(node) for node in two_nodes]

    def create(i):
        return error_code(iots[i % 2].create_thing, thingName="dup", attributePayload={
            "attributes": {"node": str(i)}})

    results = _race(4, create)
    assert sorted(map(str, results)) == ["None"] + ["ResourceAlreadyExistsException"] * 3, results
    things = iots[1].list_things()["things"]
    assert [t["thingName"] for t in things] == ["dup"] and things[0]["version"] == 1
