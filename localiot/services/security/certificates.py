"""Device certificates: issue, describe, list, update, delete; provisioning claims.
Transfers between accounts live in certificate_transfers, certificate
providers in certificate_providers. The installation's device CA
(`runtime.device_ca`, localiot.pki), not the root devices trust for the server,
issues what CreateKeysAndCertificate, CreateCertificateFromCsr and
CreateProvisioningClaim hand out, as AWS IoT's own device issuer does.

Storage (other families rely on it):
  kind "cert", name = certificateId (SHA-256 of the DER), doc with certificateId,
  certificateArn, certificatePem, status, ownedBy, previousOwnedBy, caCertificateId
  (or None), certificateMode, creationDate, lastModifiedDate, customerVersion,
  generationId, validity {notBefore, notAfter}, transferData, and while a transfer
  is pending `transferredTo`; provisioning claims also carry `provisioningClaim`
  {templateName, expiration}. Index entries "ca" -> caCertificateId and
  "status" -> status.
  Policy attachments are links "policy-target" (policy name -> certificate ARN),
  thing attachments links "thing-principal" (thing name -> certificate ARN); this
  module only reads them, except that DeleteCertificate(forceDelete) detaches
  policies.

Functions for other modules (the broker, fleet provisioning, JITR):
  by_id(tx, certificate_id) -> doc | None          a certificate this account owns
  find_certificate_by_pem(tx, pem) -> doc | None   the same, by its PEM
  locate(tx, certificate_id) -> [(account, region)]  who holds it, across accounts
  is_usable(doc, now) -> bool                      ACTIVE and within its validity
  create_keys_and_certificate(ctx, set_as_active) -> CreateKeysAndCertificate's answer
  create_certificate_from_csr(ctx, csr_pem, set_as_active) -> CreateCertificateFromCsr's answer
  insert(ctx, cert, status=..., ca_id=..., mode=...) -> doc   store a new certificate
  set_status(ctx, doc, status)                     change status (e.g. activate after JITR)
  (certificate_providers.certificate_provider_for(tx, operation): the account's provider for an operation)
"""

from __future__ import annotations


from localiot import pki
from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import Affects, operation
from localiot.services.common import decode_token, encode_token, new_id, page_list

KIND = "cert"
POLICY_TARGET = "policy-target"  # links: policy name -> target ARN (policies family)
THING_PRINCIPAL = "thing-principal"  # links: thing name -> principal ARN (registry family)
ORDER = "cert-created"  # links: "all" | "ca/<id>" -> "<creationDate>/<id>", keyset order by creation
INCOMING = "cert-incoming"  # in the target account: a transfer waiting for Accept/Reject
TRANSFERRED = "cert-transferred"  # in the source account: a transfer that was accepted
HOME = "cert-home"  # global links: certificate id -> "<account>/<region>"
GLOBAL = ("global", "global")  # the scope that indexes across accounts
TEMPLATE = "provisioningtemplate"  # provisioning templates (fleet provisioning family)

ACTIVE, INACTIVE, REVOKED = "ACTIVE", "INACTIVE", "REVOKED"
PENDING_TRANSFER, PENDING_ACTIVATION, REGISTER_INACTIVE = "PENDING_TRANSFER", "PENDING_ACTIVATION", "REGISTER_INACTIVE"
INTERNAL_STATUSES = (PENDING_TRANSFER, PENDING_ACTIVATION)  # "not intended for developer use"
DEFAULT_PAGE_SIZE = 25  # "The results are paginated with a default page size of 25."
CLAIM_LIFETIME = 300  # provisioning claims expire after five minutes

def state_error(message: str) -> ServiceError:
    return ServiceError("CertificateStateException", message)


# lookups for other modules ----------------------------------------------------
def normalize_id(certificate_id: str) -> str:
    return certificate_id.lower()


def arn(account: str, region: str, certificate_id: str) -> str:
    return f"arn:aws:iot:{region}:{account}:cert/{certificate_id}"


def by_id(tx, certificate_id: str) -> dict | None:
    return tx.get(KIND, normalize_id(certificate_id))


def find_certificate_by_pem(tx, pem: str | bytes) -> dict | None:
    try:
        return by_id(tx, pki.certificate_id(pki.load_certificate(pem)))
    except pki.PKIError:
        return None


def locate(tx, certificate_id: str) -> list[tuple[str, str]]:
    """Every (account, region) that holds the certificate (SNI_ONLY ones may be in several)."""
    homes = tx.scope(*GLOBAL).linked(HOME, normalize_id(certificate_id))
    return [tuple(home.split("/", 1)) for home in homes]


