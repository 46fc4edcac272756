"""Jobs control plane through boto3 against the real server: CreateJob,
DescribeJob, GetJobDocument, ListJobs, UpdateJob, CancelJob, DeleteJob,
AssociateTargetsWithJob, job templates and AWS managed templates, job events."""

import json

import pytest
from botocore.exceptions import ClientError

from localiot.services.jobs import model, tick
from localiot.testing import ACCOUNT, error_of, make_client

DOC = json.dumps({"operation": "update", "version": "2.0"})


def thing_arn(name):
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/{name}"


def group_arn(name):
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/{name}"


def things(iot, *names, group=None):
    for name in names:
        iot.create_thing(thingName=name)
        if group:
            iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)


def run_tick(server):
    return server.call(tick, server.app.store, server.app.runtime)


@pytest.fixture
def data(localiot_server):
    return make_client(localiot_server, "iot-jobs-data")


@pytest.fixture
def bus(localiot_server):
    seen = []
    stop = localiot_server.app.bus.subscribe(lambda a, r, topic, payload: seen.append((topic, json.loads(payload))))
    yield seen
    stop()


# create / describe ---------------------------------------------------------------
def test_create_and_describe_job(iot):
    things(iot, "t1", "t2")
    out = iot.create_job(jobId="job-1", targets=[thing_arn("t1"), thing_arn("t2")], document=DOC,
                         description="firmware 2.0", tags=[{"Key": "team", "Value": "ops"}])
    assert out["jobId"] == "job-1"
    assert out["jobArn"] == f"arn:aws:iot:us-east-1:{ACCOUNT}:job/job-1"
    assert out["description"] == "firmware 2.0"
    job = iot.describe_job(jobId="job-1")["job"]
    assert job["status"] == "IN_PROGRESS"
    assert job["targetSelection"] == "SNAPSHOT"
    assert job["targets"] == [thing_arn("t1"), thing_arn("t2")]
    assert job["isConcurrent"] is False
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 2
    assert job["jobProcessDetails"]["numberOfSucceededThings"] == 0
    assert "processingTargets" not in job["jobProcessDetails"]
    assert job["createdAt"] == job["lastUpdatedAt"] or job["createdAt"] <= job["lastUpdatedAt"]
    assert "completedAt" not in job
    assert iot.get_job_document(jobId="job-1")["document"] == DOC
    assert iot.list_tags_for_resource(resourceArn=out["jobArn"])["tags"] == [{"Key": "team", "Value": "ops"}]


def test_create_job_errors(iot):
    things(iot, "t1")
    iot.create_job(jobId="dup", targets=[thing_arn("t1")], document=DOC)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="dup", targets=[thing_arn("t1")], document=DOC)
    assert error_of(e) == ("ResourceAlreadyExistsException", 409)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="nodoc", targets=[thing_arn("t1")])
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="both", targets=[thing_arn("t1")], document=DOC, documentSource="s3://b/k")
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="bad id!", targets=[thing_arn("t1")], document=DOC)
    assert error_of(e)[1] == 400
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="big", targets=[thing_arn("t1")], document="x" * 32769)
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="ghost", targets=[thing_arn("nope")], document=DOC)
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="ghostgroup", targets=[group_arn("nope")], document=DOC)
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="badarn", targets=["not-an-arn"], document=DOC)
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="otheraccount", targets=["arn:aws:iot:us-east-1:999999999999:thing/t1"], document=DOC)
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="policy", targets=[f"arn:aws:iot:us-east-1:{ACCOUNT}:policy/p"], document=DOC)
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="timeout", targets=[thing_arn("t1")], document=DOC,
                       timeoutConfig={"inProgressTimeoutInMinutes": 10081})
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="retry", targets=[thing_arn("t1")], document=DOC, jobExecutionsRetryConfig={
            "criteriaList": [{"failureType": "FAILED", "numberOfRetries": 1},
                             {"failureType": "FAILED", "numberOfRetries": 2}]})
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="rate", targets=[thing_arn("t1")], document=DOC, jobExecutionsRolloutConfig={
            "exponentialRate": {"baseRatePerMinute": 1, "incrementFactor": 2, "rateIncreaseCriteria": {}}})
    assert error_of(e) == ("InvalidRequestException", 400)
    # nothing was created by the failed calls
    assert [j["jobId"] for j in iot.list_jobs()["jobs"]] == ["dup"]


