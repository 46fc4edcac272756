"""One suite run while it executes: the device under test, its live
connections to the endpoint, the journal of what it did, and the current
test case's script (the hooks the interposer asks, the server certificate
new handshakes get)."""

from __future__ import annotations

from collections.abc import Callable

from localiot.advisor import certs
from localiot.advisor import journal as j
from localiot.advisor.interposer import FORWARD

WEBSOCKET = "_OverWebSocket"  # the suffix of the suite protocols over WebSocket

# script(conn, kind, data) -> FORWARD / DROP / CLOSE, or None for the default (FORWARD)
IncomingScript = Callable[[object, str, dict], str | None]
# script(conn, kind, data) -> False to hold the packet back, None/True to send it
OutgoingScript = Callable[[object, str, dict], bool | None]


class RunState:
    def __init__(self, endpoint, account: str, region: str, suite_run_id: str, device: dict):
        self.endpoint = endpoint
        self.runtime = endpoint.runtime
        self.account, self.region = account, region
        self.suite_run_id = suite_run_id
        self.certificate_id = device.get("certificateId") or None
        self.thing = device.get("thingName") or None
        self.protocol = device.get("protocol") or "MqttV3_1_1"
        self.websocket = self.protocol.endswith(WEBSOCKET)  # MQTT over WebSocket, SigV4-presigned
        self.case = None  # the CaseRun in progress (its log hears of refused connections)
        self.journal = j.Journal(endpoint.loop)
        self.connections: list = []  # live AdvisorConnections of the device, oldest first
        self.on_incoming: IncomingScript | None = None
        self.on_outgoing: OutgoingScript | None = None
        self.tls_variant = certs.DEFAULT
        self.stopping = False
        self.stop_reason: str | None = None
        self.task = None
        self._numbers = 0

    # who is the device -------------------------------------------------------------------
    def tests(self, certificate_id: str | None, thing: str | None) -> bool:
        return bool((certificate_id and certificate_id == self.certificate_id) or (thing and thing == self.thing))

    def matches(self, certificate_id: str | None, client_id: str | None, websocket: bool = False) -> bool:
        """Whether a connection is this run's device: over TLS its client certificate (or, when the
        run names only a thing, its client id); over WebSocket, which has no certificate, its client id
        is the thing's name. A run tests its suite's transport only."""
        if websocket != self.websocket:
            return False
        if self.certificate_id and not websocket:
            return certificate_id == self.certificate_id
        return bool(client_id and client_id == self.thing)

    def refusal(self, conn) -> str | None:
        """Why a matching connection may not join the run, or None: over WebSocket, the presigned
        URL's credentials must be of the run's account (AWS's test endpoint is the account's)."""
        if not conn.websocket:
            return None
        if conn.sigv4 is None:
            return ("The connection over WebSocket carries no SigV4-presigned URL; the device must sign "
                    "its wss:// URL with credentials of the account " + self.account + ".")
        account, region, access_key = conn.sigv4
        if account != self.account:
            return (f"The presigned URL is signed with credentials of the account {account} (access key "
                    f"{access_key}); the device under test is in the account {self.account}.")
        if region != self.region:
            return (f"The presigned URL is signed for the region {region}; the suite run is in the region "
                    f"{self.region}.")
        return None

    def refused(self, reason: str, **data) -> None:
        """The endpoint refused a connection that may be the device's: journaled, and told to the case log."""
        self.journal.add(j.REFUSED, 0, reason=reason, **data)
        if self.case is not None:
            self.case.log(f"The endpoint refused a connection: {reason}")

    # connections -------------------------------------------------------------------------------
    def attach(self, conn, ssl_object) -> None:
        self._numbers += 1
        conn.number = self._numbers
        self.connections.append(conn)
        data = {"variant": conn.variant}
        if ssl_object is not None:
            cipher = ssl_object.cipher()
            data.update(cipher=cipher[0] if cipher else None, tls_version=ssl_object.version(),
                        shared=[c[0] for c in ssl_object.shared_ciphers() or ()])
        self.journal.add(j.HANDSHAKE, conn.number, **data)
        if conn.variant != self.tls_variant:  # its handshake began before a case changed the certificate
            conn.hung_up = True  # (its device comes back and meets the certificate the case presents)
            conn.hang_up()

    def detach(self, conn) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
        self.journal.add(j.CLOSED, conn.number, by="server" if getattr(conn, "hung_up", False) else "device")

    def connected(self) -> list:
        """Connections whose CONNECT was accepted and that are still up."""
        return [c for c in self.connections if c.state == 2]

    def hang_up_all(self) -> None:
        for conn in list(self.connections):
            conn.hung_up = True
            conn.hang_up()

    # the interposer's questions -------------------------------------------------------------
    def incoming(self, conn, kind: str, packet, data: dict) -> str:
        self.journal.add(kind, conn.number, **data)
        script = self.on_incoming
        verdict = script(conn, kind, data) if script is not None else None
        if verdict is not None and verdict != FORWARD:
            self.journal.add("held" if verdict != "close" else "hung-up", conn.number, packet=kind)
            if verdict == "close":
                conn.hung_up = True
        return verdict or FORWARD

    def outgoing(self, conn, kind: str, packet, data: dict) -> bool:
        script = self.on_outgoing
        keep = script(conn, kind, data) if script is not None else None
        if keep is False:
            self.journal.add("held-back", conn.number, packet=kind, **data)
            return False
        self.journal.add(kind, conn.number, **data)
        return True

    def reset_script(self) -> None:
        self.on_incoming = self.on_outgoing = None
        self.tls_variant = certs.DEFAULT

    def shutdown(self, reason: str | None = None) -> None:
        """Stop the run: StopSuiteRun (no reason), or the server going away (the run's errorReason)."""
        self.stopping = True
        self.stop_reason = reason
        if self.task is not None and not self.task.done():
            self.task.cancel()