def is_usable(doc: dict, now: float) -> bool:
    validity = doc["validity"]
    return doc["status"] == ACTIVE and validity["notBefore"] <= now <= validity["notAfter"]


# storage -------------------------------------------------------------------------
def order_key(doc: dict) -> str:
    return f"{doc['creationDate']:017.6f}/{doc['certificateId']}"


def order_add(tx, doc: dict, *, by_ca: bool = True) -> None:
    key = order_key(doc)
    tx.link(ORDER, "all", key)
    if by_ca and doc.get("caCertificateId"):
        tx.link(ORDER, f"ca/{doc['caCertificateId']}", key)


def order_remove(tx, doc: dict) -> None:
    key = order_key(doc)
    tx.unlink(ORDER, "all", key)
    if doc.get("caCertificateId"):
        tx.unlink(ORDER, f"ca/{doc['caCertificateId']}", key)


def home_of(tx) -> str:
    return f"{tx.account}/{tx.region}"


def save(tx, doc: dict) -> None:
    tx.put(KIND, doc["certificateId"], doc, {"ca": doc.get("caCertificateId"), "status": doc["status"]})


def touch(ctx, doc: dict) -> None:
    """A change AWS would version: new lastModifiedDate, customerVersion and generationId."""
    doc["lastModifiedDate"] = ctx.now()
    doc["customerVersion"] = doc.get("customerVersion", 0) + 1
    doc["generationId"] = new_id()


def already_exists(tx, certificate_id: str) -> ServiceError | None:
    existing = tx.get(KIND, certificate_id)
    if existing is not None:
        return ServiceError(
            "ResourceAlreadyExistsException", "The certificate is already provisioned or registered",
            resourceId=certificate_id, resourceArn=existing["certificateArn"],
        )
    if tx.get(INCOMING, certificate_id) is not None:
        return ServiceError(
            "ResourceAlreadyExistsException",
            "The certificate is pending transfer to this account: accept or reject the transfer.",
            resourceId=certificate_id,
        )
    return None


def insert(ctx, cert, *, status: str, ca_id: str | None = None, mode: str = "DEFAULT",
           listed: bool = True, extra: dict | None = None) -> dict:
    """Store a new certificate of this account; ResourceAlreadyExistsException if it is there."""
    cert_id = pki.certificate_id(cert)
    error = already_exists(ctx.tx, cert_id)
    if error is not None:
        raise error
    now = ctx.now()
    doc = {
        "certificateId": cert_id,
        "certificateArn": arn(ctx.account, ctx.region, cert_id),
        "certificatePem": pki.to_pem(cert),
        "status": status,
        "ownedBy": ctx.account,
        "caCertificateId": ca_id,
        "certificateMode": mode,
        "creationDate": now,
        "lastModifiedDate": now,
        "customerVersion": 1,
        "generationId": new_id(),
        "validity": pki.validity(cert),
        "transferData": {},
        **(extra or {}),
    }
    save(ctx.tx, doc)
    if listed:
        order_add(ctx.tx, doc)
    ctx.tx.delete(TRANSFERRED, cert_id)
    ctx.tx.scope(*GLOBAL).link(HOME, cert_id, home_of(ctx.tx))
    return doc


def remove(tx, doc: dict) -> None:
    tx.delete(KIND, doc["certificateId"])
    order_remove(tx, doc)
    tx.drop_tags(doc["certificateArn"])
    tx.scope(*GLOBAL).unlink(HOME, doc["certificateId"], home_of(tx))


def owned(ctx, certificate_id: str) -> dict:
    """A certificate this account owns, for the calls that change it."""
    cert_id = normalize_id(certificate_id)
    doc = ctx.tx.get(KIND, cert_id)
    if doc is not None:
        return doc
    if ctx.tx.get(INCOMING, cert_id) is not None:
        raise state_error(
            f"Certificate {cert_id} is pending transfer to this account; accept the transfer before changing it."
        )
    raise not_found(f"The certificate {cert_id} does not exist.")


def visible(ctx, certificate_id: str) -> dict | None:
    """A certificate this account owns, or one being transferred to it (still the source's)."""
    cert_id = normalize_id(certificate_id)
    doc = ctx.tx.get(KIND, cert_id)
    if doc is not None:
        return doc
    pointer = ctx.tx.get(INCOMING, cert_id)
    if pointer is not None:
        return ctx.tx.scope(pointer["sourceAccount"], pointer["sourceRegion"]).get(KIND, cert_id)
    return None


def set_status(ctx, doc: dict, status: str) -> None:
    doc["status"] = status
    touch(ctx, doc)
    save(ctx.tx, doc)


