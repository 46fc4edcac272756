"""The installation CA and the X.509 helpers: persistence, issuing, signatures, real TLS."""

import datetime as dt
import hashlib
import os
import socket
import ssl
import stat
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from localiot import pki

UTC = dt.timezone.utc


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def self_signed(key, cn="test CA", *, ca=True, hash_alg=None, pss=False):
    now = dt.datetime.now(UTC)
    builder = (
        x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn)).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if pss:
        return builder.sign(key, hashes.SHA256(), rsa_padding=padding.PSS(
            mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH))
    return builder.sign(key, hash_alg or hashes.SHA256())


def issued_by(issuer_key, issuer_cert, key, cn="leaf", **sign_kw):
    now = dt.datetime.now(UTC)
    return (
        x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .sign(issuer_key, hashes.SHA256(), **sign_kw)
    )


def make_csr(key, cn="device"):
    return x509.CertificateSigningRequestBuilder().subject_name(name(cn)).sign(key, hashes.SHA256())


def tamper(der: bytes) -> bytes:
    return der[:-1] + bytes([der[-1] ^ 0x01])


@pytest.fixture(scope="module")
def ca():
    return pki.InstallationCA.load_or_create(None)


# persistence -------------------------------------------------------------------
def test_ca_persists_in_its_directory(tmp_path):
    first = pki.InstallationCA.load_or_create(str(tmp_path))
    second = pki.InstallationCA.load_or_create(str(tmp_path))
    assert first.pem == second.pem
    assert first.certificate == second.certificate
    assert pki.public_key_pem(first.key) == pki.public_key_pem(second.key)
    assert (tmp_path / "ca.pem").read_bytes() == first.pem
    assert stat.S_IMODE(os.stat(tmp_path / "ca.key").st_mode) == 0o600
    # what the first one issued, the second one's certificate verifies
    cert = first.issue_device_certificate(rsa.generate_private_key(65537, 2048).public_key())
    assert pki.is_signed_by(cert, second.certificate)
    assert second.signed(cert)


def test_in_memory_cas_are_fresh(tmp_path):
    a = pki.InstallationCA.load_or_create(None)
    b = pki.InstallationCA.load_or_create(None)
    assert a.pem != b.pem
    assert not os.listdir(tmp_path)


def test_root_certificate_is_a_ca(ca):
    cert = ca.certificate
    assert pki.is_ca(cert)
    assert cert.issuer == cert.subject
    assert pki.is_signed_by(cert, cert)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert cert.not_valid_after_utc >= pki.AWS_NOT_AFTER
    assert ca.pem == cert.public_bytes(serialization.Encoding.PEM)
    assert ca.pem.startswith(b"-----BEGIN CERTIFICATE-----")


def test_lost_certificate_is_recreated_from_the_key(tmp_path):
    first = pki.InstallationCA.load_or_create(tmp_path)
    issued = first.issue_device_certificate(ec.generate_private_key(ec.SECP256R1()).public_key())
    (tmp_path / "ca.pem").unlink()
    again = pki.InstallationCA.load_or_create(tmp_path)
    assert (tmp_path / "ca.pem").exists()
    assert pki.is_signed_by(issued, again.certificate)


def test_certificate_without_its_key_is_refused(tmp_path):
    pki.InstallationCA.load_or_create(tmp_path)
    (tmp_path / "ca.key").unlink()
    with pytest.raises(RuntimeError, match="private key"):
        pki.InstallationCA.load_or_create(tmp_path)


def test_mismatched_key_and_certificate_are_refused(tmp_path):
    pki.InstallationCA.load_or_create(tmp_path / "a")
    pki.InstallationCA.load_or_create(tmp_path / "b")
    (tmp_path / "a" / "ca.pem").write_bytes((tmp_path / "b" / "ca.pem").read_bytes())
    with pytest.raises(RuntimeError, match="does not belong"):
        pki.InstallationCA.load_or_create(tmp_path / "a")


# issuing ---------------------------------------------------------------------------
def test_keys_and_certificate_like_aws(ca):
    before = dt.datetime.now(UTC).replace(microsecond=0)
    cert, key = ca.create_keys_and_certificate()
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert pki.public_key_pem(cert.public_key()) == pki.public_key_pem(key)
    assert cert.subject == name("AWS IoT Certificate")
    assert cert.issuer == ca.certificate.subject
    assert cert.not_valid_after_utc == dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert before <= cert.not_valid_before_utc <= dt.datetime.now(UTC)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert pki.is_signed_by(cert, ca.certificate)
    assert pki.private_key_pem(key).startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert pki.public_key_pem(key).startswith("-----BEGIN PUBLIC KEY-----")
    assert pki.validity(cert) == {
        "notBefore": cert.not_valid_before_utc.timestamp(),
        "notAfter": dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp(),
    }


def test_issue_time_follows_the_clock_but_never_the_future(ca):
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    past = time.time() - 86400
    cert = ca.issue_device_certificate(key, now=past, not_after=past + 300)
    assert cert.not_valid_before_utc.timestamp() == int(past)
    assert cert.not_valid_after_utc.timestamp() == int(past + 300)
    future = time.time() + 86400
    cert = ca.issue_device_certificate(key, now=future)
    assert cert.not_valid_before_utc.timestamp() <= time.time()
    with pytest.raises(pki.PKIError):
        ca.issue_device_certificate(key, now=past, not_after=past - 1)


