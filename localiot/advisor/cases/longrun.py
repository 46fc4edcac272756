"""MQTT_Long_Duration, AWS's MQTT long duration test case (suites with
isLongDurationTest): one test case in three phases, each scenario judged
on its own and listed in a summary log at the end; the case fails when a
scenario fails and its failure names those scenarios.

1. Basic tests: CONNECT; PUBLISH (when OPERATIONS has it) with the QoS the
   device uses: QoS 0 is a PUBLISH seen, QoS 1 is MQTT_Publish_Retry_No_Puback
   (the first PUBACK held back; the device must publish again with the same
   packet id within AWS's 15 second window); SUBSCRIBE likewise: QoS 0 a
   SUBSCRIBE seen, QoS 1 MQTT_Subscribe_Retry_No_Suback; RECONNECT: the
   server disconnects the device once and it must come back.
2. Advanced scenarios (SCENARIOS, all three by default, in this order):
   - RECONNECT_BACK_OFF: BACKOFF_CONNECTION_ATTEMPTS (default 5) server disconnects,
     the intervals judged as MQTT_Reconnect_Backoff_Retries_On_Server_Disconnect
     judges them (localiot.advisor.cases.backoff.assess);
   - LONG_SERVER_DISCONNECT: the server goes away for LONG_SERVER_DISCONNECT_TIME
     minutes (default 60, AWS's): every CONNECT is hung up on; then the device must
     reconnect; it must not hammer the server meanwhile;
   - INTERMITTENT_CONNECTIVITY: OUTAGES times, after UP_TIME seconds connected
     the device loses its connection for DOWN_TIME seconds (drawn at random in
     those ranges), CONNECTs hung up on; it must come back after each outage
     without hammering the server.
   "Hammering": HAMMERING or more attempts in a row with no wait of
   backoff.NO_BACKOFF seconds between them.
3. Additional execution time: ADDITIONAL_EXECUTION_TIME minutes (default 0,
   fractions accepted) of watching the device; it must be connected at the end.

AWS's phases last hours; here each duration is the configuration's, so a CI
run takes seconds. Waiting for the device is real time; the case as a whole
is bounded by its EXECUTION_TIMEOUT (default 4 hours).
"""

from __future__ import annotations

import asyncio
import random
from itertools import pairwise

from localiot.advisor import journal as j
from localiot.advisor.cases import backoff, mqtt
from localiot.advisor.cases.base import CaseFailed, CaseRun
from localiot.advisor.interposer import CLOSE
from localiot.timeouts import within

CASES = {}
SCENARIOS = ("RECONNECT_BACK_OFF", "LONG_SERVER_DISCONNECT", "INTERMITTENT_CONNECTIVITY")
OPERATIONS = ("CONNECT", "PUBLISH", "SUBSCRIBE")
RETRY_WINDOW = 15.0  # AWS: the broker waits up to 15 s for the device to retry a QoS 1 PUBLISH / SUBSCRIBE
LONG_SERVER_DISCONNECT_TIME = 60.0  # minutes, AWS's default
OUTAGES = 3
UP_TIME = (1.0, 2.0)  # seconds the device stays connected between outages
DOWN_TIME = (0.5, 1.5)  # seconds an outage lasts
HAMMERING = 5


def _choices(conf: dict, name: str, default: tuple[str, ...]) -> list[str]:
    value = conf.get(name)
    if value in (None, "", []):
        return list(default)
    return [value] if isinstance(value, str) else list(value)


def _reserved(topic: str) -> bool:
    return topic.startswith("$")


class Scenarios:
    """Runs the scenarios one after the other and keeps each one's result for the summary."""

    def __init__(self, c: CaseRun):
        self.c = c
        self.rows: list[tuple[str, str, str]] = []  # (scenario, status, what was seen)

    async def run(self, name: str, scenario, bound: float | None = None) -> str:
        c = self.c
        c.log(f"Scenario {name} started.")
        warnings = len(c.warnings)
        try:
            detail = await (within(scenario(c), bound) if bound else scenario(c))
            status = "PASS_WITH_WARNINGS" if len(c.warnings) > warnings else "PASS"
        except CaseFailed as failed:
            status, detail = failed.status, str(failed)
        except TimeoutError:
            status, detail = "FAIL", f"Timed out after {bound:g} s waiting for {c.waiting or 'the device'}."
        finally:
            c.run.reset_script()
            c.waiting = None
        detail = detail or "as expected"
        c.log(f"Scenario {name}: {status}: {detail}")
        self.rows.append((name, status, detail))
        return status

    def summarize(self, complete: bool = True) -> None:
        """The summary log; then, for a complete run, the case's failure naming the failed scenarios."""
        c = self.c
        events = c.journal.events[c.mark:]

        def count(kind: str, **match) -> int:
            return sum(1 for e in events if e.kind == kind and all(e.get(k) == v for k, v in match.items()))

        c.log("Summary log: MQTT long duration" + ("" if complete else " (cut short: only the scenarios that ended)"))
        width = max((len(name) for name, _, _ in self.rows), default=0)
        for name, status, detail in self.rows:
            c.log(f"  {name:<{width}}  {status:<18}  {detail}")
        c.log(f"  Device: {count(j.CONNECT)} CONNECT attempts, {count(j.CONNACK, code=0)} accepted, "
              f"{count(j.CLOSED, by='server')} connections ended by the server (refused ones too), "
              f"{count(j.CLOSED, by='device')} by the device; {count(j.PUBLISH)} PUBLISH and "
              f"{count(j.SUBSCRIBE)} SUBSCRIBE packets.")
        failed = [f"{name} ({detail})" for name, status, detail in self.rows if status in ("FAIL", "ERROR")]
        passed = sum(1 for _, status, _ in self.rows if status not in ("FAIL", "ERROR"))
        c.log(f"  {passed} of {len(self.rows)} scenarios passed.")
        if failed and complete:
            raise CaseFailed("Failed scenarios: " + "; ".join(failed))


