"""Device Defender audit through boto3 against the real server: the account
audit configuration, on-demand tasks with per-check statistics, and each check
evaluated on planted state (policies, X.509 certificates and CA chains,
logging, role aliases with IAM at moto's server).

Shared helpers (CA, audit, wait_task, findings_of) are used by the other
test_audit_* modules."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from localiot.testing import ACCOUNT, REGION, error_of, make_client

ROLE = f"arn:aws:iam::{ACCOUNT}:role/audit"
UTC = dt.timezone.utc
ALL_CHECKS = [
    "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK", "CA_CERTIFICATE_EXPIRING_CHECK",
    "CA_CERTIFICATE_KEY_QUALITY_CHECK", "CONFLICTING_CLIENT_IDS_CHECK", "DEVICE_CERTIFICATE_AGE_CHECK",
    "DEVICE_CERTIFICATE_EXPIRING_CHECK", "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK", "DEVICE_CERTIFICATE_SHARED_CHECK",
    "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK", "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
    "IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK", "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK",
    "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK", "LOGGING_DISABLED_CHECK", "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK",
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK", "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
]


# helpers --------------------------------------------------------------------------
def pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class CA:
    """A customer's CA made with `cryptography`, as a user would with openssl."""

    def __init__(self, cn="Acme Root CA", key=None, issuer: "CA | None" = None, days=3650):
        self.key = key or ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        self.cert = (
            x509.CertificateBuilder().subject_name(subject)
            .issuer_name(issuer.cert.subject if issuer else subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(issuer.key if issuer else self.key, hashes.SHA256())
        )
        self.pem = pem(self.cert)

    def issue(self, cn, key=None, days=365) -> str:
        key = key or ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(UTC)
        return pem(
            x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .sign(self.key, hashes.SHA256())
        )


def register_ca(iot, ca: CA) -> str:
    verification = ca.issue(iot.get_registration_code()["registrationCode"])
    return iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=verification,
                                       setAsActive=True)["certificateId"]


def configure(iot, *checks, **extra):
    iot.update_account_audit_configuration(
        roleArn=ROLE, auditCheckConfigurations={c: {"enabled": True} for c in checks}, **extra)


def wait_task(iot, task_id, timeout=20.0) -> dict:
    """The audit task once it left IN_PROGRESS (the run follows the call that started it)."""
    deadline = time.monotonic() + timeout
    while True:
        task = iot.describe_audit_task(taskId=task_id)
        if task["taskStatus"] != "IN_PROGRESS" or time.monotonic() > deadline:
            return task
        time.sleep(0.02)


def audit(iot, *checks) -> tuple[str, dict]:
    task_id = iot.start_on_demand_audit_task(targetCheckNames=list(checks))["taskId"]
    task = wait_task(iot, task_id)
    assert task["taskStatus"] == "COMPLETED", task
    return task_id, task


def findings_of(iot, **kw) -> list[dict]:
    out, token = [], None
    while True:
        page = iot.list_audit_findings(maxResults=50, **kw, **({"nextToken": token} if token else {}))
        out += page["findings"]
        token = page.get("nextToken")
        if not token:
            return out


def plant(server, kind, name, doc, index=None):
    def put():
        with server.app.store.transaction(ACCOUNT, REGION) as tx:
            tx.put(kind, name, doc, index)
    server.call(put)


