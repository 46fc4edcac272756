"""Test cases on AWS IoT's services: shadows, jobs, and the device's policies.

The endpoint plays no service of its own here: the device's shadow
requests and job updates reach localiot's real shadow and jobs doors through
the broker, and the test's own actions (setting a desired state, creating
the job) go through the same handlers the API serves (UpdateThingShadow,
CreateJob, DescribeJobExecution), in units of work like any API call.
"""

from __future__ import annotations

import json
import uuid

from localiot.advisor import catalog
from localiot.advisor import journal as j
from localiot.advisor.cases.base import CaseRun
from localiot.broker import auth

CASES = {}
SETUP_TOKEN = "DeviceAdvisorShadowTestCaseSetup"  # the clientToken AWS's shadow cases use
TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED", "REMOVED", "CANCELED", "TIMED_OUT")


def case(test_id: str):
    def register(fn):
        CASES[test_id] = fn
        return fn
    return register


def _shadow_prefix(thing: str, shadow_name: str | None) -> str:
    return f"$aws/things/{thing}/shadow" + (f"/name/{shadow_name}" if shadow_name else "")


def _json(payload: bytes):
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _contains(have, want) -> bool:
    """Whether the JSON `have` holds every attribute of `want` with the same value (nested objects too)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _contains(have[k], v) for k, v in want.items())
    return have == want


def _reported(e, topic: str):
    if e.kind != j.PUBLISH or e["topic"] != topic:
        return None
    doc = _json(e["payload"]) or {}
    state = doc.get("state") if isinstance(doc.get("state"), dict) else {}
    return state.get("reported") if isinstance(state.get("reported"), dict) else None


@case("Shadow_Publish_Reported_State")
async def publish_reported(c: CaseRun) -> None:
    thing = c.require_thing()
    shadow = c.config.get("SHADOW_NAME") or None
    want = catalog.object_value(c.config, "REPORTED_STATE")
    topic = _shadow_prefix(thing, shadow) + "/update"

    def wanted(e):
        reported = _reported(e, topic)
        return reported is not None and (want is None or _contains(reported, want))

    what = f"a reported state on {topic}" + (f" with {json.dumps(want)}" if want else "")
    event = await c.wait(wanted, what, since=0)
    c.log(f"The device reported {_reported(event, topic)} on {topic}.")
    await c.settled()
    stored = await _get_shadow(c, thing, shadow)
    reported = ((stored or {}).get("state") or {}).get("reported")
    if want is not None and not _contains(reported, want):
        c.fail(f"The shadow's reported state {reported} does not hold {want}.")
    c.log(f"The shadow's reported state is {reported}.")


async def _get_shadow(c: CaseRun, thing: str, shadow: str | None) -> dict | None:
    from localiot.protocol.errors import ServiceError

    request = {"thingName": thing, **({"shadowName": shadow} if shadow else {})}
    try:
        return json.loads((await c.call("iot-data", "GetThingShadow", request))["payload"])
    except ServiceError:
        return None


@case("Shadow_Update_Reported_State")
async def update_reported(c: CaseRun) -> None:
    thing = c.require_thing()
    shadow = c.config.get("SHADOW_NAME") or None
    desired = catalog.object_value(c.config, "DESIRED_STATE")
    topic = _shadow_prefix(thing, shadow) + "/update"
    await c.connection()
    await c.subscribed_soon(topic + "/delta")
    mark = c.journal.mark()
    payload = json.dumps({"state": {"desired": desired}, "clientToken": SETUP_TOKEN}).encode()
    request = {"thingName": thing, "payload": payload, **({"shadowName": shadow} if shadow else {})}
    await c.call("iot-data", "UpdateThingShadow", request)
    t_set = c.run.endpoint.loop.time()
    c.log(f"Set the desired state {json.dumps(desired)} (clientToken {SETUP_TOKEN}).")
    event = await c.wait(lambda e: _contains(_reported(e, topic), desired),
                         f"the device to report {json.dumps(desired)} on {topic}", since=mark)
    c.log(f"The device reported {_reported(event, topic)} {event.t - t_set:.3f} s after the desired state changed.")
    await c.settled()
    reported = (((await _get_shadow(c, thing, shadow) or {}).get("state") or {}).get("reported"))
    if not _contains(reported, desired):
        c.fail(f"The shadow's reported state {reported} does not match the desired state {desired}.")


@case("Job_Execution")
async def job_execution(c: CaseRun) -> None:
    from localiot.protocol.errors import ServiceError

    thing = c.require_thing()
    job_id = c.config.get("JOB_JOBID") or None
    await c.connection()
    await c.subscribed_soon(f"$aws/things/{thing}/jobs/notify-next")
    mark = c.journal.mark()
    if job_id is None:
        job_id = f"DeviceAdvisorJob-{uuid.uuid4()}"
        request = {"jobId": job_id, "targets": [c.arn(f"thing/{thing}")], "targetSelection": "SNAPSHOT"}
        document = c.config.get("JOB_DOCUMENT")
        if document:
            request["document"] = document if isinstance(document, str) else json.dumps(document)
        else:
            request["documentSource"] = c.config["JOB_DOCUMENT_SOURCE"]
        try:
            await c.call("iot", "CreateJob", request)
        except ServiceError as error:
            c.error(f"Could not create the test job: {error.code}: {error.message}")
        c.log(f"Created job {job_id} for thing {thing}.")
    else:
        c.log(f"Using the job {job_id} the configuration names (JOB_JOBID).")
    topic = f"$aws/things/{thing}/jobs/{job_id}/update"

    def status_of(e):
        if e.kind != j.PUBLISH or e["topic"] != topic:
            return None
        return (_json(e["payload"]) or {}).get("status")

    seen = set()

    def terminal(e):
        status = status_of(e)
        if status and status not in seen:
            seen.add(status)
            c.log(f"The device set the execution to {status}.")
        return status in TERMINAL

    await c.wait(terminal, f"the device to run job {job_id} to a terminal status", since=mark)
    await c.settled()
    try:
        execution = (await c.call("iot", "DescribeJobExecution", {"jobId": job_id, "thingName": thing}))["execution"]
    except ServiceError as error:
        c.fail(f"The job execution cannot be read back: {error.message}")
    status = execution.get("status")
    c.log(f"The job execution's stored status is {status}.")
    if status != "SUCCEEDED":
        c.fail(f"The device ended the job execution {status}, not SUCCEEDED.")


# permissions and policies ----------------------------------------------------------------------------
def probes(identity) -> list[tuple[str, str, str]]:
    """(action, resource ARN, what it would mean) that a least-privilege device policy denies."""
    other = f"devadvisor-probe-{uuid.uuid4().hex[:12]}"
    return [
        (auth.CONNECT, auth.arn(identity, "client", other), "connect with any client id"),
        (auth.PUBLISH, auth.arn(identity, "topic", f"{other}/any/topic"), "publish to any topic"),
        (auth.SUBSCRIBE, auth.arn(identity, "topicfilter", "#"), "subscribe to every topic (#)"),
        (auth.RECEIVE, auth.arn(identity, "topic", f"{other}/any/topic"), "receive from any topic"),
        (auth.PUBLISH, auth.arn(identity, "topic", f"$aws/things/{other}/shadow/update"),
         "update another thing's shadow"),
    ]


@case("Security_Device_Policies")
async def device_policies(c: CaseRun) -> None:
    conn = await c.connection("the device to connect (its policies are evaluated for its connection)")
    identity = conn.identity
    too_much = [meaning for action, resource, meaning in probes(identity)
                if c.broker.authorize(identity, action, resource)]
    for action, resource, meaning in probes(identity):
        c.log(f"{action} on {resource}: {'allowed' if meaning in too_much else 'denied'}")
    if too_much:
        c.fail("The policies attached to the device's certificate are overly permissive; they let it "
               + ", ".join(too_much) + ".")
