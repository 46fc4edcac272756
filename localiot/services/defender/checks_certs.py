"""Certificate checks, evaluated on each certificate's X.509 (parsed from its
stored PEM), its status and the account's connection history.

Revocation as this installation knows it: AWS learns revocations from CRLs;
localiot has no CRLs, so a certificate is revoked by its issuer when this
account holds the same certificate (same SHA-256 of the DER) with status
REVOKED — e.g. an intermediate CA registered as a CA certificate and also
registered, under its root, as a certificate that was then revoked.

Each check returns (resources checked, [finding]) where a finding is
{nonCompliantResource, relatedResources, reasonForNonCompliance, reasonForNonComplianceCode}.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from localiot import pki
from localiot.services.defender import catalog, history
from localiot.services.defender.configuration import threshold_days

CERT, CA = "cert", "cacert"
DAY = 86400
MIN_RSA_BITS, MIN_EC_BITS = 2048, 256


def _device(doc: dict, info: dict | None = None) -> dict:
    out = {"resourceType": "DEVICE_CERTIFICATE", "resourceIdentifier": {"deviceCertificateId": doc["certificateId"]}}
    if info:
        out["additionalInfo"] = info
    return out


def _ca(doc: dict, info: dict | None = None) -> dict:
    out = {"resourceType": "CA_CERTIFICATE", "resourceIdentifier": {"caCertificateId": doc["certificateId"]}}
    if info:
        out["additionalInfo"] = info
    return out


def finding(resource: dict, reason: str, code: str, related: list | None = None) -> dict:
    return {"nonCompliantResource": resource, "relatedResources": related or [],
            "reasonForNonCompliance": reason, "reasonForNonComplianceCode": code}


class Certificates:
    """The account's certificates, each PEM parsed once per audit."""

    def __init__(self, tx):
        self.tx = tx
        self.devices = [doc for _, doc in tx.scan(CERT) if doc.get("status") == "ACTIVE"]
        self.cas = [doc for _, doc in tx.scan(CA) if doc.get("status") == "ACTIVE"]
        self._parsed: dict[str, object] = {}
        self._revoked: set[str] | None = None

    def x509(self, doc: dict):
        cid = doc["certificateId"]
        if cid not in self._parsed:
            try:
                self._parsed[cid] = pki.load_certificate(doc["certificatePem"])
            except (pki.PKIError, KeyError, ValueError):
                self._parsed[cid] = None
        return self._parsed[cid]

    def revoked(self) -> set[str]:
        if self._revoked is None:
            self._revoked = {name for name, _ in self.tx.find(CERT, "status", "REVOKED")}
        return self._revoked


def _expiry(docs: list[dict], certs: Certificates, now: float, days: int, resource) -> list[dict]:
    out = []
    for doc in docs:
        cert = certs.x509(doc)
        if cert is None:
            continue
        not_after = cert.not_valid_after_utc.timestamp()
        info = {"EXPIRATION_TIME": str(int(not_after))}
        if not_after <= now:
            out.append(finding(resource(doc, info), "Certificate is past its expiration.", "CERTIFICATE_PAST_EXPIRATION"))
        elif not_after - now <= days * DAY:
            out.append(finding(resource(doc, info), f"Certificate expires within {days} days.",
                               "CERTIFICATE_APPROACHING_EXPIRATION"))
    return out


def weak_key(cert) -> str | None:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            return f"RSA key of {key.key_size} bits (fewer than {MIN_RSA_BITS})"
        if key.public_numbers().e < 65537:
            return f"RSA public exponent {key.public_numbers().e} (smaller than 65537)"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size < MIN_EC_BITS:
            return f"EC key on {key.curve.name} ({key.curve.key_size} bits, fewer than {MIN_EC_BITS})"
    elif isinstance(key, dsa.DSAPublicKey):
        return "DSA key"
    return None


def _key_quality(docs: list[dict], certs: Certificates, resource) -> list[dict]:
    out = []
    for doc in docs:
        cert = certs.x509(doc)
        problem = weak_key(cert) if cert is not None else None
        if problem:
            out.append(finding(resource(doc), f"Certificate uses a vulnerable key: {problem}.",
                               "CERTIFICATE_KEY_VULNERABILITY"))
    return out


def ca_expiring(audit) -> tuple[int, list]:
    c = audit.certs
    return len(c.cas), _expiry(c.cas, c, audit.now, catalog.CA_EXPIRING_DAYS, _ca)


def device_expiring(audit) -> tuple[int, list]:
    c = audit.certs
    days = threshold_days(audit.tx, "DEVICE_CERTIFICATE_EXPIRING_CHECK")
    return len(c.devices), _expiry(c.devices, c, audit.now, days, _device)


def ca_key_quality(audit) -> tuple[int, list]:
    return len(audit.certs.cas), _key_quality(audit.certs.cas, audit.certs, _ca)


def device_key_quality(audit) -> tuple[int, list]:
    return len(audit.certs.devices), _key_quality(audit.certs.devices, audit.certs, _device)


