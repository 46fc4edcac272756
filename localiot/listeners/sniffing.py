"""The first protocol of a TLS connection that may carry MQTT or HTTP/1.1
(`Sniffer`): the ALPN port's (`alpn.AlpnSniffer`) and the Device Advisor test
endpoint's (`localiot.advisor.websocket.AdvisorSniffer`).

TLS's ALPN decides what follows: `x-amzn-mqtt-ca` or `mqtt` is MQTT,
`http/1.1` is HTTP/1.1; with no ALPN the first byte does (an MQTT CONNECT,
0x10, is MQTT, anything else HTTP/1.1). A connection without ALPN that sends
nothing is closed after `SNIFF_TIMEOUT`. The TLS transport and the bytes kept
so far are then handed to the protocol the subclass makes for that kind.
"""

from __future__ import annotations

import abc
import asyncio

ALPN_MQTT_CA, ALPN_MQTT, ALPN_HTTP = "x-amzn-mqtt-ca", "mqtt", "http/1.1"
SNIFF_TIMEOUT = 20.0  # a connection without ALPN that sends nothing is closed after this
CONNECT = b"\x10"  # the first byte of an MQTT CONNECT packet


class Sniffer(asyncio.Protocol, metaclass=abc.ABCMeta):
    """Keeps what arrives until it is known whether MQTT or HTTP/1.1 follows, then hands the TLS
    transport and the bytes kept to `mqtt(alpn)` or `http()`.

    A TLS server (`create_server(ssl=...)`) calls `connection_made` once its handshake is done; after
    `loop.start_tls`, which calls no `connection_made`, the caller calls `begin` itself, and bytes that
    arrived before it are kept."""

    def __init__(self):
        self.transport = None
        self._kept: list[bytes] = []
        self._idle = None

    @abc.abstractmethod
    def mqtt(self, alpn: str | None) -> asyncio.Protocol:
        """The protocol of an MQTT connection; `alpn` is ALPN_MQTT_CA, ALPN_MQTT or None (first byte)."""

    @abc.abstractmethod
    def http(self) -> asyncio.Protocol:
        """The protocol of an HTTP/1.1 connection."""

    def connection_made(self, transport) -> None:
        self.begin(transport)

    def begin(self, tls) -> None:
        """The handshake is done: decide now (ALPN, or bytes already kept), or on the first bytes."""
        self.transport = tls
        ssl_object = tls.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn in (ALPN_MQTT_CA, ALPN_MQTT):
            self._hand_over(lambda: self.mqtt(alpn))
        elif alpn == ALPN_HTTP:
            self._hand_over(self.http)
        elif self._kept:
            self._by_first_byte(self._kept[0])
        else:  # no ALPN: the first bytes decide, if they come in time
            self._idle = asyncio.get_running_loop().call_later(SNIFF_TIMEOUT, tls.close)

    def data_received(self, data: bytes) -> None:
        self._kept.append(data)
        if self.transport is not None and self._idle is not None:  # waiting for the first bytes
            self._idle.cancel()
            self._idle = None
            self._by_first_byte(data)

    def eof_received(self):
        return False

    def connection_lost(self, exc) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self.transport = None

    def _by_first_byte(self, data: bytes) -> None:
        self._hand_over((lambda: self.mqtt(None)) if data[:1] == CONNECT else self.http)

    def _hand_over(self, make) -> None:
        tls = self.transport
        if tls is None or tls.is_closing():
            return
        protocol = make()
        tls.set_protocol(protocol)
        protocol.connection_made(tls)
        kept, self._kept = self._kept, []
        for data in kept:
            protocol.data_received(data)
