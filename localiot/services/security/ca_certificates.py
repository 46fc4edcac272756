"""CA certificates: registration codes, register / describe / list / update / delete,
and device certificates registered with a CA (RegisterCertificate, ListCertificatesByCA).

Storage (other families rely on it):
  kind "cacert", name = certificateId, doc with certificateId, certificateArn
  ("arn:aws:iot:{region}:{account}:cacert/{id}"), certificatePem, status, ownedBy,
  autoRegistrationStatus ("ENABLE"/"DISABLE"), registrationConfig {templateBody,
  roleArn, templateName}, certificateMode, creationDate, lastModifiedDate,
  customerVersion, generationId, validity. Index entries "subject" -> SHA-256 of
  the subject's DER (to find the issuer of a device certificate) and "template"
  -> registrationConfig.templateName.

Functions for other modules (the broker's just-in-time registration):
  ca_by_id(tx, ca_id) -> doc | None
  issuers_of(tx, cert) -> [doc]          registered CAs of this account that signed `cert`
  locate_ca(tx, ca_id) -> [(account, region, mode)]   who registered it, across accounts
  register_with_ca(ctx, cert, ca_doc, status) -> doc  e.g. status PENDING_ACTIVATION for JITR
"""

from __future__ import annotations

import hashlib
import json
import secrets

from cryptography.hazmat.primitives import serialization

from localiot import pki
from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import Affects, operation
from localiot.services.common import apply_tags, new_id, tags_to_dict
from localiot.services.security import certificates as certs
from localiot.services.tagging import taggable

KIND = "cacert"
REGISTRATION_CODE = "registrationcode"
CA_HOME = "cacert-home"  # global links: CA id -> "<account>/<region>/<mode>"
MAX_SAME_SUBJECT = 10  # "up to 10 CA certificates with the same CA subject field per AWS account"

taggable(KIND, lambda tx, ca_id: tx.get(KIND, ca_id) is not None)


def validation_error(message: str) -> ServiceError:
    return ServiceError("CertificateValidationException", message)


def subject_key(name) -> str:
    return hashlib.sha256(name.public_bytes()).hexdigest()


def ca_by_id(tx, ca_id: str) -> dict | None:
    return tx.get(KIND, ca_id.lower())


def get(ctx, ca_id: str) -> dict:
    doc = ca_by_id(ctx.tx, ca_id)
    if doc is None:
        raise not_found(f"The CA certificate {ca_id.lower()} does not exist.")
    return doc


def save(tx, doc: dict) -> None:
    tx.put(KIND, doc["certificateId"], doc, {
        "subject": doc["subjectKey"],
        "template": (doc.get("registrationConfig") or {}).get("templateName"),
    })


def issuers_of(tx, cert) -> list[dict]:
    found = []
    for _, doc in tx.find(KIND, "subject", subject_key(cert.issuer)):
        if pki.is_signed_by(cert, pki.load_certificate(doc["certificatePem"])):
            found.append(doc)
    return found


def locate_ca(tx, ca_id: str) -> list[tuple[str, str, str]]:
    homes = tx.scope(*certs.GLOBAL).linked(CA_HOME, ca_id.lower())
    return [tuple(home.split("/", 2)) for home in homes]


def register_with_ca(ctx, cert, ca_doc: dict, status: str) -> dict:
    """Store a device certificate signed by `ca_doc`, in the CA's certificate mode."""
    return certs.insert(ctx, cert, status=status, ca_id=ca_doc["certificateId"], mode=ca_doc["certificateMode"])


# registration codes ------------------------------------------------------------
@operation("iot")
def GetRegistrationCode(ctx, req):
    doc = ctx.tx.get(REGISTRATION_CODE, "current")
    if doc is None:
        doc = {"registrationCode": secrets.token_hex(32), "creationDate": ctx.now()}
        ctx.tx.put(REGISTRATION_CODE, "current", doc)
    return {"registrationCode": doc["registrationCode"]}


@operation("iot")
def DeleteRegistrationCode(ctx, req):
    if not ctx.tx.delete(REGISTRATION_CODE, "current"):
        raise not_found("There is no registration code to delete.")
    return {}


# register -----------------------------------------------------------------------------
def _registration_config(ctx, config: dict | None) -> dict:
    config = {k: v for k, v in (config or {}).items() if v is not None}
    if "templateBody" in config and "templateName" in config:
        raise invalid("A registration configuration takes either templateBody or templateName, not both.")
    if config.get("templateBody"):
        try:
            body = json.loads(config["templateBody"])
        except ValueError:
            raise invalid("The registration configuration's templateBody is not valid JSON.")
        if not isinstance(body, dict):
            raise invalid("The registration configuration's templateBody must be a JSON object.")
    name = config.get("templateName")
    if name:
        template = ctx.tx.get(certs.TEMPLATE, name)
        if template is None:
            raise not_found(f"The provisioning template {name} does not exist.")
        if template.get("type") not in (None, "JITP"):
            raise invalid(f"The provisioning template {name} is not a JITP template.")
    return config


