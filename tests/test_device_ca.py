"""The device CA (localiot.pki.DeviceCA): device certificates come from an issuer apart
from the root devices trust for the server (ca.pem), as on AWS IoT, so a device that
trusts only ca.pem sends its certificate alone; certificates the installation CA issued
before the device CA existed still connect; the device CA lives in the data directory
(or the shared PostgreSQL store) and survives a restart.

What a client sends is counted on the wire between it and the real listener: a TCP relay
records the client's bytes and a client capped at TLS 1.2 (where the client's Certificate
message is not encrypted) lets it read how many certificates the server received."""

from __future__ import annotations

import multiprocessing
import socket
import ssl
import stat
import threading
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from localiot import pki
from localiot.broker import codec
from localiot.services.security import certificates
from localiot.services.unit_of_work import unit_of_work
from localiot.testing import (ACCOUNT, ALLOW_ALL, REGION, WAIT, Cert, Device, RawClient, address, ca_file,
                              local_server, make_client, new_certificate)


# the wire probe ---------------------------------------------------------------------------
class ChainProbe:
    """A TCP relay in front of a listener that keeps what the client sent."""

    def __init__(self, port: int):
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sent, self.received = bytearray(), bytearray()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        client, _ = self.listener.accept()
        server = socket.create_connection(("127.0.0.1", self.upstream))
        back = threading.Thread(target=self._pump, args=(server, client, self.received), daemon=True)
        back.start()
        self._pump(client, server, self.sent)
        back.join(WAIT)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, record: bytearray) -> None:
        try:
            while data := source.recv(65536):
                record += data
                sink.sendall(data)
        except OSError:
            pass
        for sock in (sink, source):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def certificates_sent(self) -> int:
        """How many certificates the client's TLS 1.2 Certificate message carried."""
        self.thread.join(WAIT)
        return len(certificate_message(bytes(self.sent)))

    def certificates_received(self) -> list[x509.Certificate]:
        """The server's certificate chain as it sent it (TLS 1.2)."""
        self.thread.join(WAIT)
        return [x509.load_der_x509_certificate(der) for der in certificate_message(bytes(self.received))]


def certificate_message(data: bytes) -> list[bytes]:
    """The certificates (DER) of the first Certificate message in one direction of a TLS 1.2
    handshake: its records up to the ChangeCipherSpec are clear text."""
    handshake = bytearray()
    while len(data) >= 5 and data[0] != 20:
        length = int.from_bytes(data[3:5], "big")
        if data[0] == 22:
            handshake += data[5:5 + length]
        data = data[5 + length:]
    while len(handshake) >= 4:
        kind, length = handshake[0], int.from_bytes(handshake[1:4], "big")
        body, handshake = handshake[4:4 + length], handshake[4 + length:]
        if kind == 11:  # Certificate: a 3-byte list length, then 3-byte length + DER per certificate
            found, rest = [], body[3:]
            while rest:
                size = int.from_bytes(rest[:3], "big")
                found.append(bytes(rest[3:3 + size]))
                rest = rest[3 + size:]
            return found
    raise AssertionError("no Certificate message")


def connect_through_probe(port: int, trust: str, cert: Cert, probe: ChainProbe | None = None
                          ) -> tuple[int | None, int]:
    """(CONNACK reason or None, certificates the server received) of a mutual-TLS CONNECT
    by a client trusting the file `trust`."""
    probe = probe or ChainProbe(port)
    context = ssl.create_default_context(cafile=trust)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    sock = socket.create_connection(("127.0.0.1", probe.port), timeout=WAIT)
    raw = RawClient(context.wrap_socket(sock, server_hostname="localhost"), codec.MQTT5)
    try:
        answer = raw.connect(f"probe-{cert.name}")
    finally:
        raw.sock.close()
    return (answer.reason_code if answer is not None else None), probe.certificates_sent()


def pem_at(server, path: str) -> bytes:
    with urllib.request.urlopen(server.endpoint + path) as response:
        return response.read()


# the server ---------------------------------------------------------------------------------
def test_a_device_trusting_ca_pem_sends_its_certificate_alone(localiot_server, iot, tmp_path):
    cert = new_certificate(iot, tmp_path, "alone", policy=ALLOW_ALL)
    issued = x509.load_pem_x509_certificate(cert.pem.encode())
    root = x509.load_pem_x509_certificate(pem_at(localiot_server, "/_localiot/ca.pem"))
    device_ca = x509.load_pem_x509_certificate(pem_at(localiot_server, "/_localiot/device-ca.pem"))
    assert not pki.is_signed_by(issued, root) and pki.is_signed_by(issued, device_ca)
    assert device_ca.issuer == device_ca.subject != root.subject  # self-signed, apart from the root
    trust = ca_file(localiot_server, tmp_path)
    _, port = address(iot)
    probe = ChainProbe(port)
    assert connect_through_probe(port, trust, cert, probe) == (0, 1)
    # The server sends its certificate alone: its issuer is the root the client trusts
    # (OpenSSL would otherwise add the root, found in the listener's verify store).
    [server_cert] = probe.certificates_received()
    assert pki.is_signed_by(server_cert, root)
    # The counting sees a longer chain: a client that also trusts the device CA completes it.
    both = tmp_path / "both.pem"
    both.write_bytes(Path(trust).read_bytes() + pem_at(localiot_server, "/_localiot/device-ca.pem"))
    assert connect_through_probe(port, str(both), cert) == (0, 2)
    # And paho over TLS 1.3, as devices connect.
    device = Device(port, "alone-paho", ca=trust, cert=cert)
    try:
        device.connect_ok()
    finally:
        device.close()


