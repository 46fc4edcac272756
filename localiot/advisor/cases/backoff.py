"""Reconnection test cases: the endpoint refuses or ends connections and
measures, in real time, how long the device waits before its next CONNECT.

- MQTT_Connect_Exponential_Backoff_Retries / MQTT_Connect_Jitter_Backoff_Retries:
  the first five CONNECTs get no CONNACK (the endpoint hangs up on them at
  once instead of leaving them unanswered until the device's CONNACK timeout,
  so the device's retry delay is what is measured, and the case is fast);
  the sixth passes. Intervals: between consecutive CONNECTs.
- MQTT_Reconnect_Backoff_Retries_On_Server_Disconnect: RECONNECTION_ATTEMPTS
  times (5 to 10, default 5) the endpoint disconnects the device as soon as
  it is connected. Intervals: from the disconnect to the next CONNECT.
- MQTT_ReconnectionAfterSuccessfulConnection: one disconnect; the device
  must wait at least one second.

How the intervals are judged (`assess`), after AWS's descriptions: all
under half a second is no backoff (FAIL); equal intervals are a constant
backoff (FAIL), equal differences a linear one (FAIL); differences growing
by a constant ratio are exponential backoff without jitter (PASS for the
exponential case, PASS_WITH_WARNINGS for the jitter ones; differences,
because each interval also holds the connection set-up time); irregular
intervals (jitter) must grow: the longest of the later half must exceed the
longest of the first half and reach a second, else FAIL. With full jitter (a delay drawn
uniformly below a doubling bound, what the AWS IoT Device SDKs do) and five
intervals, about 4 runs in 1000 FAIL and 2 in 1000 are taken for backoff
without jitter (simulated; tests/test_advisor_backoff.py).
"""

from __future__ import annotations

from itertools import pairwise
from statistics import mean

from localiot.advisor import journal as j
from localiot.advisor.cases.base import CaseRun
from localiot.advisor.interposer import CLOSE

CASES = {}
NO_BACKOFF = 0.5  # seconds: reconnecting faster than this every time is no backoff at all
REGULAR = 0.15  # relative spread under which intervals (or their differences) count as regular
GROWN = 1.0  # seconds: a backoff with jitter reaches this within the attempts (a stray slow reconnect does not)
SETUP_NOISE = 0.1  # seconds by which connection set-up times (TLS handshakes) differ between attempts
CONNECT_REFUSALS = 5


def case(test_id: str):
    def register(fn):
        CASES[test_id] = fn
        return fn
    return register


def _regular(values: list[float]) -> bool:
    m = mean(values)
    return m != 0 and all(abs(v - m) <= REGULAR * abs(m) for v in values)


def _geometric(differences: list[float]) -> float | None:
    """The ratio r when the differences grow as d * r**i (exponential backoff without jitter: each
    interval is base * r**i plus the connection set-up time, which the differences cancel), else None.
    Each difference may miss by REGULAR of itself or by SETUP_NOISE seconds (set-up times vary)."""
    if len(differences) < 2 or any(d <= 0 for d in differences):
        return None
    n = len(differences) - 1
    ratio = differences[-1] / differences[-2]  # the two largest: the least disturbed by set-up times
    if ratio < 1.2:
        return None
    for i, d in enumerate(differences):
        expected = differences[-1] / ratio ** (n - i)
        if abs(d - expected) > max(REGULAR * expected, SETUP_NOISE):
            return None
    return ratio


