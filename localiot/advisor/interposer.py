"""A device's connection to the test endpoint: a real broker connection with
a scripted interposer in front of it.

Every whole packet the device sends is decoded (localiot.broker.codec),
written to the run's journal and shown to the current test case's script,
which answers FORWARD (the broker handles it as on the ordinary endpoint),
DROP (as if it never arrived: no CONNACK, no SUBACK ...) or CLOSE (the
server hangs up). What the broker writes back passes through a tap that
journals it and lets the script hold back an answer (a PINGRESP, a
SUBACK). Outside a run, or for a device no run is testing, the interposer
only forwards: the endpoint behaves as the ordinary one.
"""

from __future__ import annotations

import hashlib

from localiot.advisor import journal as j
from localiot.broker import codec
from localiot.broker.codec import MalformedPacket
from localiot.listeners.alpn import DeviceConnection

FORWARD, DROP, CLOSE = "forward", "drop", "close"
LISTENER = "device-advisor"

_IN_KINDS = {codec.CONNECT: j.CONNECT, codec.PUBLISH: j.PUBLISH, codec.PUBACK: j.PUBACK,
             codec.SUBSCRIBE: j.SUBSCRIBE, codec.UNSUBSCRIBE: j.UNSUBSCRIBE, codec.PINGREQ: j.PINGREQ,
             codec.DISCONNECT: j.DISCONNECT}
_OUT_KINDS = {codec.CONNACK: j.CONNACK, codec.PUBLISH: j.PUBLISH_OUT, codec.PUBACK: j.PUBACK_OUT,
              codec.SUBACK: j.SUBACK, codec.PINGRESP: j.PINGRESP}


def _frames(buf: bytes):
    """(first byte, body, whole packet) for each complete packet; and the unused rest."""
    pos, out = 0, []
    while True:
        try:
            found = codec.split_packet(buf, pos)
        except MalformedPacket:
            return out, b""
        if found is None:
            return out, buf[pos:]
        first, start, end = found
        out.append((first, bytes(buf[start:end]), bytes(buf[pos:end])))
        pos = end


def _data(kind: str, packet) -> dict:
    if kind == j.CONNECT:
        return {"client_id": packet.client_id, "clean_start": packet.clean_start, "keep_alive": packet.keep_alive,
                "version": packet.protocol_level}
    if kind in (j.PUBLISH, j.PUBLISH_OUT):
        return {"topic": packet.topic, "payload": packet.payload, "qos": packet.qos, "packet_id": packet.packet_id,
                "dup": packet.dup, "retain": packet.retain}
    if kind == j.SUBSCRIBE:
        return {"packet_id": packet.packet_id, "filters": [f for f, _ in packet.subscriptions],
                "qos": [o.qos for _, o in packet.subscriptions]}
    if kind == j.UNSUBSCRIBE:
        return {"packet_id": packet.packet_id, "filters": list(packet.filters)}
    if kind in (j.PUBACK, j.PUBACK_OUT):
        return {"packet_id": packet.packet_id}
    if kind == j.SUBACK:
        return {"packet_id": packet.packet_id, "codes": list(packet.reason_codes)}
    if kind == j.CONNACK:
        return {"code": packet.reason_code, "session_present": packet.session_present}
    if kind == j.DISCONNECT:
        return {"code": packet.reason_code}
    return {}


class Tap:
    """The TLS transport as the broker connection sees it: writes are journaled and may be held back."""

    def __init__(self, transport, conn: AdvisorConnection):
        self._transport = transport
        self._conn = conn
        self._rest = b""

    def __getattr__(self, name):
        return getattr(self._transport, name)

    def write(self, data: bytes) -> None:
        conn = self._conn
        if conn.run is None:
            self._transport.write(data)
            return
        frames, self._rest = _frames(self._rest + bytes(data))
        kept = [whole for first, body, whole in frames if conn.outgoing(first, body)]
        if kept:
            self._transport.write(b"".join(kept))


