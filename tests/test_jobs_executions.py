"""Job executions through boto3: the device API (iot-jobs-data over HTTP), the
control-plane execution operations, and the jobs/notify and notify-next
messages devices rely on, seen on the bus."""

import json

import pytest
from botocore.exceptions import ClientError

from localiot.testing import ACCOUNT, error_of, make_client


DOC = json.dumps({"operation": "test"})


def thing_arn(name):
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/{name}"


def things(iot, *names):
    for name in names:
        iot.create_thing(thingName=name)


def job(iot, job_id, *names, **kwargs):
    kwargs.setdefault("document", DOC)
    return iot.create_job(jobId=job_id, targets=[thing_arn(n) for n in names], **kwargs)


@pytest.fixture
def data(localiot_server):
    return make_client(localiot_server, "iot-jobs-data")


@pytest.fixture
def bus(localiot_server):
    seen = []
    stop = localiot_server.app.bus.subscribe(lambda a, r, topic, payload: seen.append((topic, json.loads(payload))))
    yield seen
    stop()


def notes(bus, thing="dev"):
    """(kind, payload) of the thing's jobs notifications, in order; clears the list."""
    out = []
    for topic, payload in bus:
        if topic == f"$aws/things/{thing}/jobs/notify":
            out.append(("notify", payload))
        elif topic == f"$aws/things/{thing}/jobs/notify-next":
            out.append(("next", payload))
    bus.clear()
    return out


# the device flow -------------------------------------------------------------------
def test_device_flow_over_http(iot, data, localiot_server):
    things(iot, "dev")
    assert data.get_pending_job_executions(thingName="dev")["queuedJobs"] == []
    assert "execution" not in data.start_next_pending_job_execution(thingName="dev")
    job(iot, "j1", "dev")
    pending = data.get_pending_job_executions(thingName="dev")
    assert pending["inProgressJobs"] == []
    queued = pending["queuedJobs"][0]
    assert queued["jobId"] == "j1" and queued["executionNumber"] == 1 and queued["versionNumber"] == 1
    assert isinstance(queued["queuedAt"], int) and "startedAt" not in queued

    nxt = data.describe_job_execution(thingName="dev", jobId="$next")["execution"]
    assert nxt["jobId"] == "j1" and nxt["status"] == "QUEUED" and nxt["jobDocument"] == DOC
    bare = data.describe_job_execution(thingName="dev", jobId="j1", includeJobDocument=False)["execution"]
    assert "jobDocument" not in bare and bare["thingName"] == "dev"

    started = data.start_next_pending_job_execution(thingName="dev", statusDetails={"step": "download"},
                                                    stepTimeoutInMinutes=10)["execution"]
    assert started["status"] == "IN_PROGRESS" and started["versionNumber"] == 2
    assert started["statusDetails"] == {"step": "download"}
    assert started["startedAt"] >= started["queuedAt"]
    assert 595 <= started["approximateSecondsBeforeTimedOut"] <= 600
    assert started["jobDocument"] == DOC
    # start-next hands back the execution already in progress
    again = data.start_next_pending_job_execution(thingName="dev")["execution"]
    assert again["versionNumber"] == 2
    pending = data.get_pending_job_executions(thingName="dev")
    assert [j["jobId"] for j in pending["inProgressJobs"]] == ["j1"] and pending["queuedJobs"] == []

    out = data.update_job_execution(thingName="dev", jobId="j1", status="IN_PROGRESS",
                                    statusDetails={"step": "install", "progress": "50"},
                                    expectedVersion=2, includeJobExecutionState=True, includeJobDocument=True)
    assert out["executionState"] == {"status": "IN_PROGRESS", "statusDetails": {"step": "install", "progress": "50"},
                                     "versionNumber": 3}
    assert out["jobDocument"] == DOC
    out = data.update_job_execution(thingName="dev", jobId="j1", status="SUCCEEDED")
    assert set(out) == {"ResponseMetadata"}  # no state or document unless asked for

    control = iot.describe_job_execution(jobId="j1", thingName="dev")["execution"]
    assert control["status"] == "SUCCEEDED" and control["versionNumber"] == 4
    assert control["statusDetails"] == {"detailsMap": {"step": "install", "progress": "50"}}
    assert control["thingArn"] == thing_arn("dev") and control["executionNumber"] == 1
    assert "approximateSecondsBeforeTimedOut" not in control
    assert iot.describe_job(jobId="j1")["job"]["status"] == "COMPLETED"
    with pytest.raises(ClientError) as e:
        data.describe_job_execution(thingName="dev", jobId="j1")
    assert error_of(e) == ("TerminalStateException", 410)


