"""Mitigation actions (CRUD, parameters checked against their type), mitigation
tasks whose executions change state through the ordinary operations (logging,
policy versions, thing groups, SNS at moto's server), and audit suppressions."""

from __future__ import annotations

import json
import uuid
import time

import pytest
from botocore.exceptions import ClientError

from localiot.testing import ACCOUNT, REGION, advance, error_of, make_client
from test_audit_checks import audit, configure, downstream_server, findings_of  # noqa: F401 (a fixture)

ROLE = f"arn:aws:iam::{ACCOUNT}:role/mitigation"


def wait_mitigation(iot, task_id, timeout=10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        task = iot.describe_audit_mitigation_actions_task(taskId=task_id)
        if task["taskStatus"] != "IN_PROGRESS" or time.monotonic() > deadline:
            return task
        time.sleep(0.02)


def test_mitigation_action_crud_and_bad_parameters(iot):
    iot.create_thing_group(thingGroupName="quarantine")
    made = iot.create_mitigation_action(actionName="quarantine", roleArn=ROLE, actionParams={
        "addThingsToThingGroupParams": {"thingGroupNames": ["quarantine"], "overrideDynamicGroups": True}},
        tags=[{"Key": "team", "Value": "sec"}])
    assert made["actionArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:mitigationaction/quarantine"
    described = iot.describe_mitigation_action(actionName="quarantine")
    assert (described["actionType"], described["actionId"], described["roleArn"]) == (
        "ADD_THINGS_TO_THING_GROUP", made["actionId"], ROLE)
    assert iot.list_tags_for_resource(resourceArn=made["actionArn"])["tags"] == [{"Key": "team", "Value": "sec"}]
    bad = [
        ("two", {"updateDeviceCertificateParams": {"action": "DEACTIVATE"},
                 "updateCACertificateParams": {"action": "DEACTIVATE"}}),
        ("none", {}),
        ("group", {"addThingsToThingGroupParams": {"thingGroupNames": ["missing"]}}),
        ("logging", {"enableIoTLoggingParams": {"roleArnForLogging": "nope-not-an-arn-at-all", "logLevel": "INFO"}}),
        ("sns", {"publishFindingToSnsParams": {"topicArn": "arn:aws:sqs:us-east-1:123456789012:q"}}),
    ]
    for name, params in bad:
        with pytest.raises(ClientError) as e:
            iot.create_mitigation_action(actionName=name, roleArn=ROLE, actionParams=params)
        assert error_of(e) == ("InvalidRequestException", 400), name
    with pytest.raises(ClientError) as e:
        iot.create_mitigation_action(actionName="quarantine", roleArn=ROLE, actionParams={
            "updateDeviceCertificateParams": {"action": "DEACTIVATE"}})
    assert error_of(e) == ("ResourceAlreadyExistsException", 409)
    with pytest.raises(ClientError) as e:  # the type does not change
        iot.update_mitigation_action(actionName="quarantine", actionParams={
            "updateDeviceCertificateParams": {"action": "DEACTIVATE"}})
    assert error_of(e) == ("InvalidRequestException", 400)
    iot.create_mitigation_action(actionName="deactivate", roleArn=ROLE, actionParams={
        "updateDeviceCertificateParams": {"action": "DEACTIVATE"}})
    assert [a["actionName"] for a in iot.list_mitigation_actions()["actionIdentifiers"]] == ["deactivate", "quarantine"]
    assert [a["actionName"] for a in iot.list_mitigation_actions(actionType="UPDATE_DEVICE_CERTIFICATE")[
        "actionIdentifiers"]] == ["deactivate"]
    iot.update_mitigation_action(actionName="deactivate", roleArn="arn:aws:iam::123456789012:role/other")
    assert iot.describe_mitigation_action(actionName="deactivate")["roleArn"].endswith("role/other")
    iot.delete_mitigation_action(actionName="deactivate")
    iot.delete_mitigation_action(actionName="deactivate")
    with pytest.raises(ClientError) as e:
        iot.describe_mitigation_action(actionName="deactivate")
    assert error_of(e) == ("ResourceNotFoundException", 404)


def test_mitigation_tasks_change_logging_policies_and_groups(iot, localiot_server):
    iot.create_policy(policyName="wide", policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}]}))
    made = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_thing(thingName="dev")
    iot.attach_thing_principal(thingName="dev", principal=made["certificateArn"])
    iot.create_thing_group(thingGroupName="quarantine")
    checks = ["LOGGING_DISABLED_CHECK", "IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "DEVICE_CERTIFICATE_AGE_CHECK"]
    configure(iot, *checks)
    iot.update_account_audit_configuration(auditCheckConfigurations={"DEVICE_CERTIFICATE_AGE_CHECK": {
        "enabled": True, "configuration": {"CERT_AGE_THRESHOLD_IN_DAYS": "30"}}})
    task_id, _ = audit(iot, "LOGGING_DISABLED_CHECK", "IOT_POLICY_OVERLY_PERMISSIVE_CHECK")
    iot.create_mitigation_action(actionName="logging", roleArn=ROLE, actionParams={
        "enableIoTLoggingParams": {"roleArnForLogging": ROLE, "logLevel": "WARN"}})
    iot.create_mitigation_action(actionName="blank", roleArn=ROLE, actionParams={
        "replaceDefaultPolicyVersionParams": {"templateName": "BLANK_POLICY"}})
    iot.create_mitigation_action(actionName="quarantine", roleArn=ROLE, actionParams={
        "addThingsToThingGroupParams": {"thingGroupNames": ["quarantine"]}})
    with pytest.raises(ClientError) as e:  # an action that does not apply to the check
        iot.start_audit_mitigation_actions_task(taskId="t0", target={"auditTaskId": task_id},
                                                auditCheckToActionsMapping={"LOGGING_DISABLED_CHECK": ["blank"]})
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:  # findings of another account (or none) are not found
        iot.start_audit_mitigation_actions_task(taskId="t0", target={"findingIds": ["not-a-finding-here"]},
                                                auditCheckToActionsMapping={"LOGGING_DISABLED_CHECK": ["logging"]})
    assert error_of(e) == ("InvalidRequestException", 400)
    iot.start_audit_mitigation_actions_task(
        taskId="t1", target={"auditTaskId": task_id},
        auditCheckToActionsMapping={"LOGGING_DISABLED_CHECK": ["logging"],
                                    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": ["blank"]})
    with pytest.raises(ClientError) as e:
        iot.start_audit_mitigation_actions_task(taskId="t1", target={"auditTaskId": task_id},
                                                auditCheckToActionsMapping={"LOGGING_DISABLED_CHECK": ["logging"]})
    assert error_of(e) == ("TaskAlreadyExistsException", 400)
    task = wait_mitigation(iot, "t1")
    assert task["taskStatus"] == "COMPLETED"
    assert {c: s["succeededFindingsCount"] for c, s in task["taskStatistics"].items()} == {
        "LOGGING_DISABLED_CHECK": 1, "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": 1}
    options = iot.get_v2_logging_options()
    assert (options["roleArn"], options["defaultLogLevel"]) == (ROLE, "WARN")
    policy = iot.get_policy(policyName="wide")
    assert policy["defaultVersionId"] == "2" and json.loads(policy["policyDocument"])["Statement"][0]["Effect"] == "Deny"
    # a month later the certificate is past the age threshold; its thing goes to quarantine
    advance(localiot_server, 31 * 86400)
    age_task, _ = audit(iot, "DEVICE_CERTIFICATE_AGE_CHECK")
    [finding] = findings_of(iot, taskId=age_task)
    iot.start_audit_mitigation_actions_task(taskId="t2", target={"findingIds": [finding["findingId"]]},
                                            auditCheckToActionsMapping={"DEVICE_CERTIFICATE_AGE_CHECK": ["quarantine"]})
    assert wait_mitigation(iot, "t2")["taskStatus"] == "COMPLETED"
    assert iot.list_things_in_thing_group(thingGroupName="quarantine")["things"] == ["dev"]
    listed = iot.list_audit_mitigation_actions_tasks(startTime=0, endTime=time.time() + 86400 * 400,
                                                     findingId=finding["findingId"])["tasks"]
    assert [t["taskId"] for t in listed] == ["t2"]
    with pytest.raises(ClientError) as e:
        iot.cancel_audit_mitigation_actions_task(taskId="t2")
    assert error_of(e) == ("InvalidRequestException", 400)


def test_publish_finding_to_sns_at_moto(downstream_server, localiot_moto):  # noqa: F811
    iot = make_client(downstream_server)
    sns = make_client(localiot_moto, "sns")
    sqs = make_client(localiot_moto, "sqs")
    name = f"findings-{uuid.uuid4().hex[:8]}"  # moto is the session's: one queue per run of this test
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    configure(iot, "LOGGING_DISABLED_CHECK")
    task_id, _ = audit(iot, "LOGGING_DISABLED_CHECK")
    iot.create_mitigation_action(actionName="tell", roleArn=ROLE,
                                 actionParams={"publishFindingToSnsParams": {"topicArn": topic}})
    iot.start_audit_mitigation_actions_task(taskId="sns", target={"auditTaskId": task_id},
                                            auditCheckToActionsMapping={"LOGGING_DISABLED_CHECK": ["tell"]})
    assert wait_mitigation(iot, "sns")["taskStatus"] == "COMPLETED"
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    body = json.loads(messages[0]["Body"])
    assert (body["checkName"], body["taskId"], body["reasonForNonComplianceCode"]) == (
        "LOGGING_DISABLED_CHECK", task_id, "LOGGING_DISABLED")


def test_suppressions_crud(iot):
    ident = {"deviceCertificateId": "a" * 64}
    with pytest.raises(ClientError) as e:  # neither an expiration nor indefinitely
        iot.create_audit_suppression(checkName="DEVICE_CERTIFICATE_EXPIRING_CHECK", resourceIdentifier=ident)
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_audit_suppression(checkName="NOT_A_CHECK", resourceIdentifier=ident, suppressIndefinitely=True)
    assert error_of(e) == ("InvalidRequestException", 400)
    iot.create_audit_suppression(checkName="DEVICE_CERTIFICATE_EXPIRING_CHECK", resourceIdentifier=ident,
                                 suppressIndefinitely=True, description="lab device")
    with pytest.raises(ClientError) as e:
        iot.create_audit_suppression(checkName="DEVICE_CERTIFICATE_EXPIRING_CHECK", resourceIdentifier=ident,
                                     suppressIndefinitely=True)
    assert error_of(e) == ("ResourceAlreadyExistsException", 409)
    got = iot.describe_audit_suppression(checkName="DEVICE_CERTIFICATE_EXPIRING_CHECK", resourceIdentifier=ident)
    assert (got["suppressIndefinitely"], got["description"]) == (True, "lab device")
    iot.update_audit_suppression(checkName="DEVICE_CERTIFICATE_EXPIRING_CHECK", resourceIdentifier=ident,
                                 description="moved")
    iot.create_audit_suppression(checkName="LOGGING_DISABLED_CHECK", resourceIdentifier={"account": ACCOUNT},
                                 suppressIndefinitely=True)
    assert len(iot.list_audit_suppressions()["suppressions"]) == 2
    [only] = iot.list_audit_suppressions(checkName="LOGGING_DISABLED_CHECK")["suppressions"]
    assert only["resourceIdentifier"] == {"account": ACCOUNT}
    iot.delete_audit_suppression(checkName="LOGGING_DISABLED_CHECK", resourceIdentifier={"account": ACCOUNT})
    with pytest.raises(ClientError) as e:
        iot.describe_audit_suppression(checkName="LOGGING_DISABLED_CHECK", resourceIdentifier={"account": ACCOUNT})
    assert error_of(e) == ("ResourceNotFoundException", 404)
