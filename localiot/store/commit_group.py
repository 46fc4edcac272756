"""Group commit for the SQLite store: API units of work that run in the same
event-loop iteration share one SQLite transaction.

Most of a one-row write's cost is its COMMIT: the WAL frames of every page the
transaction dirtied (and their share of the checkpoint). Under concurrent API
load, several requests are handled in one loop iteration; their units of work
run one after the other, and each one committing on its own writes the same
b-tree pages again and again. Here the first API unit that writes opens the
group (BEGIN IMMEDIATE) and a COMMIT is scheduled with `loop.call_soon`, so it
runs once the iteration's other handlers have run; every API unit that writes
meanwhile joins it (a unit that fails undoes only its own writes, see below).
Pages dirtied by several units are written to the WAL once.

Nothing acknowledged is lost on SIGKILL: an API unit that ran inside a group
(it wrote, or it read while the group held writes not yet committed) leaves
the store's `pending_commit` future set; the HTTP handler awaits it before
sending the reply, and it is resolved only after the COMMIT (the WAL written,
as every single commit was before). What follows a unit's commit (its events
to the bus, the commit listeners, `ctx.after_commit` callbacks: the unit's
"followers") runs after that COMMIT too, in the units' order, before the
replies go out.

A unit that joins an open group takes no SAVEPOINT (with the RELEASE after it, they
were ~4% of a one-row write unit): the group keeps a journal of its writes (statement
and arguments, in order), and when a unit that joined it fails, the whole transaction
is rolled back and the writes before the unit's own are made again (`rejoin`), which
leaves the store as a rollback to a savepoint of its own would have. Units run one
after another, so the units before it never saw its writes. A unit inside another's
`with` is still a SAVEPOINT in the group (rolled back to, its journal entries dropped).

Only API units join a group (`store.transaction(..., grouped=True)`, asked
for by the HTTP handler, which awaits the commit). Every other transaction
(MQTT doors, the broker's persistence, periodic jobs, in-process calls) wants
its work committed when its `with` ends, so it first commits the open group
(`SQLiteStore.commit_group`): what it reads is committed and its own BEGIN
finds no transaction open. The group's followers then run at the next safe
point: at the end of the next unit of work, before that unit's own followers
(so events keep their order), or at the loop's next turn, never inside the
caller that asked for the COMMIT (a broker method in the middle of its work).
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("localiot.store")


class CommitGroup:
    """One open shared transaction: the future its units' replies await, and what
    follows each unit's commit, in order."""

    __slots__ = ("done", "followers")

    def __init__(self, done: asyncio.Future):
        self.done = done
        self.followers: list = []  # (fn, arg): fn(arg) once committed

    def run_followers(self) -> None:
        followers, self.followers = self.followers, []
        for fn, arg in followers:
            try:
                fn(arg)
            except Exception:  # committed: one follower's failure must not stop the others or the replies
                log.exception("work after a group commit failed")
        if not self.done.done():
            self.done.set_result(None)

    def fail(self, error: BaseException) -> None:
        """The shared COMMIT failed: nothing of the group is stored, no follower runs
        and every reply waiting gets the error."""
        self.followers = []
        if not self.done.done():
            self.done.set_exception(error)
            self.done.exception()  # (retrieved: a reply that no longer waits must not log it again)


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# A journal entry for an executemany that failed part-way (its earlier rows stand): when the
# unit that made it fails, it goes with the unit's own entries; when that unit caught the
# error and went on, a later replay cannot make those rows again, so the group fails instead.
PARTIAL = (None, None, False)


def rejoin(store, mark: int) -> None:
    """A unit that joined the open group (with no savepoint) failed: roll the group back
    and make the journal's writes before `mark` (the other units') again. When that fails,
    the group fails: nothing of it is stored and its replies get the error."""
    journal = store.journal
    del journal[mark:]
    writes = store.writes
    writes.execute("ROLLBACK")
    try:
        writes.execute("BEGIN IMMEDIATE")
        for sql, args, many in journal:
            if sql is None:
                raise RuntimeError("a write of the group's other calls failed part-way and cannot be made again")
            if many:
                writes.executemany(sql, args)
            else:
                writes.execute(sql, args)
    except BaseException as error:
        log.exception("group commit: the writes of the group's other calls could not be made again")
        if store.db.in_transaction:
            writes.execute("ROLLBACK")
        group, store.group, store.pending_commit, store.journal = store.group, None, None, None
        store.kept.clear()  # it may hold what the group wrote
        group.fail(error)
