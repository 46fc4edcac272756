"""The issue's end-to-end audit: an overly permissive policy, a certificate
that expires in 10 days, a revoked intermediate CA with an active device
certificate under it, and two paho devices sharing one certificate over
mutual TLS; an on-demand audit finds exactly those; a mitigation task
deactivates the shared certificate and the broker disconnects both devices;
a suppression hides a finding until it expires on the clock; a weekly
scheduled audit runs when the clock passes its day."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request

import pytest

from test_audit_checks import ACCOUNT, CA, audit, configure, findings_of, register_ca, wait_task
from test_mqtt_tls import address, ca_file, device_pool, new_certificate

CHECKS = ["IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "DEVICE_CERTIFICATE_EXPIRING_CHECK",
          "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK", "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK",
          "DEVICE_CERTIFICATE_SHARED_CHECK", "CONFLICTING_CLIENT_IDS_CHECK"]
ROLE = "arn:aws:iam::123456789012:role/mitigation"


def clock(server, **body) -> float:
    request = urllib.request.Request(server.endpoint + "/_localiot/clock", method="POST",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["now"]


def identify(f) -> tuple:
    ident = f["nonCompliantResource"]["resourceIdentifier"]
    return f["checkName"], json.dumps(ident, sort_keys=True), f["reasonForNonComplianceCode"]


@pytest.fixture
def devices():
    with device_pool() as make:
        yield make


def test_audit_finds_mitigates_suppresses_and_schedules(iot, localiot_server, tmp_path, devices):
    server = localiot_server
    # an overly permissive policy, on the certificate two devices share
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}
    shared = new_certificate(iot, tmp_path, "shared", policy=everything)
    # a certificate expiring in 10 days, and a revoked intermediate CA with an active certificate under it
    root = CA("Acme Root")
    register_ca(iot, root)
    expiring = iot.register_certificate(certificatePem=root.issue("expiring", days=10), status="ACTIVE")["certificateId"]
    intermediate = CA("Acme Intermediate", issuer=root)
    revoked = iot.register_certificate(certificatePem=intermediate.pem, caCertificatePem=root.pem,
                                       status="ACTIVE")["certificateId"]
    iot.update_certificate(certificateId=revoked, newStatus="REVOKED")
    intermediate_id = register_ca(iot, intermediate)
    under = iot.register_certificate(certificatePem=intermediate.issue("under"), status="ACTIVE")["certificateId"]
    # two devices, one certificate, connected at the same time
    _, port = address(iot)
    ca = ca_file(server, tmp_path)
    first = devices(port, "sensor-1", ca=ca, cert=shared).connect_ok()
    second = devices(port, "sensor-2", ca=ca, cert=shared).connect_ok()

    configure(iot, *CHECKS)
    task_id, task = audit(iot, *CHECKS)
    assert {identify(f) for f in findings_of(iot, taskId=task_id)} == {
        ("IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
         json.dumps({"policyVersionIdentifier": {"policyName": "shared-policy", "policyVersionId": "1"}}),
         "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS"),
        ("DEVICE_CERTIFICATE_EXPIRING_CHECK", json.dumps({"deviceCertificateId": expiring}),
         "CERTIFICATE_APPROACHING_EXPIRATION"),
        ("REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK", json.dumps({"caCertificateId": intermediate_id}),
         "CERTIFICATE_REVOKED_BY_ISSUER"),
        ("INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK", json.dumps({"deviceCertificateId": under}),
         "INTERMEDIATE_CA_REVOKED_BY_ISSUER"),
        ("DEVICE_CERTIFICATE_SHARED_CHECK", json.dumps({"deviceCertificateId": shared.id}),
         "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES"),
    }
    assert task["auditDetails"]["CONFLICTING_CLIENT_IDS_CHECK"]["checkRunStatus"] == "COMPLETED_COMPLIANT"
    assert task["taskStatistics"]["nonCompliantChecks"] == 5
    [shared_finding] = findings_of(iot, taskId=task_id, checkName="DEVICE_CERTIFICATE_SHARED_CHECK")
    assert sorted(r["resourceIdentifier"]["clientId"] for r in shared_finding["relatedResources"]) == [
        "sensor-1", "sensor-2"]

    # the mitigation deactivates the shared certificate: the broker drops both devices
    iot.create_mitigation_action(actionName="deactivate", roleArn=ROLE,
                                 actionParams={"updateDeviceCertificateParams": {"action": "DEACTIVATE"}})
    iot.start_audit_mitigation_actions_task(
        taskId="mitigate-1", target={"auditTaskId": task_id},
        auditCheckToActionsMapping={"DEVICE_CERTIFICATE_SHARED_CHECK": ["deactivate"]})
    assert first.closed.wait(10) and second.closed.wait(10)
    assert iot.describe_certificate(certificateId=shared.id)["certificateDescription"]["status"] == "INACTIVE"
    deadline = time.monotonic() + 10
    while iot.describe_audit_mitigation_actions_task(taskId="mitigate-1")["taskStatus"] == "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    described = iot.describe_audit_mitigation_actions_task(taskId="mitigate-1")
    assert described["taskStatus"] == "COMPLETED"
    assert described["taskStatistics"] == {"DEVICE_CERTIFICATE_SHARED_CHECK": {
        "totalFindingsCount": 1, "failedFindingsCount": 0, "succeededFindingsCount": 1, "skippedFindingsCount": 0,
        "canceledFindingsCount": 0}}
    [execution] = iot.list_audit_mitigation_actions_executions(
        taskId="mitigate-1", findingId=shared_finding["findingId"])["actionsExecutions"]
    assert (execution["actionName"], execution["status"]) == ("deactivate", "COMPLETED")
    assert devices(port, "sensor-3", ca=ca, cert=shared).connect() != 0  # it stays out

    # a suppression hides the expiring certificate's finding until it expires on the clock
    now = clock(server)
    iot.create_audit_suppression(checkName="DEVICE_CERTIFICATE_EXPIRING_CHECK",
                                 resourceIdentifier={"deviceCertificateId": expiring},
                                 expirationDate=dt.datetime.fromtimestamp(now + 86400, dt.timezone.utc))
    suppressed_task, task = audit(iot, "DEVICE_CERTIFICATE_EXPIRING_CHECK")
    assert task["auditDetails"]["DEVICE_CERTIFICATE_EXPIRING_CHECK"] == {
        "checkRunStatus": "COMPLETED_COMPLIANT", "checkCompliant": True,
        "totalResourcesCount": task["auditDetails"]["DEVICE_CERTIFICATE_EXPIRING_CHECK"]["totalResourcesCount"],
        "nonCompliantResourcesCount": 1, "suppressedNonCompliantResourcesCount": 1}
    assert [f["isSuppressed"] for f in findings_of(iot, taskId=suppressed_task)] == [True]
    assert findings_of(iot, taskId=suppressed_task, listSuppressedFindings=False) == []
    clock(server, advance=2 * 86400)
    assert iot.list_audit_suppressions()["suppressions"] == []
    later, task = audit(iot, "DEVICE_CERTIFICATE_EXPIRING_CHECK")
    assert [f["isSuppressed"] for f in findings_of(iot, taskId=later)] == [False]
    assert task["auditDetails"]["DEVICE_CERTIFICATE_EXPIRING_CHECK"]["checkRunStatus"] == "COMPLETED_NON_COMPLIANT"

    # a weekly scheduled audit runs when the clock passes its day (00:00 UTC)
    now = clock(server)
    day = (dt.datetime.fromtimestamp(now, dt.timezone.utc) + dt.timedelta(days=3)).strftime("%a").upper()
    iot.create_scheduled_audit(scheduledAuditName="weekly", frequency="WEEKLY", dayOfWeek=day,
                               targetCheckNames=["DEVICE_CERTIFICATE_EXPIRING_CHECK"])
    window = dict(startTime=dt.datetime.fromtimestamp(now - 60, dt.timezone.utc),
                  endTime=dt.datetime.fromtimestamp(now + 30 * 86400, dt.timezone.utc),
                  taskType="SCHEDULED_AUDIT_TASK")
    clock(server, advance=2 * 86400)
    assert iot.list_audit_tasks(**window)["tasks"] == []
    clock(server, advance=2 * 86400)
    [scheduled] = iot.list_audit_tasks(**window)["tasks"]
    task = wait_task(iot, scheduled["taskId"])
    assert task["taskStatus"] == "COMPLETED" and task["scheduledAuditName"] == "weekly"
    assert {f["nonCompliantResource"]["resourceIdentifier"]["deviceCertificateId"]
            for f in findings_of(iot, taskId=scheduled["taskId"])} == {expiring}
    clock(server, advance=86400)  # the next run is a week later, not the next day
    assert len(iot.list_audit_tasks(**window)["tasks"]) == 1
    clock(server, advance=7 * 86400)
    assert len(iot.list_audit_tasks(**window)["tasks"]) == 2
    assert ACCOUNT in iot.describe_scheduled_audit(scheduledAuditName="weekly")["scheduledAuditArn"]