def test_targets_per_job_limit(iot):
    things(iot, "t1")
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="many", targets=[thing_arn(f"t{i}") for i in range(101)], document=DOC)
    assert error_of(e) == ("LimitExceededException", 410)


def test_group_target_reaches_descendant_groups(iot):
    iot.create_thing_group(thingGroupName="fleet")
    iot.create_thing_group(thingGroupName="floor1", parentGroupName="fleet")
    iot.create_thing_group(thingGroupName="room", parentGroupName="floor1")
    iot.create_thing_group(thingGroupName="other")
    things(iot, "a", group="fleet")
    things(iot, "b", group="floor1")
    things(iot, "c", group="room")
    things(iot, "d", group="other")
    things(iot, "e")
    iot.create_job(jobId="fleet-job", targets=[group_arn("fleet"), thing_arn("e"), thing_arn("a")], document=DOC)
    listed = iot.list_job_executions_for_job(jobId="fleet-job")["executionSummaries"]
    assert sorted(s["thingArn"] for s in listed) == [thing_arn(n) for n in "abce"]
    assert all(s["jobExecutionSummary"]["status"] == "QUEUED" for s in listed)
    assert all(s["jobExecutionSummary"]["executionNumber"] == 1 for s in listed)
    summary = iot.list_jobs(thingGroupName="fleet")["jobs"]
    assert [j["jobId"] for j in summary] == ["fleet-job"]
    fleet_id = iot.describe_thing_group(thingGroupName="fleet")["thingGroupId"]
    assert summary[0]["thingGroupId"] == fleet_id
    assert [j["jobId"] for j in iot.list_jobs(thingGroupId=fleet_id)["jobs"]] == ["fleet-job"]
    assert iot.list_jobs(thingGroupName="other")["jobs"] == []


def test_snapshot_job_ignores_later_members(iot, localiot_server):
    iot.create_thing_group(thingGroupName="g")
    things(iot, "first", group="g")
    iot.create_job(jobId="snap", targets=[group_arn("g")], document=DOC)
    things(iot, "late", group="g")
    run_tick(localiot_server)
    listed = iot.list_job_executions_for_job(jobId="snap")["executionSummaries"]
    assert [s["thingArn"] for s in listed] == [thing_arn("first")]


