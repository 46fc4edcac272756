"""The MQTT-over-TLS listener's own TLS transport (localiot/listeners/tls_transport.py),
against the real server with real TLS clients: messages of many TLS records both
ways, close_notify in both directions, the alert a refused certificate gets, bytes
that are not TLS, and a client that never finishes its handshake."""

from __future__ import annotations

import os
import socket
import ssl

import pytest

import localiot.listeners as listeners
from localiot.broker import codec
from localiot.broker.codec import Connect, Parser, encode
from localiot.testing import ALLOW_ALL, WAIT, address, ca_file, new_certificate

from test_mqtt_tls import self_signed


def _tls_socket(server, iot, folder, name, cert=None) -> ssl.SSLSocket:
    """A raw TLS client of the MQTT-over-TLS port; a ragged EOF raises (only close_notify reads as b"")."""
    cert = cert or new_certificate(iot, folder, name, policy=ALLOW_ALL)
    context = ssl.create_default_context(cafile=ca_file(server, folder))
    context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    sock = socket.create_connection(("127.0.0.1", address(iot)[1]), timeout=WAIT)
    return context.wrap_socket(sock, server_hostname="localhost", suppress_ragged_eofs=False)


def _read_until_eof(sock) -> list:
    parser, packets = Parser(codec.MQTT5), []
    while data := sock.recv(65536):
        packets += parser.feed(data)
    return packets


def _served(devices, name: str) -> None:
    """The listener still serves: a new device's message to itself comes back."""
    device = devices.tls(name)
    device.subscribe(f"ping/{name}")
    assert device.publish(f"ping/{name}", b"ping") == 0
    assert device.expect(f"ping/{name}").payload == b"ping"


def test_messages_of_many_tls_records_both_ways(localiot_server, devices):
    receiver = devices.tls("big-receiver")
    receiver.subscribe("big/#", qos=1)
    sender = devices.tls("big-sender")
    for size in (16_383, 16_384, 16_385, 120_000):  # around one record's 16 KB, and many records
        payload = os.urandom(size)
        assert sender.publish(f"big/{size}", payload, qos=1) == 0
        assert receiver.expect(f"big/{size}").payload == payload


def test_a_server_side_close_sends_close_notify(localiot_server, iot, tmp_path):
    sock = _tls_socket(localiot_server, iot, tmp_path, "closed-by-server")
    sock.sendall(encode(Connect("closed-by-server", codec.MQTT5), codec.MQTT5))
    sock.sendall(b"\x30\xff\xff\xff\x7f" + b"\x00\x01a")  # a PUBLISH too large: the server disconnects
    packets = _read_until_eof(sock)  # b"" only for close_notify (suppress_ragged_eofs=False)
    assert [p.type for p in packets] == [codec.CONNACK, codec.DISCONNECT]
    assert packets[-1].reason_code == codec.PACKET_TOO_LARGE
    sock.close()


def test_a_client_close_notify_ends_the_connection(localiot_server, iot, tmp_path, devices):
    watcher = devices.tls("tls-watcher")
    watcher.subscribe("$aws/events/presence/disconnected/quiet-closer")
    sock = _tls_socket(localiot_server, iot, tmp_path, "quiet-closer")
    sock.sendall(encode(Connect("quiet-closer", codec.MQTT5), codec.MQTT5))
    assert Parser(codec.MQTT5).feed(sock.recv(65536))[0].type == codec.CONNACK
    plain = sock.unwrap()  # close_notify, and the server's close_notify back
    assert watcher.expect_json("$aws/events/presence/disconnected/quiet-closer")["disconnectReason"] \
        == "CONNECTION_LOST"
    assert plain.recv(1) == b""
    plain.close()


def test_a_certificate_that_chains_to_nothing_gets_the_alert(localiot_server, iot, tmp_path, devices):
    stranger = self_signed(tmp_path, "stranger-alert")
    sock = _tls_socket(localiot_server, iot, tmp_path, "stranger-alert", cert=stranger)
    with pytest.raises(ssl.SSLError, match="(?i)alert"):  # TLS 1.3: the refusal comes after the client's Finished
        sock.sendall(encode(Connect("stranger-alert", codec.MQTT5), codec.MQTT5))
        sock.recv(65536)
    sock.close()
    _served(devices, "after-stranger")


def test_bytes_that_are_not_tls_are_closed(localiot_server, iot, devices):
    sock = socket.create_connection(("127.0.0.1", address(iot)[1]), timeout=WAIT)
    sock.sendall(encode(Connect("plain-on-tls", codec.MQTT311), codec.MQTT311))
    while sock.recv(65536):  # an alert perhaps, then the end
        pass
    sock.close()
    _served(devices, "after-plain")


def test_a_handshake_that_never_ends_is_closed(localiot_server, iot, devices, monkeypatch):
    monkeypatch.setattr(listeners, "HANDSHAKE_TIMEOUT", 0.2)  # read per connection, on the server's loop
    sock = socket.create_connection(("127.0.0.1", address(iot)[1]), timeout=WAIT)
    assert sock.recv(1) == b""  # nothing sent: closed once the handshake's time is up
    sock.close()
    monkeypatch.undo()
    _served(devices, "after-silent")
