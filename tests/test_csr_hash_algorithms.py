"""CreateCertificateFromCsr verifies the CSR's self-signature with the CSR's own
hash algorithm (issue 11 item 7): a sha1WithRSAEncryption CSR, which `openssl
req -verify` accepts, gets a certificate signed with SHA-256, as on AWS."""

import base64

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

SHA1_WITH_RSA = bytes.fromhex("06092a864886f70d010105")  # OID 1.2.840.113549.1.1.5


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + body


def sha1_csr(key: rsa.RSAPrivateKey, cn: str = "sha1-device", tamper: bool = False) -> str:
    """A CSR signed with sha1WithRSAEncryption (cryptography refuses to make one: DER by hand)."""
    template = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])).sign(key, hashes.SHA256())
    tbs = template.tbs_certrequest_bytes
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    if tamper:
        signature = signature[:-1] + bytes([signature[-1] ^ 1])
    algorithm = _der(0x30, SHA1_WITH_RSA + b"\x05\x00")
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE REQUEST-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE REQUEST-----\n"


def test_a_sha1_csr_gets_a_sha256_certificate(iot):
    key = rsa.generate_private_key(65537, 2048)
    pem = sha1_csr(key)
    assert x509.load_pem_x509_csr(pem.encode()).signature_hash_algorithm.name == "sha1"
    out = iot.create_certificate_from_csr(certificateSigningRequest=pem, setAsActive=True)
    cert = x509.load_pem_x509_certificate(out["certificatePem"].encode())
    assert cert.signature_hash_algorithm.name == "sha256"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "sha1-device"
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert cert.public_key().public_bytes(serialization.Encoding.DER, spki) == key.public_key().public_bytes(
        serialization.Encoding.DER, spki)


def test_a_sha1_csr_with_a_bad_signature_is_refused(iot):
    with pytest.raises(ClientError) as info:
        iot.create_certificate_from_csr(certificateSigningRequest=sha1_csr(rsa.generate_private_key(65537, 2048),
                                                                           tamper=True))
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    assert iot.list_certificates()["certificates"] == []


@pytest.mark.parametrize("make, digest", [
    (lambda: rsa.generate_private_key(65537, 2048), hashes.SHA384()),
    (lambda: rsa.generate_private_key(65537, 2048), hashes.SHA512()),
    (lambda: ec.generate_private_key(ec.SECP384R1()), hashes.SHA384()),
    (lambda: ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()),
])
def test_other_hash_algorithms_still_verify(iot, make, digest):
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "d")])).sign(make(), digest)
    out = iot.create_certificate_from_csr(certificateSigningRequest=csr.public_bytes(serialization.Encoding.PEM).decode())
    assert out["certificateId"]
