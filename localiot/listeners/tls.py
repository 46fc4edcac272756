"""TLS material of the device listeners: the broker's server certificate and
the client-certificate trust store.

The TLS listeners present a server certificate issued by the installation
CA for localhost, 127.0.0.1, ::1, the configured host and `server_names`
(DNS and IP subject alternative names); it is kept in the data directory
(`broker.pem`, `broker.key`) and issued again when the names change, the CA
changes or it nears its end. Any SNI is accepted; the name is recorded for
custom authorizers and the iot:DomainName policy variable.

Client certificates and the trust store. Python's ssl cannot accept a client
certificate without verifying it, so the listeners request one
(CERT_OPTIONAL) and trust the installation's device CA (the issuer of
CreateKeysAndCertificate's certificates), the installation CA (which issued
them before the device CA existed: localiot.pki), and: every CA certificate
registered in any account (whatever its status), and every device
certificate registered without a CA (RegisterCertificateWithoutCA) as a
trust anchor of its own, with X509_V_FLAG_PARTIAL_CHAIN so a leaf in the
store verifies by itself. Anchors are added to the live SSL contexts in
place (an X509 store can grow while serving), lazily, when the next
connection arrives after a RegisterCACertificate or
RegisterCertificateWithoutCA committed. Anchors are never removed:
trusting a certificate at the TLS layer only means the handshake completes;
whether the device may connect (registered, ACTIVE, in validity, CA ACTIVE)
is decided by `device_auth` at CONNECT, which refuses with a CONNACK. A
certificate that chains to nothing registered fails the handshake, as on
AWS, before MQTT starts. Limitation: OpenSSL picks a certificate's issuer
among trusted certificates by subject name and authority key identifier;
two registered CAs with the same subject are told apart only when device
certificates carry an authority key identifier (openssl's default), else
the TLS layer may try the wrong one and fail the handshake.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import hashlib
import ipaddress
import logging
import os
import socket
import ssl
import sys
import tempfile
from pathlib import Path

from cryptography import x509

from localiot import pki
from localiot.device_auth import trust_anchor_pems

log = logging.getLogger("localiot.listeners")

SERVER_CERT, SERVER_KEY = "broker.pem", "broker.key"
RENEW_BEFORE = dt.timedelta(days=30)
_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


# the server certificate ----------------------------------------------------------
def server_names(config) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the broker's server certificate is issued for."""
    names, ips = ["localhost"], ["127.0.0.1", "::1"]
    wanted = [config.host, getattr(config, "endpoint_host", ""),
              *(n.strip() for n in (config.server_names or "").split(","))]
    if config.host in _WILDCARDS:
        wanted.append(socket.gethostname())
    for name in wanted:
        name = name.strip().strip("[]") if name else ""
        if not name or name in _WILDCARDS:
            continue
        try:
            ip = str(ipaddress.ip_address(name))
        except ValueError:
            if name.lower() not in names:
                names.append(name.lower())
            continue
        if ip not in ips:
            ips.append(ip)
    return names, ips


def _fits(cert_pem: bytes, ca, names: list[str], ips: list[str]) -> bool:
    try:
        cert = pki.load_certificate(cert_pem)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (pki.PKIError, x509.ExtensionNotFound):
        return False
    have_names = set(sans.get_values_for_type(x509.DNSName))
    have_ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    fresh = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > RENEW_BEFORE
    return fresh and ca.signed(cert) and have_names == set(names) and have_ips == set(ips)


