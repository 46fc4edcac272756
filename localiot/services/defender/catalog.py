"""The audit checks AWS IoT Device Defender lists, with their severity, the
resource type a finding names, and the mitigation action types AWS allows for
them (AWS IoT Device Defender guide, "Audit checks" and "Mitigation actions")."""

from __future__ import annotations

from dataclasses import dataclass

DEVICE_ACTIONS = ("UPDATE_DEVICE_CERTIFICATE", "ADD_THINGS_TO_THING_GROUP", "PUBLISH_FINDING_TO_SNS")
CA_ACTIONS = ("UPDATE_CA_CERTIFICATE", "PUBLISH_FINDING_TO_SNS")
POLICY_ACTIONS = ("REPLACE_DEFAULT_POLICY_VERSION", "PUBLISH_FINDING_TO_SNS")
SNS_ONLY = ("PUBLISH_FINDING_TO_SNS",)


@dataclass(frozen=True)
class Check:
    name: str
    severity: str
    actions: tuple[str, ...]


CHECKS: dict[str, Check] = {c.name: c for c in (
    Check("AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK", "CRITICAL", SNS_ONLY),
    Check("CA_CERTIFICATE_EXPIRING_CHECK", "MEDIUM", CA_ACTIONS),
    Check("CA_CERTIFICATE_KEY_QUALITY_CHECK", "CRITICAL", CA_ACTIONS),
    Check("CONFLICTING_CLIENT_IDS_CHECK", "HIGH", SNS_ONLY),
    Check("DEVICE_CERTIFICATE_AGE_CHECK", "LOW", DEVICE_ACTIONS),
    Check("DEVICE_CERTIFICATE_EXPIRING_CHECK", "MEDIUM", DEVICE_ACTIONS),
    Check("DEVICE_CERTIFICATE_KEY_QUALITY_CHECK", "CRITICAL", DEVICE_ACTIONS),
    Check("DEVICE_CERTIFICATE_SHARED_CHECK", "CRITICAL", DEVICE_ACTIONS),
    Check("INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK", "CRITICAL", DEVICE_ACTIONS),
    Check("IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "CRITICAL", POLICY_ACTIONS),
    Check("IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK", "MEDIUM", POLICY_ACTIONS),
    Check("IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK", "MEDIUM", SNS_ONLY),
    Check("IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK", "CRITICAL", SNS_ONLY),
    Check("LOGGING_DISABLED_CHECK", "LOW", ("ENABLE_IOT_LOGGING", "PUBLISH_FINDING_TO_SNS")),
    Check("REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK", "MEDIUM", CA_ACTIONS),
    Check("REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK", "MEDIUM", DEVICE_ACTIONS),
    Check("UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK", "CRITICAL", SNS_ONLY),
)}

# Check-specific configuration (CheckCustomConfiguration): AWS's defaults and bounds, in days.
CUSTOM_CONFIG = {
    "DEVICE_CERTIFICATE_AGE_CHECK": ("CERT_AGE_THRESHOLD_IN_DAYS", 365, 30, 3652),
    "DEVICE_CERTIFICATE_EXPIRING_CHECK": ("CERT_EXPIRATION_THRESHOLD_IN_DAYS", 30, 30, 3652),
}
CA_EXPIRING_DAYS = 30  # CA certificates "expiring within 30 days"
HISTORY_DAYS = 31  # connection history the broker-based checks look at

ACTION_PARAMS = {
    "updateDeviceCertificateParams": "UPDATE_DEVICE_CERTIFICATE",
    "updateCACertificateParams": "UPDATE_CA_CERTIFICATE",
    "addThingsToThingGroupParams": "ADD_THINGS_TO_THING_GROUP",
    "replaceDefaultPolicyVersionParams": "REPLACE_DEFAULT_POLICY_VERSION",
    "enableIoTLoggingParams": "ENABLE_IOT_LOGGING",
    "publishFindingToSnsParams": "PUBLISH_FINDING_TO_SNS",
}


def check(name: str) -> Check:
    from localiot.protocol.errors import invalid

    found = CHECKS.get(name)
    if found is None:
        raise invalid(f"Check {name} is not a valid audit check name.")
    return found
