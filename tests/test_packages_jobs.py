"""Jobs with destinationPackageVersions: the catalog's checks at CreateJob and
the reserved `$package` shadow written when an execution succeeds."""

import json

import boto3
import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/package-shadow"
THING = f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/dev-1"


def version_arn(package, version):
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:package/{package}/version/{version}"


@pytest.fixture
def clients(localiot_server):
    kwargs = dict(endpoint_url=localiot_server.endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
    iot = boto3.client("iot", **kwargs)
    iot.create_thing(thingName="dev-1")
    iot.create_package(packageName="agent")
    for version in ("1.0", "2.0", "draft"):
        iot.create_package_version(packageName="agent", versionName=version)
    for version in ("1.0", "2.0"):
        iot.update_package_version(packageName="agent", versionName=version, action="PUBLISH")
    iot.create_package(packageName="os")
    iot.create_package_version(packageName="os", versionName="5")
    iot.update_package_version(packageName="os", versionName="5", action="PUBLISH")
    return iot, boto3.client("iot-jobs-data", **kwargs), boto3.client("iot-data", **kwargs)


def run_to_success(jobs_data, job_id):
    jobs_data.start_next_pending_job_execution(thingName="dev-1")
    jobs_data.update_job_execution(thingName="dev-1", jobId=job_id, status="SUCCEEDED")


def package_shadow(data):
    return json.loads(data.get_thing_shadow(thingName="dev-1", shadowName="$package")["payload"].read())


def test_succeeded_job_writes_the_package_shadow(clients):
    iot, jobs_data, data = clients
    iot.update_package_configuration(versionUpdateByJobsConfig={"enabled": True, "roleArn": ROLE})
    destinations = [version_arn("agent", "2.0"), version_arn("os", "5")]
    iot.create_job(jobId="install", targets=[THING], document="{}", destinationPackageVersions=destinations)
    assert iot.describe_job(jobId="install")["job"]["destinationPackageVersions"] == destinations
    assert [j["jobId"] for j in iot.list_jobs()["jobs"]] == ["install"]
    run_to_success(jobs_data, "install")
    assert iot.describe_job(jobId="install")["job"]["status"] == "COMPLETED"
    shadow = package_shadow(data)
    assert shadow["state"]["reported"] == {"agent": {"version": "2.0"}, "os": {"version": "5"}}
    assert shadow["version"] == 1

    # $default deploys the default version; $null removes the package from the shadow
    iot.update_package(packageName="agent", defaultVersionName="1.0")
    iot.create_job(jobId="rollback", targets=[THING], document="{}",
                   destinationPackageVersions=[version_arn("agent", "$default"), version_arn("os", "$null")])
    assert iot.describe_job(jobId="rollback")["job"]["destinationPackageVersions"] == [
        version_arn("agent", "1.0"), version_arn("os", "$null")]
    run_to_success(jobs_data, "rollback")
    assert package_shadow(data)["state"]["reported"] == {"agent": {"version": "1.0"}}


def test_nothing_written_unless_enabled_or_succeeded(clients):
    iot, jobs_data, data = clients
    iot.create_job(jobId="quiet", targets=[THING], document="{}", destinationPackageVersions=[version_arn("os", "5")])
    run_to_success(jobs_data, "quiet")
    with pytest.raises(ClientError) as e:
        data.get_thing_shadow(thingName="dev-1", shadowName="$package")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    iot.update_package_configuration(versionUpdateByJobsConfig={"enabled": True, "roleArn": ROLE})
    iot.create_job(jobId="failing", targets=[THING], document="{}", destinationPackageVersions=[version_arn("os", "5")])
    jobs_data.start_next_pending_job_execution(thingName="dev-1")
    jobs_data.update_job_execution(thingName="dev-1", jobId="failing", status="FAILED")
    with pytest.raises(ClientError):
        data.get_thing_shadow(thingName="dev-1", shadowName="$package")


@pytest.mark.parametrize("destinations, expected", [
    ([version_arn("agent", "draft")], "InvalidRequestException"),
    ([version_arn("agent", "9.9")], "ResourceNotFoundException"),
    ([version_arn("ghost", "1.0")], "ResourceNotFoundException"),
    ([version_arn("agent", "$default")], "InvalidRequestException"),  # no default version yet
    ([version_arn("agent", "1.0"), version_arn("agent", "2.0")], "InvalidRequestException"),
    ([f"arn:aws:iot:eu-west-1:{ACCOUNT}:package/agent/version/1.0"], "InvalidRequestException"),
    ([f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/dev-1"], "InvalidRequestException"),
])
def test_create_job_refuses_bad_destinations(clients, destinations, expected):
    iot, _, _ = clients
    with pytest.raises(ClientError) as e:
        iot.create_job(jobId="bad", targets=[THING], document="{}", destinationPackageVersions=destinations)
    assert e.value.response["Error"]["Code"] == expected
    assert iot.list_jobs()["jobs"] == []


def test_version_deleted_while_the_job_runs(clients):
    iot, jobs_data, data = clients
    iot.update_package_configuration(versionUpdateByJobsConfig={"enabled": True, "roleArn": ROLE})
    iot.create_job(jobId="racing", targets=[THING], document="{}",
                   destinationPackageVersions=[version_arn("agent", "2.0"), version_arn("os", "5")])
    jobs_data.start_next_pending_job_execution(thingName="dev-1")
    iot.delete_package_version(packageName="agent", versionName="2.0")
    # the device's update is accepted; only the versions that still exist reach the shadow
    jobs_data.update_job_execution(thingName="dev-1", jobId="racing", status="SUCCEEDED")
    assert iot.describe_job_execution(jobId="racing", thingName="dev-1")["execution"]["status"] == "SUCCEEDED"
    assert package_shadow(data)["state"]["reported"] == {"os": {"version": "5"}}