class AdvisorConnection(DeviceConnection):
    """MQTT over TLS (`door` None: the client certificate authenticates, the listener is
    "device-advisor"), or MQTT over WebSocket (`door`: the upgrade's "wss" Door with its
    verified presigned URL, authenticated as on the ALPN port; `tls`: the TLS under it)."""

    def __init__(self, endpoint, variant: str = "default", door=None, tls=None):
        super().__init__(endpoint.broker, LISTENER if door is None else door)
        self.endpoint = endpoint
        self.variant = variant  # which server certificate the handshake used
        self.websocket = door is not None
        self.sigv4 = getattr(door, "sigv4", None)  # (account, region, access key id) of the presigned URL
        self.tls = tls  # the ssl object of the TLS handshake (journaled when the run attaches)
        self.run = None  # the RunState testing this device, once known
        self.number = 0
        self.certificate_id: str | None = None
        self._rest = b""
        self.hung_up = False  # the server closed it (journaled as such)

    # asyncio ---------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")  # None over WebSocket: no client certificate
        der = None
        if ssl_object is not None:
            self.tls = ssl_object
            try:
                der = ssl_object.getpeercert(binary_form=True)
            except ValueError:
                der = None
        self.certificate_id = hashlib.sha256(der).hexdigest() if der else None
        super().connection_made(Tap(transport, self))
        self.endpoint.connections.add(self)
        if not self.websocket:
            self.run = self.endpoint.run_for(self.certificate_id, None)
        if self.run is not None:
            self.run.attach(self, self.tls)

    def connection_lost(self, exc) -> None:
        run = self.run
        self.endpoint.connections.discard(self)
        super().connection_lost(exc)
        if run is not None:
            run.detach(self)

    def data_received(self, data: bytes) -> None:
        if self.transport is None:  # closed
            return
        frames, self._rest = _frames(self._rest + data)
        for first, body, whole in frames:
            if self.transport is None:
                return
            verdict = self.incoming(first, body)
            if verdict == FORWARD:
                super().data_received(whole)
            elif verdict == CLOSE:
                self.hung_up = True
                self.hang_up()
                return

    # the script --------------------------------------------------------------------
    def incoming(self, first: int, body: bytes) -> str:
        ptype = first >> 4
        kind = _IN_KINDS.get(ptype)
        packet = None
        if kind is not None:
            try:
                packet = codec.decode(first, body, None if ptype == codec.CONNECT else self.version)
            except MalformedPacket:
                kind = None
        if self.run is None and kind == j.CONNECT:  # a device known by its client id (the thing's name)
            run = self.endpoint.run_for(self.certificate_id, packet.client_id, self.websocket)
            why = run.refusal(self) if run is not None else None
            if why is not None:  # over WebSocket: no presigned URL, or one of another account or region
                run.refused(why, client_id=packet.client_id)
                self.version, self.v5 = packet.protocol_level, packet.protocol_level == codec.MQTT5
                self.refuse(codec.NOT_AUTHORIZED, why)
                return DROP
            self.run = run
            if run is not None:
                run.attach(self, self.tls)
        if self.run is None or kind is None:
            return FORWARD
        return self.run.incoming(self, kind, packet, _data(kind, packet))

    def outgoing(self, first: int, body: bytes) -> bool:
        ptype = first >> 4
        kind = _OUT_KINDS.get(ptype)
        if kind is None or self.run is None:
            return True
        try:
            packet = codec.decode(first, body, self.version)
        except MalformedPacket:
            return True
        return self.run.outgoing(self, kind, packet, _data(kind, packet))

    def hang_up(self) -> None:
        """The server closes the connection: a v5 DISCONNECT first when the session is up."""
        if self.state == 2:  # CONNECTED
            self.drop("SERVER_INITIATED_DISCONNECT", codec.ADMINISTRATIVE_ACTION, will=False)
        else:
            self.state = 3
            if self.transport is not None:
                self.transport.close()
