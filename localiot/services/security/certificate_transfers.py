"""Certificate transfers between accounts: TransferCertificate,
Accept/Reject/CancelCertificateTransfer, ListOutgoingCertificates.

The certificate stays in the source account's store, status
PENDING_TRANSFER and `transferredTo` the target, until the target accepts;
the target holds an "cert-incoming" pointer to it (and lists it in
ListCertificates, as AWS documents). Accepting moves the document into the
target account; the source keeps a "cert-transferred" note so a late
Cancel answers TransferAlreadyCompletedException.
"""

from __future__ import annotations

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import Affects, operation
from localiot.services.security.certificates import (
    ACTIVE, GLOBAL, HOME, INACTIVE, INCOMING, KIND, ORDER, PENDING_TRANSFER, POLICY_TARGET, REVOKED, THING_PRINCIPAL,
    TRANSFERRED, arn, home_of, normalize_id, order_add, order_key, owned, page_keys, remove, save, state_error, touch,
)


def _source_of(ctx, pointer: dict):
    return ctx.tx.scope(pointer["sourceAccount"], pointer["sourceRegion"])


def _incoming(ctx, certificate_id: str, action: str) -> tuple[dict, object]:
    """The pending transfer of `certificate_id` to this account: (source doc, source scope)."""
    cert_id = normalize_id(certificate_id)
    pointer = ctx.tx.get(INCOMING, cert_id)
    if pointer is not None:
        source = _source_of(ctx, pointer)
        doc = source.get(KIND, cert_id)
        if doc is not None and doc["status"] == PENDING_TRANSFER and doc.get("transferredTo") == ctx.account:
            return doc, source
        raise not_found(f"There is no pending transfer of certificate {cert_id} to this account.")
    own = ctx.tx.get(KIND, cert_id)
    if own is not None:
        if own["status"] == PENDING_TRANSFER:
            raise invalid(f"Only the transfer's target account can {action} the transfer of certificate {cert_id}.")
        if (own.get("transferData") or {}).get("acceptDate") and own.get("previousOwnedBy"):
            raise ServiceError(
                "TransferAlreadyCompletedException", f"The transfer of certificate {cert_id} is already complete."
            )
        raise invalid(f"Certificate {cert_id} is not pending transfer.")
    raise not_found(f"The certificate {cert_id} does not exist.")


