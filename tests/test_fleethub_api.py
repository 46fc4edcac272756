"""Fleet Hub's API through boto3 with the model localiot ships."""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError
from fleethub_kit import ROLE_ARN, advance, enable_indexing, fleethub_client

from conftest import make_client

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def hub(localiot_server):
    return fleethub_client(localiot_server)


@pytest.fixture
def indexed(iot, localiot_server):
    enable_indexing(iot, localiot_server)


def _code(error: pytest.ExceptionInfo) -> tuple[str, int]:
    response = error.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_create_is_refused_while_fleet_indexing_is_off(hub, iot):
    with pytest.raises(ClientError) as error:
        hub.create_application(applicationName="app", roleArn=ROLE_ARN)
    assert _code(error) == ("InvalidRequestException", 400)
    assert "fleet indexing" in error.value.response["Error"]["Message"]
    assert hub.list_applications()["applicationSummaries"] == []
    # thing indexing turned off again after being on: refused again
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "OFF"})
    with pytest.raises(ClientError):
        hub.create_application(applicationName="app", roleArn=ROLE_ARN)


def test_create_describe_creating_then_active(hub, indexed, localiot_server):
    created = hub.create_application(applicationName="my fleet", applicationDescription="north site",
                                     roleArn=ROLE_ARN, tags={"team": "ops"})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    app_id = created["applicationId"]
    assert UUID.match(app_id)
    assert created["applicationArn"] == f"arn:aws:iotfleethub:us-east-1:123456789012:application/{app_id}"
    described = hub.describe_application(applicationId=app_id)
    assert described["applicationState"] == "CREATING"
    assert described["applicationName"] == "my fleet"
    assert described["applicationDescription"] == "north site"
    assert described["roleArn"] == ROLE_ARN
    assert described["tags"] == {"team": "ops"}
    assert described["applicationUrl"] == f"{localiot_server.endpoint}/fleethub/{app_id}/"
    assert described["applicationCreationDate"] == described["applicationLastUpdateDate"]
    advance(localiot_server)
    assert hub.describe_application(applicationId=app_id)["applicationState"] == "ACTIVE"


def test_client_token_is_idempotent(hub, indexed):
    first = hub.create_application(applicationName="a", roleArn=ROLE_ARN, clientToken="tok-1")
    again = hub.create_application(applicationName="a", roleArn=ROLE_ARN, clientToken="tok-1")
    assert again["applicationId"] == first["applicationId"]
    with pytest.raises(ClientError) as error:
        hub.create_application(applicationName="b", roleArn=ROLE_ARN, clientToken="tok-1")
    assert _code(error) == ("InvalidRequestException", 400)
    other = hub.create_application(applicationName="a", roleArn=ROLE_ARN)  # boto3 fills a fresh token
    assert other["applicationId"] != first["applicationId"]
    assert len(hub.list_applications()["applicationSummaries"]) == 2


def test_update_needs_active_and_changes_name_and_description(hub, indexed, localiot_server):
    app_id = hub.create_application(applicationName="a", roleArn=ROLE_ARN)["applicationId"]
    with pytest.raises(ClientError) as error:
        hub.update_application(applicationId=app_id, applicationName="b")
    assert _code(error) == ("ConflictException", 409)
    advance(localiot_server, 30)
    answer = hub.update_application(applicationId=app_id, applicationName="b", applicationDescription="d")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    described = hub.describe_application(applicationId=app_id)
    assert (described["applicationName"], described["applicationDescription"]) == ("b", "d")
    assert described["applicationLastUpdateDate"] > described["applicationCreationDate"]