def device_age(audit) -> tuple[int, list]:
    days = threshold_days(audit.tx, "DEVICE_CERTIFICATE_AGE_CHECK")
    out = []
    for doc in audit.certs.devices:
        age = audit.now - doc["creationDate"]
        if age > days * DAY:
            out.append(finding(_device(doc, {"CERTIFICATE_AGE": str(int(age // DAY))}),
                               f"Certificate is older than {days} days.", "CERTIFICATE_PAST_AGE_THRESHOLD"))
    return len(audit.certs.devices), out


def revoked_ca_still_active(audit) -> tuple[int, list]:
    revoked = audit.certs.revoked()
    out = [finding(_ca(doc), "CA certificate is revoked by its issuer but still active.",
                   "CERTIFICATE_REVOKED_BY_ISSUER") for doc in audit.certs.cas if doc["certificateId"] in revoked]
    return len(audit.certs.cas), out


def revoked_device_still_active(audit) -> tuple[int, list]:
    """An ACTIVE device certificate that another account or region of this installation revoked."""
    from localiot.services.security.certificates import locate

    out = []
    for doc in audit.certs.devices:
        for account, region in locate(audit.tx, doc["certificateId"]):
            if (account, region) == (audit.tx.account, audit.tx.region):
                continue
            other = audit.tx.scope(account, region).get(CERT, doc["certificateId"])
            if other is not None and other.get("status") == "REVOKED":
                out.append(finding(_device(doc), "Device certificate is revoked but still active.",
                                   "CERTIFICATE_REVOKED_BY_ISSUER"))
                break
    return len(audit.certs.devices), out


def _chain(certs: Certificates, doc: dict) -> list[dict]:
    """The registered CA certificates above a device certificate, nearest first."""
    chain, seen = [], set()
    ca_id = doc.get("caCertificateId")
    while ca_id and ca_id not in seen:
        seen.add(ca_id)
        ca = certs.tx.get(CA, ca_id)
        if ca is None:
            break
        chain.append(ca)
        parent = None
        ca_cert = certs.x509(ca)
        if ca_cert is not None and ca_cert.issuer != ca_cert.subject:
            for _, other in certs.tx.scan(CA):
                other_cert = certs.x509(other)
                if other_cert is not None and other_cert.subject == ca_cert.issuer and pki.is_signed_by(ca_cert, other_cert):
                    parent = other["certificateId"]
                    break
        ca_id = parent
    return chain


def intermediate_ca_revoked(audit) -> tuple[int, list]:
    revoked = audit.certs.revoked()
    out = []
    if not revoked:
        return len(audit.certs.devices), out
    for doc in audit.certs.devices:
        for ca in _chain(audit.certs, doc):
            if ca["certificateId"] in revoked:
                ca_cert = audit.certs.x509(ca)
                ident = {"issuerId": ca["certificateId"]}
                if ca_cert is not None:
                    ident.update(issuerCertificateSubject=ca_cert.subject.rfc4514_string(),
                                 issuerCertificateSerialNumber=format(ca_cert.serial_number, "x"))
                issuer = {"resourceType": "ISSUER_CERTIFICATE", "resourceIdentifier": {"issuerCertificateIdentifier": ident}}
                out.append(finding(_device(doc), "Device certificate is active while its intermediate CA is revoked.",
                                   "INTERMEDIATE_CA_REVOKED_BY_ISSUER", [issuer]))
                break
    return len(audit.certs.devices), out


# broker history ------------------------------------------------------------------
def _window(audit) -> list[dict]:
    history.flush(audit.runtime)
    return history.connections(audit.tx, int((audit.now - catalog.HISTORY_DAYS * DAY) * 1000))


def _client(client_id: str, info: dict | None = None) -> dict:
    out = {"resourceType": "CLIENT_ID", "resourceIdentifier": {"clientId": client_id}}
    if info:
        out["additionalInfo"] = info
    return out


def _overlap(a: dict, b: dict) -> bool:
    end_a, end_b = a.get("disconnectedAt") or 2**62, b.get("disconnectedAt") or 2**62
    return a["connectedAt"] < end_b and b["connectedAt"] < end_a


def conflicting_client_ids(audit) -> tuple[int, list]:
    by_client: dict[str, list[dict]] = {}
    for record in _window(audit):
        by_client.setdefault(record["clientId"], []).append(record)
    out = []
    for client_id, records in sorted(by_client.items()):
        taken_over = [r for r in records if r.get("disconnectReason") == "DUPLICATE_CLIENTID"]
        if not taken_over:
            continue
        related = [_device({"certificateId": p}) for p in sorted({r["principal"] for r in records if r.get("principal")})
                   if audit.tx.get(CERT, p) is not None]
        out.append(finding(_client(client_id, {"CONNECTION_COUNT": str(len(records))}),
                           "Multiple connections are using the same client ID.",
                           "DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS", related))
    return len(by_client), out


def shared_certificates(audit) -> tuple[int, list]:
    by_principal: dict[str, list[dict]] = {}
    for record in _window(audit):
        if record.get("principal") and audit.tx.get(CERT, record["principal"]) is not None:
            by_principal.setdefault(record["principal"], []).append(record)
    out = []
    for principal, records in sorted(by_principal.items()):
        concurrent = {r["clientId"] for r in records for s in records
                      if r["clientId"] != s["clientId"] and _overlap(r, s)}
        if len(concurrent) < 2:
            continue
        related = []
        for client_id in sorted(concurrent):
            first = min((r for r in records if r["clientId"] == client_id), key=lambda r: r["connectedAt"])
            info = {"CONNECTION_TIME": str(first["connectedAt"])}
            if first.get("disconnectedAt"):
                info["DISCONNECTION_TIME"] = str(first["disconnectedAt"])
            related.append(_client(client_id, info))
        out.append(finding(_device({"certificateId": principal}),
                           "Certificate is used by multiple clients concurrently.",
                           "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES", related))
    return len(audit.certs.devices), out
