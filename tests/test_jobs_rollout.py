"""Time-driven jobs behaviour: rollout pacing, abort, timeouts, retries,
scheduling and maintenance windows, continuous jobs. Time moves through
POST /_localiot/clock and the jobs timer runs on the server thread."""

import json
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from localiot.services.context import RequestContext
from localiot.services.jobs import on_thing_added_to_group, on_thing_deleted, tick
from localiot.testing import ACCOUNT, advance, error_of, make_client

DOC = json.dumps({"operation": "test"})


def thing_arn(name):
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/{name}"


def group_arn(name):
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/{name}"


def run_tick(server):
    return server.call(tick, server.app.store, server.app.runtime)


def later(server, seconds):
    """Move the clock and run the timer, as the background task would."""
    advance(server, seconds)
    return run_tick(server)


def group_of(iot, group, count, prefix="t"):
    iot.create_thing_group(thingGroupName=group)
    names = [f"{prefix}{i}" for i in range(count)]
    for name in names:
        iot.create_thing(thingName=name)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)
    return names


def details(iot, job_id):
    return iot.describe_job(jobId=job_id)["job"]["jobProcessDetails"]


def statuses(iot, job_id):
    return {s["thingArn"].rsplit("/", 1)[1]: s["jobExecutionSummary"]["status"]
            for s in iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]}


@pytest.fixture
def data(localiot_server):
    return make_client(localiot_server, "iot-jobs-data")


@pytest.fixture
def bus(localiot_server):
    seen = []
    stop = localiot_server.app.bus.subscribe(lambda a, r, topic, payload: seen.append((topic, json.loads(payload))))
    yield seen
    stop()


# rollout pacing --------------------------------------------------------------------
def test_maximum_per_minute(iot, localiot_server):
    group_of(iot, "g", 5)
    iot.create_job(jobId="paced", targets=[group_arn("g")], document=DOC,
                   jobExecutionsRolloutConfig={"maximumPerMinute": 2})
    assert details(iot, "paced")["numberOfQueuedThings"] == 2
    job = iot.describe_job(jobId="paced")["job"]
    assert job["isConcurrent"] is True and job["jobProcessDetails"]["processingTargets"] == [group_arn("g")]
    run_tick(localiot_server)
    later(localiot_server, 30)
    assert details(iot, "paced")["numberOfQueuedThings"] == 2  # same minute
    later(localiot_server, 31)
    assert details(iot, "paced")["numberOfQueuedThings"] == 4
    later(localiot_server, 60)
    assert details(iot, "paced")["numberOfQueuedThings"] == 5
    job = iot.describe_job(jobId="paced")["job"]
    assert job["isConcurrent"] is False and "processingTargets" not in job["jobProcessDetails"]
    assert sorted(statuses(iot, "paced")) == [f"t{i}" for i in range(5)]


def test_exponential_rate_by_notified_things(iot, localiot_server):
    group_of(iot, "g", 20)
    iot.create_job(jobId="exp", targets=[group_arn("g")], document=DOC, jobExecutionsRolloutConfig={
        "exponentialRate": {"baseRatePerMinute": 1, "incrementFactor": 2,
                            "rateIncreaseCriteria": {"numberOfNotifiedThings": 2}}})
    queued = [details(iot, "exp")["numberOfQueuedThings"]]
    for _ in range(4):
        later(localiot_server, 60)
        queued.append(details(iot, "exp")["numberOfQueuedThings"])
    # the rate doubles for every 2 things notified (AWS: 1000, 2000, 3000 ... notified):
    # 1/min, then 2/min (2 notified), 4/min (4), 16/min (8 notified: 4 increments) for the last 12
    assert queued == [1, 2, 4, 8, 20]


