"""Devices for tests: paho MQTT clients against a server's real listeners, over
TLS with a certificate from CreateKeysAndCertificate (or WebSocket, or plain
MQTT), that record what they receive and wait instead of sleeping.

paho-mqtt is a test dependency: it is imported when a Device is made, so
`import localiot.testing` works without it."""

from __future__ import annotations

import json
import os
import queue
import ssl
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from localiot.testing.aws import make_client

V3, V5 = 4, 5  # paho's MQTTv311 and MQTTv5
WAIT = 5.0  # seconds a device waits for an answer before the test fails
NOT_AUTHORIZED = 0x87  # the reason code of a refused CONNECT (3.1.1: return code 5), PUBLISH, SUBSCRIBE
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}


# certificates -------------------------------------------------------------------------
class Cert:
    """A device certificate and its key as files, as a device keeps them."""

    def __init__(self, folder: Path, name: str, cert_pem: str, key_pem: str, arn: str | None = None,
                 cert_id: str | None = None):
        self.cert_file = Path(folder) / f"{name}.cert.pem"
        self.key_file = Path(folder) / f"{name}.key.pem"
        self.cert_file.write_text(cert_pem)
        self.key_file.write_text(key_pem)
        self.name, self.pem, self.arn, self.id = name, cert_pem, arn, cert_id
        self.policy_name: str | None = None  # the policy new_certificate attached


def new_certificate(iot, folder: Path, name: str = "device", active: bool = True, policy: dict | None = None) -> Cert:
    """CreateKeysAndCertificate, with the policy `policy` (a document) attached as "<name>-policy"."""
    made = iot.create_keys_and_certificate(setAsActive=active)
    cert = Cert(folder, name, made["certificatePem"], made["keyPair"]["PrivateKey"], made["certificateArn"],
                made["certificateId"])
    if policy is not None:
        policy_name = f"{name}-policy"
        iot.create_policy(policyName=policy_name, policyDocument=json.dumps(policy))
        iot.attach_policy(policyName=policy_name, target=cert.arn)
        cert.policy_name = policy_name
    return cert


def ca_file(server, folder: Path) -> str:
    """The installation's root CA as a file, as a device downloads it (GET /_localiot/ca.pem): what
    it trusts for the server, in AmazonRootCA1.pem's place. It is not the issuer of the device's
    certificate (the device CA is), so an OpenSSL device sends its certificate alone, as on AWS."""
    path = Path(folder) / "root-ca.pem"
    if not path.exists():
        with urllib.request.urlopen(server.endpoint + "/_localiot/ca.pem") as response:
            path.write_bytes(response.read())
    return str(path)


def address(iot, endpoint_type: str = "iot:Data-ATS") -> tuple[str, int]:
    """DescribeEndpoint's host (a host name only, as AWS answers) and the MQTT over TLS port
    (from /_localiot/health, since devices are told the port by the README, not the API)."""
    host = iot.describe_endpoint(endpointType=endpoint_type)["endpointAddress"]
    with urllib.request.urlopen(f"{iot.meta.endpoint_url}/_localiot/health") as answer:
        listeners = json.load(answer)["listeners"]
    return host, int(listeners["iot:Data-ATS"].rsplit(":", 1)[1])


def alpn_port(server) -> int:
    """The TLS port of ALPN x-amzn-mqtt-ca, MQTT over WebSocket and HTTPS publish."""
    return server.listener("mqtt-alpn")[1]


