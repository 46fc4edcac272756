"""The Secure Tunneling relay: the WebSocket endpoint local proxies connect to.

    relay = relay_for(runtime)
    response = await relay.handle(request)   # an aiohttp request for GET /tunnel

The API port routes `/tunnel` here (plain ws://); a TLS listener serves wss://
by making the same call with its own request. See relay.py.
`await reset(runtime)` (POST /_localiot/reset) closes every live tunnel WebSocket."""

from __future__ import annotations

import weakref

_RELAYS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def relay_for(runtime):
    """The one relay of this runtime (created on first use)."""
    relay = _RELAYS.get(runtime)
    if relay is None:
        from localiot.tunneling.relay import Relay

        relay = _RELAYS[runtime] = Relay(runtime)
    return relay


async def reset(runtime) -> None:
    """The store was wiped: close every WebSocket the relay holds (1000, "Tunnel closed")."""
    relay = _RELAYS.get(runtime)
    if relay is not None:
        await relay.close_all("closed")
