"""The AWS::IoT::Certificate::* template parameters a device's certificate
gives, one function for just-in-time provisioning and fleet provisioning.

AWS's JITP page lists Country, Organization, OrganizationalUnit,
DistinguishedNameQualifier, StateName, CommonName, SerialNumber (subject
fields) and Id (AWS IoT's certificate id, not a field of the certificate);
fleet provisioning templates "use the same parameters". Locality and Title
are the subject's other naming attributes a template may reference, and
SubjectAlternativeName is the certificate's first subject alternative name.
A field the certificate lacks gives no parameter, so a template that needs
it fails as it does on AWS (unless it declares a Default).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from localiot import pki
from localiot.provisioning.grammar import CERTIFICATE_PARAMETER_PREFIX as PREFIX
SUBJECT_FIELDS = {
    "Country": NameOID.COUNTRY_NAME,
    "Organization": NameOID.ORGANIZATION_NAME,
    "OrganizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "DistinguishedNameQualifier": NameOID.DN_QUALIFIER,
    "StateName": NameOID.STATE_OR_PROVINCE_NAME,
    "Locality": NameOID.LOCALITY_NAME,
    "CommonName": NameOID.COMMON_NAME,
    "SerialNumber": NameOID.SERIAL_NUMBER,
    "Title": NameOID.TITLE,
}


def certificate_parameters(cert: x509.Certificate | str | bytes, certificate_id: str) -> dict[str, str]:
    """AWS::IoT::Certificate::* values of `cert` (an x509 certificate or its PEM)."""
    if not isinstance(cert, x509.Certificate):
        cert = pki.load_certificate(cert)
    out = {f"{PREFIX}Id": certificate_id}
    for name, oid in SUBJECT_FIELDS.items():
        values = cert.subject.get_attributes_for_oid(oid)
        if values:
            out[f"{PREFIX}{name}"] = str(values[0].value)
    san = subject_alternative_name(cert)
    if san is not None:
        out[f"{PREFIX}SubjectAlternativeName"] = san
    return out


def subject_alternative_name(cert: x509.Certificate) -> str | None:
    """The certificate's first subject alternative name, as text."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    first = next(iter(names), None)
    if first is None:
        return None
    return str(getattr(first, "value", first))
