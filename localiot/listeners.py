"""The device-facing listeners of one localiot: the MQTT broker on its ports.

- MQTT over TLS (`mqtt_tls_port`, 8883): mutual TLS, the client certificate
  names the device. DescribeEndpoint answers it for iot:Data-ATS and iot:Data.
- The ALPN port (`mqtt_alpn_port`, 8443; what AWS serves on 443): TLS whose
  ALPN decides what follows: `x-amzn-mqtt-ca` is MQTT with a client
  certificate (the AWS IoT Device SDKs), `mqtt` is MQTT with a custom
  authorizer (username/password); `http/1.1` or no ALPN is HTTP/1.1 (no ALPN
  and a first byte of CONNECT is MQTT): MQTT over WebSocket at `GET /mqtt`
  (subprotocol mqtt; a SigV4-presigned URL or a custom authorizer), HTTPS
  publish `POST /topics/{topic}?qos=1[&retain=true]` with a client
  certificate (or custom authorizer headers), answered like AWS with
  {"message": "OK", "traceId": ...}; any other request, and a publish
  signed with SigV4, goes to the HTTP API as if sent to its own port.
- plain MQTT over TCP (`mqtt_plain`, off by default): every client gets the
  default account and region and is allowed everything, for local
  development only, and said so in the log.

Both TLS listeners present a server certificate issued by the installation
CA for localhost, 127.0.0.1, ::1, the configured host and `server_names`
(DNS and IP subject alternative names); it is kept in the data directory
(`broker.pem`, `broker.key`) and issued again when the names change, the CA
changes or it nears its end. Any SNI is accepted; the name is recorded for
custom authorizers and the iot:DomainName policy variable.

Client certificates and the trust store. Python's ssl cannot accept a client
certificate without verifying it, so the listeners request one
(CERT_OPTIONAL) and trust, besides the installation CA: every CA certificate
registered in any account (whatever its status), and every device
certificate registered without a CA (RegisterCertificateWithoutCA) as a
trust anchor of its own, with X509_V_FLAG_PARTIAL_CHAIN so a leaf in the
store verifies by itself. Anchors are added to the live SSL contexts in
place (an X509 store can grow while serving), lazily, when the next
connection arrives after a RegisterCACertificate or
RegisterCertificateWithoutCA committed. Anchors are never removed:
trusting a certificate at the TLS layer only means the handshake completes;
whether the device may connect (registered, ACTIVE, in validity, CA ACTIVE)
is decided by `device_auth` at CONNECT, which refuses with a CONNACK. A
certificate that chains to nothing registered fails the handshake, as on
AWS, before MQTT starts. Limitation: OpenSSL picks a certificate's issuer
among trusted certificates by subject name and authority key identifier;
two registered CAs with the same subject are told apart only when device
certificates carry an authority key identifier (openssl's default), else
the TLS layer may try the wrong one and fail the handshake.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import json
import logging
import os
import socket
import ssl
import tempfile
import uuid
from pathlib import Path
from urllib.parse import unquote

from aiohttp import WSMsgType, web
from aiohttp.web_server import Server
from cryptography import x509

from localiot import pki
from localiot.broker import Broker, auth as broker_auth
from localiot.broker.connection import Connection
from localiot.broker.retained import RetainedQuotaExceeded
from localiot.topics import TopicError, validate_topic_name
from localiot.device_auth import AuthFailure, DeviceAuth, Door, trust_anchor_pems, verify_presigned
from localiot.doors import make_handler

log = logging.getLogger("localiot.listeners")

ALPN_MQTT_CA, ALPN_MQTT, ALPN_HTTP = "x-amzn-mqtt-ca", "mqtt", "http/1.1"
SERVER_CERT, SERVER_KEY = "broker.pem", "broker.key"
RENEW_BEFORE = dt.timedelta(days=30)
HANDSHAKE_TIMEOUT = 10.0
SNIFF_TIMEOUT = 20.0  # a connection without ALPN that sends nothing is closed after this
WS_CLOSE_TIMEOUT = 2.0  # how long a closing WebSocket waits for the client's close frame
WS_HIGH_WATER = 1024 * 1024  # queued bytes that pause a WebSocket client's output
_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


async def start_listeners(app) -> Broker:
    config = app.config
    device_auth = DeviceAuth(app)
    broker = Broker(app.runtime, app.store, device_auth.authenticate, device_auth.authorize,
                    reserved_topic_handler=make_handler(app))
    app.runtime.broker = broker
    # GetThingConnectivityData remembers presence events from the start.
    from localiot.services.data import connectivity

    connectivity.install(app.runtime)
    broker.start()
    device_auth.start(broker)
    # Rules republish through the broker, keeping QoS and MQTT 5 properties.
    app.rules.publisher = lambda account, region, topic, payload, qos, props: broker.publish(
        account, region, topic, payload, qos, properties=props, source="rules")
    listeners = DeviceListeners(app, broker, device_auth)
    app.device_listeners = listeners
    await listeners.start()
    if config.mqtt_plain:
        port = await broker.start_tcp(config.host, config.mqtt_plain_port, "tcp")
        app.runtime.listeners["mqtt-plain"] = f"{config.host}:{port}"
        log.warning("plain MQTT on %s:%s: no authentication, every client may do everything", config.host, port)
    return broker


async def stop_listeners(app) -> None:
    listeners = getattr(app, "device_listeners", None)
    if listeners is not None:
        listeners.close()
    broker = getattr(app.runtime, "broker", None)
    if broker is not None:
        await broker.stop()
        app.runtime.broker = None
    if listeners is not None:
        await listeners.wait_closed()
        app.device_listeners = None


# the server certificate ----------------------------------------------------------
def server_names(config) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the broker's server certificate is issued for."""
    names, ips = ["localhost"], ["127.0.0.1", "::1"]
    wanted = [config.host, *(n.strip() for n in (config.server_names or "").split(","))]
    if config.host in _WILDCARDS:
        wanted.append(socket.gethostname())
    for name in wanted:
        name = name.strip().strip("[]") if name else ""
        if not name or name in _WILDCARDS:
            continue
        try:
            ip = str(ipaddress.ip_address(name))
        except ValueError:
            if name.lower() not in names:
                names.append(name.lower())
            continue
        if ip not in ips:
            ips.append(ip)
    return names, ips


