"""SQLite's group commit (localiot.store.commit_group): API units of work of one loop
iteration share one transaction (a unit that fails undoes only its own writes); what follows each unit's commit
and every reply wait for the shared COMMIT; any other transaction commits the open group
first; a SIGKILLed server still loses no call it acknowledged."""

import asyncio
import signal
import threading
import time

import pytest

from localiot.services.unit_of_work import run
from localiot.testing import ACCOUNT, REGION, make_client

from test_server import start_cli

KIND = "test-group-commit"

pytestmark = pytest.mark.sqlite_only("group commit is the SQLite store's (PostgreSQL commits every unit)")


class Refused(Exception):
    pass


def _on_loop(server, steps):
    """Run the coroutine function `steps(store, runtime)` on the server's loop (where the store lives)."""
    app = server.app
    return asyncio.run_coroutine_threadsafe(steps(app.store, app.runtime), server.loop).result(30)


def _unit(runtime, name, followed, *, fail=False, grouped=True):
    """An API-like unit of work writing `name`, noting in `followed` when what follows its commit runs."""
    def body(ctx):
        ctx.tx.put(KIND, name, {"name": name})
        ctx.after_commit(lambda: followed.append(name))
        if fail:
            raise Refused(name)
        return name

    return run(runtime, ACCOUNT, REGION, "iot", "TestGroupCommit", body, grouped=grouped)


def _stored(store, *names):
    with store.transaction(ACCOUNT, REGION, write=False) as tx:
        return {name: tx.get(KIND, name) is not None for name in names}


def test_units_of_one_iteration_share_a_commit_and_a_failing_one_undoes_only_itself(localiot_server):
    async def steps(store, runtime):
        followed = []
        _unit(runtime, "a", followed)
        pending = store.pending_commit
        with pytest.raises(Refused):
            _unit(runtime, "b", followed, fail=True)  # wrote into the group, then failed
        _unit(runtime, "c", followed)
        seen = {"open": pending is not None and store.pending_commit is pending, "before": list(followed)}
        await pending  # the replies' wait: resolved after the COMMIT and the followers
        seen["after"] = list(followed)
        seen["stored"] = _stored(store, "a", "b", "c")
        seen["closed"] = store.pending_commit is None
        return seen

    seen = _on_loop(localiot_server, steps)
    assert seen["open"] and seen["before"] == []
    assert seen["after"] == ["a", "c"]
    assert seen["stored"] == {"a": True, "b": False, "c": True}
    assert seen["closed"]


def test_a_failing_unit_that_joined_the_group_leaves_the_others_writes_whole(localiot_server):
    """A unit that joins an open group takes no savepoint: when it fails, the group is rolled
    back and the others' writes (documents, index entries, links, tags, deletes, a nested
    unit's) are made again, so the store reads as if only the failing unit's were undone."""
    from localiot.services.unit_of_work import unit_of_work

    def writes(ctx, name, fail=False, nested=None):
        tx = ctx.tx
        tx.put(KIND, name, {"name": name}, {"tag": [name, "shared"], "none": None})
        tx.link("test-rel", name, "target")
        tx.put_tags(f"arn:{name}", {"k": name, "other": "v"})
        if nested is not None:  # a unit inside this one's `with`: a savepoint in the group
            with unit_of_work(ctx.runtime, ACCOUNT, REGION, "iot", "TestNested") as inner:
                inner.tx.put(KIND, nested, {"name": nested}, {"tag": nested})
        tx.delete(KIND, "old")
        if fail:
            raise Refused(name)
        return name

    async def steps(store, runtime):
        with store.transaction(ACCOUNT, REGION) as tx:
            tx.put(KIND, "old", {"name": "old"}, {"tag": "old"})
        run(runtime, ACCOUNT, REGION, "iot", "TestGroupCommit", writes, "a", False, "a-inner", grouped=True)
        pending = store.pending_commit
        with pytest.raises(Refused):
            run(runtime, ACCOUNT, REGION, "iot", "TestGroupCommit", writes, "b", True, "b-inner", grouped=True)
        run(runtime, ACCOUNT, REGION, "iot", "TestGroupCommit", writes, "c", grouped=True)
        same_group = store.pending_commit is pending
        await pending
        with store.transaction(ACCOUNT, REGION, write=False) as tx:
            return same_group, {
                "docs": sorted(name for name, _ in tx.scan(KIND)),
                "shared": sorted(name for name, _ in tx.find(KIND, "tag", "shared")),
                "inner": [name for name, _ in tx.find(KIND, "tag", "a-inner")] + [
                    name for name, _ in tx.find(KIND, "tag", "b-inner")],
                "linked": sorted(tx.linked_to("test-rel", "target")),
                "tags": {arn: tx.get_tags(arn) for arn in ("arn:a", "arn:b", "arn:c")},
            }

    same_group, seen = _on_loop(localiot_server, steps)
    assert same_group
    assert seen == {
        "docs": ["a", "a-inner", "c"], "shared": ["a", "c"], "inner": ["a-inner"], "linked": ["a", "c"],
        "tags": {"arn:a": {"k": "a", "other": "v"}, "arn:b": {}, "arn:c": {"k": "c", "other": "v"}},
    }


