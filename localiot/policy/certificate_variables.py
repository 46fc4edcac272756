"""The `iot:Certificate.*` policy variables of an X.509 certificate, as AWS IoT
binds them for a connection authenticated with that certificate."""

from __future__ import annotations

from datetime import datetime, timezone


_NAME_FIELDS = {
    "2.5.4.6": "Country",
    "2.5.4.10": "Organization",
    "2.5.4.11": "OrganizationalUnit",
    "2.5.4.46": "DistinguishedNameQualifier",
    "2.5.4.8": "State",
    "2.5.4.3": "CommonName",
    "2.5.4.5": "SerialNumber",
    "2.5.4.12": "Title",
    "2.5.4.4": "Surname",
    "2.5.4.42": "GivenName",
    "2.5.4.43": "Initials",
    "2.5.4.65": "Pseudonym",
    "2.5.4.44": "GenerationQualifier",
}


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def certificate_variables(pem: str | bytes) -> dict[str, object]:
    """The `iot:Certificate.*` policy variables of an X.509 certificate.

    Subject/Issuer fields (CommonName, Organization, ...), SubjectAlternativeName
    and IssuerAlternativeName (DNSName, RFC822Name, UniformResourceIdentifier,
    IPAddress, DirectoryName), SerialNumber, Validity.NotBefore/NotAfter
    (ISO 8601, UTC) and AvailableKeys. A field with several values gives its
    first value, and all of them under `<name>.List` (for ForAnyValue /
    ForAllValues conditions).
    """
    from cryptography import x509

    data = pem.encode() if isinstance(pem, str) else pem
    cert = x509.load_pem_x509_certificate(data)
    fields: dict[str, list[str]] = {}

    def add(name: str, value: str) -> None:
        fields.setdefault(name, []).append(value)

    for prefix, dn in (("Subject", cert.subject), ("Issuer", cert.issuer)):
        for attribute in dn:
            label = _NAME_FIELDS.get(attribute.oid.dotted_string)
            if label:
                add(f"{prefix}.{label}", str(attribute.value))
    for prefix, ext_class in (("SubjectAlternativeName", x509.SubjectAlternativeName),
                              ("IssuerAlternativeName", x509.IssuerAlternativeName)):
        try:
            names = cert.extensions.get_extension_for_class(ext_class).value
        except x509.ExtensionNotFound:
            continue
        for general in names:
            if isinstance(general, x509.DNSName):
                add(f"{prefix}.DNSName", general.value)
            elif isinstance(general, x509.RFC822Name):
                add(f"{prefix}.RFC822Name", general.value)
            elif isinstance(general, x509.UniformResourceIdentifier):
                add(f"{prefix}.UniformResourceIdentifier", general.value)
            elif isinstance(general, x509.IPAddress):
                add(f"{prefix}.IPAddress", str(general.value))
            elif isinstance(general, x509.DirectoryName):
                add(f"{prefix}.DirectoryName", general.value.rfc4514_string())
    add("SerialNumber", str(cert.serial_number))
    not_before = getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before
    not_after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after
    add("Validity.NotBefore", _iso(not_before))
    add("Validity.NotAfter", _iso(not_after))
    out: dict[str, object] = {}
    for name, values in fields.items():
        out[f"iot:Certificate.{name}"] = values[0]
        out[f"iot:Certificate.{name}.List"] = list(values)
    out["iot:Certificate.AvailableKeys"] = sorted(f"iot:Certificate.{name}" for name in fields)
    return out