# shapes ------------------------------------------------------------------------
def description(doc: dict) -> dict:
    out = {key: doc.get(key) for key in (
        "certificateArn", "certificateId", "caCertificateId", "status", "certificatePem", "ownedBy",
        "previousOwnedBy", "creationDate", "lastModifiedDate", "customerVersion", "generationId",
        "certificateMode",
    )}
    out["transferData"] = dict(doc.get("transferData") or {})
    out["validity"] = dict(doc["validity"])
    return out


def summary(doc: dict) -> dict:
    return {
        "certificateArn": doc["certificateArn"],
        "certificateId": doc["certificateId"],
        "status": doc["status"],
        "certificateMode": doc["certificateMode"],
        "creationDate": doc["creationDate"],
    }


# pageSize / marker pagination ---------------------------------------------------------
def page_keys(keys: list[str], req: dict, *, size_key: str = "pageSize", token_key: str = "marker",
              default_size: int = DEFAULT_PAGE_SIZE) -> tuple[list[str], str | None]:
    """One page of ascending-sorted keys, in the list order every List operation
    follows: ascending unless the caller sends ascendingOrder=false."""
    ascending = req.get("ascendingOrder") is not False
    return page_list(keys if ascending else keys[::-1], req, descending=not ascending,
                     default_size=default_size, size_key=size_key, token_key=token_key)


def page_ordered(tx, src: str, req: dict) -> tuple[list[str], str | None]:
    """A page of ORDER keys under `src`; ascending pages read only what they return."""
    if req.get("ascendingOrder") is not False:
        size = req.get("pageSize") or DEFAULT_PAGE_SIZE
        keys = tx.linked(ORDER, src, after=decode_token(req.get("marker"), "marker"), limit=size + 1)
        if len(keys) <= size:
            return keys, None
        return keys[:size], encode_token(keys[size - 1])
    return page_keys(tx.linked(ORDER, src), req)


def list_certificates_page(ctx, src: str, req: dict) -> dict:
    keys, marker = page_ordered(ctx.tx, src, req)
    certificates = []
    for key in keys:
        doc = visible(ctx, key.rsplit("/", 1)[1])
        if doc is not None:
            certificates.append(summary(doc))
    return {"certificates": certificates, "nextMarker": marker}


# issuing ---------------------------------------------------------------------------
def create_keys_and_certificate(ctx, set_as_active: bool = False) -> dict:
    cert, key = ctx.runtime.device_ca.create_keys_and_certificate(now=ctx.now())
    doc = insert(ctx, cert, status=ACTIVE if set_as_active else INACTIVE)
    return {
        "certificateArn": doc["certificateArn"],
        "certificateId": doc["certificateId"],
        "certificatePem": doc["certificatePem"],
        "keyPair": {"PublicKey": pki.public_key_pem(key), "PrivateKey": pki.private_key_pem(key)},
    }


def create_certificate_from_csr(ctx, csr_pem: str, set_as_active: bool = False) -> dict:
    try:
        csr = pki.load_csr(csr_pem)
    except pki.PKIError as error:
        raise invalid(str(error))
    if not pki.csr_signature_valid(csr):
        raise invalid("The certificate signing request's signature is not valid.")
    try:
        public_key = csr.public_key()
        pki.check_public_key(public_key)
    except pki.PKIError as error:
        raise invalid(f"The certificate signing request's public key is not supported: {error}")
    except (ValueError, TypeError):
        raise invalid("The certificate signing request's public key is not supported.")
    subject = csr.subject if len(csr.subject) else None
    cert = ctx.runtime.device_ca.issue_device_certificate(public_key, subject=subject, now=ctx.now())
    doc = insert(ctx, cert, status=ACTIVE if set_as_active else INACTIVE)
    return {
        "certificateArn": doc["certificateArn"],
        "certificateId": doc["certificateId"],
        "certificatePem": doc["certificatePem"],
    }


@operation("iot")
def CreateKeysAndCertificate(ctx, req):
    return create_keys_and_certificate(ctx, bool(req.get("setAsActive")))


@operation("iot")
def CreateCertificateFromCsr(ctx, req):
    return create_certificate_from_csr(ctx, req["certificateSigningRequest"], bool(req.get("setAsActive")))


def registration_status(req: dict) -> str:
    """The status a Register* call asks for: `status`, else the deprecated setAsActive."""
    status = req.get("status")
    if status is None:
        return ACTIVE if req.get("setAsActive") else INACTIVE
    if status in INTERNAL_STATUSES:
        raise invalid(f"The status {status} is used internally by AWS IoT and cannot be requested.")
    return status