# the device ------------------------------------------------------------------------------
class Device:
    """A paho client (MQTT 3.1.1 or 5) over TLS, WebSocket over TLS or plain TCP that
    records what it gets. Made unconnected: connect() answers the CONNACK's reason code,
    connect_ok() asserts it is 0. `client` is the paho client itself."""

    def __init__(self, port: int, client_id: str = "", *, host: str = "127.0.0.1", ca: str | None = None,
                 cert: Cert | None = None, version: int = V5, alpn: list[str] | None = None,
                 transport: str = "tcp", ws_path: str = "/mqtt", ws_headers: dict | None = None,
                 username: str | None = None, password: str | None = None, clean: bool = True,
                 will: tuple | None = None, keepalive: int = 60):
        import paho.mqtt.client as mqtt

        kw = {"clean_session": clean} if version == V3 else {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version,
                                  transport=transport, reconnect_on_failure=False, **kw)
        if ca is not None:  # TLS, checking the server against the installation's CA
            context = ssl.create_default_context(cafile=ca)
            if cert is not None:
                context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
            if alpn:
                context.set_alpn_protocols(alpn)
            self.client.tls_set_context(context)
        if transport == "websockets":
            self.client.ws_set_options(path=ws_path, headers=ws_headers)
        if username is not None:
            self.client.username_pw_set(username, password)
        if will:
            self.client.will_set(*will)  # (topic, payload, qos, retain)
        self.client_id, self.cert = client_id, cert
        self.host, self.port, self.version, self.clean, self.keepalive = host, port, version, clean, keepalive
        self.messages: queue.Queue = queue.Queue()
        self.connected = threading.Event()
        self.closed = threading.Event()
        self.connack = None  # the CONNACK's reason code
        self.session_present = None
        self.disconnect_reason = None
        self.acks: dict[int, threading.Event] = {}
        self.results: dict[int, object] = {}
        self.cleanup: list = []  # run by close(): what the device owns (its certificate's folder)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_subscribe = self._on_ack
        self.client.on_unsubscribe = self._on_ack
        self.client.on_publish = self._on_publish
        if os.environ.get("LOCALIOT_TEST_PAHO_LOG"):  # paho's packet log, when debugging a test
            self.client.enable_logger()

    def _on_connect(self, c, u, flags, rc, props):
        self.connack = rc.value
        self.session_present = flags.session_present
        self.connected.set()

    def _on_disconnect(self, c, u, flags, rc, props):
        self.disconnect_reason = rc.value
        self.closed.set()

    def _on_ack(self, c, u, mid, codes, props):
        self.results[mid] = [code.value for code in codes]
        self.acks.setdefault(mid, threading.Event()).set()

    def _on_publish(self, c, u, mid, rc, props):
        self.results[mid] = rc.value
        self.acks.setdefault(mid, threading.Event()).set()

    def connect(self) -> int | None:
        """The CONNACK's reason code (0: accepted), or None when the connection ended without one."""
        import paho.mqtt.client as mqtt

        kw = {"clean_start": self.clean} if self.version == V5 else {}
        try:
            self.client.connect(self.host, self.port, keepalive=self.keepalive, **kw)
        except (OSError, ssl.SSLError, mqtt.WebsocketConnectionError):
            return None
        self.client.loop_start()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.connected.is_set():
                return self.connack
            if self.closed.is_set():
                return None
            time.sleep(0.01)
        raise AssertionError("neither a CONNACK nor a closed connection")

    def connect_ok(self) -> "Device":
        code = self.connect()
        assert code == 0, f"connection refused: {code}"
        return self

    def _wait(self, mid):
        assert self.acks.setdefault(mid, threading.Event()).wait(WAIT), "no ack"
        return self.results[mid]

    def subscribe(self, *topics: str, qos: int = 1) -> list[int]:
        """One SUBSCRIBE for `topics`; the SUBACK's reason codes, one per topic (the granted QoS, or a failure)."""
        if not topics or not all(isinstance(topic, str) for topic in topics):
            raise TypeError(f"topics are strings (qos is a keyword): {topics!r}")
        _, mid = self.client.subscribe([(topic, qos) for topic in topics])
        return self._wait(mid)

    def unsubscribe(self, *topics: str):
        _, mid = self.client.unsubscribe(list(topics))
        return self._wait(mid)

    def publish(self, topic: str, payload=b"", qos: int = 1, retain: bool = False):
        """Publish bytes, text, or a dict / list as JSON. At QoS 1 the PUBACK's reason code
        (MQTT 5: 0 or NOT_AUTHORIZED ...); at QoS 0 paho's MessageInfo."""
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos, retain)
        if qos:
            return self._wait(info.mid)
        return info

    def expect(self, topic: str | None = None, timeout: float = WAIT):
        """The next message (on `topic`, skipping others); fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                m = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no message on {topic or 'any topic'}") from None
            if topic is None or m.topic == topic:
                return m

    def expect_json(self, topic: str | None = None, timeout: float = WAIT):
        """The payload of the next message on `topic`, parsed as JSON."""
        return json.loads(self.expect(topic, timeout).payload)

    def expect_none(self, timeout: float = 0.3) -> None:
        """Fails when a message arrives within `timeout` seconds."""
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {m.topic}: {m.payload!r}")

    def wait_closed(self, timeout: float = WAIT) -> bool:
        """True once the connection has ended (the server closed it, or DISCONNECT)."""
        return self.closed.wait(timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        for fn in self.cleanup:
            fn()
        self.cleanup.clear()


# ready-made devices -----------------------------------------------------------------
def tls_device(server, client_id: str | None = None, policy: dict | None = ALLOW_ALL, *, iot=None,
               version: int = V5, **kw) -> Device:
    """A device with a fresh certificate (CreateKeysAndCertificate) carrying `policy`
    (a document; None: no policy), connected over MQTT/TLS to the server's endpoint
    (DescribeEndpoint iot:Data-ATS), trusting the installation's CA. Its `cert` has
    the certificate's id and ARN; its key files live until close()."""
    iot = iot or make_client(server)
    client_id = client_id or f"device-{uuid.uuid4().hex[:8]}"
    folder = tempfile.TemporaryDirectory(prefix="localiot-device-")
    try:
        cert = new_certificate(iot, Path(folder.name), f"{client_id}-{uuid.uuid4().hex[:6]}", policy=policy)
        _, port = address(iot)
        device = Device(port, client_id, ca=ca_file(server, Path(folder.name)), cert=cert, version=version, **kw)
    except BaseException:
        folder.cleanup()
        raise
    device.cleanup.append(folder.cleanup)
    return _connected(device)