def test_a_group_whose_replay_cannot_be_exact_fails_whole(localiot_server):
    """A unit that caught a multi-row write failing part-way (its first rows stand) and went on:
    when a later unit of the group fails, the journal cannot make those rows again, so the whole
    group fails (every reply gets the error, nothing of it is stored) rather than losing them."""
    import sqlite3

    def caught(ctx):
        ctx.tx.put(KIND, "p0", {"name": "p0"})
        try:  # two equal index entries: the first row is written, the second breaks the key
            ctx.tx.put(KIND, "p", {"name": "p"}, {"tag": ["x", "x"]})
        except sqlite3.IntegrityError:
            pass
        return "p"

    async def steps(store, runtime):
        followed = []
        _unit(runtime, "a", followed)
        pending = store.pending_commit
        run(runtime, ACCOUNT, REGION, "iot", "TestGroupCommit", caught, grouped=True)
        with pytest.raises(Refused):
            _unit(runtime, "b", followed, fail=True)
        failed = None
        try:
            await pending
        except RuntimeError as error:
            failed = str(error)
        return failed, followed, _stored(store, "a", "p0", "p", "b"), store.pending_commit is None

    failed, followed, stored, closed = _on_loop(localiot_server, steps)
    assert failed is not None and "part-way" in failed
    assert followed == []
    assert stored == {"a": False, "p0": False, "p": False, "b": False}
    assert closed


def test_a_unit_that_opens_the_group_and_fails_leaves_nothing_open(localiot_server):
    async def steps(store, runtime):
        followed = []
        with pytest.raises(Refused):
            _unit(runtime, "first", followed, fail=True)
        open_after = store.pending_commit is not None
        _unit(runtime, "second", followed)
        await store.pending_commit
        return open_after, followed, _stored(store, "first", "second")

    open_after, followed, stored = _on_loop(localiot_server, steps)
    assert not open_after
    assert followed == ["second"]
    assert stored == {"first": False, "second": True}


def test_another_transaction_commits_the_group_first_and_followers_keep_their_order(localiot_server):
    async def steps(store, runtime):
        followed = []
        _unit(runtime, "grouped", followed)
        pending = store.pending_commit
        with store.transaction(ACCOUNT, REGION) as tx:  # the broker's, a door's...: commits the group first
            committed_first = store.pending_commit is None and not pending.done()
            tx.put(KIND, "direct", {"name": "direct"})
        _unit(runtime, "alone", followed, grouped=False)  # the grouped unit's followers run before its own
        order = list(followed)
        await pending
        return committed_first, order, _stored(store, "grouped", "direct", "alone")

    committed_first, order, stored = _on_loop(localiot_server, steps)
    assert committed_first
    assert order == ["grouped", "alone"]
    assert stored == {"grouped": True, "direct": True, "alone": True}


def test_a_read_of_what_the_group_holds_waits_for_its_commit(localiot_server):
    async def steps(store, runtime):
        followed = []
        _unit(runtime, "written", followed)
        pending = store.pending_commit
        read = run(runtime, ACCOUNT, REGION, "iot", "TestRead", lambda ctx: ctx.tx.get(KIND, "written"), grouped=True)
        waits = store.pending_commit is pending  # its reply awaits the same commit
        await pending
        quiet = run(runtime, ACCOUNT, REGION, "iot", "TestRead", lambda ctx: ctx.tx.get(KIND, "written"), grouped=True)
        return read, waits, quiet, store.pending_commit

    read, waits, quiet, pending_after = _on_loop(localiot_server, steps)
    assert read == {"name": "written"} and waits
    assert quiet == {"name": "written"} and pending_after is None  # no group open: a read does not wait


def test_sigkill_during_concurrent_writes_loses_nothing_acknowledged(tmp_path):
    process, endpoint = start_cli(tmp_path)
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        iot = make_client(endpoint)
        for i in range(10_000):
            if stop.is_set():
                return
            try:
                iot.create_thing(thingName=f"w{n}-{i}")
            except Exception:  # the server is gone
                return
            acknowledged.append(f"w{n}-{i}")

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(12)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 400 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)  # with calls in flight
        process.wait()
        stop.set()
    for thread in threads:
        thread.join(60)
    assert len(acknowledged) >= 400
    process, endpoint = start_cli(tmp_path)
    try:
        iot = make_client(endpoint)
        stored = {t["thingName"] for p in iot.get_paginator("list_things").paginate() for t in p["things"]}
        assert set(acknowledged) <= stored, sorted(set(acknowledged) - stored)[:10]
    finally:
        process.terminate()
        process.wait()
