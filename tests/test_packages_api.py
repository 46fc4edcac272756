"""The software package catalog through boto3: packages, versions, the
lifecycle, client tokens and the package configuration."""

import uuid

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/package-shadow"


def code(excinfo):
    error = excinfo.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]


def refused(call, **kwargs):
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    return code(e)


def test_package_crud(iot):
    created = iot.create_package(packageName="agent", description="device agent", tags={"team": "fw"})
    arn = f"arn:aws:iot:us-east-1:{ACCOUNT}:package/agent"
    assert created["packageName"] == "agent" and created["packageArn"] == arn
    got = iot.get_package(packageName="agent")
    assert got["description"] == "device agent" and "defaultVersionName" not in got
    assert got["creationDate"] == got["lastModifiedDate"]
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "team", "Value": "fw"}]
    iot.update_package(packageName="agent", description="new text")
    assert iot.get_package(packageName="agent")["description"] == "new text"
    assert refused(iot.create_package, packageName="agent") == ("ConflictException", 409)
    assert refused(iot.get_package, packageName="nope") == ("ResourceNotFoundException", 404)
    assert refused(iot.update_package, packageName="nope", description="x") == ("ResourceNotFoundException", 404)
    iot.delete_package(packageName="agent")
    iot.delete_package(packageName="agent")  # a missing package is not an error
    assert iot.list_packages()["packageSummaries"] == []


def test_versions_and_lifecycle(iot):
    iot.create_package(packageName="agent")
    version = iot.create_package_version(
        packageName="agent", versionName="1.0.0", description="first", attributes={"os": "linux"},
        artifact={"s3Location": {"bucket": "fw", "key": "agent-1.0.0.tgz", "version": "v1"}},
        recipe='{"steps": []}', tags={"k": "v"})
    arn = f"arn:aws:iot:us-east-1:{ACCOUNT}:package/agent/version/1.0.0"
    assert version["packageVersionArn"] == arn and version["status"] == "DRAFT"
    assert version["attributes"] == {"os": "linux"}
    got = iot.get_package_version(packageName="agent", versionName="1.0.0")
    assert got["artifact"] == {"s3Location": {"bucket": "fw", "key": "agent-1.0.0.tgz", "version": "v1"}}
    assert got["recipe"] == '{"steps": []}' and got["status"] == "DRAFT"
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "k", "Value": "v"}]
    # a draft can change its attributes; a draft cannot be deprecated nor be the default
    iot.update_package_version(packageName="agent", versionName="1.0.0", attributes={"os": "rtos"})
    assert refused(iot.update_package_version, packageName="agent", versionName="1.0.0",
                   action="DEPRECATE") == ("ValidationException", 400)
    assert refused(iot.update_package, packageName="agent", defaultVersionName="1.0.0") == ("ValidationException", 400)
    iot.update_package_version(packageName="agent", versionName="1.0.0", action="PUBLISH")
    assert iot.get_package_version(packageName="agent", versionName="1.0.0")["status"] == "PUBLISHED"
    # published: attributes are frozen, the description and recipe still change
    assert refused(iot.update_package_version, packageName="agent", versionName="1.0.0",
                   attributes={"os": "x"}) == ("ValidationException", 400)
    assert refused(iot.update_package_version, packageName="agent", versionName="1.0.0",
                   action="PUBLISH") == ("ValidationException", 400)
    iot.update_package_version(packageName="agent", versionName="1.0.0", description="stable", recipe="{}")
    got = iot.get_package_version(packageName="agent", versionName="1.0.0")
    assert (got["description"], got["recipe"], got["attributes"]) == ("stable", "{}", {"os": "rtos"})
    iot.update_package_version(packageName="agent", versionName="1.0.0", action="DEPRECATE")
    iot.update_package(packageName="agent", defaultVersionName="1.0.0")  # a deprecated version can be the default
    assert iot.get_package(packageName="agent")["defaultVersionName"] == "1.0.0"
    iot.update_package_version(packageName="agent", versionName="1.0.0", action="PUBLISH")
    assert iot.get_package_version(packageName="agent", versionName="1.0.0")["status"] == "PUBLISHED"

    # the default version and a package with versions cannot be deleted
    assert refused(iot.delete_package_version, packageName="agent", versionName="1.0.0") == ("ValidationException", 400)
    assert refused(iot.delete_package, packageName="agent") == ("ValidationException", 400)
    assert refused(iot.update_package, packageName="agent", defaultVersionName="1.0.0",
                   unsetDefaultVersion=True) == ("ValidationException", 400)
    iot.update_package(packageName="agent", unsetDefaultVersion=True)
    assert "defaultVersionName" not in iot.get_package(packageName="agent")
    iot.delete_package_version(packageName="agent", versionName="1.0.0")
    iot.delete_package_version(packageName="agent", versionName="1.0.0")
    assert refused(iot.get_package_version, packageName="agent", versionName="1.0.0") \
        == ("ResourceNotFoundException", 404)
    iot.delete_package(packageName="agent")


