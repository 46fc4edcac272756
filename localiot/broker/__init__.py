"""The MQTT broker: MQTT 3.1.1 and 5 over TCP and TLS, with AWS IoT's rules.

Modules: `codec` (packets), `topics` (validation, subscription trie),
`sessions` (client sessions, quotas), `persistence` (every store
transaction: sessions, queued and retained messages), `retained` (retained
message documents), `auth` (the security plug points), `reserved` (the
reserved-topic table and its templates), `admission` (the one publish
admission path), `connection` (one client's protocol handler),
`subscriptions` (SUBSCRIBE / UNSUBSCRIBE, the routing tries), `lifecycle`
(lifecycle events) and `broker` (sessions, routing, delivery, wills).
"""

from localiot.broker.auth import ConnectInfo, Identity, Refusal, allow_all
from localiot.broker.broker import Broker
from localiot.broker.sessions import Limits

__all__ = ["Broker", "ConnectInfo", "Identity", "Limits", "Refusal", "allow_all"]