# basic tests -------------------------------------------------------------------------------------
async def _connect(c: CaseRun) -> str:
    await mqtt.connect(c)
    return "the device connected and its CONNECT was accepted"


async def _first(c: CaseRun, kind: str, what: str):
    def wanted(e):
        if e.kind != kind:
            return False
        return not _reserved(e["topic"]) if kind == j.PUBLISH else any(not _reserved(f) for f in e["filters"])
    return await c.wait(wanted, what, since=0)


async def _publish(c: CaseRun) -> tuple[str, object]:
    event = await _first(c, j.PUBLISH, "a PUBLISH on a topic of the device's")
    return f"PUBLISH QoS {min(event['qos'], 1)}", event


async def _subscribe(c: CaseRun) -> tuple[str, object]:
    event = await _first(c, j.SUBSCRIBE, "a SUBSCRIBE to a topic of the device's")
    qos = max(q for f, q in zip(event["filters"], event["qos"]) if not _reserved(f))
    return f"SUBSCRIBE QoS {min(qos, 1)}", event


async def _reconnect(c: CaseRun) -> str:
    interval = (await backoff._server_disconnects(c, 1))[0]
    return f"the server disconnected the device; it reconnected {interval:.3f} s later"


async def _basic(c: CaseRun, scenarios: Scenarios, operations: list[str]) -> None:
    await scenarios.run("CONNECT", _connect)
    if "PUBLISH" in operations:
        name, event = await _publish(c)
        if event["qos"] == 0:
            await scenarios.run(name, _seen(f"the device published on {event['topic']!r} with QoS 0"))
        else:
            await scenarios.run(name + " with retry", _retried(mqtt.publish_retry), RETRY_WINDOW)
    if "SUBSCRIBE" in operations:
        name, event = await _subscribe(c)
        if name.endswith("0"):
            await scenarios.run(name, _seen(f"the device subscribed to {event['filters']} with QoS 0"))
        else:
            await scenarios.run(name + " with retry", _retried(mqtt.subscribe_retry), RETRY_WINDOW)
    await scenarios.run("RECONNECT", _reconnect)


def _seen(detail: str):
    async def scenario(c: CaseRun) -> str:
        return detail
    return scenario


def _retried(case):
    """One of the MQTT retry cases as a scenario: what it logged last is what was seen."""
    async def scenario(c: CaseRun) -> str:
        await case(c)
        return c.lines[-1].split("] ", 1)[-1] if c.lines else ""
    return scenario


# advanced scenarios ----------------------------------------------------------------------------
def _hammering(times: list[float]) -> str | None:
    """Why CONNECT attempts at `times` (seconds) are no backoff, or None."""
    intervals = [b - a for a, b in pairwise(times)]
    run = longest = 0
    for interval in intervals:
        run = run + 1 if interval < backoff.NO_BACKOFF else 0
        longest = max(longest, run)
    if longest + 1 >= HAMMERING:
        return (f"the device made {longest + 1} CONNECT attempts in a row less than {backoff.NO_BACKOFF} s apart "
                f"({len(times)} attempts in {times[-1] - times[0]:.3f} s): no backoff")
    return None


