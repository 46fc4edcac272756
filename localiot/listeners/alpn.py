"""The connections of the TLS listeners: MQTT over TLS with what the transport
learnt (`DeviceConnection`), and the ALPN port's first protocol, which hands
a connection to MQTT or to HTTP (`AlpnSniffer`).

On the ALPN port (`mqtt_alpn_port`, 8443; what AWS serves on 443) TLS's ALPN
decides what follows: `x-amzn-mqtt-ca` is MQTT with a client certificate
(the AWS IoT Device SDKs), `mqtt` is MQTT with a custom authorizer
(username/password); `http/1.1` or no ALPN is HTTP/1.1 (no ALPN and a first
byte of CONNECT is MQTT).
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from localiot.broker.connection import Connection
from localiot.device_auth import Door

ALPN_MQTT_CA, ALPN_MQTT, ALPN_HTTP = "x-amzn-mqtt-ca", "mqtt", "http/1.1"
SNIFF_TIMEOUT = 20.0  # a connection without ALPN that sends nothing is closed after this


class DeviceConnection(Connection):
    """A broker Connection on a TLS listener; its listener name becomes a Door with the TLS details."""

    __slots__ = ()

    def connection_made(self, transport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.listener = _door(str(self.listener), getattr(ssl_object, "localiot_sni", None),
                                  ssl_object.selected_alpn_protocol())
        super().connection_made(transport)


@lru_cache(maxsize=1024)
def _door(name: str, sni: str | None, alpn: str | None) -> Door:
    """One Door per distinct (listener, SNI, ALPN), shared by the connections that came through it."""
    return Door(name, sni=sni, alpn=alpn)


class AlpnSniffer(asyncio.Protocol):
    """First protocol of an ALPN-port connection: hands it to MQTT or HTTP once it knows which."""

    def __init__(self, broker, http_server):
        self.broker = broker
        self.http_server = http_server  # () -> the asyncio Protocol serving HTTP/1.1
        self.transport = None
        self._idle = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn == ALPN_MQTT_CA:
            self._mqtt("alpn-mqtt-ca", b"")
        elif alpn == ALPN_MQTT:
            self._mqtt("alpn-mqtt", b"")
        elif alpn == ALPN_HTTP:
            self._http(b"")
        else:  # no ALPN: the first bytes decide, if they come in time
            self._idle = asyncio.get_running_loop().call_later(SNIFF_TIMEOUT, transport.close)

    def data_received(self, data: bytes) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if data[:1] == b"\x10":  # an MQTT CONNECT
            self._mqtt("alpn", data)
        else:
            self._http(data)

    def eof_received(self):
        return False

    def connection_lost(self, exc) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self.transport = None

    def _mqtt(self, name: str, data: bytes) -> None:
        conn = DeviceConnection(self.broker, name)
        self.transport.set_protocol(conn)
        conn.connection_made(self.transport)
        if data:
            conn.data_received(data)

    def _http(self, data: bytes) -> None:
        protocol = self.http_server()
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if data:
            protocol.data_received(data)
