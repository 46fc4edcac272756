"""Who watches one MQTT client's messages: Fleet Hub's device page shows what a
device sends and is delivered while the page is open.

`broker.watched` maps (account, region, client id) to the watchers' callbacks
fn(direction, topic, payload), direction "sent" (a PUBLISH from the client)
or "received" (a message delivered to it). It is empty unless someone
watches, so the publish path pays one test of an empty dict per message;
nothing is recorded for clients nobody watches. A node sees only its own
connections' messages."""

from __future__ import annotations


def watch(broker, account: str, region: str, client_id: str, fn):
    """Call fn(direction, topic, payload) for the client's messages from now on; returns `stop`."""
    key = (account, region, client_id)
    broker.watched.setdefault(key, []).append(fn)

    def stop() -> None:
        fns = broker.watched.get(key)
        if fns and fn in fns:
            fns.remove(fn)
            if not fns:
                del broker.watched[key]

    return stop


def tell(broker, conn, direction: str, topic: str, payload) -> None:
    identity = conn.identity
    if identity is None:
        return
    fns = broker.watched.get((identity.account, identity.region, conn.client_id))
    if fns:
        payload = bytes(payload)
        for fn in tuple(fns):
            fn(direction, topic, payload)
