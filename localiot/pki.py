"""The installation's certificate authorities and the X.509 helpers around them.

Two CAs, as on AWS IoT, where the root devices trust for the server (Amazon
Root CA 1) is not the issuer of the device certificates (a CA of its own,
"OU=Amazon Web Services O=Amazon.com Inc. L=Seattle ST=Washington C=US"):

- `InstallationCA` (`ca.pem`, served at GET /_localiot/ca.pem): the root a
  device trusts for the server, localiot's AmazonRootCA1.pem. It issues the
  broker's server certificates. Before the device CA existed it also issued
  device certificates; the listeners keep trusting it for those, so they
  still connect.
- `DeviceCA` (`device-ca.pem`): the issuer of device certificates
  (CreateKeysAndCertificate, CreateCertificateFromCsr, provisioning claims),
  self-signed, with AWS's issuer name, unrelated to the installation root.
  Why apart: OpenSSL completes a client's chain from its trust store, so a
  device trusting ca.pem whose certificate ca.pem's CA issued sent its
  certificate *and* the CA, and the server parsed two certificates per
  handshake; with an issuer the device does not trust, it sends its
  certificate alone, as AWS devices do. An intermediate signed by the root
  would give the same one-certificate chain (the client cannot complete it
  either), but AWS's device issuer does not chain to Amazon Root CA 1, and a
  self-signed anchor in the server's trust store ends the chain one signature
  check sooner.

Each lives in the data directory (`<name>.key`, mode 0600, and `<name>.pem`) so
what it issued before a restart still verifies after it; processes creating
one at once end with one (the key file is linked into place complete, or not
at all). An in-memory installation gets fresh ones. Nodes that share a
PostgreSQL store share both, kept in it (`InstallationCA.shared`,
localiot.cluster.ca).

The helpers answer the questions the certificate operations ask: what is this
certificate's id (AWS: the SHA-256 of its DER), did this CA sign it, is this
CSR's signature genuine, is this key one AWS IoT accepts. Parsing failures
raise `PKIError` with a message fit for an API error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import secrets
import time
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UTC = dt.timezone.utc
# AWS IoT's own device certificates all expire at the end of 2049.
AWS_NOT_AFTER = dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)
CA_NOT_AFTER = dt.datetime(2059, 12, 31, 23, 59, 59, tzinfo=UTC)
DEVICE_SUBJECT = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AWS IoT Certificate")])
SUPPORTED_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
MIN_RSA_BITS = 2048
SERVER_CERT_DAYS = 397


class PKIError(ValueError):
    """A certificate, key or CSR that cannot be used; the message says why."""


# parsing and encoding ---------------------------------------------------------
def _as_bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


def load_certificate(pem: str | bytes) -> x509.Certificate:
    """The first certificate of a PEM text (a chain may follow it)."""
    try:
        certs = x509.load_pem_x509_certificates(_as_bytes(pem).strip())
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise PKIError(f"The certificate is not a valid PEM-encoded X.509 certificate: {error}") from None
    if not certs:
        raise PKIError("The certificate is not a valid PEM-encoded X.509 certificate.")
    return certs[0]


def load_csr(pem: str | bytes) -> x509.CertificateSigningRequest:
    try:
        return x509.load_pem_x509_csr(_as_bytes(pem).strip())
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise PKIError(f"The certificate signing request is not a valid PEM-encoded CSR: {error}") from None


def to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def certificate_id(cert: x509.Certificate | str | bytes) -> str:
    """AWS's certificateId: the lowercase hex SHA-256 of the certificate's DER."""
    if not isinstance(cert, x509.Certificate):
        cert = load_certificate(cert)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def validity(cert: x509.Certificate) -> dict[str, float]:
    """{notBefore, notAfter} as epoch seconds, the shape of AWS's CertificateValidity."""
    return {
        "notBefore": cert.not_valid_before_utc.timestamp(),
        "notAfter": cert.not_valid_after_utc.timestamp(),
    }


def is_within_validity(cert: x509.Certificate, now: float) -> bool:
    return cert.not_valid_before_utc.timestamp() <= now <= cert.not_valid_after_utc.timestamp()


def common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def private_key_pem(key) -> str:
    """PKCS#1 `RSA PRIVATE KEY` / SEC1 `EC PRIVATE KEY`, as AWS hands out."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


def public_key_pem(key) -> str:
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def generate_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def check_public_key(key) -> None:
    """Raise PKIError unless the key is RSA >= 2048 bits or EC on P-256/P-384/P-521 (AWS's rule)."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise PKIError(f"RSA keys must be at least {MIN_RSA_BITS} bits; this one has {key.key_size}.")
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, SUPPORTED_CURVES):
            raise PKIError(f"EC keys must be on NIST P-256, P-384 or P-521; this one is on {key.curve.name}.")
        return
    raise PKIError(f"Unsupported public key type {type(key).__name__}: use RSA (2048 bits or more) or ECDSA.")