def _load_ca(pem: str, now: float):
    try:
        cert = pki.load_certificate(pem)
    except pki.PKIError as error:
        raise validation_error(str(error))
    if not pki.is_ca(cert):
        raise validation_error("The certificate is not a CA certificate: its basicConstraints do not say CA:TRUE.")
    try:
        pki.check_public_key(cert.public_key())
    except pki.PKIError as error:
        raise validation_error(str(error))
    except (ValueError, TypeError):
        raise validation_error("The CA certificate's public key is not supported.")
    certs.check_current(cert, now, "The CA certificate")
    return cert


def _verify_possession(ctx, ca_cert, verification_pem: str, now: float) -> None:
    """DEFAULT mode: proof that the registrant holds the CA's key and this account's code."""
    code = ctx.tx.get(REGISTRATION_CODE, "current")
    if code is None:
        raise ServiceError(
            "RegistrationCodeValidationException",
            "This account has no registration code; call GetRegistrationCode and sign a verification "
            "certificate whose common name is that code.",
        )
    try:
        verification = pki.load_certificate(verification_pem)
    except pki.PKIError as error:
        raise validation_error(f"Invalid verification certificate. {error}")
    if pki.common_name(verification.subject) != code["registrationCode"]:
        raise ServiceError(
            "RegistrationCodeValidationException",
            "The verification certificate's subject common name does not match this account's registration code.",
        )
    if not pki.verify_signature(verification, ca_cert.public_key()):
        raise validation_error("The verification certificate is not signed by the CA certificate being registered.")
    certs.check_current(verification, now, "The verification certificate")


@operation("iot", affects=Affects.TRUST_ANCHORS)
def RegisterCACertificate(ctx, req):
    now = ctx.now()
    mode = req.get("certificateMode") or "DEFAULT"
    verification_pem = req.get("verificationCertificate")
    if mode == "SNI_ONLY" and verification_pem:
        raise invalid("The verificationCertificate must be empty when certificateMode is SNI_ONLY.")
    if mode == "DEFAULT" and not verification_pem:
        raise invalid("A verificationCertificate is required when certificateMode is DEFAULT.")
    ca_cert = _load_ca(req["caCertificate"], now)
    if mode == "DEFAULT":
        _verify_possession(ctx, ca_cert, verification_pem, now)
    config = _registration_config(ctx, req.get("registrationConfig"))
    ca_id = pki.certificate_id(ca_cert)
    existing = ctx.tx.get(KIND, ca_id)
    if existing is not None:
        raise ServiceError(
            "ResourceAlreadyExistsException", "The CA certificate is already registered in this account.",
            resourceId=ca_id, resourceArn=existing["certificateArn"],
        )
    if mode == "DEFAULT":
        for account, region, other_mode in locate_ca(ctx.tx, ca_id):
            if region == ctx.region and account != ctx.account and other_mode == "DEFAULT":
                raise ServiceError(
                    "ResourceAlreadyExistsException",
                    "The CA certificate is registered in DEFAULT mode by another account in this Region; "
                    "register it in SNI_ONLY mode.",
                    resourceId=ca_id,
                )
    key = subject_key(ca_cert.subject)
    if ctx.tx.count(KIND, "subject", key) >= MAX_SAME_SUBJECT:
        raise ServiceError(
            "LimitExceededException",
            f"An account can register at most {MAX_SAME_SUBJECT} CA certificates with the same subject.",
        )
    doc = {
        "certificateId": ca_id,
        "certificateArn": ctx.arn(f"cacert/{ca_id}"),
        "certificatePem": ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
        "status": certs.ACTIVE if req.get("setAsActive") else certs.INACTIVE,
        "ownedBy": ctx.account,
        "autoRegistrationStatus": "ENABLE" if req.get("allowAutoRegistration") else "DISABLE",
        "certificateMode": mode,
        "registrationConfig": config,
        "creationDate": now,
        "lastModifiedDate": now,
        "customerVersion": 1,
        "generationId": new_id(),
        "validity": pki.validity(ca_cert),
        "subjectKey": key,
    }
    save(ctx.tx, doc)
    ctx.tx.scope(*certs.GLOBAL).link(CA_HOME, ca_id, f"{ctx.account}/{ctx.region}/{mode}")
    if req.get("tags"):
        apply_tags(ctx, doc["certificateArn"], tags_to_dict(req["tags"]))
    return {"certificateArn": doc["certificateArn"], "certificateId": ca_id}