def load_registered_pem(pem: str):
    """A device certificate handed to a Register* call, checked as AWS IoT checks it."""
    try:
        cert = pki.load_certificate(pem)
        pki.check_public_key(cert.public_key())
    except pki.PKIError as error:
        raise ServiceError("CertificateValidationException", str(error))
    except (ValueError, TypeError):
        raise ServiceError("CertificateValidationException", "The certificate's public key is not supported.")
    return cert


def check_current(cert, now: float, what: str = "The certificate") -> None:
    if cert.not_valid_after_utc.timestamp() < now:
        raise ServiceError("CertificateValidationException", f"{what} has expired.")


@operation("iot", affects=Affects.DEVICE_RIGHTS | Affects.TRUST_ANCHORS)
def RegisterCertificateWithoutCA(ctx, req):
    cert = load_registered_pem(req["certificatePem"])
    check_current(cert, ctx.now())
    status = registration_status({"status": req.get("status")})
    doc = insert(ctx, cert, status=status, mode="SNI_ONLY")
    return {"certificateArn": doc["certificateArn"], "certificateId": doc["certificateId"]}


# describe, list, update, delete ---------------------------------------------------
@operation("iot")
def DescribeCertificate(ctx, req):
    doc = visible(ctx, req["certificateId"])
    if doc is None:
        raise not_found(f"The certificate {normalize_id(req['certificateId'])} does not exist.")
    return {"certificateDescription": description(doc)}


@operation("iot")
def ListCertificates(ctx, req):
    return list_certificates_page(ctx, "all", req)


@operation("iot", affects=Affects.DEVICE_RIGHTS | Affects.CERTIFICATE_STATUS)
def UpdateCertificate(ctx, req):
    new_status = req["newStatus"]
    if new_status in INTERNAL_STATUSES:
        raise invalid(
            f"The status {new_status} is used internally by AWS IoT and cannot be set with UpdateCertificate."
        )
    doc = owned(ctx, req["certificateId"])
    current = doc["status"]
    if current == new_status:
        return {}  # idempotent
    if current == REVOKED:
        raise state_error(f"Certificate {doc['certificateId']} is revoked; a revoked certificate cannot change status.")
    if current == PENDING_TRANSFER:
        raise state_error(
            f"Certificate {doc['certificateId']} is pending transfer; cancel the transfer before changing its status."
        )
    set_status(ctx, doc, new_status)
    return {}


@operation("iot", affects=Affects.DEVICE_RIGHTS | Affects.CERTIFICATE_STATUS)
def DeleteCertificate(ctx, req):
    doc = owned(ctx, req["certificateId"])
    cert_arn = doc["certificateArn"]
    if doc["status"] == ACTIVE:
        raise state_error("Certificate must be deactivated (not ACTIVE) before deletion.")
    if doc["status"] == PENDING_TRANSFER:
        raise state_error("Certificate is pending transfer; cancel the transfer before deleting it.")
    things = ctx.tx.linked_to(THING_PRINCIPAL, cert_arn, limit=1)
    if things:
        raise ServiceError("DeleteConflictException", f"Things must be detached before deletion (arn: {cert_arn})")
    if ctx.tx.linked_to(POLICY_TARGET, cert_arn, limit=1):
        if not req.get("forceDelete"):
            raise ServiceError(
                "DeleteConflictException", f"Certificate policies must be detached before deletion (arn: {cert_arn})"
            )
        ctx.tx.unlink_all(POLICY_TARGET, dst=cert_arn)
    remove(ctx.tx, doc)
    return {}


# provisioning claims -------------------------------------------------------------------
@operation("iot")
def CreateProvisioningClaim(ctx, req):
    name = req["templateName"]
    template = ctx.tx.get(TEMPLATE, name)
    if template is None:
        raise not_found(f"The provisioning template {name} does not exist.")
    if template.get("type") == "JITP":
        raise invalid(f"The provisioning template {name} is a JITP template; claims need a FLEET_PROVISIONING template.")
    now = ctx.now()
    cert, key = ctx.runtime.device_ca.create_keys_and_certificate(now=now, not_after=now + CLAIM_LIFETIME)
    expiration = pki.validity(cert)["notAfter"]
    doc = insert(
        ctx, cert, status=ACTIVE, listed=False,
        extra={"provisioningClaim": {"templateName": name, "expiration": expiration}},
    )
    return {
        "certificateId": doc["certificateId"],
        "certificatePem": doc["certificatePem"],
        "keyPair": {"PublicKey": pki.public_key_pem(key), "PrivateKey": pki.private_key_pem(key)},
        "expiration": expiration,
    }