class Outage:
    """While it lasts, the endpoint hangs up on every CONNECT (the server is unreachable)."""

    def __init__(self, c: CaseRun):
        self.c, self.down, self.attempts = c, False, []
        self.loop = c.run.endpoint.loop
        c.run.on_incoming = self._script

    def _script(self, conn, kind, data):
        if kind == j.CONNECT and self.down:
            self.attempts.append(self.loop.time())
            return CLOSE
        return None

    async def last(self, seconds: float) -> float:
        """Disconnect the device, stay down `seconds`, come back; how long the device then took to connect."""
        c = self.c
        await c.connection()
        self.attempts, self.down = [], True
        c.run.hang_up_all()
        await asyncio.sleep(seconds)
        self.down = False
        back, mark = self.loop.time(), c.journal.mark()
        event = await c.wait(lambda e: e.kind == j.CONNACK and e.get("code") == 0,
                             "the device to reconnect once the server was back", since=mark)
        return event.t - back


async def _reconnect_backoff(c: CaseRun) -> str:
    attempts = int(c.config.get("BACKOFF_CONNECTION_ATTEMPTS") or 5)
    intervals = await backoff._server_disconnects(c, attempts)
    backoff._judge(c, intervals, jitter_wanted=True)
    return backoff.assess(intervals, True)[1]


async def _long_server_disconnect(c: CaseRun) -> str:
    seconds = 60 * float(c.config.get("LONG_SERVER_DISCONNECT_TIME") or LONG_SERVER_DISCONNECT_TIME)  # minutes
    outage = Outage(c)
    c.log(f"The server goes away for {seconds:g} s: every CONNECT is hung up on.")
    after = await outage.last(seconds)
    tried = outage.attempts
    why = _hammering(tried) if tried else None
    waits = [b - a for a, b in pairwise(tried)]
    detail = (f"server down {seconds:g} s; the device tried {len(tried)} time(s)"
              + (f" (longest wait between tries {max(waits):.3f} s)" if waits else "")
              + f" and reconnected {after:.3f} s after the server came back")
    if why:
        c.fail(f"{why}; {detail}")
    return detail


async def _intermittent(c: CaseRun) -> str:
    draw = random.Random()
    outage, seen = Outage(c), []
    for number in range(1, OUTAGES + 1):
        await c.connection()
        up = draw.uniform(*UP_TIME)
        c.log(f"Outage {number} of {OUTAGES} in {up:.3f} s.")
        await asyncio.sleep(up)
        down = draw.uniform(*DOWN_TIME)
        after = await outage.last(down)
        tried = list(outage.attempts)
        c.log(f"Outage {number}: down {down:.3f} s, {len(tried)} CONNECT attempts meanwhile, "
              f"reconnected {after:.3f} s after the connectivity came back.")
        why = _hammering(tried) if tried else None
        if why:
            c.fail(f"in outage {number} of {OUTAGES} ({down:.3f} s) {why}")
        seen.append(f"{down:.1f} s down/{len(tried)} tries/back in {after:.3f} s")
    return f"{OUTAGES} outages survived: " + ", ".join(seen)


ADVANCED = {"RECONNECT_BACK_OFF": _reconnect_backoff, "LONG_SERVER_DISCONNECT": _long_server_disconnect,
            "INTERMITTENT_CONNECTIVITY": _intermittent}


async def _additional(c: CaseRun) -> str:
    minutes = float(c.config.get("ADDITIONAL_EXECUTION_TIME") or 0)
    mark = c.journal.mark()
    await asyncio.sleep(minutes * 60)
    dropped = sum(1 for e in c.journal.events[mark:] if e.kind == j.CLOSED and e.get("by") == "device")
    if not c.run.connected():
        c.fail(f"the device was not connected at the end of {minutes:g} minutes ({dropped} disconnects of its own)")
    return f"{minutes:g} minutes watched; the device closed {dropped} connection(s) and is connected"


async def long_duration(c: CaseRun) -> None:
    operations = _choices(c.config, "OPERATIONS", OPERATIONS)
    chosen = _choices(c.config, "SCENARIOS", SCENARIOS)
    scenarios = Scenarios(c)
    try:
        await _phases(c, scenarios, operations, chosen)
    except asyncio.CancelledError:  # EXECUTION_TIMEOUT, or the run was stopped: the log still has the summary
        scenarios.summarize(complete=False)
        raise
    scenarios.summarize()


async def _phases(c: CaseRun, scenarios: Scenarios, operations: list[str], chosen: list[str]) -> None:
    c.log(f"Operations: {', '.join(operations)}; scenarios: {', '.join(chosen)}.")
    c.log("Phase 1: basic tests.")
    await _basic(c, scenarios, operations)
    c.log("Phase 2: advanced scenarios.")
    for name in SCENARIOS:
        if name in chosen:
            await scenarios.run(name, ADVANCED[name])
    if float(c.config.get("ADDITIONAL_EXECUTION_TIME") or 0) > 0:
        c.log("Phase 3: additional execution time.")
        await scenarios.run("ADDITIONAL_EXECUTION_TIME", _additional)


CASES["MQTT_Long_Duration"] = long_duration