def plain_device(server, client_id: str | None = None, *, version: int = V3, username: str | None = None,
                 cls=None, **kw) -> Device:
    """A device connected over plain MQTT (the server needs mqtt_plain=True; every client
    is the default account's, and `username`, when given, is its principal)."""
    host, port = server.listener("mqtt-plain")
    made = (cls or Device)(port, client_id or f"d-{uuid.uuid4().hex[:8]}", host=host, version=version,
                           username=username, **kw)
    return _connected(made)


def _connected(device: Device) -> Device:
    try:
        return device.connect_ok()
    except BaseException:
        device.close()
        raise


class DevicePool:
    """Makes devices and closes every one of them at the end (the `devices` fixture).

    pool(port, client_id, **kw) -> Device, unconnected, as Device(...);
    pool.tls(client_id, policy=ALLOW_ALL, **kw) -> connected, as tls_device(server, ...);
    pool.plain(client_id=None, **kw) -> connected, as plain_device(server, ...)."""

    def __init__(self, server=None):
        self.server = server
        self.made: list[Device] = []

    def add(self, device: Device) -> Device:
        self.made.append(device)
        return device

    def __call__(self, *args, **kw) -> Device:
        return self.add(Device(*args, **kw))

    def tls(self, client_id: str | None = None, policy: dict | None = ALLOW_ALL, **kw) -> Device:
        return self.add(tls_device(self.server, client_id, policy, **kw))

    def plain(self, client_id: str | None = None, **kw) -> Device:
        return self.add(plain_device(self.server, client_id, **kw))

    def close(self) -> None:
        for device in self.made:
            try:
                device.close()
            except Exception:
                pass
        self.made.clear()