def test_delete_goes_through_deleting(hub, indexed, localiot_server):
    app = hub.create_application(applicationName="a", roleArn=ROLE_ARN, tags={"k": "v"})
    advance(localiot_server)
    answer = hub.delete_application(applicationId=app["applicationId"])
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert hub.describe_application(applicationId=app["applicationId"])["applicationState"] == "DELETING"
    with pytest.raises(ClientError) as error:
        hub.update_application(applicationId=app["applicationId"], applicationName="x")
    assert _code(error) == ("ConflictException", 409)
    hub.delete_application(applicationId=app["applicationId"])  # deleting again is accepted
    advance(localiot_server)
    for call in (lambda: hub.describe_application(applicationId=app["applicationId"]),
                 lambda: hub.delete_application(applicationId=app["applicationId"]),
                 lambda: hub.list_tags_for_resource(resourceArn=app["applicationArn"])):
        with pytest.raises(ClientError) as error:
            call()
        assert _code(error) == ("ResourceNotFoundException", 404)
    assert hub.list_applications()["applicationSummaries"] == []


def test_list_applications_pages_in_creation_order(hub, indexed, localiot_server):
    made = []
    for i in range(53):
        made.append(hub.create_application(applicationName=f"app-{i}", roleArn=ROLE_ARN)["applicationId"])
        advance(localiot_server, 1)
    first = hub.list_applications()
    assert len(first["applicationSummaries"]) == 50 and first["nextToken"]
    summary = first["applicationSummaries"][0]
    assert summary["applicationState"] == "ACTIVE" and summary["applicationName"] == "app-0"
    assert summary["applicationUrl"].endswith(f"/fleethub/{made[0]}/")
    listed = [s["applicationId"] for page in hub.get_paginator("list_applications").paginate()
              for s in page["applicationSummaries"]]
    assert listed == made
    with pytest.raises(ClientError) as error:
        hub.list_applications(nextToken="bm90LWEtdG9rZW4=")
    assert _code(error) == ("InvalidRequestException", 400)


def test_tags(hub, indexed):
    arn = hub.create_application(applicationName="a", roleArn=ROLE_ARN, tags={"a": "1"})["applicationArn"]
    hub.tag_resource(resourceArn=arn, tags={"b": "2", "a": "3"})
    assert hub.list_tags_for_resource(resourceArn=arn)["tags"] == {"a": "3", "b": "2"}
    hub.untag_resource(resourceArn=arn, tagKeys=["a", "missing"])
    assert hub.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "2"}
    with pytest.raises(ClientError) as error:
        hub.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(50)})
    assert _code(error) == ("LimitExceededException", 410)
    assert hub.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "2"}
    with pytest.raises(ClientError) as error:
        hub.tag_resource(resourceArn=arn, tags={"aws:x": "v"})
    assert _code(error) == ("InvalidRequestException", 400)
    missing = arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    with pytest.raises(ClientError) as error:
        hub.tag_resource(resourceArn=missing, tags={"x": "y"})
    assert _code(error) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as error:
        hub.list_tags_for_resource(resourceArn="arn:aws:iot:us-east-1:123456789012:thing/t")
    assert _code(error) == ("InvalidRequestException", 400)


def test_model_validation_and_role_name(hub, indexed):
    with pytest.raises(ClientError) as error:
        hub.create_application(applicationName="bad\u00e9name", roleArn=ROLE_ARN)  # pattern ^[ -~]*$
    assert _code(error) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as error:
        hub.create_application(applicationName="a", roleArn="arn:aws:iam::123456789012:role/SomeRole")
    assert _code(error) == ("InvalidRequestException", 400)
    assert "AWSIotFleetHub_" in error.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as error:
        hub.describe_application(applicationId="00000000-0000-0000-0000-00000000000G")
    assert _code(error) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as error:
        hub.describe_application(applicationId="00000000-0000-0000-0000-000000000000")
    assert _code(error) == ("ResourceNotFoundException", 404)
    assert hub.list_applications()["applicationSummaries"] == []


def test_applications_are_scoped_to_account_and_region(hub, localiot_server):
    for region in ("us-east-1", "eu-west-1"):
        enable_indexing(make_client(localiot_server, region=region), localiot_server)
    app_id = hub.create_application(applicationName="a", roleArn=ROLE_ARN)["applicationId"]
    elsewhere = fleethub_client(localiot_server, region="eu-west-1")
    assert elsewhere.list_applications()["applicationSummaries"] == []
    with pytest.raises(ClientError) as error:
        elsewhere.describe_application(applicationId=app_id)
    assert _code(error) == ("ResourceNotFoundException", 404)