def test_list_jobs_filters_and_pages(iot, localiot_server):
    things(iot, "t1")
    iot.create_thing_group(thingGroupName="g")
    for i in range(5):
        iot.create_job(jobId=f"job{i}", targets=[thing_arn("t1")], document=DOC)
        localiot_server.clock.advance(1)
    iot.create_job(jobId="cont", targets=[group_arn("g")], document=DOC, targetSelection="CONTINUOUS")
    iot.create_job(jobId="ns", targets=[thing_arn("t1")], document=DOC, namespaceId="aws-gg-deployment")
    iot.cancel_job(jobId="job1")
    ids = [j["jobId"] for j in iot.list_jobs()["jobs"]]
    assert ids == ["cont", "job0", "job1", "job2", "job3", "job4", "ns"]  # the one list order: by name
    seen, token = [], None
    while True:
        page = iot.list_jobs(maxResults=3, **({"nextToken": token} if token else {}))
        assert len(page["jobs"]) <= 3
        seen += [j["jobId"] for j in page["jobs"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == ids
    assert [j["jobId"] for j in iot.list_jobs(status="CANCELED")["jobs"]] == ["job1"]
    assert [j["jobId"] for j in iot.list_jobs(targetSelection="CONTINUOUS")["jobs"]] == ["cont"]
    assert [j["jobId"] for j in iot.list_jobs(namespaceId="aws-gg-deployment")["jobs"]] == ["ns"]
    summary = iot.list_jobs(status="CANCELED")["jobs"][0]
    assert summary["status"] == "CANCELED" and summary["targetSelection"] == "SNAPSHOT"
    assert summary["isConcurrent"] is False
    assert summary["jobArn"].endswith(":job/job1")


# update / cancel / delete --------------------------------------------------------
def test_update_job(iot):
    things(iot, "t1")
    iot.create_job(jobId="u", targets=[thing_arn("t1")], document=DOC, description="before")
    before = iot.describe_job(jobId="u")["job"]
    iot.update_job(jobId="u", description="after", timeoutConfig={"inProgressTimeoutInMinutes": 30},
                   abortConfig={"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                                                  "thresholdPercentage": 50, "minNumberOfExecutedThings": 10}]},
                   jobExecutionsRetryConfig={"criteriaList": [{"failureType": "ALL", "numberOfRetries": 2}]},
                   jobExecutionsRolloutConfig={"maximumPerMinute": 100},
                   presignedUrlConfig={"expiresInSec": 600})
    job = iot.describe_job(jobId="u")["job"]
    assert job["description"] == "after"
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    assert job["abortConfig"]["criteriaList"][0]["thresholdPercentage"] == 50
    assert job["jobExecutionsRetryConfig"]["criteriaList"] == [{"failureType": "ALL", "numberOfRetries": 2}]
    assert job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 100}
    assert job["presignedUrlConfig"] == {"expiresInSec": 600}
    assert job["lastUpdatedAt"] >= before["lastUpdatedAt"]
    with pytest.raises(ClientError) as e:
        iot.update_job(jobId="u", timeoutConfig={"inProgressTimeoutInMinutes": 0})
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.update_job(jobId="missing", description="x")
    assert error_of(e) == ("ResourceNotFoundException", 404)


def test_cancel_job(iot, data):
    things(iot, "t1", "t2", "t3")
    iot.create_job(jobId="c", targets=[thing_arn(n) for n in ("t1", "t2", "t3")], document=DOC)
    data.start_next_pending_job_execution(thingName="t1")
    data.update_job_execution(thingName="t2", jobId="c", status="SUCCEEDED")
    out = iot.cancel_job(jobId="c", reasonCode="BAD_FIRMWARE", comment="stop it")
    assert out["jobId"] == "c"
    job = iot.describe_job(jobId="c")["job"]
    assert job["status"] == "CANCELED"
    assert job["reasonCode"] == "BAD_FIRMWARE" and job["comment"] == "stop it"
    assert job["forceCanceled"] is False
    details = job["jobProcessDetails"]
    assert (details["numberOfCanceledThings"], details["numberOfInProgressThings"],
            details["numberOfSucceededThings"]) == (1, 1, 1)
    # the running device can still finish without force
    assert data.describe_job_execution(thingName="t1", jobId="c")["execution"]["status"] == "IN_PROGRESS"
    # a second cancel without force changes nothing; with force the running execution goes
    iot.cancel_job(jobId="c")
    iot.cancel_job(jobId="c", force=True)
    job = iot.describe_job(jobId="c")["job"]
    assert job["forceCanceled"] is True
    assert job["jobProcessDetails"]["numberOfCanceledThings"] == 2
    execution = iot.describe_job_execution(jobId="c", thingName="t1")["execution"]
    assert execution["status"] == "CANCELED" and execution["forceCanceled"] is True
    with pytest.raises(ClientError) as e:
        data.update_job_execution(thingName="t1", jobId="c", status="SUCCEEDED")
    assert error_of(e) == ("InvalidStateTransitionException", 409)
    with pytest.raises(ClientError) as e:
        iot.cancel_job(jobId="missing")
    assert error_of(e) == ("ResourceNotFoundException", 404)


def test_cancel_completed_job_is_refused(iot, data):
    things(iot, "t1")
    iot.create_job(jobId="done", targets=[thing_arn("t1")], document=DOC)
    data.update_job_execution(thingName="t1", jobId="done", status="SUCCEEDED")
    job = iot.describe_job(jobId="done")["job"]
    assert job["status"] == "COMPLETED" and "completedAt" in job
    with pytest.raises(ClientError) as e:
        iot.cancel_job(jobId="done")
    assert error_of(e) == ("InvalidRequestException", 400)


def test_delete_job(iot, data):
    things(iot, "t1")
    iot.create_job(jobId="d", targets=[thing_arn("t1")], document=DOC, tags=[{"Key": "k", "Value": "v"}])
    with pytest.raises(ClientError) as e:
        iot.delete_job(jobId="d")
    assert error_of(e) == ("InvalidStateTransitionException", 409)
    data.start_next_pending_job_execution(thingName="t1")
    iot.delete_job(jobId="d", force=True)
    with pytest.raises(ClientError) as e:
        iot.describe_job(jobId="d")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        iot.describe_job_execution(jobId="d", thingName="t1")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        iot.get_job_document(jobId="d")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    assert data.get_pending_job_executions(thingName="t1")["inProgressJobs"] == []
    with pytest.raises(ClientError) as e:
        data.update_job_execution(thingName="t1", jobId="d", status="SUCCEEDED")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    # the id can be used again, without the old tags
    iot.create_job(jobId="d", targets=[thing_arn("t1")], document=DOC)
    assert iot.list_tags_for_resource(resourceArn=f"arn:aws:iot:us-east-1:{ACCOUNT}:job/d")["tags"] == []
    iot.cancel_job(jobId="d")
    iot.delete_job(jobId="d")  # a canceled job is deleted without force
    assert iot.list_jobs()["jobs"] == []
    with pytest.raises(ClientError) as e:
        iot.delete_job(jobId="d")
    assert error_of(e) == ("ResourceNotFoundException", 404)


def test_deletions_in_progress_limit(iot, localiot_server, monkeypatch):
    things(iot, "t1")
    monkeypatch.setattr(model.Limits, "DELETE_PER_CALL", 0)
    monkeypatch.setattr(model.Limits, "DELETE_PER_TICK", 0)
    for i in range(10):
        iot.create_job(jobId=f"d{i}", targets=[thing_arn("t1")], document=DOC)
        iot.delete_job(jobId=f"d{i}", force=True)
    assert iot.describe_job(jobId="d0")["job"]["status"] == "DELETION_IN_PROGRESS"
    assert len(iot.list_jobs(status="DELETION_IN_PROGRESS")["jobs"]) == 10
    iot.create_job(jobId="d10", targets=[thing_arn("t1")], document=DOC)
    with pytest.raises(ClientError) as e:
        iot.delete_job(jobId="d10", force=True)
    assert error_of(e) == ("LimitExceededException", 410)
    with pytest.raises(ClientError) as e:
        iot.delete_job(jobId="d0", force=True)
    assert error_of(e) == ("InvalidStateTransitionException", 409)
    with pytest.raises(ClientError) as e:
        iot.cancel_job(jobId="d0")
    assert error_of(e) == ("InvalidRequestException", 400)
    # the timer finishes the deletions
    monkeypatch.setattr(model.Limits, "DELETE_PER_TICK", 1000)
    run_tick(localiot_server)
    assert [j["jobId"] for j in iot.list_jobs()["jobs"]] == ["d10"]


def test_concurrent_jobs_limit(iot, monkeypatch):
    monkeypatch.setattr(model.Limits, "CONCURRENT_JOBS", 1)
    things(iot, "t1", "t2")
    iot.create_job(jobId="slow", targets=[thing_arn("t1"), thing_arn("t2")], document=DOC,
                   jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    job = iot.describe_job(jobId="slow")["job"]
    assert job["isConcurrent"] is True
    assert job["jobProcessDetails"]["processingTargets"] == [thing_arn("t1"), thing_arn("t2")]
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 1
    assert iot.list_jobs()["jobs"][0]["isConcurrent"] is True
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="second", targets=[thing_arn("t1")], document=DOC)
    assert error_of(e) == ("LimitExceededException", 410)
    iot.cancel_job(jobId="slow")  # canceling stops the rollout, so the job is no longer concurrent
    assert iot.describe_job(jobId="slow")["job"]["isConcurrent"] is False
    iot.create_job(jobId="second", targets=[thing_arn("t1")], document=DOC)


def test_associate_targets_with_continuous_job(iot):
    iot.create_thing_group(thingGroupName="g1")
    iot.create_thing_group(thingGroupName="g2")
    things(iot, "a", group="g1")
    things(iot, "b", group="g2")
    things(iot, "c")
    iot.create_job(jobId="cont", targets=[group_arn("g1")], document=DOC, targetSelection="CONTINUOUS",
                   description="continuous")
    out = iot.associate_targets_with_job(jobId="cont", targets=[group_arn("g2"), thing_arn("c")], comment="more")
    assert out == {**{k: out[k] for k in ("ResponseMetadata",)}, "jobId": "cont", "description": "continuous",
                   "jobArn": f"arn:aws:iot:us-east-1:{ACCOUNT}:job/cont"}
    job = iot.describe_job(jobId="cont")["job"]
    assert job["targets"] == [group_arn("g1"), group_arn("g2"), thing_arn("c")]
    assert job["comment"] == "more"
    listed = iot.list_job_executions_for_job(jobId="cont")["executionSummaries"]
    assert sorted(s["thingArn"] for s in listed) == [thing_arn("a"), thing_arn("b"), thing_arn("c")]
    iot.create_job(jobId="snap", targets=[thing_arn("a")], document=DOC)
    with pytest.raises(ClientError) as e:
        iot.associate_targets_with_job(jobId="snap", targets=[group_arn("g2")])
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.associate_targets_with_job(jobId="cont", targets=[thing_arn(f"x{i}") for i in range(98)])
    assert error_of(e) == ("LimitExceededException", 410)
    with pytest.raises(ClientError) as e:
        iot.associate_targets_with_job(jobId="missing", targets=[group_arn("g2")])
    assert error_of(e) == ("ResourceNotFoundException", 404)
    iot.cancel_job(jobId="cont")
    with pytest.raises(ClientError) as e:
        iot.associate_targets_with_job(jobId="cont", targets=[group_arn("g2")])
    assert error_of(e) == ("InvalidRequestException", 400)


def test_tag_untag_job(iot):
    things(iot, "t1")
    arn = iot.create_job(jobId="tagged", targets=[thing_arn("t1")], document=DOC)["jobArn"]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    iot.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as e:
        iot.tag_resource(resourceArn=arn.replace("tagged", "other"), tags=[{"Key": "a", "Value": "1"}])
    assert error_of(e) == ("ResourceNotFoundException", 404)


# job templates ---------------------------------------------------------------------
def test_job_templates(iot):
    things(iot, "t1")
    out = iot.create_job_template(
        jobTemplateId="tpl", description="reboot all", document=DOC,
        timeoutConfig={"inProgressTimeoutInMinutes": 10},
        jobExecutionsRetryConfig={"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 3}]},
        maintenanceWindows=[{"startTime": "cron(0 2 ? * SUN *)", "durationInMinutes": 60}],
        tags=[{"Key": "k", "Value": "v"}])
    arn = f"arn:aws:iot:us-east-1:{ACCOUNT}:jobtemplate/tpl"
    assert out["jobTemplateArn"] == arn and out["jobTemplateId"] == "tpl"
    described = iot.describe_job_template(jobTemplateId="tpl")
    assert described["document"] == DOC and described["description"] == "reboot all"
    assert described["timeoutConfig"] == {"inProgressTimeoutInMinutes": 10}
    assert described["maintenanceWindows"] == [{"startTime": "cron(0 2 ? * SUN *)", "durationInMinutes": 60}]
    assert "createdAt" in described
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "k", "Value": "v"}]
    with pytest.raises(ClientError) as e:
        iot.create_job_template(jobTemplateId="tpl", description="again", document=DOC)
    assert error_of(e) == ("ConflictException", 409)
    with pytest.raises(ClientError) as e:
        iot.create_job_template(jobTemplateId="nodoc", description="x")
    assert error_of(e) == ("InvalidRequestException", 400)

    # a job from the template takes its document and the configs the request leaves out
    iot.create_job(jobId="from-tpl", targets=[thing_arn("t1")], jobTemplateArn=arn,
                   timeoutConfig={"inProgressTimeoutInMinutes": 5})
    job = iot.describe_job(jobId="from-tpl")["job"]
    assert job["jobTemplateArn"] == arn
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 5}
    assert job["jobExecutionsRetryConfig"]["criteriaList"][0]["numberOfRetries"] == 3
    assert job["schedulingConfig"]["maintenanceWindows"][0]["durationInMinutes"] == 60
    assert iot.get_job_document(jobId="from-tpl")["document"] == DOC
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="tpl-and-doc", targets=[thing_arn("t1")], jobTemplateArn=arn, document=DOC)
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="tpl-params", targets=[thing_arn("t1")], jobTemplateArn=arn,
                       documentParameters={"a": "b"})
    assert error_of(e) == ("InvalidRequestException", 400)

    # a template made from a job copies its document and configs
    iot.create_job_template(jobTemplateId="copy", description="copied", jobArn=f"arn:aws:iot:us-east-1:{ACCOUNT}:job/from-tpl")
    copied = iot.describe_job_template(jobTemplateId="copy")
    assert copied["document"] == DOC and copied["timeoutConfig"] == {"inProgressTimeoutInMinutes": 5}

    page = iot.list_job_templates(maxResults=1)
    assert len(page["jobTemplates"]) == 1 and page.get("nextToken")
    rest = iot.list_job_templates(nextToken=page["nextToken"])
    ids = [t["jobTemplateId"] for t in page["jobTemplates"] + rest["jobTemplates"]]
    assert sorted(ids) == ["copy", "tpl"]
    assert set(rest["jobTemplates"][0]) >= {"jobTemplateArn", "jobTemplateId", "description", "createdAt"}

    iot.delete_job_template(jobTemplateId="tpl")
    with pytest.raises(ClientError) as e:
        iot.describe_job_template(jobTemplateId="tpl")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        iot.delete_job_template(jobTemplateId="tpl")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="gone-tpl", targets=[thing_arn("t1")], jobTemplateArn=arn)
    assert error_of(e) == ("ResourceNotFoundException", 404)