# configuration ------------------------------------------------------------------------
def test_configuration_lists_every_check_and_validates(iot):
    described = iot.describe_account_audit_configuration()
    assert sorted(described["auditCheckConfigurations"]) == ALL_CHECKS
    assert not any(c["enabled"] for c in described["auditCheckConfigurations"].values())
    with pytest.raises(ClientError) as e:  # the first call must enable a check
        iot.update_account_audit_configuration(roleArn=ROLE, auditCheckConfigurations={
            "LOGGING_DISABLED_CHECK": {"enabled": False}})
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        configure(iot, "NO_SUCH_CHECK")
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.update_account_audit_configuration(roleArn="arn:aws:iam::123456789012:user/not-a-role",
                                               auditCheckConfigurations={"LOGGING_DISABLED_CHECK": {"enabled": True}})
    assert error_of(e) == ("InvalidRequestException", 400)
    assert iot.describe_account_audit_configuration().get("roleArn") is None  # nothing changed
    configure(iot, "LOGGING_DISABLED_CHECK", auditNotificationTargetConfigurations={"SNS": {
        "enabled": True, "roleArn": ROLE, "targetArn": "arn:aws:sns:us-east-1:123456789012:audits"}})
    iot.update_account_audit_configuration(auditCheckConfigurations={"DEVICE_CERTIFICATE_AGE_CHECK": {
        "enabled": True, "configuration": {"CERT_AGE_THRESHOLD_IN_DAYS": "60"}}})
    with pytest.raises(ClientError) as e:
        iot.update_account_audit_configuration(auditCheckConfigurations={"DEVICE_CERTIFICATE_AGE_CHECK": {
            "enabled": True, "configuration": {"CERT_AGE_THRESHOLD_IN_DAYS": "5"}}})
    assert error_of(e) == ("InvalidRequestException", 400)
    described = iot.describe_account_audit_configuration()
    assert described["roleArn"] == ROLE
    assert described["auditNotificationTargetConfigurations"]["SNS"]["targetArn"].endswith(":audits")
    checks = described["auditCheckConfigurations"]
    assert checks["LOGGING_DISABLED_CHECK"] == {"enabled": True}
    assert checks["DEVICE_CERTIFICATE_AGE_CHECK"] == {"enabled": True,
                                                      "configuration": {"CERT_AGE_THRESHOLD_IN_DAYS": "60"}}


def test_delete_configuration_and_scheduled_audits(iot):
    with pytest.raises(ClientError) as e:
        iot.delete_account_audit_configuration()
    assert error_of(e) == ("ResourceNotFoundException", 404)
    configure(iot, "LOGGING_DISABLED_CHECK")
    iot.create_scheduled_audit(scheduledAuditName="daily", frequency="DAILY",
                               targetCheckNames=["LOGGING_DISABLED_CHECK"])
    with pytest.raises(ClientError) as e:  # a check a scheduled audit uses cannot be disabled
        iot.update_account_audit_configuration(auditCheckConfigurations={"LOGGING_DISABLED_CHECK": {"enabled": False}})
    assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.delete_account_audit_configuration()
    assert error_of(e) == ("InvalidRequestException", 400)
    iot.delete_account_audit_configuration(deleteScheduledAudits=True)
    assert iot.list_scheduled_audits()["scheduledAudits"] == []
    assert not any(c["enabled"] for c in iot.describe_account_audit_configuration()["auditCheckConfigurations"].values())


# tasks ------------------------------------------------------------------------------------
def test_task_needs_enabled_known_checks(iot):
    configure(iot, "LOGGING_DISABLED_CHECK")
    for names in (["CA_CERTIFICATE_EXPIRING_CHECK"], ["NOPE_CHECK"]):
        with pytest.raises(ClientError) as e:
            iot.start_on_demand_audit_task(targetCheckNames=names)
        assert error_of(e) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.describe_audit_task(taskId="0" * 32)
    assert error_of(e) == ("ResourceNotFoundException", 404)


