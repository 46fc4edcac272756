"""Time-driven work on exactly one node: PostgreSQL session-level advisory locks
on a connection of the node's own.

Why advisory locks and not a lease row with an expiry: a lock belongs to the
database session that took it, so when a node dies (SIGKILL, crash, power)
its connection closes and PostgreSQL frees its locks at once: another node
takes the work over at its next try, without waiting out a lease and without
trusting any node's clock. A lease row would have to be renewed on a clock,
and localiot's clock is injectable: a test moving it would expire leases.

Two locks per job (`fn` registered with localiot.background.periodic):
- the owner lock (OWNER, crc32(name)), held for as long as the node lives: its
  holder runs the job on its timer; every node tries the jobs it does not hold
  once a period, in one statement, so the work moves within one period when a
  holder dies. The jobs spread over the nodes: a node holding more than its
  share (jobs / nodes with timers, rounded up) gives the excess back, and
  does not try those again for a few periods, so the others take them.
- the run lock (RUN, crc32(name)), held while one run of the job is under
  way, wherever it runs: the owner's timer, or a node whose clock was moved
  through POST /_localiot/clock, which runs every job once before it answers
  (as one process does). So two runs of a job never overlap.
Locks are only ever *tried* (pg_try_advisory_lock), never waited for inside
PostgreSQL: a waiting statement would hold the node's one lock connection and
could deadlock two nodes each waiting for the other's lock.

A reset (POST /_localiot/reset) is the whole installation's too: the node that
empties the store NOTIFYs localiot_reset; every other node forgets what it
keeps in memory (`on_reset`: broker sessions, caches) and answers on
localiot_reset_done; the reset answers once every listening node did (or
after RESET_WAIT_SECONDS).

The clock: a clock move is the whole installation's. The receiving node stores
the new offset (table localiot_cluster) and NOTIFYs it on channel
localiot_clock; every node LISTENs on a second connection and adopts it within
milliseconds; a node that starts later reads the stored offset.

If the lock connection breaks, the node drops every lock it thought it held
(PostgreSQL freed them when the session ended) and reconnects; until then it
runs nothing on its timers. A node cut off by the network: its statements time
out (it stops running jobs), and PostgreSQL ends its session once the node's
host stops answering TCP keepalive probes (SERVER_KEEPALIVE: about 16 s), so
the others take over. A node that is only busy or stalled keeps its session
(its kernel answers the probes), as the fabric's liveness keeps its sessions:
it used to be ended after idle_session_timeout (10 s of silence), which a
node's loop could not keep up with while ~16,700 of its clients closed at once
(bench/held_connections.py, ninth pass), and all its jobs moved. A run under
way when its node loses the connection is no longer protected by its run lock."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import zlib
from contextlib import asynccontextmanager

import psycopg

from localiot.timeouts import within
from localiot.cluster.settings import ensure_table

log = logging.getLogger("localiot.cluster")

OWNER = 0x4C494F54  # "LIOT"
RUN = OWNER + 1
CLOCK_CHANNEL = "localiot_clock"
RESET_CHANNEL, RESET_DONE_CHANNEL = "localiot_reset", "localiot_reset_done"
RESET_WAIT_SECONDS = 10.0
LISTENER = "localiot:clock:"  # application_name of every node's listening session
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
# PostgreSQL's side of the lock connection: probes after 10 s of silence, 3 of them 2 s apart
SERVER_KEEPALIVE = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 2, "tcp_keepalives_count": 3}
RUN_WAIT_SECONDS = 120.0
# Sessions of nodes that take jobs on their timers are named TAKER + node: they
# count for the share; nodes without timers (period 0) only take run locks.
TAKER = "localiot:jobs:"
# A job a node gave back is not tried by it again for this many periods, so
# another node has time to take it (it is tried again after: nobody is left without).
COOLDOWN_PERIODS = 3
RETRY_SECONDS = 1.0
# A lock statement that takes longer means PostgreSQL is unreachable: the node
# drops its connection (and with it every lock it thought it held).
STATEMENT_SECONDS = 10.0
LATE_GRACE = 1.0  # seconds a lock statement gets after a late timeout (see `answered`)
STOP_SECONDS = 5.0  # the node's stop waits this long at most for its lock tasks to end


def lock_key(name: str) -> int:
    """A job's objid: crc32 of its name as a signed 32-bit integer."""
    value = zlib.crc32(name.encode()) or 1  # objid 0 is the table creation's (localiot.cluster.settings)
    return value - (1 << 32) if value >= (1 << 31) else value


async def answered(statement, seconds: float):
    """The statement's result, or TimeoutError after `seconds`; but a timer that fires late
    (the loop stalled: ~16,700 clients of the node closing at once kept it busy over 10 s in
    bench/held_connections.py) runs before the loop reads the reply that came meanwhile, so
    the statement gets LATE_GRACE more seconds of a running loop before it counts as lost."""
    task = asyncio.ensure_future(statement)
    try:
        await asyncio.wait({task}, timeout=seconds)
        if not task.done():
            await asyncio.wait({task}, timeout=LATE_GRACE)
        if not task.done():
            raise asyncio.TimeoutError
        return task.result()
    finally:
        if not task.done():
            task.cancel()  # psycopg cancels it in PostgreSQL, for 10 s at most
            await asyncio.wait({task})


