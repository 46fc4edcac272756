"""What follows a unit of work (localiot.services.unit_of_work), on both stores: a unit
that wrote nothing, queued no event and asked for nothing after its commit (every read)
fires no UNIT_ENDING hook and tells the commit listeners nothing; a unit that wrote fires
the hook inside its transaction and tells the listeners once committed; a read's own
after-commit callbacks still run."""

import asyncio

from localiot.services import hooks
from localiot.services.unit_of_work import run, run_off_loop
from localiot.testing import ACCOUNT, REGION

KIND = "test-unit-of-work"


def _unit(server, body):
    """`body(ctx)` as one API-like unit of work, where the server runs its units (the loop with
    SQLite, a worker thread with PostgreSQL), its answer once what follows the commit ran."""
    runtime = server.app.runtime

    async def steps():
        output = await run_off_loop(runtime, run, runtime, ACCOUNT, REGION, "iot", "TestUnitOfWork", body)
        pending = runtime.store.pending_commit  # (SQLite: an open group's COMMIT, as the HTTP handler awaits it)
        if pending is not None:
            await pending
        await asyncio.sleep(0.05)  # what a worker's commit hands to the loop runs there
        return output

    return asyncio.run_coroutine_threadsafe(steps(), server.loop).result(30)


def test_a_read_fires_no_hook_and_tells_no_listener_a_write_does(localiot_server):
    runtime = localiot_server.app.runtime
    ended, heard = [], []

    def on_ending(ctx):
        ended.append((ctx.operation, list(ctx.tx.changes)))

    def on_commit(ctx):
        heard.append(ctx.operation)

    hooks.on(hooks.UNIT_ENDING, on_ending)
    runtime.commit_listeners.append(on_commit)
    try:
        assert _unit(localiot_server, lambda ctx: ctx.tx.get(KIND, "absent")) is None
        assert ended == [] and heard == []

        def write(ctx):
            ctx.tx.put(KIND, "written", {"n": 1})
            return "wrote"

        assert _unit(localiot_server, write) == "wrote"
        assert [operation for operation, _ in ended] == ["TestUnitOfWork"]
        assert ended[0][1] and ended[0][1][0][3:] == (KIND, "written")
        assert heard == ["TestUnitOfWork"]

        assert _unit(localiot_server, lambda ctx: ctx.tx.get(KIND, "written")) == {"n": 1}
        assert len(ended) == 1 and heard == ["TestUnitOfWork"]  # the read added nothing
    finally:
        hooks._HOOKS[hooks.UNIT_ENDING].remove(on_ending)
        runtime.commit_listeners.remove(on_commit)


def test_a_reads_after_commit_callback_runs_and_a_failed_units_does_not(localiot_server):
    ran = []

    def read(ctx):
        ctx.after_commit(lambda: ran.append("read"))
        return ctx.tx.get(KIND, "absent")

    assert _unit(localiot_server, read) is None
    assert ran == ["read"]

    def failing(ctx):
        ctx.after_commit(lambda: ran.append("failed"))
        raise LookupError("refused")

    try:
        _unit(localiot_server, failing)
    except LookupError:
        pass
    else:
        raise AssertionError("the unit's error did not reach its caller")
    assert ran == ["read"]


def test_the_store_port_declares_group_commit_for_every_store(localiot_server):
    store = localiot_server.app.store
    assert hasattr(store, "pending_commit")
    transaction = store.transaction(ACCOUNT, REGION, write=False)
    with transaction:
        pass
    assert transaction.defer(lambda arg: None, None) is False  # nothing open: the caller runs it now