# describe, list, update, delete --------------------------------------------------------
def description(doc: dict) -> dict:
    out = {key: doc.get(key) for key in (
        "certificateArn", "certificateId", "status", "certificatePem", "ownedBy", "creationDate",
        "autoRegistrationStatus", "lastModifiedDate", "customerVersion", "generationId", "certificateMode",
    )}
    out["validity"] = dict(doc["validity"])
    return out


@operation("iot")
def DescribeCACertificate(ctx, req):
    doc = get(ctx, req["certificateId"])
    return {"certificateDescription": description(doc), "registrationConfig": dict(doc.get("registrationConfig") or {})}


@operation("iot")
def ListCACertificates(ctx, req):
    template = req.get("templateName")
    if template:
        rows = ctx.tx.find(KIND, "template", template)
    else:
        rows = ctx.tx.scan(KIND)
    by_key = {f"{doc['creationDate']:017.6f}/{name}": doc for name, doc in rows}
    keys, marker = certs.page_keys(sorted(by_key), req)
    return {
        "certificates": [
            {key: by_key[k][key] for key in ("certificateArn", "certificateId", "status", "creationDate")}
            for k in keys
        ],
        "nextMarker": marker,
    }


@operation("iot", affects=Affects.DEVICE_RIGHTS | Affects.CERTIFICATE_STATUS | Affects.ALL_ACCOUNTS)
def UpdateCACertificate(ctx, req):
    doc = get(ctx, req["certificateId"])
    if req.get("removeAutoRegistration") and req.get("registrationConfig") is not None:
        raise invalid("Specify either registrationConfig or removeAutoRegistration, not both.")
    if req.get("newStatus"):
        doc["status"] = req["newStatus"]
    if req.get("newAutoRegistrationStatus"):
        doc["autoRegistrationStatus"] = req["newAutoRegistrationStatus"]
    if req.get("registrationConfig") is not None:
        doc["registrationConfig"] = _registration_config(ctx, req["registrationConfig"])
    if req.get("removeAutoRegistration"):
        doc["registrationConfig"] = {}
    certs.touch(ctx, doc)
    save(ctx.tx, doc)
    return {}


@operation("iot", affects=Affects.DEVICE_RIGHTS | Affects.CERTIFICATE_STATUS | Affects.ALL_ACCOUNTS)
def DeleteCACertificate(ctx, req):
    doc = get(ctx, req["certificateId"])
    if doc["status"] == certs.ACTIVE:
        raise ServiceError(
            "CertificateStateException", "The CA certificate must be deactivated (not ACTIVE) before deletion."
        )
    ctx.tx.delete(KIND, doc["certificateId"])
    ctx.tx.drop_tags(doc["certificateArn"])
    ctx.tx.scope(*certs.GLOBAL).unlink(
        CA_HOME, doc["certificateId"], f"{ctx.account}/{ctx.region}/{doc['certificateMode']}"
    )
    return {}


@operation("iot")
def ListCertificatesByCA(ctx, req):
    return certs.list_certificates_page(ctx, f"ca/{req['caCertificateId'].lower()}", req)


# device certificates signed by a registered CA ----------------------------------------------
@operation("iot", affects=Affects.DEVICE_RIGHTS)
def RegisterCertificate(ctx, req):
    now = ctx.now()
    cert = certs.load_registered_pem(req["certificatePem"])
    status = certs.registration_status(req)
    if req.get("caCertificatePem"):
        try:
            ca_cert = pki.load_certificate(req["caCertificatePem"])
        except pki.PKIError as error:
            raise validation_error(f"Invalid caCertificatePem. {error}")
        ca = ca_by_id(ctx.tx, pki.certificate_id(ca_cert))
        if ca is None:
            raise validation_error("The CA certificate is not registered in this account.")
        if not pki.is_signed_by(cert, ca_cert):
            raise validation_error("The certificate is not signed by the given CA certificate.")
    else:
        issuers = issuers_of(ctx.tx, cert)
        if not issuers:
            raise validation_error("The certificate is not signed by a CA certificate registered in this account.")
        if len(issuers) > 1:
            raise ServiceError(
                "CertificateConflictException",
                "More than one registered CA certificate with this subject and public key signed the "
                "certificate; pass caCertificatePem to choose one.",
            )
        ca = issuers[0]
    if ca["status"] != certs.ACTIVE:
        raise ServiceError("CertificateStateException", f"The CA certificate {ca['certificateId']} is not ACTIVE.")
    certs.check_current(cert, now)
    doc = register_with_ca(ctx, cert, ca, status)
    return {"certificateArn": doc["certificateArn"], "certificateId": doc["certificateId"]}
