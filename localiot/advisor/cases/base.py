"""What a test case works with (`CaseRun`) and how it ends (`CaseFailed`).

A case is `async def case(c: CaseRun) -> None`: it scripts the endpoint
(`c.run.on_incoming`, `c.run.on_outgoing`, `c.run.tls_variant`), waits on
the journal of what the device does and returns (PASS, or
PASS_WITH_WARNINGS after `c.warn`) or raises CaseFailed (FAIL, or ERROR
when the suite cannot be run as configured). The runner bounds it with the
case's EXECUTION_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from localiot.timeouts import within
from localiot.advisor import journal as j
from localiot.topics import matches


def subscribes_to(event, topic: str, qos: int = 0) -> bool:
    """Whether a journal event is a SUBSCRIBE with a filter matching `topic` (at least `qos`)."""
    if event.kind != j.SUBSCRIBE:
        return False
    return any((f == topic or matches(f, topic)) and q >= qos for f, q in zip(event["filters"], event["qos"]))


SUBSCRIBE_GRACE = 2.0  # seconds a case waits for a reconnected device to subscribe again before it acts


class CaseFailed(Exception):
    def __init__(self, message: str, status: str = "FAIL"):
        super().__init__(message)
        self.status = status


class CaseRun:
    def __init__(self, run, planned):
        self.run = run
        self.planned = planned
        self.config = planned.configuration
        self.journal = run.journal
        self.mark = run.journal.mark()  # where this case's events begin
        self.lines: list[str] = []
        self.warnings: list[str] = []
        self.waiting: str | None = None
        self._t0 = time.monotonic()

    @property
    def runtime(self):
        return self.run.runtime

    @property
    def broker(self):
        return self.run.endpoint.broker

    # reporting --------------------------------------------------------------------------
    def log(self, message: str) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self.lines.append(f"{stamp} [+{time.monotonic() - self._t0:7.3f}s] {message}")

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def fail(self, message: str) -> None:
        raise CaseFailed(message)

    def error(self, message: str) -> None:
        raise CaseFailed(message, "ERROR")

    # waiting ------------------------------------------------------------------------------
    async def wait(self, predicate, what: str, since: int | None = None, timeout: float | None = None):
        self.waiting = what
        self.log(f"Waiting for {what}.")
        event = await self.journal.wait(predicate, since, timeout)
        if event is not None:
            self.waiting = None
        return event

    async def until(self, check, what: str):
        """check()'s first truthy answer, asked now and after each thing the device does."""
        found = check()
        if found:
            return found
        self.waiting = what
        self.log(f"Waiting for {what}.")
        while not found:
            await self.journal.wait(lambda e: True)
            found = check()
        self.waiting = None
        return found

    async def subscribed_soon(self, topic: str, grace: float = SUBSCRIBE_GRACE):
        """Wait (at most `grace` seconds) for a live subscription of the device to `topic`: a device that
        just reconnected subscribes again before the case acts. Whether it subscribed or not, go on."""
        import asyncio

        try:
            await within(self.until(lambda: self.live_subscriber(topic), f"a live subscription to {topic}"),
                                   grace)
        except TimeoutError:
            self.waiting = None
            self.log(f"The device has no subscription to {topic}; going on.")

    def live_subscriber(self, topic: str, qos: int = 0):
        """The device's connection whose session (the broker's own record) subscribes to `topic`."""
        for conn in reversed(self.run.connected()):
            session = conn.session
            if session is None:
                continue
            for topic_filter, options in session.subscriptions.items():
                granted = getattr(options, "qos", options if isinstance(options, int) else 0)
                if (topic_filter == topic or matches(topic_filter, topic)) and granted >= qos:
                    return conn
        return None

    async def connection(self, what: str = "the device to connect"):
        """A live connection of the device whose CONNECT was accepted (waiting for one if needed)."""
        live = self.run.connected()
        if live:
            return live[-1]
        mark = self.journal.mark()
        event = await self.wait(lambda e: e.kind == j.CONNACK and e.get("code") == 0, what, since=mark)
        for conn in self.run.connections:
            if conn.number == event.conn:
                return conn
        return await self.connection(what)

    def subscribed(self, topic: str, since: int = 0, qos: int | None = None):
        """The SUBSCRIBE (since `since`) with a filter matching `topic`, or None."""
        return self.journal.find(since, lambda e: subscribes_to(e, topic, qos or 0))

    def require_thing(self) -> str:
        if not self.run.thing:
            self.error(f"{self.planned.case.id} needs a thing as the device under test (a thingArn).")
        return self.run.thing

    # the services, through the same handlers the API serves -------------------------------------
    async def call(self, service: str, operation: str, request: dict) -> dict:
        """An API operation in the run's account and region, as boto3 would call it: one unit
        of work of its own (on a worker with PostgreSQL)."""
        from functools import partial

        from localiot.services.in_process import call_in_process
        from localiot.services.unit_of_work import run_off_loop

        return await run_off_loop(self.runtime, partial(call_in_process, self.runtime, service, operation, request,
                                                        account=self.run.account, region=self.run.region))

    async def settled(self) -> None:
        """Before reading what the device's requests on door topics (shadow, jobs) changed:
        with PostgreSQL they run on worker threads after the publish (localiot.cluster.workers)."""
        workers = self.runtime.workers
        if workers is not None:
            await workers.drain()

    def arn(self, resource: str) -> str:
        return f"arn:aws:iot:{self.run.region}:{self.run.account}:{resource}"