def test_queued_execution_can_finish_directly(iot, data):
    things(iot, "dev")
    job(iot, "direct", "dev")
    out = data.update_job_execution(thingName="dev", jobId="direct", status="REJECTED", includeJobExecutionState=True)
    assert out["executionState"]["status"] == "REJECTED"
    execution = iot.describe_job_execution(jobId="direct", thingName="dev")["execution"]
    assert execution["status"] == "REJECTED" and "startedAt" not in execution
    assert iot.describe_job(jobId="direct")["job"]["jobProcessDetails"]["numberOfRejectedThings"] == 1


def test_update_errors(iot, data):
    things(iot, "dev")
    job(iot, "j", "dev")
    with pytest.raises(ClientError) as e:
        data.update_job_execution(thingName="dev", jobId="j", status="IN_PROGRESS", expectedVersion=7)
    assert error_of(e) == ("VersionConflictException", 409)
    for status in ("QUEUED", "CANCELED", "TIMED_OUT", "REMOVED"):
        with pytest.raises(ClientError) as e:
            data.update_job_execution(thingName="dev", jobId="j", status=status)
        assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        data.update_job_execution(thingName="dev", jobId="j", status="IN_PROGRESS",
                                  statusDetails={f"k{i}": "v" for i in range(11)})
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        data.update_job_execution(thingName="dev", jobId="j", status="IN_PROGRESS", statusDetails={"k": "v" * 1025})
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        data.update_job_execution(thingName="dev", jobId="j", status="IN_PROGRESS", statusDetails={"bad key": "v"})
    assert error_of(e)[1] == 400
    for minutes in (0, 10081, -2):
        with pytest.raises(ClientError) as e:
            data.update_job_execution(thingName="dev", jobId="j", status="IN_PROGRESS", stepTimeoutInMinutes=minutes)
        assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        data.start_next_pending_job_execution(thingName="dev", stepTimeoutInMinutes=-1)
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        data.update_job_execution(thingName="dev", jobId="nope", status="IN_PROGRESS")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        data.update_job_execution(thingName="other", jobId="j", status="IN_PROGRESS")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        data.describe_job_execution(thingName="dev", jobId="nope")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    # nothing above changed the execution
    assert iot.describe_job_execution(jobId="j", thingName="dev")["execution"]["versionNumber"] == 1

    data.update_job_execution(thingName="dev", jobId="j", status="SUCCEEDED")
    for status in ("IN_PROGRESS", "FAILED", "SUCCEEDED"):
        with pytest.raises(ClientError) as e:
            data.update_job_execution(thingName="dev", jobId="j", status=status)
        assert error_of(e) == ("InvalidStateTransitionException", 409)


def test_step_timer_can_be_reset_and_cleared(iot, data):
    things(iot, "dev")
    job(iot, "steps", "dev", timeoutConfig={"inProgressTimeoutInMinutes": 20})
    started = data.start_next_pending_job_execution(thingName="dev", stepTimeoutInMinutes=7)["execution"]
    assert 415 <= started["approximateSecondsBeforeTimedOut"] <= 420
    data.update_job_execution(thingName="dev", jobId="steps", status="IN_PROGRESS", stepTimeoutInMinutes=30)
    # a step timer never outlives the in-progress timer
    left = data.describe_job_execution(thingName="dev", jobId="steps")["execution"]["approximateSecondsBeforeTimedOut"]
    assert 1195 <= left <= 1200
    data.update_job_execution(thingName="dev", jobId="steps", status="IN_PROGRESS", stepTimeoutInMinutes=2)
    left = iot.describe_job_execution(jobId="steps", thingName="dev")["execution"]["approximateSecondsBeforeTimedOut"]
    assert 115 <= left <= 120
    data.update_job_execution(thingName="dev", jobId="steps", status="IN_PROGRESS", stepTimeoutInMinutes=-1)
    left = data.describe_job_execution(thingName="dev", jobId="steps")["execution"]["approximateSecondsBeforeTimedOut"]
    assert 1195 <= left <= 1200