MANAGED = ["AWS-Download-File", "AWS-Install-Application", "AWS-Reboot", "AWS-Remove-Application",
           "AWS-Restart-Application", "AWS-Start-Application", "AWS-Stop-Application"]


def test_managed_job_templates(iot):
    listed = iot.list_managed_job_templates()["managedJobTemplates"]
    assert [t["templateName"] for t in listed] == MANAGED
    assert all(t["environments"] == ["LINUX"] and t["templateVersion"] == "1.0" for t in listed)
    assert listed[0]["templateArn"] == "arn:aws:iot:us-east-1::jobtemplate/AWS-Download-File:1.0"
    page = iot.list_managed_job_templates(maxResults=3)
    assert len(page["managedJobTemplates"]) == 3 and page["nextToken"]
    assert [t["templateName"] for t in iot.list_managed_job_templates(templateName="AWS-Reboot")["managedJobTemplates"]] == ["AWS-Reboot"]
    with pytest.raises(ClientError) as e:
        iot.list_managed_job_templates(templateName="AWS-Nothing")
    assert error_of(e) == ("ResourceNotFoundException", 404)

    described = iot.describe_managed_job_template(templateName="AWS-Download-File")
    assert described["templateVersion"] == "1.0"
    document = json.loads(described["document"])
    step = document["steps"][0]["action"]
    assert step["name"] == "Download-File" and step["type"] == "runHandler"
    assert step["input"]["handler"] == "download-file.sh"
    assert step["input"]["args"] == ["${aws:iot:parameter:downloadUrl}", "${aws:iot:parameter:filePath}"]
    keys = {p["key"]: p for p in described["documentParameters"]}
    assert set(keys) == {"downloadUrl", "filePath", "runAsUser", "pathToHandler"}
    assert keys["downloadUrl"]["optional"] is False and keys["runAsUser"]["optional"] is True
    reboot = iot.describe_managed_job_template(templateName="AWS-Reboot", templateVersion="1.0")
    assert json.loads(reboot["document"])["steps"][0]["action"]["input"]["handler"] == "reboot.sh"
    assert {p["key"] for p in reboot["documentParameters"]} == {"runAsUser", "pathToHandler"}
    for name in MANAGED:
        assert iot.describe_managed_job_template(templateName=name)["templateName"] == name
    with pytest.raises(ClientError) as e:
        iot.describe_managed_job_template(templateName="AWS-Reboot", templateVersion="2.0")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        iot.describe_managed_job_template(templateName="Nope")
    assert error_of(e) == ("ResourceNotFoundException", 404)


