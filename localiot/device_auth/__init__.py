"""Who a device is and what it may do, for the broker and every listener:

- `authentication`: the broker's `authenticate` (certificates, custom
  authorizers, SigV4-presigned WebSocket URLs) and the TLS trust anchors;
- `grants`: the broker's `authorize`, and keeping connected devices' rights
  current as committed API calls change them;
- `just_in_time`: registering and provisioning certificates never seen
  before (JITR / JITP);
- `base`: the `Door` a connection came through and what the parts share.

`DeviceAuth` wires the three parts together for one server.
"""

from __future__ import annotations

from localiot.device_auth.authentication import Authentication, trust_anchor_pems, verify_presigned
from localiot.device_auth.base import CERTIFICATE, CUSTOM, OPEN, SIGV4, AuthFailure, Door, region_in
from localiot.device_auth.grants import ALLOW_ALL, Grant, Grants
from localiot.device_auth.just_in_time import JustInTime

__all__ = [
    "ALLOW_ALL", "CERTIFICATE", "CUSTOM", "OPEN", "SIGV4", "AuthFailure", "DeviceAuth", "Door", "Grant",
    "region_in", "trust_anchor_pems", "verify_presigned",
]


class DeviceAuth:
    """The broker's plug points (`authenticate`, `authorize`) and what the
    listeners ask of device authentication, for one server."""

    def __init__(self, app):
        self.app = app
        runtime, store, config, clock = app.runtime, app.store, app.config, app.runtime.clock
        self.grants = Grants(runtime, store, clock)
        self.just_in_time = JustInTime(runtime, store, config, clock)
        self.authentication = Authentication(runtime, store, config, clock, self.grants, self.just_in_time)
        self.authenticate = self.authentication.authenticate
        self.certificate_identity = self.authentication.certificate_identity
        self.custom_authentication = self.authentication.custom_authentication
        self.authorize = self.grants.authorize

    @property
    def on_trust_change(self):
        """Called when trust anchors may have been added (the TLS listeners reload)."""
        return self.grants.on_trust_change

    @on_trust_change.setter
    def on_trust_change(self, fn) -> None:
        self.grants.on_trust_change = fn

    def start(self, broker) -> None:
        self.grants.start(broker)

    async def stop(self) -> None:
        await self.grants.stop()
