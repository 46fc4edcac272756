"""The server certificates the test endpoint presents, one per TLS variant.

- default: the broker's own certificate (localiot.listeners.tls), what a
  device sees on the ordinary endpoint;
- wrong-subject: issued by the installation CA (which the device trusts) for
  a name the device did not ask for (TLS_Incorrect_Subject_Name_Server_Cert);
- self-signed: for the right names but signed by nobody the device trusts
  (TLS_Unsecure_Server_Cert);
- expired: by the installation CA for the right names, valid until yesterday
  (TLS_Expired_Server_Cert);
- large: by the installation CA for the right names plus enough extra names
  to make it far larger than the default one (TLS_Large_Size_Server_Cert).
"""

from __future__ import annotations

import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from localiot import pki
from localiot.listeners.tls import server_certificate, server_names

# AWS IoT's TLS 1.2 cipher suites (OpenSSL names) and the ones AWS recommends; TLS 1.3 suites are all supported.
AWS_IOT_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA",
    "ECDHE-ECDSA-AES256-SHA", "AES128-GCM-SHA256", "AES128-SHA256", "AES128-SHA", "AES256-GCM-SHA384",
    "AES256-SHA256", "AES256-SHA",
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
)
AWS_IOT_RECOMMENDED = ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                       "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")

DEFAULT, WRONG_SUBJECT, SELF_SIGNED, EXPIRED, LARGE, CIPHERS = (
    "default", "wrong-subject", "self-signed", "expired", "large", "ciphers")
WRONG_NAME = "not-this-endpoint.localiot.invalid"


def _sans(names: list[str], ips: list[str]) -> x509.SubjectAlternativeName:
    return x509.SubjectAlternativeName([x509.DNSName(n) for n in names]
                                       + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips])


def _issue(names: list[str], ips: list[str], signer_key=None, issuer: x509.Name | None = None,
           not_before: dt.datetime | None = None, not_after: dt.datetime | None = None) -> tuple[bytes, bytes]:
    key = pki.generate_rsa_key(2048)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else ips[0])])
    cert = (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(hours=1))
            .not_valid_after(not_after or now + dt.timedelta(days=365))
            .add_extension(_sans(names, ips), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(signer_key or key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def variant_certificate(runtime, variant: str) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) the endpoint presents for `variant`."""
    if variant in (DEFAULT, CIPHERS):
        return server_certificate(runtime)
    ca = runtime.ca
    names, ips = server_names(runtime.config)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    if variant == WRONG_SUBJECT:
        return _issue([WRONG_NAME], [], ca.key, ca.certificate.subject)
    if variant == SELF_SIGNED:
        return _issue(names, ips)
    if variant == EXPIRED:
        return _issue(names, ips, ca.key, ca.certificate.subject, now - dt.timedelta(days=30), now - dt.timedelta(days=1))
    if variant == LARGE:
        padding = [f"large-certificate-{i:03d}.localiot.invalid" for i in range(60)]
        return _issue(names + padding, ips, ca.key, ca.certificate.subject)
    raise ValueError(f"unknown TLS variant {variant!r}")
