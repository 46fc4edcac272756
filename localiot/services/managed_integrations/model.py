"""The managed thing resource: its declaration, documents and views."""

from __future__ import annotations

from localiot.protocol.errors import ServiceError
from localiot.services.common import Resource

SERVICE = "iot-managed-integrations"
ARN_SERVICE = "iotmanagedintegrations"

MANAGED_THING = Resource(
    "mi-managed-thing", "managed-thing/{name}",
    not_found="Managed thing {name} not found.",
    taggable=True, arn_service=ARN_SERVICE,
)

# Fields a caller sets on create (and, but Role, AuthenticationMaterial*,
# ClientToken and Tags, on update); GetManagedThing returns them as stored.
CREATE_FIELDS = (
    "Role", "Owner", "CredentialLockerId", "AuthenticationMaterial", "AuthenticationMaterialType",
    "WiFiSimpleSetupConfiguration", "SerialNumber", "Brand", "Model", "Name", "CapabilityReport",
    "CapabilitySchemas", "Capabilities", "Classification", "MetaData",
)
UPDATE_FIELDS = (
    "Owner", "CredentialLockerId", "SerialNumber", "WiFiSimpleSetupConfiguration", "Brand", "Model", "Name",
    "CapabilityReport", "CapabilitySchemas", "Capabilities", "Classification", "HubNetworkMode", "MetaData",
)
# What GetManagedThing answers from the stored document (AuthenticationMaterial
# and the capability fields have their own operations).
DESCRIBED = (
    "Id", "Arn", "Owner", "CredentialLockerId", "Role", "ProvisioningStatus", "Name", "Model", "Brand",
    "SerialNumber", "Classification", "CreatedAt", "UpdatedAt", "HubNetworkMode", "MetaData",
    "WiFiSimpleSetupConfiguration",
)
SUMMARY = (
    "Id", "Arn", "Brand", "Classification", "Model", "Name", "Owner", "CredentialLockerId", "ProvisioningStatus",
    "Role", "SerialNumber", "CreatedAt", "UpdatedAt",
)


def get(ctx, thing_id: str) -> dict:
    """The managed thing, or the service's ResourceNotFoundException naming it."""
    doc = MANAGED_THING.find(ctx, thing_id)
    if doc is None:
        raise ServiceError("ResourceNotFoundException", MANAGED_THING.not_found.format(name=thing_id),
                           ResourceId=thing_id, ResourceType="ManagedThing")
    return doc


def initial_status(req: dict) -> str:
    """Where a new managed thing starts in the provisioning workflow, as the
    Developer Guide describes the statuses: a device created from its
    discovery answer is DISCOVERED; one created from its barcode (or
    pre-onboarded in the cloud) is PRE_ASSOCIATED, found once powered on."""
    if req["AuthenticationMaterialType"] == "DISCOVERED_DEVICE":
        return "DISCOVERED"
    return "PRE_ASSOCIATED"


def pick(doc: dict, fields) -> dict:
    return {k: doc[k] for k in fields if doc.get(k) is not None}