def test_logging_check_statistics_list_and_cancel(iot, localiot_server):
    configure(iot, "LOGGING_DISABLED_CHECK")
    before = time.time() - 5
    first, task = audit(iot, "LOGGING_DISABLED_CHECK")
    assert task["taskType"] == "ON_DEMAND_AUDIT_TASK"
    assert task["taskStatistics"] == {"totalChecks": 1, "inProgressChecks": 0, "waitingForDataCollectionChecks": 0,
                                      "compliantChecks": 0, "nonCompliantChecks": 1, "failedChecks": 0,
                                      "canceledChecks": 0}
    assert task["auditDetails"]["LOGGING_DISABLED_CHECK"] == {
        "checkRunStatus": "COMPLETED_NON_COMPLIANT", "checkCompliant": False, "totalResourcesCount": 1,
        "nonCompliantResourcesCount": 1, "suppressedNonCompliantResourcesCount": 0}
    [finding] = findings_of(iot, taskId=first)
    assert finding["checkName"] == "LOGGING_DISABLED_CHECK" and finding["severity"] == "LOW"
    assert finding["nonCompliantResource"] == {"resourceType": "ACCOUNT_SETTINGS",
                                               "resourceIdentifier": {"account": ACCOUNT}}
    assert finding["reasonForNonComplianceCode"] == "LOGGING_DISABLED" and finding["isSuppressed"] is False
    assert iot.describe_audit_finding(findingId=finding["findingId"])["finding"] == finding
    iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="WARN")
    second, task = audit(iot, "LOGGING_DISABLED_CHECK")
    assert task["auditDetails"]["LOGGING_DISABLED_CHECK"]["checkRunStatus"] == "COMPLETED_COMPLIANT"
    assert findings_of(iot, taskId=second) == []
    after = time.time() + 5
    listed = iot.list_audit_tasks(startTime=before, endTime=after)["tasks"]
    assert {t["taskId"] for t in listed} == {first, second}
    assert iot.list_audit_tasks(startTime=before, endTime=after, taskType="SCHEDULED_AUDIT_TASK")["tasks"] == []
    page = iot.list_audit_tasks(startTime=before, endTime=after, maxResults=1)
    assert len(page["tasks"]) == 1 and page["nextToken"]
    with pytest.raises(ClientError) as e:  # a completed task cannot be canceled
        iot.cancel_audit_task(taskId=first)
    assert error_of(e) == ("InvalidRequestException", 400)

    # a task canceled before its run records nothing
    from localiot.services.defender import audits
    from localiot.services.unit_of_work import unit_of_work

    def start_and_cancel():
        runtime = localiot_server.app.runtime
        with unit_of_work(runtime, ACCOUNT, REGION, "iot", "StartOnDemandAuditTask") as ctx:
            task_id = audits.StartOnDemandAuditTask(ctx, {"targetCheckNames": ["LOGGING_DISABLED_CHECK"]})["taskId"]
        with unit_of_work(runtime, ACCOUNT, REGION, "iot", "CancelAuditTask") as ctx:
            audits.CancelAuditTask(ctx, {"taskId": task_id})
        return task_id

    canceled = localiot_server.call(start_and_cancel)
    task = wait_task(iot, canceled)
    assert task["taskStatus"] == "CANCELED"
    assert task["taskStatistics"]["canceledChecks"] == 1
    assert iot.list_audit_tasks(startTime=before, endTime=time.time() + 5, taskStatus="CANCELED")["tasks"] == [
        {"taskId": canceled, "taskStatus": "CANCELED", "taskType": "ON_DEMAND_AUDIT_TASK"}]


# policies -------------------------------------------------------------------------------------
def policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ARN = "arn:aws:iot:us-east-1:123456789012"


