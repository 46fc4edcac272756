"""A raw MQTT client for what paho does not let a test do: send any bytes
(malformed or oversized packets, PUBACKs for unknown ids, a CONNECT and
nothing else), read only when asked (a client that never reads), and see
every packet the server sent before it closed.

    raw = RawClient.plain(port)                                  # plain TCP (a bare Broker, mqtt_plain)
    raw = RawClient.tls(server, iot, folder, "name")            # mutual TLS, fresh certificate
    assert raw.connect("client-1").reason == 0                   # CONNACK
    raw.send(b"\\x30\\xff\\xff\\xff\\x7f")                         # anything
    packets = raw.recv_until_closed()

Packets are localiot.broker.codec's (encode / Parser); `version` is its
codec.MQTT311 or codec.MQTT5.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

from localiot.broker import codec
from localiot.broker.codec import Connect, Parser, encode
from localiot.testing.mqtt import ALLOW_ALL, WAIT, address, ca_file, new_certificate


class RawClient:
    def __init__(self, sock: socket.socket, version: int = codec.MQTT311):
        self.sock = sock
        self.version, self.parser, self.packets = version, Parser(version), []

    @classmethod
    def plain(cls, port: int, version: int = codec.MQTT311, host: str = "127.0.0.1") -> "RawClient":
        return cls(socket.create_connection((host, port), timeout=WAIT), version)

    @classmethod
    def tls(cls, server, iot, folder: Path, name: str, version: int = codec.MQTT5, rcvbuf: int | None = None,
            policy: dict | None = ALLOW_ALL) -> "RawClient":
        """Over mutual TLS to the server's endpoint, with a fresh certificate carrying `policy`;
        `rcvbuf`: a small receive window, so the server's writes back up quickly."""
        cert = new_certificate(iot, folder, name, policy=policy)
        context = ssl.create_default_context(cafile=ca_file(server, folder))
        context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(WAIT)
        sock.connect(("127.0.0.1", address(iot)[1]))
        return cls(context.wrap_socket(sock, server_hostname="localhost"), version)

    def send(self, packet_or_bytes) -> None:
        data = packet_or_bytes if isinstance(packet_or_bytes, bytes) else encode(packet_or_bytes, self.version)
        self.sock.sendall(data)

    def connect(self, client_id: str, **kw):
        """Send a CONNECT, return the server's answer (None if it closed)."""
        self.send(Connect(client_id, self.version, **kw))
        return self.recv()

    def recv(self):
        """The next packet, None once the server closed the connection."""
        while not self.packets:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.packets += self.parser.feed(data)
        return self.packets.pop(0)

    def recv_until_closed(self) -> list:
        """Every packet the server sent before it closed the connection."""
        got = []
        try:
            while (packet := self.recv()) is not None:
                got.append(packet)
        except (ConnectionResetError, ssl.SSLError):
            pass
        return got

    def closed(self) -> bool:
        """True once the server closed the connection (after any packets it sent); False if it
        stays open past the socket's timeout."""
        try:
            while self.recv() is not None:
                pass
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self) -> None:
        self.sock.close()


def wait_until(predicate, timeout: float = WAIT, interval: float = 0.01) -> bool:
    """Poll `predicate()` until it is true (True) or `timeout` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