async def probed_by_server(conn) -> None:
    """PostgreSQL probes this session's TCP connection (SERVER_KEEPALIVE) and ends the session
    when the other end's host no longer answers (not when its process is only busy)."""
    settings = ", ".join("set_config(%s, %s, false)" for _ in SERVER_KEEPALIVE)
    await conn.execute(f"SELECT {settings}", [str(part) for item in SERVER_KEEPALIVE.items() for part in item])


class AdvisoryLocks:
    mode = "postgresql-advisory-locks"

    def __init__(self, dsn: str, clock, names: list[str], node: str, *, period: float):
        self.dsn, self.clock, self.node = dsn, clock, node
        self.instance = uuid.uuid4().hex  # tells this process's own clock notifications apart
        self.keys = {name: lock_key(name) for name in names}
        if len(set(self.keys.values())) != len(self.keys):
            raise RuntimeError("two periodic jobs share an advisory lock key; rename one")
        self.period = period
        self.held: set[str] = set()
        self._given_back: dict[str, float] = {}  # job -> time.monotonic() it was handed over
        self.runs: dict[str, int] = {}
        self.connected = False
        self._conn: psycopg.AsyncConnection | None = None
        self._listen: psycopg.AsyncConnection | None = None
        self._tasks: list[asyncio.Task] = []
        self._gate = asyncio.Lock()  # one statement at a time on the lock connection
        self.on_reset = None  # fn(): this node forgets its memory (set by the server)
        self._reset_acks: dict[str, set[str]] = {}  # reset request -> nodes that did it

    # connections -------------------------------------------------------------
    async def _connect(self, purpose: str) -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(
            self.dsn, autocommit=True, connect_timeout=10,
            application_name=f"localiot:{purpose}:{self.node}"[:63], **KEEPALIVE,
        )

    async def start(self) -> None:
        await self._ensure_connected()
        await self._adopt_stored_offset()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._listen_clock(), name="cluster-clock"))
        if self.period > 0:
            self._tasks.append(loop.create_task(self._acquire_loop(), name="cluster-locks"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        try:  # a cancelled statement may wait for PostgreSQL to confirm the cancel: not for ever
            await within(asyncio.gather(*self._tasks, return_exceptions=True), STOP_SECONDS)
        except asyncio.TimeoutError:
            log.warning("node %s: its lock tasks did not end within %gs of the stop", self.node, STOP_SECONDS)
        self._tasks.clear()
        for conn in (self._conn, self._listen):
            if conn is not None:
                await conn.close()  # closing the session frees its locks for the other nodes
        self._conn = self._listen = None
        self.held.clear()
        self.connected = False

    async def _ensure_connected(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._lost()
            self._conn = await self._connect("jobs" if self.period > 0 else "runs")
            if self.period > 0:
                # A node cut off by the network answers nothing: PostgreSQL ends its session
                # (freeing its locks for the others) once its probes go unanswered, instead of
                # waiting for the operating system's default (2 hours).
                await within(probed_by_server(self._conn), STATEMENT_SECONDS)
            await within(ensure_table(self._conn), STATEMENT_SECONDS)
            self.connected = True
        return self._conn

    def _lost(self) -> None:
        if self.held:
            log.warning("node %s lost its lock connection: it no longer runs %s", self.node, sorted(self.held))
        self.held.clear()
        self.connected = False
        if self._conn is not None and not self._conn.closed:
            asyncio.get_running_loop().create_task(self._conn.close())
        self._conn = None

    async def _execute(self, sql: str, args=()) -> list[tuple]:
        async with self._gate:
            conn = await self._ensure_connected()
            try:
                async with conn.cursor() as cur:
                    await answered(cur.execute(sql, args), STATEMENT_SECONDS)
                    return await cur.fetchall() if cur.description else []
            except (psycopg.OperationalError, asyncio.TimeoutError):
                self._lost()
                raise

    # ownership -----------------------------------------------------------------
    def holds(self, name: str) -> bool:
        return name in self.held

    async def acquire(self) -> None:
        """One round: give back the jobs beyond this node's share (the jobs over the
        nodes that take jobs), then try, in one statement, every job it lacks and did
        not give back within the last few periods."""
        now = time.monotonic()
        live = (await self._execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE %s",
            (TAKER + "%",)))[0][0]
        share = -(-len(self.keys) // max(1, live))
        excess = sorted(self.held)[share:]
        if excess:
            await self._execute("SELECT pg_advisory_unlock(%s, k) FROM unnest(%s::int[]) AS k",
                                (OWNER, [self.keys[name] for name in excess]))
            for name in excess:
                self.held.discard(name)
                self._given_back[name] = now
            log.info("node %s hands %s over to the other nodes", self.node, excess)
        cooldown = COOLDOWN_PERIODS * self.period
        wanted = {key: name for name, key in self.keys.items()
                  if name not in self.held and now - self._given_back.get(name, -cooldown) >= cooldown}
        if not wanted:
            return
        rows = await self._execute(
            "SELECT k, pg_try_advisory_lock(%s, k) FROM unnest(%s::int[]) AS k", (OWNER, list(wanted))
        )
        for key, got in rows:
            if got:
                self.held.add(wanted[key])
                log.info("node %s now runs %s", self.node, wanted[key])

    async def _acquire_loop(self) -> None:
        while True:
            try:
                await self.acquire()
                await asyncio.sleep(self.period)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # PostgreSQL unreachable: hold nothing, try again
                log.warning("node %s: advisory locks unavailable (%s)", self.node, error)
                await asyncio.sleep(max(self.period, RETRY_SECONDS))

    # one run of a job --------------------------------------------------------------
    @asynccontextmanager
    async def running(self, name: str, *, wait: bool):
        """Yields True while this node holds `name`'s run lock (no other node runs
        it meanwhile), False if it could not be had: at once (wait=False) or
        within RUN_WAIT_SECONDS (wait=True, a clock move)."""
        key = self.keys[name]
        got = False
        deadline = time.monotonic() + RUN_WAIT_SECONDS
        delay = 0.005
        try:
            while True:
                try:
                    got = (await self._execute("SELECT pg_try_advisory_lock(%s, %s)", (RUN, key)))[0][0]
                except Exception as error:
                    log.warning("node %s does not run %s: PostgreSQL unreachable (%s)", self.node, name, error)
                    break
                if got or not wait or time.monotonic() > deadline:
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)
            if got:
                self.runs[name] = self.runs.get(name, 0) + 1
            elif wait:
                log.error("node %s skipped %s: another node kept running it", self.node, name)
            yield got
        finally:
            if got:
                try:
                    await self._execute("SELECT pg_advisory_unlock(%s, %s)", (RUN, key))
                except Exception:  # the session is gone, and its locks with it
                    pass

    # the shared clock --------------------------------------------------------------
    async def clock_moved(self, offset: float) -> None:
        """Store the new offset and tell every node (this one already moved)."""
        await self._execute(
            "INSERT INTO localiot_cluster (name, value) VALUES ('clock.offset', %s) "
            "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value", (repr(offset),)
        )
        await self._execute("SELECT pg_notify(%s, %s)", (CLOCK_CHANNEL, f"{self.instance} {offset!r}"))

    async def _adopt_stored_offset(self) -> None:
        rows = await self._execute("SELECT value FROM localiot_cluster WHERE name = 'clock.offset'")
        if rows:
            self.clock.offset = float(rows[0][0])

    # the shared reset -------------------------------------------------------------
    async def reset(self) -> None:
        """This node emptied the store: every other node forgets its memory before this returns."""
        request = uuid.uuid4().hex
        acks = self._reset_acks[request] = set()
        try:
            others = (await self._execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name LIKE %s", (LISTENER + "%",)))[0][0] - 1
            await self._execute("SELECT pg_notify(%s, %s)", (RESET_CHANNEL, f"{request} {self.instance}"))
            deadline = time.monotonic() + RESET_WAIT_SECONDS
            while len(acks) < others and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if len(acks) < others:
                log.warning("node %s: %d of %d nodes confirmed the reset", self.node, len(acks), others)
        finally:
            del self._reset_acks[request]

    async def _on_reset(self, payload: str) -> None:
        request, sender = payload.split(" ", 1)
        if sender == self.instance:
            return
        try:
            if self.on_reset is not None:
                self.on_reset()
        finally:
            await self._execute("SELECT pg_notify(%s, %s)", (RESET_DONE_CHANNEL, f"{request} {self.instance}"))

    async def _listen_clock(self) -> None:
        while True:
            try:
                self._listen = await self._connect("clock")
                for channel in (CLOCK_CHANNEL, RESET_CHANNEL, RESET_DONE_CHANNEL):
                    await within(self._listen.execute(f"LISTEN {channel}"), STATEMENT_SECONDS)
                await self._adopt_stored_offset()  # what was moved while not listening
                async for note in self._listen.notifies():
                    if note.channel == RESET_CHANNEL:
                        await self._on_reset(note.payload)
                        continue
                    if note.channel == RESET_DONE_CHANNEL:
                        request, node = note.payload.split(" ", 1)
                        if request in self._reset_acks:
                            self._reset_acks[request].add(node)
                        continue
                    sender, offset = note.payload.split(" ", 1)
                    if sender != self.instance:
                        self.clock.offset = float(offset)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("node %s: clock notifications unavailable (%s)", self.node, error)
                if self._listen is not None and not self._listen.closed:
                    await self._listen.close()
                await asyncio.sleep(RETRY_SECONDS)

    def describe(self) -> dict:
        return {"mode": self.mode, "connected": self.connected, "held": sorted(self.held), "runs": dict(self.runs)}