def test_version_refusals_change_nothing(iot):
    assert refused(iot.create_package_version, packageName="ghost", versionName="1") == ("ValidationException", 400)
    iot.create_package(packageName="p")
    iot.create_package_version(packageName="p", versionName="1")
    assert refused(iot.create_package_version, packageName="p", versionName="1") == ("ConflictException", 409)
    big = {f"k{i}": "v" * 100 for i in range(40)}  # over 3 KB of attributes
    assert refused(iot.create_package_version, packageName="p", versionName="2", attributes=big) \
        == ("ValidationException", 400)
    assert refused(iot.update_package_version, packageName="p", versionName="9", description="x") \
        == ("ResourceNotFoundException", 404)
    assert [v["versionName"] for v in iot.list_package_versions(packageName="p")["packageVersionSummaries"]] == ["1"]


def test_lists_filters_and_pages(iot):
    for name in ("c", "a", "b"):
        iot.create_package(packageName=name)
    assert [p["packageName"] for p in iot.list_packages()["packageSummaries"]] == ["a", "b", "c"]
    page = iot.list_packages(maxResults=2)
    assert len(page["packageSummaries"]) == 2
    rest = iot.list_packages(maxResults=2, nextToken=page["nextToken"])
    assert [p["packageName"] for p in rest["packageSummaries"]] == ["c"] and "nextToken" not in rest
    for version in ("3.0", "1.0", "2.0"):
        iot.create_package_version(packageName="a", versionName=version)
    iot.update_package_version(packageName="a", versionName="2.0", action="PUBLISH")
    summaries = iot.list_package_versions(packageName="a")["packageVersionSummaries"]
    assert [(v["versionName"], v["status"]) for v in summaries] == [("1.0", "DRAFT"), ("2.0", "PUBLISHED"),
                                                                     ("3.0", "DRAFT")]
    assert [v["versionName"] for v in iot.list_package_versions(packageName="a", status="DRAFT")
            ["packageVersionSummaries"]] == ["1.0", "3.0"]
    paginator = iot.get_paginator("list_package_versions")
    assert [v["versionName"] for p in paginator.paginate(packageName="a", PaginationConfig={"PageSize": 1})
            for v in p["packageVersionSummaries"]] == ["1.0", "2.0", "3.0"]
    assert iot.list_package_versions(packageName="none")["packageVersionSummaries"] == []


def test_client_tokens(iot):
    token = str(uuid.uuid4())
    first = iot.create_package(packageName="idem", description="d", clientToken=token)
    again = iot.create_package(packageName="idem", description="d", clientToken=token)
    assert again["packageArn"] == first["packageArn"]
    assert refused(iot.create_package, packageName="idem", description="other", clientToken=token) \
        == ("ConflictException", 409)
    version_token = str(uuid.uuid4())
    made = iot.create_package_version(packageName="idem", versionName="1", clientToken=version_token)
    assert iot.create_package_version(packageName="idem", versionName="1", clientToken=version_token)[
        "packageVersionArn"] == made["packageVersionArn"]


def test_package_configuration(iot):
    assert iot.get_package_configuration()["versionUpdateByJobsConfig"] == {"enabled": False}
    assert refused(iot.update_package_configuration, versionUpdateByJobsConfig={"enabled": True}) \
        == ("ValidationException", 400)
    assert refused(iot.update_package_configuration,
                   versionUpdateByJobsConfig={"enabled": True, "roleArn": "arn:aws:iam::123456789012:user/u"}) \
        == ("ValidationException", 400)
    assert iot.get_package_configuration()["versionUpdateByJobsConfig"] == {"enabled": False}
    iot.update_package_configuration(versionUpdateByJobsConfig={"enabled": True, "roleArn": ROLE})
    assert iot.get_package_configuration()["versionUpdateByJobsConfig"] == {"enabled": True, "roleArn": ROLE}
    iot.update_package_configuration(versionUpdateByJobsConfig={"enabled": False})
    assert iot.get_package_configuration()["versionUpdateByJobsConfig"] == {"enabled": False, "roleArn": ROLE}