def test_policy_checks(iot):
    iot.create_policy(policyName="everything", policyDocument=policy(
        {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}))
    iot.create_policy(policyName="any-client", policyDocument=policy(
        {"Effect": "Allow", "Action": ["iot:Connect"], "Resource": f"{ARN}:client/*"}))
    iot.create_policy(policyName="scoped", policyDocument=policy(
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/${{iot:ClientId}}/*"}))
    iot.create_policy(policyName="deny-wildcard", policyDocument=policy(
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/dev1/data"},
        {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{ARN}:topic/admin/#"}))
    iot.create_policy(policyName="leaky-filter", policyDocument=policy(
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{ARN}:topicfilter/dev1/+"},
        {"Effect": "Deny", "Action": "iot:Subscribe", "Resource": f"{ARN}:topicfilter/dev1/secret"}))
    # a non-default version does not count; the default one does
    iot.create_policy_version(policyName="any-client", setAsDefault=True, policyDocument=policy(
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/${{iot:ClientId}}"}))
    configure(iot, "IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK")
    task_id, task = audit(iot, "IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK")
    assert task["auditDetails"]["IOT_POLICY_OVERLY_PERMISSIVE_CHECK"]["totalResourcesCount"] == 5
    found = {(f["checkName"], f["nonCompliantResource"]["resourceIdentifier"]["policyVersionIdentifier"]["policyName"],
              f["nonCompliantResource"]["resourceIdentifier"]["policyVersionIdentifier"]["policyVersionId"],
              f["reasonForNonComplianceCode"]) for f in findings_of(iot, taskId=task_id)}
    assert found == {
        ("IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "everything", "1", "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS"),
        ("IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK", "deny-wildcard", "1",
         "POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT"),
        ("IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK", "leaky-filter", "1",
         "TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS"),
    }
    only = findings_of(iot, taskId=task_id, checkName="IOT_POLICY_OVERLY_PERMISSIVE_CHECK")
    assert [f["severity"] for f in only] == ["CRITICAL"]


# certificates ------------------------------------------------------------------------------------
def test_certificate_checks(iot, localiot_server):
    root = CA("Acme Root")
    register_ca(iot, root)
    intermediate = CA("Acme Intermediate", issuer=root)
    # the intermediate as its root issued it, then revoked; and as a CA of this account, still ACTIVE
    as_cert = iot.register_certificate(certificatePem=intermediate.pem, caCertificatePem=root.pem,
                                       status="ACTIVE")["certificateId"]
    iot.update_certificate(certificateId=as_cert, newStatus="REVOKED")
    intermediate_id = register_ca(iot, intermediate)
    under_revoked = iot.register_certificate(certificatePem=intermediate.issue("dev-under-revoked"),
                                             status="ACTIVE")["certificateId"]
    expiring = iot.register_certificate(certificatePem=root.issue("dev-expiring", days=10),
                                        status="ACTIVE")["certificateId"]
    healthy = iot.create_keys_and_certificate(setAsActive=True)["certificateId"]
    # a certificate with a 1024-bit RSA key (AWS IoT would refuse to register it now; older ones exist)
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    weak_pem = root.issue("dev-weak", key=weak_key)
    weak_id = x509.load_pem_x509_certificate(weak_pem.encode()).fingerprint(hashes.SHA256()).hex()
    plant(localiot_server, "cert", weak_id, {
        "certificateId": weak_id, "certificateArn": f"{ARN}:cert/{weak_id}", "certificatePem": weak_pem,
        "status": "ACTIVE", "ownedBy": ACCOUNT, "caCertificateId": None, "creationDate": time.time(),
        "lastModifiedDate": time.time()}, {"status": "ACTIVE"})
    checks = ["DEVICE_CERTIFICATE_EXPIRING_CHECK", "CA_CERTIFICATE_EXPIRING_CHECK",
              "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK", "CA_CERTIFICATE_KEY_QUALITY_CHECK",
              "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK", "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK",
              "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK", "DEVICE_CERTIFICATE_AGE_CHECK"]
    configure(iot, *checks)
    task_id, task = audit(iot, *checks)
    found = {(f["checkName"], json.dumps(f["nonCompliantResource"]["resourceIdentifier"], sort_keys=True),
              f["reasonForNonComplianceCode"]) for f in findings_of(iot, taskId=task_id)}
    device = lambda cid: json.dumps({"deviceCertificateId": cid})  # noqa: E731
    assert found == {
        ("DEVICE_CERTIFICATE_EXPIRING_CHECK", device(expiring), "CERTIFICATE_APPROACHING_EXPIRATION"),
        ("DEVICE_CERTIFICATE_KEY_QUALITY_CHECK", device(weak_id), "CERTIFICATE_KEY_VULNERABILITY"),
        ("REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK", json.dumps({"caCertificateId": intermediate_id}),
         "CERTIFICATE_REVOKED_BY_ISSUER"),
        ("INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK", device(under_revoked),
         "INTERMEDIATE_CA_REVOKED_BY_ISSUER"),
    }
    details = task["auditDetails"]
    assert details["DEVICE_CERTIFICATE_EXPIRING_CHECK"]["totalResourcesCount"] == 4  # the ACTIVE device certificates
    assert details["CA_CERTIFICATE_EXPIRING_CHECK"]["checkRunStatus"] == "COMPLETED_COMPLIANT"
    assert task["taskStatistics"]["nonCompliantChecks"] == 4 and task["taskStatistics"]["compliantChecks"] == 4
    [revoked_issuer] = findings_of(iot, taskId=task_id,
                                   checkName="INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK")
    related = iot.list_related_resources_for_audit_finding(findingId=revoked_issuer["findingId"])["relatedResources"]
    assert related[0]["resourceType"] == "ISSUER_CERTIFICATE"
    assert related[0]["resourceIdentifier"]["issuerCertificateIdentifier"]["issuerId"] == intermediate_id
    assert healthy not in {f["nonCompliantResource"]["resourceIdentifier"].get("deviceCertificateId")
                           for f in findings_of(iot, taskId=task_id)}
    # a year later every one of them is past the 365-day age threshold
    localiot_server.clock.advance(366 * 86400)
    task_id, task = audit(iot, "DEVICE_CERTIFICATE_AGE_CHECK", "DEVICE_CERTIFICATE_EXPIRING_CHECK")
    assert task["auditDetails"]["DEVICE_CERTIFICATE_AGE_CHECK"]["nonCompliantResourcesCount"] == 4
    codes = {f["reasonForNonComplianceCode"] for f in findings_of(iot, taskId=task_id,
                                                                  checkName="DEVICE_CERTIFICATE_EXPIRING_CHECK")}
    assert "CERTIFICATE_PAST_EXPIRATION" in codes


# role aliases and Cognito roles, with IAM and Cognito at moto's server ------------------------
@pytest.fixture
def downstream_server(localiot_servers, localiot_moto):
    """A server whose downstream AWS (IAM, Cognito, SNS ...) is moto's."""
    return localiot_servers.get(aws_endpoint_url=localiot_moto, downstream_access_key="testing",
                                downstream_secret_key="testing")


def test_role_alias_checks_read_iam(downstream_server, localiot_moto):
    iot = make_client(downstream_server)
    iam = make_client(localiot_moto, "iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                                "Principal": {"Service": "credentials.iot.amazonaws.com"}}]})
    for role in ("admin-role", "scoped-role"):
        try:
            iam.delete_role_policy(RoleName=role, PolicyName="p")
            iam.delete_role(RoleName=role)
        except ClientError:
            pass
    admin = iam.create_role(RoleName="admin-role", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(RoleName="admin-role", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}))
    scoped = iam.create_role(RoleName="scoped-role", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(RoleName="scoped-role", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                "Resource": "arn:aws:s3:::fw/${credentials-iot:ThingName}/*"}]}))
    iot.create_role_alias(roleAlias="admin-alias", roleArn=admin)
    iot.create_role_alias(roleAlias="scoped-alias", roleArn=scoped)
    checks = ["IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK", "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
              "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK"]
    configure(iot, *checks)
    task_id, task = audit(iot, *checks)
    [finding] = findings_of(iot, taskId=task_id)
    assert finding["nonCompliantResource"]["resourceIdentifier"] == {
        "roleAliasArn": f"{ARN}:rolealias/admin-alias"}
    assert finding["reasonForNonComplianceCode"] == "ALLOWS_ACCESS_TO_SECURITY_AUDITING_SERVICES"
    assert finding["relatedResources"] == [{"resourceType": "IAM_ROLE", "resourceIdentifier": {"iamRoleArn": admin}}]
    assert task["auditDetails"]["IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK"]["totalResourcesCount"] == 2
    # no identity pools at the downstream endpoint: compliant, nothing checked
    for check in checks[1:]:
        assert task["auditDetails"][check] == {
            "checkRunStatus": "COMPLETED_COMPLIANT", "checkCompliant": True, "totalResourcesCount": 0,
            "nonCompliantResourcesCount": 0, "suppressedNonCompliantResourcesCount": 0}


def test_audit_tasks_list_oldest_first(iot, localiot_server):
    """The one list order (issue 11 item 15): AWS documents none for audit tasks, so
    they list by start time, oldest first, like every other time-keyed list."""
    configure(iot, "LOGGING_DISABLED_CHECK")
    before = time.time() - 5
    started = []
    for _ in range(3):
        started.append(audit(iot, "LOGGING_DISABLED_CHECK")[0])
        localiot_server.clock.advance(1)
    window = {"startTime": before, "endTime": time.time() + 3600}
    assert [t["taskId"] for t in iot.list_audit_tasks(**window)["tasks"]] == started
    first = iot.list_audit_tasks(**window, maxResults=2)
    rest = iot.list_audit_tasks(**window, maxResults=2, nextToken=first["nextToken"])
    assert [t["taskId"] for t in first["tasks"] + rest["tasks"]] == started
