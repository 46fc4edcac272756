"""The device-facing listeners of one localiot: the MQTT broker on its ports,
wired here (`start_listeners`, `stop_listeners`).

- MQTT over TLS (`mqtt_tls_port`, 8883): mutual TLS, the client certificate
  names the device. DescribeEndpoint answers it for iot:Data-ATS and iot:Data.
- The ALPN port (`mqtt_alpn_port`, 8443; what AWS serves on 443): TLS whose
  ALPN decides what follows (`alpn`): MQTT with a client certificate or a
  custom authorizer, or HTTP/1.1: MQTT over WebSocket at `GET /mqtt`
  (`websocket`), HTTPS publish at `POST /topics/{topic}` (`https_publish`),
  the credential provider at `GET /role-aliases/{alias}/credentials`
  (`credentials`), the Secure Tunneling relay for localproxy at `GET /tunnel` (wss://);
  refusals (a body over the limit ...) in the service's JSON error format;
  any other request, and a publish signed with SigV4, goes to the HTTP API
  as if sent to its own port.
- plain MQTT over TCP (`mqtt_plain`, off by default): every client gets the
  default account and region and is allowed everything, for local
  development only, and said so in the log.

The server certificate both TLS listeners present and the client
certificates they trust are `tls`'s.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from urllib.parse import unquote

from aiohttp import web

from localiot.timeouts import within
from localiot.broker import Broker
from localiot.broker.admission import RESERVED
from localiot.broker.auth import Identity
from localiot.device_auth import ALLOW_ALL, DeviceAuth
from localiot.doors import reserved_topics
from localiot.listeners.alpn import ALPN_HTTP, ALPN_MQTT, ALPN_MQTT_CA, AlpnSniffer, DeviceConnection
from localiot.listeners.credentials import alias_of, serve_credentials
from localiot.listeners.https_publish import publish
from localiot.listeners.tls import (SERVER_CERT, SERVER_KEY, TrustStore, keep_read_buffers_mapped, server_certificate,
                                    server_names)
from localiot.listeners.tls_transport import TlsServerTransport
from localiot.listeners.websocket import serve_websocket
from localiot.protocol.http import ApiServer

__all__ = ["SERVER_CERT", "SERVER_KEY", "DeviceListeners", "server_certificate", "server_names",
           "start_listeners", "stop_listeners"]

log = logging.getLogger("localiot.listeners")

HANDSHAKE_TIMEOUT = 10.0


async def start_listeners(app) -> Broker:
    config = app.config
    device_auth = DeviceAuth(app)
    broker = Broker(app.runtime, app.store, device_auth.authenticate, device_auth.authorize,
                    reserved_topics=reserved_topics(app))
    app.runtime.broker = broker
    # GetThingConnectivityData remembers presence events from the start.
    from localiot.services.data import connectivity

    connectivity.install(app.runtime)
    broker.start()
    device_auth.start(broker)
    # Rules republish through the broker, keeping QoS and MQTT 5 properties; a reserved
    # topic a door serves (a shadow update ...) goes to that door, as on AWS.
    app.rules.publisher = functools.partial(rules_publish, broker)
    listeners = DeviceListeners(app, broker, device_auth)
    app.device_listeners = listeners
    await listeners.start()
    from localiot.advisor.endpoint import start_endpoint  # the Device Advisor test endpoint

    await start_endpoint(app, broker)
    if config.mqtt_plain:
        port = await broker.start_tcp(config.host, config.mqtt_plain_port, "tcp")
        app.runtime.listeners["mqtt-plain"] = f"{config.host}:{port}"
        log.warning("plain MQTT on %s:%s: no authentication, every client may do everything", config.host, port)
    return broker


RULES_IDENTITY_KIND = "rules"


def rules_publish(broker: Broker, account: str, region: str, topic: str, payload: bytes, qos: int,
                  props: dict | None) -> None:
    """A rule's republish: to the door serving a reserved topic (`$$aws/things/x/shadow/update`
    updates the shadow), else to the topic's subscribers. Runs on the broker's loop."""
    loop = broker.loop
    if loop is not None and not _on(loop):
        loop.call_soon_threadsafe(rules_publish, broker, account, region, topic, payload, qos, props)
        return
    if topic.startswith("$"):
        identity = Identity(account, region, principal="iot-rules", policy=ALLOW_ALL,
                            attributes={"kind": RULES_IDENTITY_KIND})
        decision = broker.admit(identity, topic, False, trusted=True)
        if decision.status == RESERVED:
            served = broker.serve_reserved(identity, decision, payload, props or {}, qos)
            if isinstance(served, asyncio.Future):  # (PostgreSQL: the door's unit runs on a worker)
                served.add_done_callback(lambda done: done.cancelled() or done.exception() is None
                                         or log.info("a rule's republish to %s was refused by the topic's door", topic))
            elif not served:
                log.info("a rule's republish to %s was refused by the topic's door", topic)
            return
    broker.publish(account, region, topic, payload, qos, properties=props, source="rules")


def _on(loop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def stop_listeners(app) -> None:
    from localiot.advisor.endpoint import stop_endpoint

    await stop_endpoint(app)
    listeners = getattr(app, "device_listeners", None)
    if listeners is not None:
        listeners.close()
    broker = getattr(app.runtime, "broker", None)
    if broker is not None:
        await broker.stop()
        from localiot.services import presence
        from localiot.services.unit_of_work import run_off_loop

        # the presence records of the last window and those held back, while the recorders still
        # see the broker (its resets; PostgreSQL: written on a worker)
        await run_off_loop(app.runtime, presence.flush, app.runtime)
        app.runtime.broker = None
    if listeners is not None:
        await listeners.wait_closed()
        app.device_listeners = None


# the listeners --------------------------------------------------------------------------
class DeviceListeners:
    def __init__(self, app, broker: Broker, device_auth: DeviceAuth):
        self.app = app
        self.config = app.config
        self.broker = broker
        self.auth = device_auth
        self.trust: TrustStore | None = None
        self.http_server: ApiServer | None = None
        self._servers: list[asyncio.AbstractServer] = []

    async def start(self) -> None:
        config, runtime = self.config, self.app.runtime
        loop = asyncio.get_running_loop()
        cert_pem, key_pem = server_certificate(runtime)
        self.trust = TrustStore(self.app.store, runtime.device_issuers_pem, cert_pem, key_pem, runtime.ca.pem)
        self.trust.refresh()
        self.auth.on_trust_change = self.trust.changed
        tls_context = self.trust.context()
        keep_read_buffers_mapped()
        alpn_context = self.trust.context([ALPN_MQTT_CA, ALPN_MQTT, ALPN_HTTP])
        # Refusals (a body over the limit, a malformed request) in the service's JSON error format.
        self.http_server = ApiServer(self._http, self.app.engine.refusal, access_log=None)

        # TLS of our own on this port (tls_transport: less memory per connection than the loop's)
        server = await loop.create_server(functools.partial(self._tls_connection, tls_context, loop), config.host,
                                          config.mqtt_tls_port, backlog=1024)
        self._servers.append(server)
        tls_port = server.sockets[0].getsockname()[1]
        runtime.listeners["iot:Data-ATS"] = runtime.listeners["iot:Data"] = f"{config.host}:{tls_port}"
        log.info("MQTT over TLS (client certificates) on %s:%s", config.host, tls_port)

        # the same TLS transport: its first protocol picks MQTT or HTTP/1.1 by ALPN (alpn.AlpnSniffer)
        server = await loop.create_server(functools.partial(self._alpn_connection, alpn_context, loop), config.host,
                                          config.mqtt_alpn_port, backlog=1024)
        self._servers.append(server)
        alpn_port = server.sockets[0].getsockname()[1]
        runtime.listeners["mqtt-alpn"] = f"{config.host}:{alpn_port}"
        log.info("TLS on %s:%s: ALPN x-amzn-mqtt-ca and mqtt, MQTT over WebSocket at /mqtt, HTTPS publish",
                 config.host, alpn_port)

    def close(self) -> None:
        for server in self._servers:
            server.close()

    async def wait_closed(self) -> None:
        if self.http_server is not None:
            await self.http_server.shutdown(1.0)
        for server in self._servers:
            try:
                await within(server.wait_closed(), 2.0)
            except asyncio.TimeoutError:
                pass
        self._servers.clear()
        await self.auth.stop()

    def _tls_connection(self, context, loop) -> TlsServerTransport:
        self.trust.refresh()
        return TlsServerTransport(context, DeviceConnection(self.broker, "tls"), loop, HANDSHAKE_TIMEOUT)

    def _alpn_connection(self, context, loop) -> TlsServerTransport:
        self.trust.refresh()
        return TlsServerTransport(context, AlpnSniffer(self.broker, self.http_server), loop, HANDSHAKE_TIMEOUT)

    # HTTP on the ALPN port ----------------------------------------------------------------
    async def _http(self, request: web.BaseRequest) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if raw_path == "/mqtt" and request.method == "GET" and upgrade:
            return await serve_websocket(request, self.broker, self.config, self.app.runtime.clock)
        alias = alias_of(raw_path) if request.method == "GET" else None
        if alias is not None:  # the credential provider (iot:CredentialProvider)
            return await serve_credentials(request, alias, self.app, self.auth)
        if raw_path == "/tunnel" and request.method == "GET":  # the Secure Tunneling relay, for localproxy (wss://)
            from localiot.tunneling import relay_for

            return await relay_for(self.app.runtime).handle(request)
        if raw_path.startswith("/topics/") and request.method == "POST":
            answer = await publish(request, unquote(raw_path[len("/topics/"):]), self.broker, self.auth)
            if answer is not None:
                return answer
        return await self.app._http(request)
