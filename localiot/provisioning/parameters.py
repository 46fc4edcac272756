"""The template parameters a device's certificate gives: `AWS::IoT::Certificate::*`.

One function for every provisioning path that takes parameters from a
certificate (just-in-time provisioning, fleet provisioning's RegisterThing):
the certificate id, the subject fields a template may reference, and the
first subject alternative name.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

_SUBJECT = {
    "AWS::IoT::Certificate::Country": NameOID.COUNTRY_NAME,
    "AWS::IoT::Certificate::Organization": NameOID.ORGANIZATION_NAME,
    "AWS::IoT::Certificate::OrganizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "AWS::IoT::Certificate::DistinguishedNameQualifier": NameOID.DN_QUALIFIER,
    "AWS::IoT::Certificate::StateName": NameOID.STATE_OR_PROVINCE_NAME,
    "AWS::IoT::Certificate::CommonName": NameOID.COMMON_NAME,
    "AWS::IoT::Certificate::SerialNumber": NameOID.SERIAL_NUMBER,
}


def certificate_parameters(cert: x509.Certificate, certificate_id: str) -> dict[str, str]:
    """AWS::IoT::Certificate::Id, the subject's fields and SubjectAlternativeName, where present."""
    out = {"AWS::IoT::Certificate::Id": certificate_id}
    for name, oid in _SUBJECT.items():
        values = cert.subject.get_attributes_for_oid(oid)
        if values:
            out[name] = str(values[0].value)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return out
    first = next(iter(sans), None)
    if first is not None:
        out["AWS::IoT::Certificate::SubjectAlternativeName"] = str(getattr(first, "value", first))
    return out