def _fits(cert_pem: bytes, ca, names: list[str], ips: list[str]) -> bool:
    try:
        cert = pki.load_certificate(cert_pem)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (pki.PKIError, x509.ExtensionNotFound):
        return False
    have_names = set(sans.get_values_for_type(x509.DNSName))
    have_ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    fresh = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > RENEW_BEFORE
    return fresh and ca.signed(cert) and have_names == set(names) and have_ips == set(ips)


def server_certificate(runtime) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM): the cached one if it still fits, else a new one."""
    config, ca = runtime.config, runtime.ca
    names, ips = server_names(config)
    folder = None if config.in_memory else Path(config.data_dir)
    if folder is not None:
        cert_path, key_path = folder / SERVER_CERT, folder / SERVER_KEY
        if cert_path.exists() and key_path.exists():
            cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
            if _fits(cert_pem, ca, names, ips):
                return cert_pem, key_pem
    cert_pem, key_pem = ca.issue_server_certificate(names, ips)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / SERVER_KEY, key_pem, 0o600)
        _write(folder / SERVER_CERT, cert_pem, 0o644)
        log.info("issued the broker's server certificate for %s", ", ".join(names + ips))
    return cert_pem, key_pem


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# trust ------------------------------------------------------------------------------
def _remember_sni(ssl_object, server_name, context) -> None:
    try:
        ssl_object.localiot_sni = server_name
    except AttributeError:
        pass
    return None  # any server name is accepted


class TrustStore:
    """The SSL contexts of the TLS listeners and the client-certificate anchors they share."""

    def __init__(self, store, ca_pem: bytes, cert_pem: bytes, key_pem: bytes):
        self.store = store
        self.ca_pem = ca_pem.decode()
        self.cert_pem, self.key_pem = cert_pem, key_pem
        self.contexts: list[ssl.SSLContext] = []
        self.anchors: dict[str, str] = {}  # sha256 of the PEM -> PEM
        self.dirty = True

    def context(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory(prefix="localiot-tls-") as folder:
            cert_file, key_file = os.path.join(folder, "c.pem"), os.path.join(folder, "k.pem")
            _write(Path(cert_file), self.cert_pem, 0o600)
            _write(Path(key_file), self.key_pem, 0o600)
            ctx.load_cert_chain(cert_file, key_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        ctx.load_verify_locations(cadata=self.ca_pem)
        for pem in self.anchors.values():
            self._add(ctx, pem)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        ctx.sni_callback = _remember_sni
        self.contexts.append(ctx)
        return ctx

    def changed(self) -> None:
        self.dirty = True

    def refresh(self) -> None:
        """Add anchors registered since the last refresh (cheap when nothing changed)."""
        if not self.dirty:
            return
        self.dirty = False
        try:
            pems = trust_anchor_pems(self.store)
        except Exception:
            log.exception("could not read the registered CA certificates")
            self.dirty = True
            return
        for pem in pems:
            key = hashlib.sha256(pem.encode()).hexdigest()
            if key in self.anchors:
                continue
            self.anchors[key] = pem
            for ctx in self.contexts:
                self._add(ctx, pem)

    @staticmethod
    def _add(ctx: ssl.SSLContext, pem: str) -> None:
        try:
            ctx.load_verify_locations(cadata=pem)
        except (ssl.SSLError, ValueError):
            log.warning("a registered certificate could not be added to the TLS trust store")


# connections --------------------------------------------------------------------------
class DeviceConnection(Connection):
    """A broker Connection on a TLS listener; its listener name becomes a Door with the TLS details."""

    def connection_made(self, transport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.listener = Door(str(self.listener), sni=getattr(ssl_object, "localiot_sni", None),
                                 alpn=ssl_object.selected_alpn_protocol())
        super().connection_made(transport)


class AlpnSniffer(asyncio.Protocol):
    """First protocol of an ALPN-port connection: hands it to MQTT or HTTP once it knows which."""

    def __init__(self, listeners: "DeviceListeners"):
        self.listeners = listeners
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
        conn = DeviceConnection(self.listeners.broker, name)
        self.transport.set_protocol(conn)
        conn.connection_made(self.transport)
        if data:
            conn.data_received(data)

    def _http(self, data: bytes) -> None:
        protocol = self.listeners.http_server()
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if data:
            protocol.data_received(data)


class WebSocketTransport(asyncio.Transport):
    """What a broker Connection writes to, for MQTT over WebSocket: bytes become binary frames."""

    def __init__(self, ws: web.WebSocketResponse, base, loop):
        super().__init__()
        self._ws, self._base, self._loop = ws, base, loop
        self._out: list[bytes] = []
        self._size = 0  # bytes queued, not yet handed to the WebSocket
        self._paused = False  # the protocol was told to pause writing
        self._writer: asyncio.Task | None = None
        self._closing = False
        self._protocol = None
        self.reading = asyncio.Event()
        self.reading.set()

    def get_extra_info(self, name, default=None):
        if name in ("ssl_object", "peercert"):
            return None  # authenticated by its URL or authorizer, never by a client certificate
        return self._base.get_extra_info(name, default) if self._base is not None else default

    def set_protocol(self, protocol) -> None:
        self._protocol = protocol

    def get_protocol(self):
        return self._protocol

    def write(self, data) -> None:
        if self._closing or not data:
            return
        self._out.append(bytes(data))
        self._size += len(data)
        if not self._paused and self._size > WS_HIGH_WATER and self._protocol is not None:
            self._paused = True
            self._protocol.pause_writing()
        if self._writer is None:
            self._writer = self._loop.create_task(self._write_loop())

    async def _write_loop(self) -> None:
        try:
            while self._out:
                data = b"".join(self._out)
                self._out.clear()
                self._size = 0
                await self._ws.send_bytes(data)
                if self._paused and self._size < WS_HIGH_WATER // 4 and self._protocol is not None:
                    self._paused = False
                    self._protocol.resume_writing()
            if self._closing:
                await self._ws.close()
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            self._out.clear()
            self._size = 0
            self._closing = True
        finally:
            self._writer = None

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.reading.set()  # the reading loop must see the end, even while paused
        if self._writer is None:
            self._writer = self._loop.create_task(self._write_loop())

    async def wait_closed(self) -> None:
        writer = self._writer
        if writer is not None:
            await asyncio.shield(writer)

    def abort(self) -> None:
        self._out.clear()
        self.close()

    def is_closing(self) -> bool:
        return self._closing

    def pause_reading(self) -> None:
        self.reading.clear()

    def resume_reading(self) -> None:
        self.reading.set()

    def is_reading(self) -> bool:
        return self.reading.is_set()

    def get_write_buffer_size(self) -> int:
        base = self._base.get_write_buffer_size() if self._base is not None else 0
        return self._size + base


def _reply(status: int, message: str) -> web.Response:
    """An answer shaped like the AWS IoT data endpoint's: {"message", "traceId"}."""
    body = json.dumps({"message": message, "traceId": str(uuid.uuid4())}).encode()
    return web.Response(status=status, body=body, content_type="application/json")