# control plane -------------------------------------------------------------------------
def test_cancel_job_execution(iot, data):
    things(iot, "a", "b")
    job(iot, "cj", "a", "b")
    iot.cancel_job_execution(jobId="cj", thingName="a", statusDetails={"why": "operator"})
    execution = iot.describe_job_execution(jobId="cj", thingName="a")["execution"]
    assert execution["status"] == "CANCELED" and execution["forceCanceled"] is False
    assert execution["statusDetails"]["detailsMap"] == {"why": "operator"}
    with pytest.raises(ClientError) as e:
        iot.cancel_job_execution(jobId="cj", thingName="a")
    assert error_of(e) == ("InvalidStateTransitionException", 409)
    data.start_next_pending_job_execution(thingName="b")
    with pytest.raises(ClientError) as e:
        iot.cancel_job_execution(jobId="cj", thingName="b")
    assert error_of(e) == ("InvalidStateTransitionException", 409)
    with pytest.raises(ClientError) as e:
        iot.cancel_job_execution(jobId="cj", thingName="b", force=True, expectedVersion=1)
    assert error_of(e) == ("VersionConflictException", 409)
    iot.cancel_job_execution(jobId="cj", thingName="b", force=True, expectedVersion=2)
    execution = iot.describe_job_execution(jobId="cj", thingName="b")["execution"]
    assert execution["status"] == "CANCELED" and execution["forceCanceled"] is True
    with pytest.raises(ClientError) as e:
        data.update_job_execution(thingName="b", jobId="cj", status="SUCCEEDED")
    assert error_of(e) == ("InvalidStateTransitionException", 409)
    with pytest.raises(ClientError) as e:
        iot.cancel_job_execution(jobId="cj", thingName="nobody")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    # all executions canceled: the snapshot job is complete
    job_doc = iot.describe_job(jobId="cj")["job"]
    assert job_doc["status"] == "COMPLETED" and job_doc["jobProcessDetails"]["numberOfCanceledThings"] == 2


def test_delete_job_execution(iot, data):
    things(iot, "a", "b")
    job(iot, "dj", "a", "b")
    data.start_next_pending_job_execution(thingName="a")
    with pytest.raises(ClientError) as e:
        iot.delete_job_execution(jobId="dj", thingName="a", executionNumber=1)
    assert error_of(e) == ("InvalidStateTransitionException", 409)
    with pytest.raises(ClientError) as e:
        iot.delete_job_execution(jobId="dj", thingName="b", executionNumber=1)
    assert error_of(e) == ("InvalidStateTransitionException", 409)
    with pytest.raises(ClientError) as e:
        iot.delete_job_execution(jobId="dj", thingName="a", executionNumber=2)
    assert error_of(e) == ("ResourceNotFoundException", 404)
    iot.delete_job_execution(jobId="dj", thingName="a", executionNumber=1, force=True)
    with pytest.raises(ClientError) as e:
        iot.describe_job_execution(jobId="dj", thingName="a")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    data.update_job_execution(thingName="b", jobId="dj", status="SUCCEEDED")
    assert iot.describe_job(jobId="dj")["job"]["status"] == "COMPLETED"
    iot.delete_job_execution(jobId="dj", thingName="b", executionNumber=1)
    assert iot.list_job_executions_for_job(jobId="dj")["executionSummaries"] == []


def test_list_executions_for_job_and_thing(iot, data):
    names = [f"t{i}" for i in range(5)]
    things(iot, *names)
    job(iot, "big", *names)
    job(iot, "small", "t0")
    job(iot, "other", "t0")
    data.update_job_execution(thingName="t1", jobId="big", status="SUCCEEDED")
    data.start_next_pending_job_execution(thingName="t2")

    seen, token = [], None
    while True:
        page = iot.list_job_executions_for_job(jobId="big", maxResults=2, **({"nextToken": token} if token else {}))
        assert len(page["executionSummaries"]) <= 2
        seen += page["executionSummaries"]
        token = page.get("nextToken")
        if not token:
            break
    assert [s["thingArn"] for s in seen] == [thing_arn(n) for n in names]
    assert seen[0]["jobExecutionSummary"]["retryAttempt"] == 0
    succeeded = iot.list_job_executions_for_job(jobId="big", status="SUCCEEDED")["executionSummaries"]
    assert [s["thingArn"] for s in succeeded] == [thing_arn("t1")]
    assert iot.list_job_executions_for_job(jobId="big", status="IN_PROGRESS")["executionSummaries"][0][
        "jobExecutionSummary"]["status"] == "IN_PROGRESS"
    with pytest.raises(ClientError) as e:
        iot.list_job_executions_for_job(jobId="nope")
    assert error_of(e) == ("ResourceNotFoundException", 404)

    for_thing = iot.list_job_executions_for_thing(thingName="t0")["executionSummaries"]
    assert sorted(s["jobId"] for s in for_thing) == ["big", "other", "small"]
    first = iot.list_job_executions_for_thing(thingName="t0", maxResults=1)
    assert len(first["executionSummaries"]) == 1 and first["nextToken"]
    second = iot.list_job_executions_for_thing(thingName="t0", maxResults=5, nextToken=first["nextToken"])
    assert len(second["executionSummaries"]) == 2
    assert [s["jobId"] for s in iot.list_job_executions_for_thing(thingName="t0", jobId="small")["executionSummaries"]] == ["small"]
    assert iot.list_job_executions_for_thing(thingName="t1", status="QUEUED")["executionSummaries"] == []
    assert [s["jobId"] for s in iot.list_job_executions_for_thing(thingName="t1", status="SUCCEEDED")["executionSummaries"]] == ["big"]
    assert iot.list_job_executions_for_thing(thingName="nobody")["executionSummaries"] == []


