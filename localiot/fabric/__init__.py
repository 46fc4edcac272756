"""The message fabric: several localiot nodes, one MQTT broker to their devices.

`localiot serve --fabric nats://host:4222` (or LOCALIOT_FABRIC) joins a node
to the others that name the same NATS server (or cluster); without it a
node is the single process it always was and nothing here runs. NATS
carries, between the nodes:

- MQTT messages: each message a node routes goes to the nodes whose
  sessions subscribed to a matching filter (`node`); the mapping of MQTT
  topics and filters to NATS subjects — levels and tokens, the characters
  NATS treats specially, '#' and its parent level, '$' topics, accounts —
  is `subjects`', the message body `wire`'s;
- shared subscriptions as NATS queue groups: one delivery per group across
  all nodes (`node`);
- client-id takeover and persistent sessions moving between nodes
  (`sessions`);
- commit events, so that every node's caches follow what another node's API
  call changed: device grants, revoked certificates (their connections are
  dropped on every node), log levels, topic rules (`events`).
- which clients are connected to which node, for GetThingConnectivityData
  and DeleteConnection (`directory`);
- heartbeats: the persistent sessions of a node that died are adopted by a
  live one (`liveness`);
- QoS 1 confirmations before a PUBACK (`confirm`).

State stays in the store: retained messages, persistent sessions and their
queued QoS 1 messages are read from it by whichever node needs them, so with
a store the nodes share (PostgreSQL, `--store`) a device may reconnect
through any node.

Each node's own NATS client (`client`) writes a message the moment the
broker routes it.

Delivery between nodes is NATS core's, in order per publishing node, and
QoS 1 is at least once across nodes (`confirm`): a node sends a device the
PUBACK of a QoS 1 message only once every other live node has confirmed
that it delivered the message into its sessions and committed what must
survive (queued for an offline persistent session, held until acknowledged
for a connected one), one confirmation round per loop iteration. A node
that does not confirm within a bound (killed, stalled) gets the messages
queued in the shared store for its persistent sessions by the publishing
node, before the PUBACK. So a SIGKILL of any node loses nothing that was
acknowledged. QoS 0 waits for nothing and is at most once.
"""

from __future__ import annotations

from localiot.fabric.node import Fabric

__all__ = ["Fabric", "start_fabric"]


async def start_fabric(runtime, url: str, node_id: str | None = None) -> Fabric:
    """Connect this node to the fabric at `url`; the broker attaches itself as it starts."""
    return await Fabric(runtime, url, node_id).start()