def test_job_from_managed_template(iot, data):
    things(iot, "t1")
    arn = "arn:aws:iot:us-east-1::jobtemplate/AWS-Download-File:1.0"
    params = {"downloadUrl": "https://example.com/fw.bin", "filePath": "/tmp/fw.bin"}
    iot.create_job(jobId="dl", targets=[thing_arn("t1")], jobTemplateArn=arn, documentParameters=params)
    job = iot.describe_job(jobId="dl")["job"]
    assert job["documentParameters"] == params and job["jobTemplateArn"] == arn
    document = json.loads(iot.get_job_document(jobId="dl")["document"])
    action = document["steps"][0]["action"]
    assert action["input"]["args"] == ["https://example.com/fw.bin", "/tmp/fw.bin"]
    assert action["input"]["path"] == "" and action["runAsUser"] == ""
    before = iot.get_job_document(jobId="dl", beforeSubstitution=True)["document"]
    assert "${aws:iot:parameter:downloadUrl}" in before
    device_doc = json.loads(data.describe_job_execution(thingName="t1", jobId="dl")["execution"]["jobDocument"])
    assert device_doc == document
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="missing-param", targets=[thing_arn("t1")], jobTemplateArn=arn,
                       documentParameters={"downloadUrl": "https://example.com"})
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="extra-param", targets=[thing_arn("t1")], jobTemplateArn=arn,
                       documentParameters={**params, "color": "red"})
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="no-template", targets=[thing_arn("t1")], document=DOC, documentParameters=params)
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="bad-version", targets=[thing_arn("t1")], documentParameters=params,
                       jobTemplateArn="arn:aws:iot:us-east-1::jobtemplate/AWS-Download-File:9.0")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    iot.create_job(jobId="reboot", targets=[thing_arn("t1")],
                   jobTemplateArn="arn:aws:iot:us-east-1::jobtemplate/AWS-Reboot:1.0",
                   documentParameters={"runAsUser": "root"})
    reboot = json.loads(iot.get_job_document(jobId="reboot")["document"])
    assert reboot["steps"][0]["action"]["runAsUser"] == "root"


