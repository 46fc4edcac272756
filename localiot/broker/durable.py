"""The broker's output, written once per loop iteration after the group commit
(localiot.broker.persistence) that makes its PUBACKs true.

Without worker threads (SQLite) `flush` commits the buffered QoS 1 messages on
the loop and then writes every connection's batch, as before. With them
(PostgreSQL) the loop never waits on that commit: `flush` takes the output
written so far (each connection's batch, PUBACKs among it) off the
connections, starts the group commit on a worker and writes that output only
once the commit ended; meanwhile new output gathers in the connections'
batches and waits for the next commit (one at a time: what arrives during
one is committed together by the next). A connection that closes meanwhile
writes its last bytes and closes after the commit too (`Connection.close`
through `after_durable`), so its bytes keep their order."""

from __future__ import annotations

from localiot.broker.occasional import NO_OUTPUT

_FLUSH_MAX = 2048  # connections written per flush before the loop gets a turn


def flush(broker) -> None:
    broker._flush_scheduled = False
    persistence = broker.persistence
    if persistence.workers is not None:
        if persistence.unfinished:
            return  # the group commit running now flushes again as it ends
        if persistence.pending:
            start_commit(broker)
            return
    elif persistence.pending:
        persistence.commit()  # durable before any PUBACK leaves
    dirty = broker._dirty
    if not dirty:
        return
    if len(dirty) > _FLUSH_MAX:  # the rest in a later iteration: timers and reads get their turn
        dirty, broker._dirty = dirty[:_FLUSH_MAX], dirty[_FLUSH_MAX:]
        broker._flush_scheduled = True
        broker.loop.call_soon(broker._flush)
    else:
        broker._dirty = []
    for conn in dirty:
        out = conn.out
        if out:
            t = conn.transport
            if t is not None:
                t.write(out[0] if len(out) == 1 else b"".join(out))
            conn.out = NO_OUTPUT  # an idle connection keeps no empty list


def write_and_close(_ok: bool, transport, data: bytes) -> None:
    """A closing connection's last bytes, then its close (`after_durable`'s, from Connection.close)."""
    if data:
        transport.write(data)
    transport.close()


def start_commit(broker):
    """The group commit on a worker; the output written so far waits for it (PostgreSQL)."""
    held = []
    for conn in broker._dirty:
        out = conn.out
        if out:
            held.append((conn, out[0] if len(out) == 1 else b"".join(out)))
            conn.out = NO_OUTPUT  # what comes next marks the connection dirty again
    broker._dirty = []
    task = broker.persistence.commit_off_loop()
    task.add_done_callback(lambda _: _write_held(broker, held))
    return task


def _write_held(broker, held: list) -> None:
    for conn, data in held:
        t = conn.transport
        if t is not None:
            t.write(data)
    broker.flush_soon()