def test_a_certificate_the_installation_ca_issued_before_still_connects(localiot_server, iot, tmp_path):
    runtime = localiot_server.app.runtime

    def issued_before():  # what CreateKeysAndCertificate did before the device CA
        with unit_of_work(runtime, ACCOUNT, REGION, "iot", "CreateKeysAndCertificate") as ctx:
            made, key = runtime.ca.create_keys_and_certificate(now=ctx.now())
            return certificates.insert(ctx, made, status=certificates.ACTIVE), key

    doc, key = localiot_server.call(issued_before)
    cert = Cert(tmp_path, "old", doc["certificatePem"], pki.private_key_pem(key), doc["certificateArn"],
                doc["certificateId"])
    iot.create_policy(policyName="old-policy", policyDocument='{"Version": "2012-10-17", "Statement": '
                      '[{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}')
    iot.attach_policy(policyName="old-policy", target=cert.arn)
    trust = ca_file(localiot_server, tmp_path)
    _, port = address(iot)
    # Its issuer is the root the device trusts, so OpenSSL sends both; the listener verifies it.
    assert connect_through_probe(port, trust, cert) == (0, 2)
    device = Device(port, "old-paho", ca=trust, cert=cert)
    try:
        device.connect_ok()
    finally:
        device.close()


def test_the_device_ca_survives_a_restart(tmp_path):
    data_dir = tmp_path / "data"
    with local_server(data_dir=str(data_dir)) as server:
        iot = make_client(server)
        cert = new_certificate(iot, tmp_path, "kept", policy=ALLOW_ALL)
        device_ca, root = pem_at(server, "/_localiot/device-ca.pem"), pem_at(server, "/_localiot/ca.pem")
    with local_server(data_dir=str(data_dir)) as server:
        assert pem_at(server, "/_localiot/device-ca.pem") == device_ca
        assert pem_at(server, "/_localiot/ca.pem") == root
        iot = make_client(server)
        _, port = address(iot)
        device = Device(port, "kept", ca=ca_file(server, tmp_path), cert=cert)
        try:
            device.connect_ok()
        finally:
            device.close()
        # A new certificate after the restart comes from the same device CA.
        again = x509.load_pem_x509_certificate(iot.create_keys_and_certificate()["certificatePem"].encode())
        assert pki.is_signed_by(again, x509.load_pem_x509_certificate(device_ca))


# the files ------------------------------------------------------------------------------------
def test_the_device_ca_is_kept_beside_the_installation_ca(tmp_path):
    root = pki.InstallationCA.load_or_create(tmp_path)
    device_ca = pki.DeviceCA.load_or_create(tmp_path)
    assert device_ca.pem != root.pem and device_ca.certificate.subject != root.certificate.subject
    assert stat.S_IMODE((tmp_path / "device-ca.key").stat().st_mode) == 0o600
    assert (tmp_path / "device-ca.pem").read_bytes() == device_ca.pem
    assert (tmp_path / "ca.pem").read_bytes() == root.pem
    issued, _ = device_ca.create_keys_and_certificate()
    again = pki.DeviceCA.load_or_create(tmp_path)
    assert again.pem == device_ca.pem and again.signed(issued) and not root.signed(issued)
    assert pki.DeviceCA.load_or_create(None).pem != device_ca.pem  # in memory: a fresh one
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files left


def _create_in(folder: str, gate) -> bytes:
    gate.wait()
    return pki.DeviceCA.load_or_create(folder).pem


def test_processes_creating_the_device_ca_at_once_end_with_one(tmp_path):
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager, spawn.Pool(4) as pool:
        gate = manager.Barrier(4)
        pems = pool.starmap(_create_in, [(str(tmp_path), gate)] * 4)
    assert len(set(pems)) == 1 and (tmp_path / "device-ca.pem").read_bytes() == pems[0]
    key = pki.DeviceCA.load_or_create(tmp_path).key_pem
    assert key == pki.DeviceCA.from_pem((tmp_path / "device-ca.key").read_bytes(), pems[0]).key_pem


def test_a_device_ca_certificate_without_its_key_is_refused(tmp_path):
    pki.DeviceCA.load_or_create(tmp_path)
    (tmp_path / "device-ca.key").unlink()
    with pytest.raises(RuntimeError, match="private key"):
        pki.DeviceCA.load_or_create(tmp_path)
