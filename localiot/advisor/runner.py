"""Runs a suite run: the store document of kind "advisor-run" (shaped like
GetSuiteRun's output, with the API's private "_device" and "_suite") is
taken from PENDING to RUNNING, its test cases run one after the other in the
suite's order, each with its EXECUTION_TIMEOUT, and the run ends PASS, FAIL,
ERROR or STOPPED with its endTime.

The API (localiot.services.deviceadvisor) calls `start_run` after it
committed a PENDING run and `stop_run` after it set it STOPPING. Every
change of the document is one unit of work of the "iotdeviceadvisor"
service. Start and end times come from the injectable clock (as every
timestamp the API shows); waiting for the device is real time (the device
acts in real time). Each case's log is kept as a document of kind
"advisor-log" and served at its logUrl (`logs`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from localiot.timeouts import within
from localiot.advisor import catalog, logs
from localiot.advisor import journal as j
from localiot.advisor.cases import CaseFailed, CaseRun, implementation
from localiot.advisor.registry import endpoint_of
from localiot.advisor.state import RunState
from localiot.services.unit_of_work import in_unit, run_off_loop, unit_of_work

log = logging.getLogger("localiot.advisor")

RUN = "advisor-run"
SERVICE = "iotdeviceadvisor"
PASS, FAIL, ERROR, STOPPED, RUNNING, PENDING, STOPPING = (
    "PASS", "FAIL", "ERROR", "STOPPED", "RUNNING", "PENDING", "STOPPING")
PASS_WITH_WARNINGS = "PASS_WITH_WARNINGS"
ENDED = (PASS, FAIL, ERROR, STOPPED, PASS_WITH_WARNINGS, "CANCELED")


def start_run(runtime, account: str, region: str, suite_run_id: str, device: dict | None = None) -> None:
    """Begin executing a committed PENDING run (returns at once; the run goes on on the server's loop).
    Given the run's `device` (its "_device"), the run is registered with the endpoint without a
    store read, so the device's connections right after StartSuiteRun answers go to it."""
    endpoint = endpoint_of(runtime)
    loop = endpoint.loop if endpoint is not None else getattr(runtime.broker, "loop", None)
    if loop is None:
        _end_without_endpoint(runtime, account, region, suite_run_id)
        return
    if device is not None:
        loop.call_soon_threadsafe(_launch_now, runtime, account, region, suite_run_id, device)
        return
    loop.call_soon_threadsafe(lambda: loop.create_task(_launch(runtime, account, region, suite_run_id)))


def _launch_now(runtime, account: str, region: str, suite_run_id: str, device: dict) -> None:
    """A new run whose device no other run tests: registered here and now (on the loop)."""
    endpoint = endpoint_of(runtime)
    busy = None if endpoint is None else endpoint.busy(device.get("certificateId"), device.get("thingName"))
    if endpoint is None or (busy is not None and busy != suite_run_id):
        # the rest needs the store: a task whose reads and writes run off the loop
        asyncio.get_running_loop().create_task(_launch(runtime, account, region, suite_run_id))
        return
    run = RunState(endpoint, account, region, suite_run_id, device)
    endpoint.register(run)
    run.task = endpoint.loop.create_task(_execute(run))


def stop_run(runtime, account: str, region: str, suite_run_id: str) -> None:
    """Stop a run the API set STOPPING: the current case ends STOPPED, the rest are not run."""
    endpoint = endpoint_of(runtime)
    if endpoint is None:
        return
    endpoint.loop.call_soon_threadsafe(_stop, endpoint, account, region, suite_run_id)


def _stop(endpoint, account: str, region: str, suite_run_id: str) -> None:
    run = endpoint.runs.get(suite_run_id)
    if run is not None:
        run.shutdown()
        return
    # not executing here (the server restarted since): end it as stopped
    def end(doc):
        if doc.get("status") not in ENDED:
            _finish(doc, STOPPED, doc.get("_now"))

    async def ending():
        try:
            await _update(endpoint.runtime, account, region, suite_run_id, end)
        except RunGone:
            pass
        except Exception:
            log.exception("could not stop suite run %s", suite_run_id)

    endpoint.loop.create_task(ending())


async def _launch(runtime, account: str, region: str, suite_run_id: str) -> None:
    """On the loop; its store work on a worker with PostgreSQL."""
    endpoint = endpoint_of(runtime)
    if endpoint is None:
        await run_off_loop(runtime, _end_without_endpoint, runtime, account, region, suite_run_id)
        return
    doc = await in_unit(runtime, account, region, SERVICE, "StartSuiteRun", lambda ctx: ctx.tx.get(RUN, suite_run_id),
                        write=False)
    if doc is None or doc.get("status") in ENDED:
        return
    device = doc.get("_device") or {}
    busy = endpoint.busy(device.get("certificateId"), device.get("thingName"))
    if busy is not None and busy != suite_run_id:
        other = endpoint.runs[busy]
        if not await run_off_loop(runtime, _still_active, runtime, other):
            other.shutdown()  # its record is gone (the state was reset) or has ended
            endpoint.unregister(other)
            busy = None
    if busy is not None and busy != suite_run_id:
        try:
            await _update(runtime, account, region, suite_run_id, lambda d: _finish(
                d, ERROR, None, f"The device is already under test in suite run {busy}."))
        except RunGone:
            pass
        return
    run = RunState(endpoint, account, region, suite_run_id, device)
    endpoint.register(run)
    run.task = endpoint.loop.create_task(_execute(run))


def end_orphans(runtime) -> int:
    """Runs a previous process left PENDING, RUNNING or STOPPING (it stopped mid-run) end ERROR, or
    STOPPED when a stop was asked: nothing executes them any more, and they would hold their device."""
    ended = 0
    for status in (PENDING, RUNNING, STOPPING):
        for account, region, run_id, _ in runtime.store.scan_all_scopes(RUN, {"status": status}):
            final = STOPPED if status == STOPPING else ERROR
            reason = None if final == STOPPED else "The server stopped while the suite run was in progress."
            try:
                update(runtime, account, region, run_id, lambda d, f=final, r=reason: _finish(d, f, None, r))
                ended += 1
            except RunGone:
                pass
    return ended


def _still_active(runtime, run: RunState) -> bool:
    with unit_of_work(runtime, run.account, run.region, SERVICE, "StartSuiteRun", write=False) as ctx:
        doc = ctx.tx.get(RUN, run.suite_run_id)
    return doc is not None and doc.get("status") not in ENDED


class RunGone(Exception):
    """The run's record no longer exists (the server's state was reset): the run ends quietly."""


def _end_without_endpoint(runtime, account, region, suite_run_id) -> None:
    try:
        update(runtime, account, region, suite_run_id, lambda d: _finish(
            d, ERROR, None, "The Device Advisor test endpoint is not running on this server."))
    except RunGone:
        pass


# the store ------------------------------------------------------------------------------
async def _update(runtime, account: str, region: str, suite_run_id: str, change) -> dict | None:
    """`update` from the run's task: on a worker with PostgreSQL, after the run's earlier updates
    (shielded: a stopped run's task is cancelled, its update still ends before the last one)."""
    workers = runtime.workers
    if workers is None:
        return update(runtime, account, region, suite_run_id, change)
    return await asyncio.shield(workers.in_order(("advisor-run", suite_run_id), update, runtime, account, region,
                                                 suite_run_id, change))


def update(runtime, account: str, region: str, suite_run_id: str, change) -> dict | None:
    """Apply change(doc) to the run in one unit of work; the doc gets "_now" (the clock) for the change."""
    with unit_of_work(runtime, account, region, SERVICE, "DeviceAdvisorRun") as ctx:
        doc = ctx.tx.get(RUN, suite_run_id)
        if doc is None:
            raise RunGone(suite_run_id)
        doc["_now"] = ctx.now()
        change(doc)
        doc.pop("_now", None)
        ctx.tx.put(RUN, suite_run_id, doc)
        return doc


def _finish(doc: dict, status: str, now: float | None, reason: str | None = None) -> None:
    now = doc.get("_now") if now is None else now
    doc["status"] = status
    doc["endTime"] = now
    if reason:
        doc["errorReason"] = reason
    for group in (doc.get("testResult") or {}).get("groups", []):
        for test in group.get("tests", []):
            if test.get("status") not in ENDED:
                test["status"] = STOPPED if status == STOPPED else test.get("status", PENDING)
                if test["status"] == STOPPED:
                    test["endTime"] = now


def _skeleton(doc: dict, planned: list) -> None:
    """The testResult groups and cases, unless the API already wrote them (then they are matched in order)."""
    groups = (doc.get("testResult") or {}).get("groups")
    if groups and sum(len(g.get("tests", [])) for g in groups) == len(planned):
        return
    result, by_index = [], {}
    for case in planned:
        group = by_index.get(case.group_index)
        if group is None:
            group = by_index[case.group_index] = {"groupId": str(uuid.uuid4()), "groupName": case.group_name,
                                                  "tests": []}
            result.append(group)
        group["tests"].append({"testCaseRunId": str(uuid.uuid4()), "testCaseDefinitionId": str(uuid.uuid4()),
                               "testCaseDefinitionName": case.name, "status": PENDING})
    doc["testResult"] = {"groups": result}


def _planned(doc: dict) -> list[tuple[catalog.PlannedCase, str]]:
    """(case, testCaseRunId) in run order: from the API's "_cases"/"_order" (configuration already
    merged suite < group < case), else from the rootGroup snapshot in "_suite"."""
    cases = doc.get("_cases")
    if cases is not None:
        out = []
        for case_run_id in doc.get("_order") or list(cases):
            c = cases[case_run_id]
            test_case = catalog.find(c["testId"])
            if test_case is None:
                raise catalog.CatalogError(f"Test case {c['name']!r}: unknown test id {c['testId']!r}.")
            out.append((catalog.PlannedCase(0, c.get("groupName", ""), c["name"], test_case, c.get("version", "0.0.0"),
                                            dict(c.get("configuration") or {})), case_run_id))
        return out
    planned = catalog.plan(_root_group(doc))
    _skeleton(doc, planned)
    selected = set((doc.get("suiteRunConfiguration") or {}).get("selectedTestList") or [])
    return [(p, t["testCaseRunId"]) for p, t in zip(planned, _tests(doc))
            if not selected or t["testCaseDefinitionId"] in selected]


def _tests(doc: dict) -> list[dict]:
    return [t for g in doc["testResult"]["groups"] for t in g["tests"]]


def _root_group(doc: dict):
    suite = doc.get("_suite") or {}
    if isinstance(suite, str):
        return suite
    return suite.get("rootGroup", suite) if isinstance(suite, dict) else suite


# executing -------------------------------------------------------------------------------
async def _execute(run: RunState) -> None:
    runtime, account, region, run_id = run.runtime, run.account, run.region, run.suite_run_id
    status, reason = ERROR, None
    try:
        holder = {}

        def begin(doc):
            if doc["status"] == STOPPING:  # stopped before it began
                run.stopping = True
                return
            holder["cases"] = _planned(doc)
            doc["status"] = RUNNING
            if not doc.get("startTime"):
                doc["startTime"] = doc["_now"]

        try:
            await _update(runtime, account, region, run_id, begin)
        except catalog.CatalogError as error:
            reason = str(error)
            raise
        results = []
        for planned, case_run_id in holder.get("cases", []):
            if run.stopping:
                break
            results.append(await _run_case(run, planned, case_run_id))
        if run.stopping:
            status, reason = STOPPED, run.stop_reason
        elif FAIL in results:
            status = FAIL
        elif ERROR in results:
            status = ERROR
        else:
            status = PASS
    except asyncio.CancelledError:
        status, reason = STOPPED, run.stop_reason
    except RunGone:
        run.reset_script()
        run.endpoint.unregister(run)
        return
    except catalog.CatalogError:
        status = ERROR
    except Exception as error:  # a bug of ours: the run says so instead of hanging RUNNING
        log.exception("suite run %s failed", run_id)
        status, reason = ERROR, f"Internal error: {error}"
    finally:
        run.reset_script()
        run.endpoint.unregister(run)
    try:
        await _update(runtime, account, region, run_id, lambda d: _finish(d, status, None, reason))
    except RunGone:
        pass
    except Exception:
        log.exception("could not end suite run %s", run_id)


async def _run_case(run: RunState, planned, case_run_id: str) -> str:
    runtime, account, region = run.runtime, run.account, run.region
    url = logs.log_url(runtime, account, region, case_run_id)

    def started(doc):
        test = _find_test(doc, case_run_id)
        test.update(status=RUNNING, startTime=doc["_now"], logUrl=url)

    await _update(runtime, account, region, run.suite_run_id, started)
    case = run.case = CaseRun(run, planned)
    fn = implementation(planned.case.id)
    status, failure = PASS, None
    case.log(f"Test case {planned.name} ({planned.case.id}) started; EXECUTION_TIMEOUT {planned.timeout:g} s.")
    try:
        if fn is None:
            raise CaseFailed(f"localiot does not implement the test case {planned.case.id}.", ERROR)
        if run.websocket and not planned.case.over_websocket:
            raise CaseFailed(f"{planned.case.id} is a {planned.case.category} test case, which Device Advisor runs "
                             f"for devices on MQTT over TLS with a client certificate (protocol MqttV3_1_1 or "
                             f"MqttV5); this suite's protocol is {run.protocol}, where the MQTT, shadow and job "
                             f"execution test cases run.", ERROR)
        await within(fn(case), planned.timeout)
        status = PASS_WITH_WARNINGS if case.warnings else PASS
    except CaseFailed as failed:
        status, failure = failed.status, str(failed)
    except TimeoutError:
        status = FAIL
        failure = f"Timed out after {planned.timeout:g} s" + (f" waiting for {case.waiting}." if case.waiting else ".")
        refused = run.journal.since(case.mark, j.REFUSED)
        if refused:  # why the device never got in
            failure += f" The endpoint refused {len(refused)} connection(s); the last: {refused[-1]['reason']}"
    except asyncio.CancelledError:
        status, failure = STOPPED, "The suite run was stopped."
    except Exception as error:
        log.exception("test case %s failed", planned.case.id)
        status, failure = ERROR, f"Internal error: {error}"
    finally:
        run.reset_script()
        run.case = None
    case.log(f"Result: {status}" + (f": {failure}" if failure else ""))
    for warning in case.warnings:
        case.log(f"Warning: {warning}")

    def ended(doc):
        test = _find_test(doc, case_run_id)
        test.update(status=status, endTime=doc["_now"])
        if failure:
            test["failure"] = failure
        if case.warnings:
            test["warnings"] = "; ".join(case.warnings)

    await _update(runtime, account, region, run.suite_run_id, ended)
    await run_off_loop(runtime, logs.store, runtime, account, region, case_run_id, case.lines)
    if status == STOPPED:
        run.stopping = True
    return status


def _find_test(doc: dict, case_run_id: str) -> dict:
    for test in _tests(doc):
        if test["testCaseRunId"] == case_run_id:
            return test
    raise KeyError(case_run_id)