# the listeners --------------------------------------------------------------------------
class DeviceListeners:
    def __init__(self, app, broker: Broker, device_auth: DeviceAuth):
        self.app = app
        self.config = app.config
        self.broker = broker
        self.auth = device_auth
        self.trust: TrustStore | None = None
        self.http_server: Server | None = None
        self._servers: list[asyncio.AbstractServer] = []

    async def start(self) -> None:
        config, runtime = self.config, self.app.runtime
        loop = asyncio.get_running_loop()
        cert_pem, key_pem = server_certificate(runtime)
        self.trust = TrustStore(self.app.store, runtime.ca.pem, cert_pem, key_pem)
        self.trust.refresh()
        self.auth.on_trust_change = self.trust.changed
        tls_context = self.trust.context()
        alpn_context = self.trust.context([ALPN_MQTT_CA, ALPN_MQTT, ALPN_HTTP])
        self.http_server = Server(self._http, access_log=None)

        server = await loop.create_server(self._tls_connection, config.host, config.mqtt_tls_port, ssl=tls_context,
                                          backlog=1024, ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
        self._servers.append(server)
        tls_port = server.sockets[0].getsockname()[1]
        runtime.listeners["iot:Data-ATS"] = runtime.listeners["iot:Data"] = f"{config.host}:{tls_port}"
        log.info("MQTT over TLS (client certificates) on %s:%s", config.host, tls_port)

        server = await loop.create_server(self._alpn_connection, config.host, config.mqtt_alpn_port,
                                          ssl=alpn_context, backlog=1024, ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
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
                await asyncio.wait_for(server.wait_closed(), 2.0)
            except asyncio.TimeoutError:
                pass
        self._servers.clear()
        await self.auth.stop()

    def _tls_connection(self) -> DeviceConnection:
        self.trust.refresh()
        return DeviceConnection(self.broker, "tls")

    def _alpn_connection(self) -> AlpnSniffer:
        self.trust.refresh()
        return AlpnSniffer(self)

    # HTTP on the ALPN port ----------------------------------------------------------------
    async def _http(self, request: web.BaseRequest) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if raw_path == "/mqtt" and request.method == "GET" and upgrade:
            return await self._websocket(request)
        if raw_path.startswith("/topics/") and request.method == "POST":
            answer = await self._publish(request, unquote(raw_path[len("/topics/"):]))
            if answer is not None:
                return answer
        return await self.app._http(request)

    @staticmethod
    def _sni(request: web.BaseRequest) -> str | None:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
        return getattr(ssl_object, "localiot_sni", None)

    @staticmethod
    def _http_context(request: web.BaseRequest) -> dict:
        return {"headers": dict(request.headers), "queryString": request.rel_url.raw_query_string,
                "host": request.host}

    async def _websocket(self, request: web.BaseRequest) -> web.StreamResponse:
        sigv4 = None
        query = [(k, v) for k, v in request.rel_url.query.items()]
        if any(k == "X-Amz-Credential" for k, _ in query):
            try:
                sigv4 = verify_presigned(
                    "GET", request.rel_url.raw_path, query, request.headers, secrets=self.config.credential_map(),
                    strict=self.config.strict_signatures, now=self.app.runtime.clock.now(),
                    default_account=self.config.default_account,
                )
            except AuthFailure as e:
                return _reply(e.status, e.message)
        door = Door("wss", sni=self._sni(request), http=self._http_context(request), sigv4=sigv4)
        ws = web.WebSocketResponse(protocols=("mqtt",), autoping=True, compress=False, timeout=WS_CLOSE_TIMEOUT,
                                   max_msg_size=self.broker.max_packet * 2)
        if not ws.can_prepare(request).ok:
            return _reply(400, "Expected a WebSocket upgrade.")
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        transport = WebSocketTransport(ws, request.transport, loop)
        conn = Connection(self.broker, door)
        transport.set_protocol(conn)
        conn.connection_made(transport)
        try:
            while True:
                if not transport.reading.is_set():
                    await transport.reading.wait()
                msg = await ws.receive()
                if transport.is_closing():  # like a socket transport: nothing more after close()
                    break
                if msg.type == WSMsgType.BINARY:
                    conn.data_received(msg.data)
                elif msg.type == WSMsgType.TEXT:  # MQTT over WebSocket is binary only
                    conn.drop("CLIENT_ERROR")
                    break
                else:
                    break
        finally:
            if conn.transport is not None:
                conn.connection_lost(None)
            transport.close()
            await transport.wait_closed()
        return ws

    async def _publish(self, request: web.BaseRequest, topic: str) -> web.StreamResponse | None:
        """HTTPS publish as devices use it; None when it is an API call (SigV4) instead."""
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        remote = request.remote
        sni = self._sni(request)
        if der:
            identity = self.auth.certificate_identity(der, None, remote, sni, just_in_time=False)
        else:
            found = self.auth.custom_authentication(None, None, None, remote, sni, http=self._http_context(request))
            if found is None:
                return None
            identity = await found if asyncio.iscoroutine(found) else found
        if not isinstance(identity, broker_auth.Identity):
            return _reply(403, "Forbidden")
        query = request.rel_url.query
        try:
            qos = int(query.get("qos", "0"))
        except ValueError:
            qos = -1
        if qos not in (0, 1):
            return _reply(400, "qos must be 0 or 1.")
        retain = query.get("retain", "false").lower() == "true"
        payload = await request.read()
        limits = self.broker.limits
        if len(payload) > limits.payload_max:
            return _reply(413, "Payload too large.")
        try:
            validate_topic_name(topic, limits.topic_max_bytes, limits.topic_max_slashes)
        except TopicError as e:
            return _reply(400, str(e))
        kind = broker_auth.reserved_kind(topic)
        topic_arn = broker_auth.arn(identity, "topic", topic)
        if kind == "forbidden" or not self.auth.authorize(identity, broker_auth.PUBLISH, topic_arn):
            return _reply(403, "Forbidden")
        if retain and not self.auth.authorize(identity, broker_auth.RETAIN_PUBLISH, topic_arn):
            return _reply(403, "Forbidden")
        broker = self.broker
        if kind == "device":  # shadows, jobs, basic ingest ...: served as if published over MQTT
            if not broker.publish_reserved(identity, topic, payload, {}, qos):
                return _reply(403, "Forbidden")
            return _reply(200, "OK")
        try:
            broker.publish(identity.account, identity.region, topic, payload, qos, retain, source="https")
        except RetainedQuotaExceeded:
            return _reply(413, "The account's retained message quota is reached.")
        except TopicError as e:
            return _reply(400, str(e))
        return _reply(200, "OK")