# job events -----------------------------------------------------------------------------
def enable_job_events(iot):
    iot.update_event_configurations(eventConfigurations={"JOB": {"Enabled": True},
                                                         "JOB_EXECUTION": {"Enabled": True}})


def test_job_and_execution_events(iot, data, bus):
    things(iot, "t1", "t2")
    iot.create_job(jobId="quiet", targets=[thing_arn("t1")], document=DOC)
    data.update_job_execution(thingName="t1", jobId="quiet", status="SUCCEEDED")
    assert not [t for t, _ in bus if t.startswith("$aws/events/")]  # disabled by default
    enable_job_events(iot)
    iot.create_job(jobId="ev", targets=[thing_arn("t1"), thing_arn("t2")], document=DOC, description="d")
    data.update_job_execution(thingName="t1", jobId="ev", status="SUCCEEDED", statusDetails={"step": "done"})
    data.update_job_execution(thingName="t2", jobId="ev", status="FAILED")
    events = [(t, p) for t, p in bus if t.startswith("$aws/events/")]
    assert [t for t, _ in events] == ["$aws/events/jobExecution/ev/succeeded", "$aws/events/jobExecution/ev/failed",
                                      "$aws/events/job/ev/completed"]
    succeeded = events[0][1]
    assert succeeded["eventType"] == "JOB_EXECUTION" and succeeded["operation"] == "succeeded"
    assert succeeded["jobId"] == "ev" and succeeded["thingArn"] == thing_arn("t1")
    assert succeeded["status"] == "SUCCEEDED" and succeeded["statusDetails"] == {"step": "done"}
    assert succeeded["eventId"] and succeeded["timestamp"] > 10 ** 12
    completed = events[2][1]
    assert completed["eventType"] == "JOB" and completed["operation"] == "completed"
    assert completed["status"] == "COMPLETED" and completed["targetSelection"] == "SNAPSHOT"
    assert completed["targets"] == [thing_arn("t1"), thing_arn("t2")] and completed["description"] == "d"
    assert completed["jobProcessDetails"]["numberOfSucceededThings"] == 1
    assert completed["jobProcessDetails"]["numberOfFailedThings"] == 1
    assert completed["completedAt"] >= completed["createdAt"]

    bus.clear()
    iot.create_job(jobId="ev2", targets=[thing_arn("t1")], document=DOC)
    iot.cancel_job(jobId="ev2", comment="why")
    iot.delete_job(jobId="ev2")
    topics = [t for t, _ in bus if t.startswith("$aws/events/")]
    assert topics == ["$aws/events/job/ev2/cancellation_in_progress", "$aws/events/jobExecution/ev2/canceled",
                      "$aws/events/job/ev2/canceled", "$aws/events/job/ev2/deletion_in_progress",
                      "$aws/events/job/ev2/deleted"]
    by_topic = dict(bus)
    assert by_topic["$aws/events/job/ev2/canceled"]["status"] == "CANCELED"
    assert by_topic["$aws/events/job/ev2/deleted"]["status"] == "DELETED"
    assert by_topic["$aws/events/job/ev2/deletion_in_progress"]["comment"] == "why"