# notifications -------------------------------------------------------------------------
def test_notify_and_notify_next_follow_the_pending_list(iot, data, bus, localiot_server):
    """The sequence of the AWS developer guide's "Jobs notifications" example."""
    things(iot, "dev")
    bus.clear()
    job(iot, "job1", "dev", document=json.dumps({"operation": "test"}))
    got = notes(bus)
    assert [k for k, _ in got] == ["notify", "next"]
    assert [j["jobId"] for j in got[0][1]["jobs"]["QUEUED"]] == ["job1"]
    assert got[0][1]["jobs"]["QUEUED"][0]["versionNumber"] == 1 and "timestamp" in got[0][1]
    nxt = got[1][1]["execution"]
    assert nxt["jobId"] == "job1" and nxt["status"] == "QUEUED" and nxt["jobDocument"] == {"operation": "test"}

    localiot_server.clock.advance(5)
    job(iot, "job2", "dev")
    got = notes(bus)
    assert [k for k, _ in got] == ["notify"]  # the next job is still job1
    assert [j["jobId"] for j in got[0][1]["jobs"]["QUEUED"]] == ["job1", "job2"]

    data.update_job_execution(thingName="dev", jobId="job1", status="IN_PROGRESS")
    assert notes(bus) == []  # neither the list nor its first execution changed

    localiot_server.clock.advance(5)
    job(iot, "job3", "dev")
    got = notes(bus)
    assert [k for k, _ in got] == ["notify"]
    listed = got[0][1]["jobs"]
    assert [j["jobId"] for j in listed["IN_PROGRESS"]] == ["job1"]
    assert [j["jobId"] for j in listed["QUEUED"]] == ["job2", "job3"]
    assert listed["IN_PROGRESS"][0]["versionNumber"] == 2 and "startedAt" in listed["IN_PROGRESS"][0]

    data.update_job_execution(thingName="dev", jobId="job1", status="SUCCEEDED")
    got = notes(bus)
    assert [k for k, _ in got] == ["notify", "next"]
    assert list(got[0][1]["jobs"]) == ["QUEUED"]
    assert got[1][1]["execution"]["jobId"] == "job2"

    data.update_job_execution(thingName="dev", jobId="job3", status="IN_PROGRESS")
    got = notes(bus)
    assert [k for k, _ in got] == ["next"]
    assert got[0][1]["execution"]["jobId"] == "job3" and got[0][1]["execution"]["status"] == "IN_PROGRESS"

    data.update_job_execution(thingName="dev", jobId="job2", status="REJECTED")
    got = notes(bus)
    assert [k for k, _ in got] == ["notify"]
    assert got[0][1]["jobs"] == {"IN_PROGRESS": [got[0][1]["jobs"]["IN_PROGRESS"][0]]}
    assert got[0][1]["jobs"]["IN_PROGRESS"][0]["jobId"] == "job3"

    iot.delete_job(jobId="job3", force=True)
    got = notes(bus)
    assert [k for k, _ in got] == ["notify", "next"]
    assert got[0][1]["jobs"] == {}
    assert set(got[1][1]) == {"timestamp"}


def test_failed_calls_publish_nothing(iot, data, bus):
    things(iot, "dev")
    job(iot, "j", "dev")
    bus.clear()
    with pytest.raises(ClientError):
        data.update_job_execution(thingName="dev", jobId="j", status="IN_PROGRESS", expectedVersion=9)
    with pytest.raises(ClientError):
        iot.create_job(jobId="j", targets=[thing_arn("dev")], document=DOC)
    assert bus == []
