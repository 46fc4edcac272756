"""The MQTT broker: MQTT 3.1.1 and 5 over TCP and TLS, with AWS IoT's rules.

Modules: `codec` (packets), `sessions` (client sessions and their durable
form), `retained` (retained messages in the store), `auth` (the security
plug points), `connection` (one client's protocol handler) and `broker`
(routing, listeners, events). Topic validation, matching and the
subscription trie are `localiot.topics`, shared with the rules engine.
"""

from localiot.broker.auth import ConnectInfo, Identity, Refusal, allow_all
from localiot.broker.broker import Broker
from localiot.broker.sessions import Limits

__all__ = ["Broker", "ConnectInfo", "Identity", "Limits", "Refusal", "allow_all"]
