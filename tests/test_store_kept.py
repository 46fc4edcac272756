"""The store's shortcuts on the write path read what is stored, on both stores:
kinds kept in memory (localiot.store.kept: settings every write reads) and
index entries a put need not drop (a document this transaction read as absent)."""

import pytest

from localiot.store import kept
from localiot.testing import ACCOUNT, REGION

KIND = "test-kept-settings"
kept.keep(KIND)


def _on_store(server, fn):
    def run():
        return fn(server.app.store)

    return server.call(run)


def _get(store, kind=KIND, name="config"):
    with store.transaction(ACCOUNT, REGION, write=False) as tx:
        return tx.get(kind, name)


class Undo(Exception):
    pass


def test_kept_documents_follow_commits_and_rollbacks(localiot_server):
    def steps(store):
        seen = [_get(store)]  # absent, now remembered
        with store.transaction(ACCOUNT, REGION) as tx:
            tx.put(KIND, "config", {"mode": "ON"})
            seen.append(tx.get(KIND, "config"))  # its own write, before the commit
        seen.append(_get(store))
        seen.append(_get(store))  # from memory on SQLite: the same
        with pytest.raises(Undo):
            with store.transaction(ACCOUNT, REGION) as tx:
                tx.put(KIND, "config", {"mode": "OFF"})
                seen.append(tx.get(KIND, "config"))
                raise Undo
        seen.append(_get(store))  # the rolled-back write is nowhere
        with store.transaction(ACCOUNT, REGION) as tx:
            tx.get(KIND, "config")
            tx.delete(KIND, "config")
            seen.append(tx.get(KIND, "config"))
        seen.append(_get(store))
        with store.transaction(ACCOUNT, REGION) as tx:
            tx.put(KIND, "config", {"mode": "AGAIN"})
        store.reset()
        seen.append(_get(store))
        return seen

    assert _on_store(localiot_server, steps) == [
        None, {"mode": "ON"}, {"mode": "ON"}, {"mode": "ON"}, {"mode": "OFF"}, {"mode": "ON"}, None, None, None]


def test_kept_documents_are_copies(localiot_server):
    def steps(store):
        with store.transaction(ACCOUNT, REGION) as tx:
            tx.put(KIND, "config", {"list": [1]})
        first = _get(store)
        first["list"].append(2)  # a caller changing what it read changes nothing stored
        return _get(store)

    assert _on_store(localiot_server, steps) == {"list": [1]}


def test_index_entries_of_a_document_read_as_absent(localiot_server):
    def steps(store):
        with store.transaction(ACCOUNT, REGION) as tx:
            assert tx.get("test-doc", "d") is None
            tx.put("test-doc", "d", {"v": 1}, {"color": "red"})
            tx.put("test-doc", "d", {"v": 2}, {"color": "blue"})  # replaces the entry written just before
        with store.transaction(ACCOUNT, REGION) as tx:
            assert tx.get("test-doc", "d") == {"v": 2}
            tx.delete("test-doc", "d")
            assert tx.get("test-doc", "d") is None
            tx.put("test-doc", "d", {"v": 3}, {"shape": "round"})
        with pytest.raises(Undo):
            with store.transaction(ACCOUNT, REGION) as tx:
                assert tx.get("test-doc", "e") is None
                tx.put("test-doc", "e", {"v": 4}, {"color": "red"})
                raise Undo
        with store.transaction(ACCOUNT, REGION, write=False) as tx:
            return ([n for n, _ in tx.find("test-doc", "color", "red")],
                    [n for n, _ in tx.find("test-doc", "color", "blue")],
                    [n for n, _ in tx.find("test-doc", "shape", "round")])

    assert _on_store(localiot_server, steps) == ([], [], ["d"])


def test_indexing_configuration_changes_reach_the_next_write(localiot_server, iot):
    """The fleet indexing settings are kept: the write right after the index turned
    ACTIVE (a background job's write) indexes its thing itself."""
    iot.create_thing(thingName="before")  # reads (and keeps) the settings: no index
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    for _ in range(50):  # the index builds in the background
        if iot.describe_index(indexName="AWS_Things")["indexStatus"] == "ACTIVE":
            break
        localiot_server.clock.advance(1)
    iot.create_thing(thingName="after", attributePayload={"attributes": {"k": "v"}})
    assert [t["thingName"] for t in iot.search_index(queryString="attributes.k:v")["things"]] == ["after"]
