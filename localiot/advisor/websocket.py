"""MQTT over WebSocket on the Device Advisor test endpoint, for the suites whose
protocol is `MqttV3_1_1_OverWebSocket` or `MqttV5_OverWebSocket`.

After the TLS handshake (`endpoint`), a connection whose ALPN is `http/1.1`,
or that has no ALPN and does not begin with an MQTT CONNECT, is HTTP/1.1
(`AdvisorSniffer`, the ALPN port's `listeners.sniffing.Sniffer`). `GET
/mqtt` upgraded to a WebSocket with the subprotocol `mqtt` and a
SigV4-presigned URL is served by the ALPN port's own code
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

from aiohttp import web

from localiot.advisor.interposer import AdvisorConnection
from localiot.listeners.http import reply
from localiot.listeners.sniffing import Sniffer
from localiot.listeners.websocket import serve_websocket

class AdvisorSniffer(Sniffer):
    """The endpoint's protocol while TLS starts and just after (`endpoint.handshake` calls `begin`):
    MQTT goes to an AdvisorConnection, HTTP/1.1 to the endpoint's HTTP server."""

    def __init__(self, endpoint, variant: str):
        super().__init__()
        self.endpoint = endpoint
        self.variant = variant

    def begin(self, tls) -> None:
        ssl_object = tls.get_extra_info("ssl_object")
        if ssl_object is not None:  # for serve_http, on an upgrade to WebSocket
            ssl_object.localiot_advisor_variant = self.variant
        super().begin(tls)

    def mqtt(self, alpn: str | None) -> AdvisorConnection:
        return AdvisorConnection(self.endpoint, self.variant)

    def http(self):
        return self.endpoint.http_server()


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