def server_certificate(runtime) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM): the cached one if it still fits, else a new one."""
    config, ca = runtime.config, runtime.ca
    names, ips = server_names(config)
    folder = None if config.in_memory else Path(config.data_dir)
    if folder is not None:
        cert_path, key_path = folder / SERVER_CERT, folder / SERVER_KEY
        if cert_path.exists() and key_path.exists():
            cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
            if _fits(cert_pem, ca, names, ips):
                return cert_pem, key_pem
    cert_pem, key_pem = ca.issue_server_certificate(names, ips)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / SERVER_KEY, key_pem, 0o600)
        _write(folder / SERVER_CERT, cert_pem, 0o644)
        log.info("issued the broker's server certificate for %s", ", ".join(names + ips))
    return cert_pem, key_pem


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# trust ------------------------------------------------------------------------------
def remember_sni(ssl_object, server_name, context) -> None:
    try:
        ssl_object.localiot_sni = server_name
    except AttributeError:
        pass
    return None  # any server name is accepted


class TrustStore:
    """The SSL contexts of the TLS listeners and the client-certificate anchors they share."""

    def __init__(self, store, issuers_pem: bytes, cert_pem: bytes, key_pem: bytes, chain_pem: bytes = b""):
        """`issuers_pem`: the installation's own device-certificate issuers (runtime.device_issuers_pem).
        `chain_pem`: what the server sends after its certificate (the installation root)
        only where `send_given_chain_only` cannot stop OpenSSL from adding a chain.

        Why an explicit chain there: without one OpenSSL builds the server's chain from the
        verify store on every handshake (an X509_verify_cert of the server certificate, 0.4 M
        instructions, 3% of a mutual-TLS connection's server work) and sends what it found,
        certificate + root, since the root is in that store for older device certificates.
        Given the chain, it sends the same two certificates without building anything."""
        self.store = store
        self.issuers_pem = issuers_pem.decode()
        self.leaf_pem = cert_pem
        self.cert_pem = cert_pem.rstrip(b"\n") + b"\n" + chain_pem if chain_pem else cert_pem
        self.key_pem = key_pem
        self.contexts: list[ssl.SSLContext] = []
        self.anchors: dict[str, str] = {}  # sha256 of the PEM -> PEM
        self.dirty = True

    def context(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # The server's certificate alone where OpenSSL can be told not to add a chain: its
        # issuer is the root every client trusts (ca.pem), so the root on the wire is ~900
        # bytes each device receives and parses for nothing (RFC 8446 4.4.2 lets a server
        # leave it out). Elsewhere the explicit chain, which OpenSSL need not build.
        sent = self.leaf_pem if send_given_chain_only(ctx) else self.cert_pem
        with tempfile.TemporaryDirectory(prefix="localiot-tls-") as folder:
            cert_file, key_file = os.path.join(folder, "c.pem"), os.path.join(folder, "k.pem")
            _write(Path(cert_file), sent, 0o600)
            _write(Path(key_file), self.key_pem, 0o600)
            ctx.load_cert_chain(cert_file, key_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        ctx.load_verify_locations(cadata=self.issuers_pem)
        for pem in self.anchors.values():
            self._add(ctx, pem)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        ctx.sni_callback = remember_sni
        # No TLS 1.3 session tickets: the two OpenSSL sends by default cost the server 0.4 ms
        # of CPU per handshake (a bare server: 1.6 -> 2.0 ms), because OpenSSL 3.0 copies the
        # session for each ticket through d2i_SSL_SESSION, which parses the client's
        # certificate again; for clients that resume, which devices rarely do (the bench's
        # never do). A client that tries gets a full handshake, as with any server that
        # issued no ticket.
        ctx.num_tickets = 0
        self.contexts.append(ctx)
        return ctx

    def changed(self) -> None:
        self.dirty = True

    def refresh(self) -> None:
        """Add anchors registered since the last refresh (cheap when nothing changed)."""
        if not self.dirty:
            return
        self.dirty = False
        try:
            pems = trust_anchor_pems(self.store)
        except Exception:
            log.exception("could not read the registered CA certificates")
            self.dirty = True
            return
        for pem in pems:
            key = hashlib.sha256(pem.encode()).hexdigest()
            if key in self.anchors:
                continue
            self.anchors[key] = pem
            for ctx in self.contexts:
                self._add(ctx, pem)

    @staticmethod
    def _add(ctx: ssl.SSLContext, pem: str) -> None:
        try:
            ctx.load_verify_locations(cadata=pem)
        except (ssl.SSLError, ValueError):
            log.warning("a registered certificate could not be added to the TLS trust store")


# The chain the server sends ----------------------------------------------------------
_SSL_CTRL_MODE, _SSL_MODE_NO_AUTO_CHAIN = 33, 0x8


def send_given_chain_only(ctx: ssl.SSLContext) -> bool:
    """Set OpenSSL's SSL_MODE_NO_AUTO_CHAIN on `ctx`: the server sends the certificates it
    was given and no chain built from its verify store. That store holds the root (older
    device certificates chain to it), so without the mode a server given its certificate
    alone sends certificate + root, and builds that chain (an X509_verify_cert) on every
    handshake. Python's ssl module exposes no SSL modes; this calls SSL_CTX_ctrl, found
    through the _ssl extension's own libssl, on the SSL_CTX* that CPython keeps as the
    first field of an SSLContext. False (nothing changed) where that cannot be done safely:
    not CPython, no such symbol, or the pointer's options are not the context's."""
    try:
        ctrl, get_options = _openssl_calls()
        pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
        if not pointer or get_options(pointer) != int(ctx.options):
            return False
        return bool(ctrl(pointer, _SSL_CTRL_MODE, _SSL_MODE_NO_AUTO_CHAIN, None) & _SSL_MODE_NO_AUTO_CHAIN)
    except (OSError, AttributeError, ValueError, TypeError):
        return False


_calls: tuple | None = None


def _openssl_calls() -> tuple:
    global _calls
    if _calls is None:
        if sys.implementation.name != "cpython":
            raise ValueError("not CPython")
        lib = ctypes.CDLL(ssl._ssl.__file__)  # its dependencies' symbols too: the same libssl
        ctrl, get_options = lib.SSL_CTX_ctrl, lib.SSL_CTX_get_options
        ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        ctrl.restype = ctypes.c_long
        get_options.argtypes = [ctypes.c_void_p]
        get_options.restype = ctypes.c_uint64
        _calls = (ctrl, get_options)
    return _calls


# Memory per TLS connection ------------------------------------------------------------
_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
_READ_BUFFER = 256 * 1024  # uvloop's SSL protocol mallocs this much per connection for its socket reads
_tuned = False


def keep_read_buffers_mapped() -> bool:
    """Have glibc serve allocations of `_READ_BUFFER` and more with their own mmap, always.

    uvloop's SSL transport mallocs a 256 KB read buffer per connection and writes only the
    first pages of it. glibc mmaps such a block, but after the first one is freed it raises
    its mmap threshold past 256 KB (its dynamic threshold) and later buffers come from the
    heap, where pages earlier connections dirtied stay resident under them: 3.5 KB more RSS
    per idle mutual-TLS connection (47.0 against 43.4, bench/README.md). A fixed threshold
    turns the dynamic one off. No-op (False) where the C library is not glibc."""
    global _tuned
    if _tuned:
        return True
    try:
        import platform

        if platform.libc_ver()[0] != "glibc":
            return False
        _tuned = bool(ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, _READ_BUFFER))
    except (OSError, AttributeError, ValueError):
        return False
    return _tuned


def sni_of(transport) -> str | None:
    """The server name a TLS client asked for (recorded by `remember_sni`), or None."""
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return getattr(ssl_object, "localiot_sni", None)