def assess(intervals: list[float], jitter_wanted: bool) -> tuple[str, str]:
    """(PASS / PASS_WITH_WARNINGS / FAIL, why) for measured reconnection intervals in seconds."""
    shown = ", ".join(f"{i:.3f}" for i in intervals)
    if max(intervals) < NO_BACKOFF:
        return "FAIL", f"The device reconnected without backoff: intervals {shown} s are all under {NO_BACKOFF} s."
    differences = [b - a for a, b in pairwise(intervals)]
    if _regular(intervals):
        return "FAIL", f"The device reconnects with a constant delay (intervals {shown} s): no backoff."
    if _regular(differences) and mean(differences) > 0:
        return "FAIL", f"The device uses a linear backoff (intervals {shown} s, +{mean(differences):.3f} s each)."
    ratio = _geometric(differences)
    if ratio is not None:
        if jitter_wanted:
            return "PASS_WITH_WARNINGS", (f"The device uses exponential backoff without jitter (intervals {shown} s, "
                                          f"ratio {ratio:.2f}); add jitter.")
        return "PASS", f"Exponential backoff without jitter (intervals {shown} s, ratio {ratio:.2f})."
    half = len(intervals) // 2
    if max(intervals[half:]) > max(intervals[:half]) and max(intervals) >= GROWN:
        return "PASS", f"Backoff with jitter: intervals {shown} s grow irregularly."
    return "FAIL", f"The reconnection intervals ({shown} s) do not grow: no backoff."


def _judge(c: CaseRun, intervals: list[float], jitter_wanted: bool) -> None:
    status, why = assess(intervals, jitter_wanted)
    c.log(why)
    if status == "FAIL":
        c.fail(why)
    if status == "PASS_WITH_WARNINGS":
        c.warn(why)


async def _refused_connects(c: CaseRun, jitter_wanted: bool) -> None:
    refused = []

    def script(conn, kind, data):
        if kind != j.CONNECT or len(refused) >= CONNECT_REFUSALS:
            return None
        refused.append(conn.number)
        return CLOSE

    c.run.on_incoming = script
    c.run.hang_up_all()
    c.log(f"The endpoint hangs up on the next {CONNECT_REFUSALS} CONNECTs without a CONNACK, then accepts one.")
    times = []
    mark = c.journal.mark()
    while len(times) <= CONNECT_REFUSALS:
        event = await c.wait(lambda e: e.kind == j.CONNECT, f"CONNECT attempt {len(times) + 1}", since=mark)
        mark = c.journal.events.index(event) + 1
        times.append(event.t)
        c.log(f"CONNECT attempt {len(times)}" + (f" after {times[-1] - times[-2]:.3f} s" if len(times) > 1 else ""))
    intervals = [b - a for a, b in pairwise(times)]
    await c.wait(lambda e: e.kind == j.CONNACK and e.get("code") == 0, "the accepted connection", since=mark - 1)
    _judge(c, intervals, jitter_wanted)


@case("MQTT_Connect_Exponential_Backoff_Retries")
async def exponential_retries(c: CaseRun) -> None:
    await _refused_connects(c, jitter_wanted=False)


@case("MQTT_Connect_Jitter_Backoff_Retries")
async def jitter_retries(c: CaseRun) -> None:
    await _refused_connects(c, jitter_wanted=True)


async def _server_disconnects(c: CaseRun, attempts: int) -> list[float]:
    intervals = []
    loop = c.run.endpoint.loop
    for attempt in range(1, attempts + 1):
        conn = await c.connection()
        conn.hung_up = True
        conn.hang_up()
        gone = loop.time()
        mark = c.journal.mark()
        c.log(f"Disconnect {attempt} of {attempts} (connection {conn.number}).")
        event = await c.wait(lambda e: e.kind == j.CONNECT, f"the device to reconnect after disconnect {attempt}",
                             since=mark)
        intervals.append(event.t - gone)
        c.log(f"The device sent CONNECT {intervals[-1]:.3f} s after the disconnect.")
    await c.connection()
    return intervals


@case("MQTT_Reconnect_Backoff_Retries_On_Server_Disconnect")
async def reconnect_backoff(c: CaseRun) -> None:
    attempts = int(c.config.get("RECONNECTION_ATTEMPTS") or 5)
    _judge(c, await _server_disconnects(c, attempts), jitter_wanted=True)


@case("MQTT_ReconnectionAfterSuccessfulConnection")
async def reconnect_delay(c: CaseRun) -> None:
    interval = (await _server_disconnects(c, 1))[0]
    if interval < 1.0:
        c.fail(f"The device reconnected {interval:.3f} s after the server disconnected it; it must wait at least 1 s.")
