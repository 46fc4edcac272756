"""MQTT over WebSocket on the Device Advisor test endpoint, for the suites whose
protocol is `MqttV3_1_1_OverWebSocket` or `MqttV5_OverWebSocket`.

After the TLS handshake (`endpoint`), a connection whose ALPN is `http/1.1`,
or that has no ALPN and does not begin with an MQTT CONNECT, is HTTP/1.1
(`Sniffer`). `GET /mqtt` upgraded to a WebSocket with the subprotocol `mqtt`
and a SigV4-presigned URL is served by the ALPN port's own code
(`localiot.listeners.websocket.serve_websocket`: the presigned URL checked by
botocore's signer, strictly with `--strict-signatures`; binary frames to and
from a broker connection); the broker connection is the endpoint's
`AdvisorConnection` with the upgrade's "wss" door, so the scripted interposer
works on the same MQTT bytes as over TLS and authentication is the ALPN
port's. Which run it belongs to is decided at its CONNECT (a WebSocket has
no client certificate): the run over WebSocket whose thing is the client id;
the credentials must be of the run's account (else CONNACK "not
authorized", and the run's log says why). An upgrade refused for its
presigned URL (a bad signature, an unknown access key, expired) is
journaled to every run over WebSocket in progress, as the device is not
known yet.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from localiot.advisor.interposer import AdvisorConnection
from localiot.listeners.alpn import ALPN_HTTP, ALPN_MQTT, ALPN_MQTT_CA
from localiot.listeners.http import reply
from localiot.listeners.websocket import serve_websocket

SNIFF_TIMEOUT = 20.0  # a connection without ALPN that sends nothing is closed after this
MQTT, HTTP = "mqtt", "http"


class Sniffer(asyncio.Protocol):
    """The protocol while TLS starts and just after: keeps what arrives until it is known whether
    MQTT (ALPN x-amzn-mqtt-ca / mqtt, or a first byte of CONNECT) or HTTP/1.1 follows, then hands
    the TLS transport and the bytes kept to an AdvisorConnection or to the endpoint's HTTP server."""

    def __init__(self, endpoint, variant: str):
        self.endpoint = endpoint
        self.variant = variant
        self.transport = None
        self._kept: list[bytes] = []
        self._idle = None

    def begin(self, tls) -> None:
        """The handshake is done: decide now (ALPN, or bytes already kept), or on the first bytes."""
        self.transport = tls
        ssl_object = tls.get_extra_info("ssl_object")
        if ssl_object is not None:
            ssl_object.localiot_advisor_variant = self.variant
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn in (ALPN_MQTT_CA, ALPN_MQTT):
            self._hand_over(MQTT)
        elif alpn == ALPN_HTTP:
            self._hand_over(HTTP)
        elif self._kept:
            self._hand_over(MQTT if self._kept[0][:1] == b"\x10" else HTTP)
        else:
            self._idle = asyncio.get_running_loop().call_later(SNIFF_TIMEOUT, tls.close)

    def data_received(self, data: bytes) -> None:
        self._kept.append(data)
        if self.transport is not None and self._idle is not None:  # waiting for the first bytes
            self._idle.cancel()
            self._idle = None
            self._hand_over(MQTT if data[:1] == b"\x10" else HTTP)

    def eof_received(self):
        return False

    def connection_lost(self, exc) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self.transport = None

    def _hand_over(self, kind: str) -> None:
        tls = self.transport
        if tls is None or tls.is_closing():
            return
        protocol = AdvisorConnection(self.endpoint, self.variant) if kind == MQTT else self.endpoint.http_server()
        tls.set_protocol(protocol)
        protocol.connection_made(tls)
        kept, self._kept = self._kept, []
        for data in kept:
            protocol.data_received(data)


async def serve_http(endpoint, request: web.BaseRequest) -> web.StreamResponse:
    """HTTP on the test endpoint: MQTT over WebSocket at `GET /mqtt`, nothing else."""
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    if request.rel_url.raw_path != "/mqtt" or request.method != "GET" or not upgrade:
        return reply(404, "The Device Advisor test endpoint serves MQTT, and MQTT over WebSocket at GET /mqtt.")
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
    variant = getattr(ssl_object, "localiot_advisor_variant", "default")

    def connection(broker, door):
        return AdvisorConnection(endpoint, variant, door=door, tls=ssl_object)

    def refused(status: int, message: str) -> None:
        for run in list(endpoint.runs.values()):
            if run.websocket:
                run.refused(f"A WebSocket upgrade was refused with HTTP {status}: {message}", status=status)

    config, clock = endpoint.app.config, endpoint.runtime.clock
    return await serve_websocket(request, endpoint.broker, config, clock, connection=connection, refused=refused)