def test_device_certificate_keeps_a_given_subject(ca):
    key = ec.generate_private_key(ec.SECP384R1())
    cert = ca.issue_device_certificate(key.public_key(), subject=name("my-thing"))
    assert pki.common_name(cert.subject) == "my-thing"
    assert pki.is_signed_by(cert, ca.certificate)


def test_certificate_id_is_sha256_of_der(ca):
    cert, _ = ca.create_keys_and_certificate()
    expected = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert pki.certificate_id(cert) == expected
    assert pki.certificate_id(pki.to_pem(cert)) == expected
    assert len(expected) == 64 and expected == expected.lower()


def test_server_certificate_serves_real_tls(ca, tmp_path):
    cert_pem, key_pem = ca.issue_server_certificate(["localhost", "broker.local"], ["127.0.0.1", "::1"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "broker.local"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert pki.is_signed_by(cert, ca.certificate)
    (tmp_path / "server.pem").write_bytes(cert_pem)
    (tmp_path / "server.key").write_bytes(key_pem)

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received = []

    def serve():
        for _ in range(2):
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                received.append(tls.recv(5))
                tls.sendall(b"pong!")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cadata=ca.pem.decode())
    try:
        for host in ("localhost", "127.0.0.1"):  # a DNS SAN and an IP SAN
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with client_ctx.wrap_socket(raw, server_hostname=host) as tls:
                    tls.sendall(b"ping!")
                    assert tls.recv(5) == b"pong!"
        thread.join(5)
    finally:
        listener.close()
    assert received == [b"ping!", b"ping!"]
    with pytest.raises(pki.PKIError):
        ca.issue_server_certificate([], [])
    with pytest.raises(pki.PKIError):
        ca.issue_server_certificate(["x"], ["not-an-ip"])


# signatures and checks -------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rsa", "rsa-pss", "ec256", "ec384"])
def test_is_signed_by_each_algorithm(kind):
    if kind.startswith("rsa"):
        ca_key = rsa.generate_private_key(65537, 2048)
        other = rsa.generate_private_key(65537, 2048)
    else:
        curve = ec.SECP256R1() if kind == "ec256" else ec.SECP384R1()
        ca_key, other = ec.generate_private_key(curve), ec.generate_private_key(curve)
    pss = kind == "rsa-pss"
    ca_cert = self_signed(ca_key, pss=pss)
    impostor = self_signed(other)  # same name, another key
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    kw = {"rsa_padding": padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)} if pss else {}
    leaf = issued_by(ca_key, ca_cert, leaf_key, **kw)
    assert pki.is_signed_by(leaf, ca_cert)
    assert pki.verify_signature(leaf, ca_key.public_key())
    assert not pki.is_signed_by(leaf, impostor)
    assert not pki.verify_signature(leaf, other.public_key())
    forged = x509.load_der_x509_certificate(tamper(leaf.public_bytes(serialization.Encoding.DER)))
    assert not pki.is_signed_by(forged, ca_cert)
    renamed = self_signed(ca_key, cn="another name")
    assert not pki.is_signed_by(leaf, renamed)  # the names must chain too


def test_csr_signature_check():
    for key in (rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP256R1())):
        csr = make_csr(key)
        assert pki.csr_signature_valid(csr)
        der = tamper(csr.public_bytes(serialization.Encoding.DER))
        forged = pki.load_csr(x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM))
        assert not pki.csr_signature_valid(forged)


def test_public_key_rules():
    pki.check_public_key(rsa.generate_private_key(65537, 2048).public_key())
    for curve in (ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()):
        pki.check_public_key(ec.generate_private_key(curve).public_key())
    with pytest.raises(pki.PKIError, match="2048"):
        pki.check_public_key(rsa.generate_private_key(65537, 1024).public_key())
    with pytest.raises(pki.PKIError, match="secp256k1"):
        pki.check_public_key(ec.generate_private_key(ec.SECP256K1()).public_key())
    from cryptography.hazmat.primitives.asymmetric import ed25519
    with pytest.raises(pki.PKIError, match="Unsupported"):
        pki.check_public_key(ed25519.Ed25519PrivateKey.generate().public_key())


def test_parsing_errors_are_clean():
    for bad in ("", "hello", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
        with pytest.raises(pki.PKIError, match="not a valid PEM"):
            pki.load_certificate(bad)
    with pytest.raises(pki.PKIError, match="not a valid PEM"):
        pki.load_csr("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")


def test_first_certificate_of_a_chain(ca):
    leaf, _ = ca.create_keys_and_certificate()
    chain = pki.to_pem(leaf) + ca.pem.decode()
    assert pki.certificate_id(pki.load_certificate(chain)) == pki.certificate_id(leaf)


def test_is_ca_and_validity_window():
    key = ec.generate_private_key(ec.SECP256R1())
    assert pki.is_ca(self_signed(key, ca=True))
    assert not pki.is_ca(self_signed(key, ca=False))
    cert = self_signed(key)
    assert pki.is_within_validity(cert, time.time())
    assert not pki.is_within_validity(cert, time.time() + 60 * 86400)
