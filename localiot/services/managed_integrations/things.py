"""CreateManagedThing (with ClientToken idempotency), Get, List, Update, Delete."""

from __future__ import annotations

import json
import uuid

from localiot.protocol.errors import ServiceError
from localiot.services import operation
from localiot.services.common import MAX_TAGS, paginate
from localiot.services.managed_integrations.model import (
    CREATE_FIELDS, DESCRIBED, MANAGED_THING, SERVICE, SUMMARY, UPDATE_FIELDS, get, initial_status, pick,
)

TOKEN_KIND = "mi-client-token"
# Credential lockers are resources of this service that localiot does not
# implement (CreateCredentialLocker answers NotImplemented), so none exists.
CREDENTIAL_LOCKER_KIND = "mi-credential-locker"

# ListManagedThings filter -> the managed thing field it compares.
FILTERS = {
    "OwnerFilter": "Owner",
    "CredentialLockerFilter": "CredentialLockerId",
    "RoleFilter": "Role",
    "ParentControllerIdentifierFilter": "ParentControllerId",
    "ConnectorPolicyIdFilter": "ConnectorPolicyId",
    "ConnectorDestinationIdFilter": "ConnectorDestinationId",
    "ConnectorDeviceIdFilter": "ConnectorDeviceId",
    "SerialNumberFilter": "SerialNumber",
    "ProvisioningStatusFilter": "ProvisioningStatus",
}


def _validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def _check_credential_locker(ctx, locker_id: str | None) -> None:
    if locker_id is not None and ctx.tx.get(CREDENTIAL_LOCKER_KIND, locker_id) is None:
        raise ServiceError("ResourceNotFoundException", f"Credential locker {locker_id} not found.",
                           ResourceId=locker_id, ResourceType="CredentialLocker")


def _check_tags(tags: dict) -> None:
    if len(tags) > MAX_TAGS:
        raise _validation(f"A resource can have at most {MAX_TAGS} tags.")
    for key in tags:
        if key.lower().startswith("aws:"):
            raise _validation("Tag keys with the prefix 'aws:' are reserved for AWS use.")


def _fingerprint(req: dict) -> str:
    """The parameters a ClientToken stands for (everything but the token)."""
    return json.dumps({k: v for k, v in req.items() if k != "ClientToken"}, sort_keys=True, default=str)


@operation(SERVICE)
def CreateManagedThing(ctx, req):
    token = req.get("ClientToken")
    if token is not None:
        seen = ctx.tx.get(TOKEN_KIND, token)
        if seen is not None:
            if seen["parameters"] != _fingerprint(req):
                raise ServiceError("ConflictException",
                                   f"ClientToken {token} was already used with different parameters.")
            # The same request again: the first answer, and nothing created.
            return seen["answer"]
    _check_credential_locker(ctx, req.get("CredentialLockerId"))
    tags = req.get("Tags") or {}
    _check_tags(tags)
    thing_id = uuid.uuid4().hex
    now = ctx.now()
    doc = {field: req[field] for field in CREATE_FIELDS if req.get(field) is not None}
    doc.update(Id=thing_id, Arn=MANAGED_THING.arn(ctx, thing_id), CreatedAt=now, UpdatedAt=now,
               ProvisioningStatus=initial_status(req))
    MANAGED_THING.create(ctx, thing_id, doc, tags)
    answer = {"Arn": doc["Arn"], "Id": thing_id, "CreatedAt": now}
    if token is not None:
        ctx.tx.put(TOKEN_KIND, token, {"parameters": _fingerprint(req), "answer": answer})
    return answer


@operation(SERVICE)
def GetManagedThing(ctx, req):
    doc = get(ctx, req["Identifier"])
    tags = ctx.tx.get_tags(doc["Arn"])
    return {**pick(doc, DESCRIBED), **({"Tags": tags} if tags else {})}


@operation(SERVICE)
def ListManagedThings(ctx, req):
    wanted = {field: req[name] for name, field in FILTERS.items() if req.get(name) is not None}
    things = [doc for _, doc in MANAGED_THING.list(ctx)
              if all(doc.get(field) == value for field, value in wanted.items())]
    things.sort(key=lambda doc: (doc["CreatedAt"], doc["Id"]))
    try:
        found, more = paginate(ctx, req, things, lambda doc: (doc["CreatedAt"], doc["Id"]), default_size=100,
                               urlsafe=True)
    except ServiceError as error:  # a token that is not ours: this service models no InvalidRequestException
        raise _validation(error.message) from None
    return {"Items": [pick(doc, SUMMARY) for doc in found], **more}


@operation(SERVICE)
def UpdateManagedThing(ctx, req):
    doc = get(ctx, req["Identifier"])
    _check_credential_locker(ctx, req.get("CredentialLockerId"))
    changes = {field: req[field] for field in UPDATE_FIELDS if req.get(field) is not None}
    doc.update(changes, UpdatedAt=ctx.now())
    MANAGED_THING.put(ctx, doc["Id"], doc)
    return {}


@operation(SERVICE)
def DeleteManagedThing(ctx, req):
    doc = get(ctx, req["Identifier"])
    MANAGED_THING.delete(ctx, doc["Id"])
    return {}
