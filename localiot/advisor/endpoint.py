"""The Device Advisor test endpoint: a TLS listener of its own
(`--device-advisor-port`, LOCALIOT_DEVICE_ADVISOR_PORT) where the device
under test connects during a suite run: MQTT with its certificate, or MQTT
over WebSocket at `GET /mqtt` with a SigV4-presigned URL (`websocket`).

Connections are accepted as plain TCP and TLS starts on them afterwards
(`loop.start_tls`), so that the endpoint (1) picks the server certificate
and cipher list per handshake, as the current test case of a running suite
asks (`certs`), and (2) sees handshakes the device refuses, which an
`ssl=` server would only log. After the handshake the connection is a broker
connection behind the scripted interposer (`interposer`), directly or in the
binary frames of a WebSocket (`websocket.AdvisorSniffer` tells which).

Which run a connection belongs to: the run whose device has the client
certificate's id (or, when the run names only a thing, whose thing is the
CONNECT's client id); over WebSocket, the run over WebSocket whose thing is
the CONNECT's client id, in the presigned URL's account and region. A
handshake happens before the client certificate is known, so while a TLS
test case of a run wants a special server certificate, every new handshake
on the endpoint gets it, and refused handshakes are journaled to the runs in
such a case. Runs of different devices at the
same time work; TLS server-certificate cases of two runs at once would
disturb each other (the endpoint logs a warning).
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from localiot.timeouts import within
from localiot.advisor import certs, registry
from localiot.advisor import journal as j
from localiot.advisor.websocket import AdvisorSniffer, serve_http
from localiot.listeners.alpn import ALPN_HTTP, ALPN_MQTT, ALPN_MQTT_CA
from localiot.listeners.tls import TrustStore
from localiot.protocol.http import ApiServer

log = logging.getLogger("localiot.advisor")

HANDSHAKE_TIMEOUT = 10.0
_ENDPOINTS = registry.ENDPOINTS


class _Acceptor(asyncio.Protocol):
    """A new TCP connection: reading waits until TLS starts on it."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint

    def connection_made(self, transport) -> None:
        transport.pause_reading()
        self.endpoint.loop.create_task(self.endpoint.handshake(transport))

    def connection_lost(self, exc) -> None:
        pass