@operation("iot", affects=Affects.DEVICE_RIGHTS | Affects.CERTIFICATE_STATUS)
def TransferCertificate(ctx, req):
    doc = owned(ctx, req["certificateId"])
    cert_id, cert_arn, target = doc["certificateId"], doc["certificateArn"], req["targetAwsAccount"]
    if target == ctx.account:
        raise invalid("The target account of a certificate transfer must differ from the certificate's owner.")
    status = doc["status"]
    if status == ACTIVE:
        raise state_error("Certificate must be deactivated (not ACTIVE) before it can be transferred.")
    if status == PENDING_TRANSFER:
        raise state_error(f"Certificate {cert_id} is already pending transfer to account {doc.get('transferredTo')}.")
    if status == REVOKED:
        raise state_error(f"Certificate {cert_id} is revoked and cannot be transferred.")
    if ctx.tx.linked_to(POLICY_TARGET, cert_arn, limit=1):
        raise ServiceError("TransferConflictException", f"Certificate policies must be detached before transfer (arn: {cert_arn})")
    if ctx.tx.linked_to(THING_PRINCIPAL, cert_arn, limit=1):
        raise ServiceError("TransferConflictException", f"Things must be detached before transfer (arn: {cert_arn})")
    target_tx = ctx.tx.scope(target, ctx.region)
    if target_tx.get(KIND, cert_id) is not None:
        raise invalid(f"Account {target} already has certificate {cert_id}.")
    transfer = {"transferDate": ctx.now()}
    if req.get("transferMessage") is not None:
        transfer["transferMessage"] = req["transferMessage"]
    doc.update(status=PENDING_TRANSFER, transferData=transfer, transferredTo=target)
    touch(ctx, doc)
    save(ctx.tx, doc)
    key = order_key(doc)
    target_tx.put(INCOMING, cert_id, {"sourceAccount": ctx.account, "sourceRegion": ctx.region, "orderKey": key})
    target_tx.link(ORDER, "all", key)  # the target sees it in ListCertificates, as AWS documents
    return {"transferredCertificateArn": cert_arn}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def AcceptCertificateTransfer(ctx, req):
    doc, source = _incoming(ctx, req["certificateId"], "accept")
    cert_id, now = doc["certificateId"], ctx.now()
    remove(source, doc)
    source.put(TRANSFERRED, cert_id, {"transferredTo": ctx.account, "acceptDate": now})
    ctx.tx.delete(INCOMING, cert_id)
    ctx.tx.delete(TRANSFERRED, cert_id)
    doc.pop("transferredTo", None)
    doc.update(
        certificateArn=arn(ctx.account, ctx.region, cert_id),
        ownedBy=ctx.account,
        previousOwnedBy=source.account,
        status=ACTIVE if req.get("setAsActive") else INACTIVE,
        transferData={**doc.get("transferData", {}), "acceptDate": now},
    )
    touch(ctx, doc)
    save(ctx.tx, doc)
    order_add(ctx.tx, doc)
    ctx.tx.scope(*GLOBAL).link(HOME, cert_id, home_of(ctx.tx))
    return {}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def RejectCertificateTransfer(ctx, req):
    doc, source = _incoming(ctx, req["certificateId"], "reject")
    cert_id = doc["certificateId"]
    ctx.tx.delete(INCOMING, cert_id)
    ctx.tx.unlink(ORDER, "all", order_key(doc))
    transfer = {**doc.get("transferData", {}), "rejectDate": ctx.now()}
    if req.get("rejectReason") is not None:
        transfer["rejectReason"] = req["rejectReason"]
    doc.pop("transferredTo", None)
    doc.update(status=INACTIVE, transferData=transfer)
    touch(ctx, doc)
    save(source, doc)
    return {}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def CancelCertificateTransfer(ctx, req):
    cert_id = normalize_id(req["certificateId"])
    doc = ctx.tx.get(KIND, cert_id)
    if doc is None:
        if ctx.tx.get(TRANSFERRED, cert_id) is not None:
            raise ServiceError(
                "TransferAlreadyCompletedException", f"The transfer of certificate {cert_id} is already complete."
            )
        if ctx.tx.get(INCOMING, cert_id) is not None:
            raise invalid(
                "Only the transfer's source account can cancel it; the target can use RejectCertificateTransfer."
            )
        raise not_found(f"The certificate {cert_id} does not exist.")
    if doc["status"] != PENDING_TRANSFER:
        if doc.get("previousOwnedBy") and (doc.get("transferData") or {}).get("acceptDate"):
            raise ServiceError(
                "TransferAlreadyCompletedException", f"The transfer of certificate {cert_id} is already complete."
            )
        raise invalid(f"Certificate {cert_id} is not pending transfer.")
    target_tx = ctx.tx.scope(doc["transferredTo"], ctx.region)
    target_tx.delete(INCOMING, cert_id)
    target_tx.unlink(ORDER, "all", order_key(doc))
    doc.pop("transferredTo", None)
    doc.update(status=INACTIVE, transferData={})
    touch(ctx, doc)
    save(ctx.tx, doc)
    return {}


@operation("iot")
def ListOutgoingCertificates(ctx, req):
    pending = {order_key(doc): doc for _, doc in ctx.tx.find(KIND, "status", PENDING_TRANSFER)}
    keys, marker = page_keys(sorted(pending), req)
    outgoing = []
    for key in keys:
        doc = pending[key]
        transfer = doc.get("transferData") or {}
        outgoing.append({
            "certificateArn": doc["certificateArn"],
            "certificateId": doc["certificateId"],
            "transferredTo": doc.get("transferredTo"),
            "transferDate": transfer.get("transferDate"),
            "transferMessage": transfer.get("transferMessage"),
            "creationDate": doc["creationDate"],
        })
    return {"outgoingCertificates": outgoing, "nextMarker": marker}