# signatures ---------------------------------------------------------------------
def verify_signature(cert: x509.Certificate, issuer_public_key) -> bool:
    """Whether `issuer_public_key` made `cert`'s signature (RSA PKCS#1 v1.5 or PSS, ECDSA)."""
    algorithm = cert.signature_hash_algorithm
    try:
        if isinstance(issuer_public_key, rsa.RSAPublicKey):
            pss = cert.signature_algorithm_parameters
            issuer_public_key.verify(
                cert.signature, cert.tbs_certificate_bytes,
                pss if isinstance(pss, padding.PSS) else padding.PKCS1v15(), algorithm,
            )
        elif isinstance(issuer_public_key, ec.EllipticCurvePublicKey):
            issuer_public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def is_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` issued `cert`: names chain and the signature verifies with issuer's key."""
    if cert.issuer != issuer.subject:
        return False
    return verify_signature(cert, issuer.public_key())


def csr_signature_valid(csr: x509.CertificateSigningRequest) -> bool:
    """Whether the CSR was signed by the private key of the public key it carries,
    checked with the CSR's own signature algorithm: sha1WithRSAEncryption too, which
    `openssl req -verify` and AWS accept (OpenSSL 3's X509_REQ_verify refuses SHA-1)."""
    try:
        key, signature, signed = csr.public_key(), csr.signature, csr.tbs_certrequest_bytes
        digest = csr.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, csr.signature_algorithm_parameters, digest)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(digest))
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(signature, signed)
        else:
            return bool(csr.is_signature_valid)
        return True
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False


# the installation CA ------------------------------------------------------------
def _as_datetime(moment: float | dt.datetime | None) -> dt.datetime:
    if moment is None:
        return dt.datetime.now(UTC)
    if isinstance(moment, dt.datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return dt.datetime.fromtimestamp(moment, UTC)


def _issue_time(moment: float | dt.datetime | None) -> dt.datetime:
    """The notBefore of a new certificate: now, by the injectable clock.

    If the clock was moved ahead of the wall clock, the wall clock wins, so TLS
    stacks that check validity against real time still accept the certificate.
    """
    issued = _as_datetime(moment)
    wall = dt.datetime.now(UTC)
    return min(issued, wall).replace(microsecond=0)


def _serial() -> int:
    return int.from_bytes(secrets.token_bytes(16), "big") >> 1


def _signing_hash(key):
    return hashes.SHA256()


class InstallationCA:
    """The root CA of one localiot installation: what devices trust for the server."""

    KEY_FILE = "ca.key"
    CERT_FILE = "ca.pem"
    NAME = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "localiot"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "localiot installation CA"),
        x509.NameAttribute(NameOID.COMMON_NAME, "localiot Root CA"),
    ])

    def __init__(self, certificate: x509.Certificate, key):
        self.certificate = certificate
        self.key = key
        self.pem: bytes = certificate.public_bytes(serialization.Encoding.PEM)

    # creation and persistence -------------------------------------------------
    @classmethod
    def generate(cls, key=None) -> "InstallationCA":
        key = key or generate_rsa_key(2048)
        now = dt.datetime.now(UTC).replace(microsecond=0)
        name = cls.NAME
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(_serial())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(CA_NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, _signing_hash(key))
        )
        return cls(cert, key)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @classmethod
    def from_pem(cls, key_pem: bytes | str, cert_pem: bytes | str) -> "InstallationCA":
        key = serialization.load_pem_private_key(_as_bytes(key_pem), password=None)
        cert = load_certificate(cert_pem)
        if public_key_pem(cert.public_key()) != public_key_pem(key):
            raise RuntimeError(f"the {cls.__name__}'s certificate does not belong to its private key.")
        return cls(cert, key)

    @classmethod
    def shared(cls, stored, put_if_absent, candidate: "InstallationCA | None" = None) -> "InstallationCA":
        """The CA that several nodes share through their store. `stored()` answers the
        stored (key PEM, certificate PEM) or None; `put_if_absent(key_pem, cert_pem)`
        stores this pair unless one is stored already and answers the stored pair,
        atomically, so nodes starting at once all end with the first one's CA.
        `candidate` (a single node's existing CA) is offered instead of a new one."""
        pair = stored()
        if pair is None:
            mine = candidate or cls.generate()
            pair = put_if_absent(mine.key_pem, mine.pem)
        return cls.from_pem(*pair)

    @classmethod
    def existing(cls, directory: str | os.PathLike) -> "InstallationCA | None":
        """The CA kept in `directory`, None if it holds none."""
        folder = Path(directory)
        if not (folder / cls.KEY_FILE).exists():
            return None
        return cls.load_or_create(folder)

    @classmethod
    def load_or_create(cls, directory: str | os.PathLike | None) -> "InstallationCA":
        """The CA kept in `directory` (created there on first use); None: a fresh in-memory CA."""
        if directory is None:
            return cls.generate()
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        key_path, cert_path = folder / cls.KEY_FILE, folder / cls.CERT_FILE
        if not key_path.exists():
            if cert_path.exists():
                raise RuntimeError(
                    f"{cert_path} exists but its private key {key_path} is missing: restore the key "
                    f"or remove both files to create a new {cls.__name__}."
                )
            ca = cls.generate()
            # The key goes in place whole (a link is atomic and fails if the name is taken): a
            # process starting at the same time either wins, and this one uses its CA, or reads
            # a complete key. The certificate follows; a reader that finds the key without it
            # waits for it (_certificate_of).
            if not _link_new(key_path, ca.key_pem, 0o600):
                return cls.load_or_create(directory)
            _write_replace(cert_path, ca.pem, 0o644)
            return ca
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = _certificate_of(cert_path)
        if cert is not None:
            if public_key_pem(cert.public_key()) == public_key_pem(key):
                return cls(cert, key)
            raise RuntimeError(f"{cert_path} does not belong to the private key {key_path}.")
        # The certificate was lost but the key remains: a new self-signed
        # certificate with the same key and name still verifies what was issued.
        ca = cls.generate(key)
        _write_replace(cert_path, ca.pem, 0o644)
        return ca

    # issuing ----------------------------------------------------------------------
    @property
    def key_identifier(self) -> x509.SubjectKeyIdentifier:
        return x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())

    def _builder(self, subject: x509.Name, public_key, not_before: dt.datetime, not_after: dt.datetime):
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(_serial())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(self.key_identifier), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )

    def issue_device_certificate(
        self,
        public_key,
        *,
        subject: x509.Name | None = None,
        now: float | dt.datetime | None = None,
        not_after: float | dt.datetime | None = None,
    ) -> x509.Certificate:
        """A client certificate for `public_key`, as AWS IoT issues them.

        Subject CN "AWS IoT Certificate" unless `subject` is given (a CSR's),
        valid from `now` (epoch seconds or datetime; default the wall clock)
        until 2049-12-31T23:59:59Z unless `not_after` says otherwise.
        """
        not_before = _issue_time(now)
        end = AWS_NOT_AFTER if not_after is None else _as_datetime(not_after)
        if end <= not_before:
            raise PKIError("A certificate's notAfter must be later than its notBefore.")
        builder = self._builder(subject if subject is not None else DEVICE_SUBJECT, public_key, not_before, end)
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey), data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        return builder.sign(self.key, _signing_hash(self.key))

    def create_keys_and_certificate(
        self, *, now: float | dt.datetime | None = None, not_after: float | dt.datetime | None = None
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """A new RSA 2048 key pair and its device certificate (CreateKeysAndCertificate)."""
        key = generate_rsa_key(2048)
        return self.issue_device_certificate(key.public_key(), now=now, not_after=not_after), key

    def issue_server_certificate(
        self, hostnames: list[str], ips: list[str], *, days: int = SERVER_CERT_DAYS
    ) -> tuple[bytes, bytes]:
        """(certificate PEM, private key PEM) for a TLS server named by DNS and IP SANs."""
        if not hostnames and not ips:
            raise PKIError("A server certificate needs at least one hostname or IP address.")
        key = generate_rsa_key(2048)
        sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
        try:
            sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        except ValueError as error:
            raise PKIError(str(error)) from None
        cn = hostnames[0] if hostnames else ips[0]
        not_before = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(hours=1)
        cert = (
            self._builder(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]),
                key.public_key(), not_before, not_before + dt.timedelta(days=days),
            )
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=True,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, _signing_hash(self.key))
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    def signed(self, cert: x509.Certificate) -> bool:
        """Whether this CA issued `cert`."""
        return is_signed_by(cert, self.certificate)


class DeviceCA(InstallationCA):
    """The issuer of the installation's device certificates, apart from the root devices
    trust for the server (see the module's docstring), under AWS's issuer name: one
    organizational unit holding the whole string, as AWS IoT's device certificates show it
    (so iot:Certificate.Issuer.* policy variables read as on AWS)."""

    KEY_FILE = "device-ca.key"
    CERT_FILE = "device-ca.pem"
    NAME = x509.Name([x509.NameAttribute(
        NameOID.ORGANIZATIONAL_UNIT_NAME, "Amazon Web Services O=Amazon.com Inc. L=Seattle ST=Washington C=US")])


CERTIFICATE_WAIT = 2.0  # seconds a reader waits for the certificate of a key another process just created


def _certificate_of(path: Path) -> x509.Certificate | None:
    """The certificate in `path`; None if it stays missing for CERTIFICATE_WAIT (lost)."""
    deadline = time.monotonic() + CERTIFICATE_WAIT
    while True:
        try:
            return load_certificate(path.read_bytes())
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)


def _link_new(path: Path, data: bytes, mode: int) -> bool:
    """Put `data` at `path` with `mode` (never readable by others, even briefly) if no file
    is there, whole: written to a private temporary name, then linked. False if `path` exists."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)  # in case the umask narrowed or widened it
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: create it exclusively instead
            return _create_new(path, data, mode)
        return True
    finally:
        os.unlink(tmp)


def _create_new(path: Path, data: bytes, mode: int) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, mode)
    return True


def _write_replace(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{int(time.time() * 1000)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