class Endpoint:
    def __init__(self, app, broker):
        self.app = app
        self.runtime = app.runtime
        self.broker = broker
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.AbstractServer | None = None
        self.http_server: ApiServer | None = None  # () -> the protocol of an HTTP/1.1 connection (WebSocket)
        self.runs: dict[str, object] = {}  # suiteRunId -> RunState (localiot.advisor.runner)
        self._ending: list[asyncio.Task] = []  # the tasks of the runs close() stopped
        self.connections: set = set()  # every live AdvisorConnection
        self._contexts: dict[str, tuple[TrustStore, ssl.SSLContext]] = {}

    async def start(self) -> None:
        config = self.app.config
        self.loop = asyncio.get_running_loop()
        self.http_server = ApiServer(lambda request: serve_http(self, request), self.app.engine.refusal,
                                     access_log=None)
        self.server = await self.loop.create_server(lambda: _Acceptor(self), config.host,
                                                    config.device_advisor_port, backlog=256)
        port = self.server.sockets[0].getsockname()[1]
        self.runtime.listeners["device-advisor"] = f"{config.host}:{port}"
        _ENDPOINTS[self.runtime] = self
        log.info("Device Advisor test endpoint (MQTT over TLS; MQTT over WebSocket at /mqtt) on %s:%s",
                 config.host, port)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for run in list(self.runs.values()):
            run.shutdown("The server stopped while the suite run was in progress.")
            if run.task is not None:
                self._ending.append(run.task)
        _ENDPOINTS.pop(self.runtime, None)

    async def wait_closed(self) -> None:
        # the stopped runs record STOPPED (on a worker with PostgreSQL) before the server
        # closes its workers and store: otherwise the next start finds them RUNNING (ERROR)
        ending, self._ending = self._ending, []
        if ending:
            try:
                await within(asyncio.gather(*ending, return_exceptions=True), 5.0)
            except TimeoutError:
                log.warning("%d suite runs did not record their stop in 5 s", len(ending))
        if self.http_server is not None:
            await self.http_server.shutdown(1.0)
        if self.server is not None:
            try:
                await within(self.server.wait_closed(), 2.0)
            except TimeoutError:
                pass

    def reset(self) -> None:
        """The server's state was wiped (/_localiot/reset): every run in progress ends, unrecorded."""
        for run in list(self.runs.values()):
            run.shutdown()
            self.unregister(run)

    # runs -------------------------------------------------------------------------------
    def register(self, run) -> None:
        """A run begins: a connection its device already has (from before the run) is closed, so
        that the device comes back into the run and every case sees it connect."""
        self.runs[run.suite_run_id] = run
        for conn in list(self.connections):
            if conn.run is None and run.matches(conn.certificate_id, conn.client_id, conn.websocket):
                conn.hung_up = True
                conn.hang_up()

    def unregister(self, run) -> None:
        if self.runs.get(run.suite_run_id) is run:
            del self.runs[run.suite_run_id]

    def busy(self, certificate_id: str | None, thing: str | None) -> str | None:
        """The id of a run already testing this device, if any."""
        for run in self.runs.values():
            if run.tests(certificate_id, thing):
                return run.suite_run_id
        return None

    def run_for(self, certificate_id: str | None, client_id: str | None, websocket: bool = False):
        for run in self.runs.values():
            if run.matches(certificate_id, client_id, websocket):
                return run
        return None

    # TLS ----------------------------------------------------------------------------------
    def _variant(self) -> tuple[str, list]:
        wanting = [run for run in self.runs.values() if run.tls_variant != certs.DEFAULT]
        variants = {run.tls_variant for run in wanting}
        if len(variants) > 1:
            log.warning("two runs want different server certificates at once: %s", sorted(variants))
        return (wanting[0].tls_variant if wanting else certs.DEFAULT), wanting

    def context(self, variant: str) -> ssl.SSLContext:
        found = self._contexts.get(variant)
        if found is None:
            cert_pem, key_pem = certs.variant_certificate(self.runtime, variant)
            trust = TrustStore(self.app.store, self.runtime.device_issuers_pem, cert_pem, key_pem)
            ctx = trust.context([ALPN_MQTT_CA, ALPN_MQTT, ALPN_HTTP])
            if variant == certs.CIPHERS:  # see every suite the client offers, not only the default list's
                ctx.set_ciphers("ALL:@SECLEVEL=0")
            found = self._contexts[variant] = (trust, ctx)
        trust, ctx = found
        trust.dirty = True  # a CA registered since the last handshake is trusted too
        trust.refresh()
        return ctx

    async def handshake(self, transport) -> None:
        variant, wanting = self._variant()
        sniffer = AdvisorSniffer(self, variant)
        try:
            ctx = self.context(variant)
            tls = await self.loop.start_tls(transport, sniffer, ctx, server_side=True,
                                            ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
        except (TimeoutError, ssl.SSLError, OSError, ConnectionError, ValueError) as error:
            transport.close()
            for run in wanting:
                run.journal.add(j.HANDSHAKE_FAILED, variant=variant, reason=_reason(error))
            return
        except asyncio.CancelledError:
            transport.close()
            raise
        if tls is None or tls.is_closing():
            return
        sniffer.begin(tls)


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError):
        return error.reason or str(error)
    return type(error).__name__ + (f": {error}" if str(error) else "")


async def start_endpoint(app, broker) -> Endpoint | None:
    """Start the endpoint; a port already taken leaves it off with a warning (the rest of the server
    does not depend on it, and suite runs then end ERROR saying so)."""
    from localiot.advisor.runner import end_orphans

    if end_orphans(app.runtime):
        log.warning("suite runs left in progress by the previous process were ended")
    endpoint = Endpoint(app, broker)
    try:
        await endpoint.start()
    except OSError as error:
        log.warning("the Device Advisor test endpoint is off: %s (choose a port with --device-advisor-port "
                    "or LOCALIOT_DEVICE_ADVISOR_PORT, 0 picks a free one)", error)
        return None
    app.advisor_endpoint = endpoint
    return endpoint


async def stop_endpoint(app) -> None:
    endpoint = getattr(app, "advisor_endpoint", None)
    if endpoint is not None:
        endpoint.close()
        await endpoint.wait_closed()
        app.advisor_endpoint = None
