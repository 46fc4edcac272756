"""The connections of the TLS listeners: MQTT over TLS with what the transport
learnt (`DeviceConnection`), and the ALPN port's first protocol, which hands
a connection to MQTT or to HTTP (`AlpnSniffer`).

On the ALPN port (`mqtt_alpn_port`, 8443; what AWS serves on 443) TLS's ALPN
decides what follows: `x-amzn-mqtt-ca` is MQTT with a client certificate
(the AWS IoT Device SDKs), `mqtt` is MQTT with a custom authorizer
(username/password); `http/1.1` or no ALPN is HTTP/1.1 (no ALPN and a first
byte of CONNECT is MQTT; `sniffing` decides).
"""

from __future__ import annotations

from functools import lru_cache

from localiot.broker.connection import Connection
from localiot.device_auth import Door
from localiot.listeners.sniffing import ALPN_HTTP, ALPN_MQTT, ALPN_MQTT_CA, Sniffer

__all__ = ["ALPN_HTTP", "ALPN_MQTT", "ALPN_MQTT_CA", "AlpnSniffer", "DeviceConnection"]

# the listener name of an ALPN-port MQTT connection, by its ALPN (None: no ALPN, a first byte of CONNECT)
_LISTENER_BY_ALPN = {ALPN_MQTT_CA: "alpn-mqtt-ca", ALPN_MQTT: "alpn-mqtt", None: "alpn"}


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


class AlpnSniffer(Sniffer):
    """First protocol of an ALPN-port connection: hands it to MQTT or HTTP once it knows which."""

    def __init__(self, broker, http_server):
        super().__init__()
        self.broker = broker
        self.http_server = http_server  # () -> the asyncio Protocol serving HTTP/1.1

    def mqtt(self, alpn: str | None) -> DeviceConnection:
        return DeviceConnection(self.broker, _LISTENER_BY_ALPN[alpn])

    def http(self):
        return self.http_server()