def test_exponential_rate_by_succeeded_things(iot, data, localiot_server):
    group_of(iot, "g", 6)
    iot.create_job(jobId="exp", targets=[group_arn("g")], document=DOC, jobExecutionsRolloutConfig={
        "exponentialRate": {"baseRatePerMinute": 1, "incrementFactor": 3,
                            "rateIncreaseCriteria": {"numberOfSucceededThings": 1}}})
    assert statuses(iot, "exp") == {"t0": "QUEUED"}
    data.update_job_execution(thingName="t0", jobId="exp", status="SUCCEEDED")
    run_tick(localiot_server)  # a minute's rate is fixed when the minute starts
    assert statuses(iot, "exp") == {"t0": "SUCCEEDED"}
    later(localiot_server, 60)  # 1 succeeded: 3 per minute
    assert statuses(iot, "exp") == {"t0": "SUCCEEDED", "t1": "QUEUED", "t2": "QUEUED", "t3": "QUEUED"}
    later(localiot_server, 60)
    assert len(statuses(iot, "exp")) == 6


def test_update_job_changes_the_pace(iot, localiot_server):
    group_of(iot, "g", 5)
    iot.create_job(jobId="pace", targets=[group_arn("g")], document=DOC,
                   jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    iot.update_job(jobId="pace", jobExecutionsRolloutConfig={"maximumPerMinute": 3})
    run_tick(localiot_server)
    assert len(statuses(iot, "pace")) == 3


# abort ----------------------------------------------------------------------------------
def test_abort_cancels_queued_executions(iot, data, localiot_server, bus):
    group_of(iot, "g", 10)
    iot.update_event_configurations(eventConfigurations={"JOB": {"Enabled": True}})
    iot.create_job(jobId="abort", targets=[group_arn("g")], document=DOC, abortConfig={"criteriaList": [
        {"failureType": "REJECTED", "action": "CANCEL", "thresholdPercentage": 20, "minNumberOfExecutedThings": 5}]})
    data.start_next_pending_job_execution(thingName="t9")
    data.update_job_execution(thingName="t0", jobId="abort", status="REJECTED")
    assert iot.describe_job(jobId="abort")["job"]["status"] == "IN_PROGRESS"  # 10% < 20%
    data.update_job_execution(thingName="t1", jobId="abort", status="FAILED")  # another failure type
    assert iot.describe_job(jobId="abort")["job"]["status"] == "IN_PROGRESS"
    data.update_job_execution(thingName="t2", jobId="abort", status="REJECTED")
    job = iot.describe_job(jobId="abort")["job"]
    assert job["status"] == "CANCELED" and job["reasonCode"] == "ABORTED"
    assert "REJECTED" in job["comment"]
    found = details(iot, "abort")
    assert found["numberOfRejectedThings"] == 2 and found["numberOfFailedThings"] == 1
    assert found["numberOfCanceledThings"] == 6 and found["numberOfInProgressThings"] == 1
    assert "$aws/events/job/abort/canceled" in [t for t, _ in bus]
    # the running execution is not forced; it can still finish
    data.update_job_execution(thingName="t9", jobId="abort", status="SUCCEEDED")
    assert details(iot, "abort")["numberOfSucceededThings"] == 1


def test_abort_waits_for_min_executed_things(iot, data, localiot_server):
    group_of(iot, "g", 4)
    iot.create_job(jobId="early", targets=[group_arn("g")], document=DOC,
                   jobExecutionsRolloutConfig={"maximumPerMinute": 1},
                   abortConfig={"criteriaList": [{"failureType": "ALL", "action": "CANCEL",
                                                  "thresholdPercentage": 50, "minNumberOfExecutedThings": 2}]})
    data.update_job_execution(thingName="t0", jobId="early", status="FAILED")
    assert iot.describe_job(jobId="early")["job"]["status"] == "IN_PROGRESS"  # 1 notified < 2
    later(localiot_server, 60)  # t1 notified: 1 failure of 2 = 50%
    job = iot.describe_job(jobId="early")["job"]
    assert job["status"] == "CANCELED" and job["reasonCode"] == "ABORTED"
    assert statuses(iot, "early") == {"t0": "FAILED", "t1": "CANCELED"}
    later(localiot_server, 120)
    assert len(statuses(iot, "early")) == 2  # the rollout stopped


# timeouts and retries ---------------------------------------------------------------------
def test_in_progress_timeout(iot, data, localiot_server, bus):
    iot.create_thing(thingName="dev")
    iot.update_event_configurations(eventConfigurations={"JOB_EXECUTION": {"Enabled": True}})
    iot.create_job(jobId="slow", targets=[thing_arn("dev")], document=DOC,
                   timeoutConfig={"inProgressTimeoutInMinutes": 2})
    data.start_next_pending_job_execution(thingName="dev")
    later(localiot_server, 119)
    execution = iot.describe_job_execution(jobId="slow", thingName="dev")["execution"]
    assert execution["status"] == "IN_PROGRESS" and execution["approximateSecondsBeforeTimedOut"] <= 1
    bus.clear()
    later(localiot_server, 2)
    execution = iot.describe_job_execution(jobId="slow", thingName="dev")["execution"]
    assert execution["status"] == "TIMED_OUT" and "approximateSecondsBeforeTimedOut" not in execution
    job = iot.describe_job(jobId="slow")["job"]
    assert job["status"] == "COMPLETED" and job["jobProcessDetails"]["numberOfTimedOutThings"] == 1
    topics = [t for t, _ in bus]
    assert "$aws/events/jobExecution/slow/timed_out" in topics
    assert "$aws/things/dev/jobs/notify" in topics and "$aws/things/dev/jobs/notify-next" in topics
    with pytest.raises(ClientError) as e:
        data.update_job_execution(thingName="dev", jobId="slow", status="SUCCEEDED")
    assert error_of(e) == ("InvalidStateTransitionException", 409)


def test_step_timeout(iot, data, localiot_server):
    iot.create_thing(thingName="dev")
    iot.create_job(jobId="step", targets=[thing_arn("dev")], document=DOC)
    data.start_next_pending_job_execution(thingName="dev", stepTimeoutInMinutes=1)
    later(localiot_server, 50)
    data.update_job_execution(thingName="dev", jobId="step", status="IN_PROGRESS", stepTimeoutInMinutes=2)
    later(localiot_server, 60)  # the first step timer would have fired by now
    assert iot.describe_job_execution(jobId="step", thingName="dev")["execution"]["status"] == "IN_PROGRESS"
    later(localiot_server, 61)
    assert iot.describe_job_execution(jobId="step", thingName="dev")["execution"]["status"] == "TIMED_OUT"


def test_timer_survives_a_large_clock_jump(iot, data, localiot_server):
    iot.create_thing(thingName="dev")
    iot.create_job(jobId="jump", targets=[thing_arn("dev")], document=DOC,
                   timeoutConfig={"inProgressTimeoutInMinutes": 10})
    data.start_next_pending_job_execution(thingName="dev")
    run_tick(localiot_server)
    later(localiot_server, 3 * 24 * 3600)
    assert iot.describe_job_execution(jobId="jump", thingName="dev")["execution"]["status"] == "TIMED_OUT"


def test_retry_after_failure(iot, data, localiot_server, bus):
    iot.create_thing(thingName="dev")
    iot.create_job(jobId="retry", targets=[thing_arn("dev")], document=DOC,
                   jobExecutionsRetryConfig={"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 1}]})
    data.start_next_pending_job_execution(thingName="dev")
    bus.clear()
    out = data.update_job_execution(thingName="dev", jobId="retry", status="FAILED", includeJobExecutionState=True)
    assert out["executionState"]["status"] == "FAILED"
    current = iot.describe_job_execution(jobId="retry", thingName="dev")["execution"]
    assert current["status"] == "QUEUED" and current["executionNumber"] == 2 and current["versionNumber"] == 1
    first = iot.describe_job_execution(jobId="retry", thingName="dev", executionNumber=1)["execution"]
    assert first["status"] == "FAILED"
    summary = iot.list_job_executions_for_thing(thingName="dev")["executionSummaries"][0]["jobExecutionSummary"]
    assert summary["retryAttempt"] == 1 and summary["executionNumber"] == 2
    nxt = [p for t, p in bus if t == "$aws/things/dev/jobs/notify-next"]
    assert nxt[-1]["execution"]["executionNumber"] == 2  # devices hear about the retry
    assert details(iot, "retry")["numberOfQueuedThings"] == 1
    with pytest.raises(ClientError) as e:  # the failed attempt is closed
        data.update_job_execution(thingName="dev", jobId="retry", status="SUCCEEDED", executionNumber=1)
    assert error_of(e) == ("InvalidStateTransitionException", 409)
    # the second failure has no retry left
    data.update_job_execution(thingName="dev", jobId="retry", status="FAILED")
    current = iot.describe_job_execution(jobId="retry", thingName="dev")["execution"]
    assert current["status"] == "FAILED" and current["executionNumber"] == 2
    job = iot.describe_job(jobId="retry")["job"]
    assert job["status"] == "COMPLETED" and job["jobProcessDetails"]["numberOfFailedThings"] == 1


def test_retry_after_timeout(iot, data, localiot_server):
    iot.create_thing(thingName="dev")
    iot.create_job(jobId="rt", targets=[thing_arn("dev")], document=DOC,
                   timeoutConfig={"inProgressTimeoutInMinutes": 1},
                   jobExecutionsRetryConfig={"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 2}]})
    data.start_next_pending_job_execution(thingName="dev")
    later(localiot_server, 61)
    current = iot.describe_job_execution(jobId="rt", thingName="dev")["execution"]
    assert current["status"] == "QUEUED" and current["executionNumber"] == 2
    data.start_next_pending_job_execution(thingName="dev")
    data.update_job_execution(thingName="dev", jobId="rt", status="FAILED")  # not retried: only TIMED_OUT is
    assert iot.describe_job(jobId="rt")["job"]["status"] == "COMPLETED"
    assert iot.describe_job_execution(jobId="rt", thingName="dev", executionNumber=1)["execution"]["status"] == "TIMED_OUT"


# scheduling --------------------------------------------------------------------------------
def at_offset(seconds):
    import time

    return datetime.fromtimestamp(time.time() + seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M")


def test_scheduled_start(iot, data, localiot_server):
    iot.create_thing(thingName="dev")
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="soon", targets=[thing_arn("dev")], document=DOC,
                       schedulingConfig={"startTime": at_offset(10 * 60)})
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="garbled", targets=[thing_arn("dev")], document=DOC,
                       schedulingConfig={"startTime": "tomorrow"})
    assert error_of(e) == ("InvalidRequestException", 400)
    iot.create_job(jobId="sched", targets=[thing_arn("dev")], document=DOC,
                   schedulingConfig={"startTime": at_offset(40 * 60)})
    job = iot.describe_job(jobId="sched")["job"]
    assert job["status"] == "SCHEDULED" and job["schedulingConfig"]["startTime"] == at_offset(40 * 60)
    assert [j["jobId"] for j in iot.list_jobs(status="SCHEDULED")["jobs"]] == ["sched"]
    assert data.get_pending_job_executions(thingName="dev")["queuedJobs"] == []
    later(localiot_server, 20 * 60)
    assert iot.describe_job(jobId="sched")["job"]["status"] == "SCHEDULED"
    later(localiot_server, 21 * 60)
    assert iot.describe_job(jobId="sched")["job"]["status"] == "IN_PROGRESS"
    assert [j["jobId"] for j in data.get_pending_job_executions(thingName="dev")["queuedJobs"]] == ["sched"]


@pytest.mark.parametrize("behavior,expected", [
    ("CANCEL", {"t0": "IN_PROGRESS", "t1": "CANCELED"}),
    ("FORCE_CANCEL", {"t0": "CANCELED", "t1": "CANCELED"}),
    ("STOP_ROLLOUT", {"t0": "IN_PROGRESS", "t1": "QUEUED"}),
])
def test_end_behavior(iot, data, localiot_server, behavior, expected):
    group_of(iot, "g", 4)
    iot.create_job(jobId="ends", targets=[group_arn("g")], document=DOC,
                   jobExecutionsRolloutConfig={"maximumPerMinute": 2},
                   schedulingConfig={"endTime": at_offset(40 * 60), "endBehavior": behavior})
    data.start_next_pending_job_execution(thingName="t0")
    later(localiot_server, 41 * 60)
    assert statuses(iot, "ends") == expected  # t2 and t3 were never rolled out
    job = iot.describe_job(jobId="ends")["job"]
    if behavior == "STOP_ROLLOUT":
        assert job["status"] == "IN_PROGRESS" and job["isConcurrent"] is False
        data.update_job_execution(thingName="t0", jobId="ends", status="SUCCEEDED")
        data.update_job_execution(thingName="t1", jobId="ends", status="SUCCEEDED")
        assert iot.describe_job(jobId="ends")["job"]["status"] == "COMPLETED"
    else:
        assert job["status"] == "CANCELED" and job["forceCanceled"] is (behavior == "FORCE_CANCEL")


def test_maintenance_windows(iot, data, localiot_server):
    iot.create_thing(thingName="dev")
    now = advance(localiot_server, 0)
    start = datetime.fromtimestamp(now + 3600, timezone.utc)
    cron = f"cron({start.minute} {start.hour} * * ? *)"  # daily, an hour from now, for 30 minutes
    iot.create_job(jobId="win", targets=[thing_arn("dev")], document=DOC,
                   schedulingConfig={"maintenanceWindows": [{"startTime": cron, "durationInMinutes": 30}]})
    job = iot.describe_job(jobId="win")["job"]
    assert job["status"] == "SCHEDULED"
    rollouts = [r["startTime"] for r in job["scheduledJobRollouts"]]
    assert len(rollouts) == 7 and rollouts[0] == start.strftime("%Y-%m-%dT%H:%M")
    later(localiot_server, 3600 + 60)
    assert iot.describe_job(jobId="win")["job"]["status"] == "IN_PROGRESS"
    assert [j["jobId"] for j in data.get_pending_job_executions(thingName="dev")["queuedJobs"]] == ["win"]
    later(localiot_server, 30 * 60)  # the window closed: rollout pauses, the execution is hidden
    assert iot.describe_job(jobId="win")["job"]["status"] == "SCHEDULED"
    assert data.get_pending_job_executions(thingName="dev")["queuedJobs"] == []
    later(localiot_server, 23 * 3600 + 31 * 60)  # into the next day's window
    assert iot.describe_job(jobId="win")["job"]["status"] == "IN_PROGRESS"
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="badcron", targets=[thing_arn("dev")], document=DOC,
                       schedulingConfig={"maintenanceWindows": [{"startTime": "cron(0 0 * * * *)",
                                                                 "durationInMinutes": 30}]})
    assert error_of(e) == ("InvalidRequestException", 400)


# continuous jobs -----------------------------------------------------------------------------
def through_hook(server, hook, *args):
    """Call a registry hook in a call's transaction, as the registry modules will."""

    def run():
        app = server.app
        with app.store.transaction(ACCOUNT, "us-east-1") as tx:
            ctx = RequestContext(ACCOUNT, "us-east-1", tx, app.runtime, "iot", hook.__name__)
            hook(ctx, *args)
        for topic, payload in ctx.events:
            app.bus.publish(ACCOUNT, "us-east-1", topic, payload)

    server.call(run)


def add_through_hook(server, group, thing):
    through_hook(server, on_thing_added_to_group, group, thing)


def test_continuous_job_reaches_later_members(iot, data, localiot_server, bus):
    iot.create_thing_group(thingGroupName="fleet")
    iot.create_thing_group(thingGroupName="sub", parentGroupName="fleet")
    iot.create_thing(thingName="first")
    iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="first")
    iot.create_job(jobId="cont", targets=[group_arn("fleet")], document=DOC, targetSelection="CONTINUOUS",
                   jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    data.update_job_execution(thingName="first", jobId="cont", status="SUCCEEDED")
    assert iot.describe_job(jobId="cont")["job"]["status"] == "IN_PROGRESS"  # continuous jobs stay open

    bus.clear()
    iot.create_thing(thingName="late")
    iot.add_thing_to_thing_group(thingGroupName="sub", thingName="late")
    run_tick(localiot_server)  # the timer follows membership on its own
    assert statuses(iot, "cont") == {"first": "SUCCEEDED", "late": "QUEUED"}
    assert "$aws/things/late/jobs/notify-next" in [t for t, _ in bus]

    # the hook gives it at once, past the rollout pacing
    for name in ("hooked1", "hooked2"):
        iot.create_thing(thingName=name)
        iot.add_thing_to_thing_group(thingGroupName="fleet", thingName=name)
        add_through_hook(localiot_server, "fleet", name)
    assert statuses(iot, "cont")["hooked2"] == "QUEUED"

    # leaving the group before starting: REMOVED; coming back: a new execution
    iot.remove_thing_from_thing_group(thingGroupName="sub", thingName="late")
    run_tick(localiot_server)
    assert statuses(iot, "cont")["late"] == "REMOVED"
    assert details(iot, "cont")["numberOfRemovedThings"] == 1
    iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="late")
    run_tick(localiot_server)
    execution = iot.describe_job_execution(jobId="cont", thingName="late")["execution"]
    assert execution["status"] == "QUEUED" and execution["executionNumber"] == 2
    # a thing that already ran the job does not run it again when it rejoins
    iot.remove_thing_from_thing_group(thingGroupName="fleet", thingName="first")
    run_tick(localiot_server)
    iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="first")
    run_tick(localiot_server)
    assert iot.describe_job_execution(jobId="cont", thingName="first")["execution"]["executionNumber"] == 1


def test_deleted_thing_leaves_its_jobs(iot, data, localiot_server):
    group_of(iot, "g", 3)
    iot.create_job(jobId="snap", targets=[group_arn("g")], document=DOC,
                   jobExecutionsRolloutConfig={"maximumPerMinute": 2})
    data.start_next_pending_job_execution(thingName="t1")
    data.update_job_execution(thingName="t0", jobId="snap", status="SUCCEEDED")
    for name in ("t1", "t2"):  # t1 is running, t2 still waits for the rollout
        iot.delete_thing(thingName=name)
        through_hook(localiot_server, on_thing_deleted, name)
    job = iot.describe_job(jobId="snap")["job"]
    assert job["status"] == "COMPLETED" and job["isConcurrent"] is False
    assert statuses(iot, "snap") == {"t0": "SUCCEEDED", "t1": "REMOVED"}
    assert job["jobProcessDetails"]["numberOfRemovedThings"] == 1


# end to end -------------------------------------------------------------------------------------
def test_end_to_end_group_rollout_with_abort(iot, data, localiot_server, bus):
    """8 devices under a thing group hierarchy, an exponential rollout, a
    retry config, a timeout and abort criteria, driven by simulated devices."""
    iot.create_thing_group(thingGroupName="plant")
    iot.create_thing_group(thingGroupName="line2", parentGroupName="plant")
    names = [f"d{i}" for i in range(8)]
    for i, name in enumerate(names):
        iot.create_thing(thingName=name)
        iot.add_thing_to_thing_group(thingGroupName="plant" if i < 4 else "line2", thingName=name)
    iot.update_event_configurations(eventConfigurations={"JOB": {"Enabled": True},
                                                         "JOB_EXECUTION": {"Enabled": True}})
    iot.create_job(
        jobId="ota", targets=[group_arn("plant")], document=json.dumps({"firmware": "2.0"}),
        jobExecutionsRolloutConfig={"exponentialRate": {
            "baseRatePerMinute": 2, "incrementFactor": 2, "rateIncreaseCriteria": {"numberOfSucceededThings": 2}}},
        abortConfig={"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                                       "thresholdPercentage": 50, "minNumberOfExecutedThings": 8}]},
        jobExecutionsRetryConfig={"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 1}]},
        timeoutConfig={"inProgressTimeoutInMinutes": 5})

    def device(name, outcome, details=None):
        """A device: learn about the job, start it, report progress, finish."""
        pending = data.get_pending_job_executions(thingName=name)
        assert [j["jobId"] for j in pending["queuedJobs"]] == ["ota"]
        execution = data.start_next_pending_job_execution(thingName=name, statusDetails={"step": "download"})["execution"]
        assert json.loads(execution["jobDocument"]) == {"firmware": "2.0"}
        version = execution["versionNumber"]
        state = data.update_job_execution(thingName=name, jobId="ota", status="IN_PROGRESS", expectedVersion=version,
                                          statusDetails={"step": "install"}, includeJobExecutionState=True)
        if outcome is None:
            return
        data.update_job_execution(thingName=name, jobId="ota", status=outcome,
                                  expectedVersion=state["executionState"]["versionNumber"],
                                  statusDetails=details or {"step": "done"})

    # minute 0: base rate 2
    assert sorted(statuses(iot, "ota")) == ["d0", "d1"]
    device("d0", "SUCCEEDED")
    device("d1", "FAILED")  # retried once...
    assert iot.describe_job_execution(jobId="ota", thingName="d1")["execution"]["executionNumber"] == 2
    device("d1", "SUCCEEDED")  # ...and succeeds
    later(localiot_server, 60)  # 2 succeeded: the rate doubles to 4 for the next minute
    assert sorted(statuses(iot, "ota")) == [f"d{i}" for i in range(6)]
    assert iot.describe_job(jobId="ota")["job"]["isConcurrent"] is True
    device("d2", None)  # starts, then goes silent
    device("d3", "SUCCEEDED")
    device("d4", "FAILED")  # 2 failures of 6 notified: below minNumberOfExecutedThings
    later(localiot_server, 5 * 60 + 1)  # d2 times out; a new minute: the last 2 roll out
    found = details(iot, "ota")
    assert found["numberOfTimedOutThings"] == 1 and found["numberOfQueuedThings"] == 4  # d4's retry, d5-d7
    assert iot.describe_job(jobId="ota")["job"]["isConcurrent"] is False
    device("d7", None)
    device("d5", "FAILED")
    assert iot.describe_job(jobId="ota")["job"]["status"] == "IN_PROGRESS"  # 3 of 8 failed
    device("d6", "FAILED")  # 4 of 8 = 50%: abort
    job = iot.describe_job(jobId="ota")["job"]
    assert job["status"] == "CANCELED" and job["reasonCode"] == "ABORTED"
    data.update_job_execution(thingName="d7", jobId="ota", status="SUCCEEDED")  # not forced: still finishes
    assert statuses(iot, "ota") == {"d0": "SUCCEEDED", "d1": "SUCCEEDED", "d2": "TIMED_OUT", "d3": "SUCCEEDED",
                                    "d4": "CANCELED", "d5": "CANCELED", "d6": "CANCELED", "d7": "SUCCEEDED"}
    found = details(iot, "ota")
    assert (found["numberOfSucceededThings"], found["numberOfTimedOutThings"], found["numberOfCanceledThings"],
            found["numberOfQueuedThings"], found["numberOfInProgressThings"]) == (4, 1, 3, 0, 0)
    for name in ("d4", "d5", "d6"):
        assert iot.describe_job_execution(jobId="ota", thingName=name, executionNumber=1)["execution"]["status"] == "FAILED"
    topics = [t for t, _ in bus]
    assert topics.count("$aws/events/jobExecution/ota/failed") == 4
    assert topics.count("$aws/events/jobExecution/ota/timed_out") == 1
    assert "$aws/events/job/ota/canceled" in topics
    for name in names:
        pending = data.get_pending_job_executions(thingName=name)
        assert pending["inProgressJobs"] == [] and pending["queuedJobs"] == []
