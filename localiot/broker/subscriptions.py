"""Subscriptions: SUBSCRIBE and UNSUBSCRIBE for a connection, the retained
messages a new subscription gets, and each account/region's subscription
trie with its cache of topic -> subscribers (what routing reads).

AWS IoT's rules: at most `subscriptions_per_request` filters in one
SUBSCRIBE and `subscriptions_per_connection` per session (QUOTA_EXCEEDED
past them), iot:Subscribe on arn:...:topicfilter/{filter} for each, QoS 2
requests granted QoS 1, no subscription identifiers, no No Local on a
shared subscription. Each change is a `$aws/events/subscriptions/...`
lifecycle event.
"""

from __future__ import annotations

import threading

from localiot import iotlogs
from localiot.broker.states import CONNECTED
from localiot.broker import auth, codec
from localiot.broker.sessions import NO_ENTRIES, Session
from localiot.topics import SubscriptionTrie, TopicError, validate_topic_filter

ROUTE_CACHE_MAX = 10_000
_ONE_CLIENTS = "$aws/events/"  # topics of one client's lifecycle events (not cached)


class Scope:
    """One account/region: its subscriptions and a cache of topic -> matches."""

    __slots__ = ("trie", "cache")

    def __init__(self):
        self.trie = SubscriptionTrie()
        self.cache: dict[str, tuple] = {}

    def lookup(self, topic: str) -> tuple:
        subs, groups = self.trie.match(topic)
        hit = (tuple(subs.items()), tuple(groups))
        if topic.startswith(_ONE_CLIENTS):
            return hit  # a lifecycle event names its client: caching it would only push the hot topics out
        if len(self.cache) >= ROUTE_CACHE_MAX:
            self.cache.clear()
        self.cache[topic] = hit
        return hit


def wanted(broker, account: str, region: str, topic: str) -> bool:
    """The broker's `wants` on the bus: could a message on `topic` reach anyone through
    it? A session's filter matching (online, or a stored session offline), or, with a
    fabric, always (the other nodes' subscribers are not known here)."""
    if broker.fabric is not None:
        return True
    scope = broker.scopes.get((account, region))
    if scope is None:
        return False
    hit = scope.cache.get(topic)  # (first: a cached topic needs no count of the trie)
    if hit is None:
        if not len(scope.trie):
            return False
        if threading.get_ident() == broker._thread:
            hit = scope.lookup(topic)
        else:  # a worker (PostgreSQL): walk without caching, a SUBSCRIBE on the loop clears the cache
            try:
                hit = scope.trie.match(topic)
            except RuntimeError:  # the trie changed while walked
                return True
    return bool(hit[0] or hit[1])


def subscribe(broker, conn, packet: codec.Subscribe) -> None:
    """SUBSCRIBE: validate, authorize and grant each filter, SUBACK, then the retained messages."""
    session, identity, limits, v5 = conn.session, conn.identity, broker.limits, conn.v5
    if "subscription_identifier" in packet.properties:
        conn.drop("CLIENT_ERROR", codec.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
                  "Subscription identifiers are not supported.")
        return
    scope = broker.scope(identity.account, identity.region)
    too_many = len(packet.subscriptions) > limits.subscriptions_per_request
    codes, granted, retained_for = [], [], []
    for topic_filter, opts in packet.subscriptions:
        if too_many:
            codes.append(codec.QUOTA_EXCEEDED if v5 else codec.V3_SUBACK_FAILURE)
            continue
        try:
            group, _ = validate_topic_filter(topic_filter, limits.topic_max_bytes, limits.topic_max_slashes)
        except TopicError as error:
            iotlogs.subscribe_refused(conn, topic_filter, iotlogs.CLIENT_ERROR, str(error))
            codes.append(codec.TOPIC_FILTER_INVALID if v5 else codec.V3_SUBACK_FAILURE)
            continue
        if group is not None and opts.no_local:
            conn.drop("CLIENT_ERROR", codec.PROTOCOL_ERROR, "No Local on a shared subscription.")
            return
        if not broker.authorize(identity, auth.SUBSCRIBE, auth.arn(identity, "topicfilter", topic_filter)):
            iotlogs.subscribe_refused(conn, topic_filter)
            codes.append(codec.NOT_AUTHORIZED if v5 else codec.V3_SUBACK_FAILURE)
            conn.meter is not None and conn.meter.denied()
            continue
        existed = topic_filter in session.subscriptions
        if not existed and len(session.subscriptions) >= limits.subscriptions_per_connection:
            codes.append(codec.QUOTA_EXCEEDED if v5 else codec.V3_SUBACK_FAILURE)
            continue
        if opts.qos > 1:  # AWS IoT grants QoS 1 for a QoS 2 request
            opts = opts._replace(qos=1)
        if session.subscriptions is NO_ENTRIES:
            session.subscriptions = {}
        session.subscriptions[topic_filter] = opts
        scope.trie.add(topic_filter, session, opts)
        codes.append(opts.qos)
        granted.append(topic_filter)
        if group is None and (opts.retain_handling == 0 or (opts.retain_handling == 1 and not existed)):
            retained_for.append((topic_filter, opts))
    saved = None
    if granted:
        scope.cache.clear()
        broker.bus.wants_changed()  # (the bus keeps wanted() answers too)
        if session.persistent:
            saved = broker.persistence.save_soon(session)  # PostgreSQL: on a worker (its future)

    def acknowledge():
        if saved is None:
            _acknowledge(broker, conn, packet, codes, retained_for, granted)
        else:  # SUBACK once the session's write ended
            saved.add_done_callback(lambda _: _acknowledge(broker, conn, packet, codes, retained_for, granted))

    fabric = broker.fabric
    if fabric is not None and fabric.awaiting_interest():  # SUBACK once the other nodes send here
        fabric.when_subscribed(acknowledge)
        return
    acknowledge()


def _acknowledge(broker, conn, packet: codec.Subscribe, codes: list, retained_for: list, granted: list) -> None:
    session = conn.session
    if session is None:
        return  # gone meanwhile
    conn.push(codec.encode(codec.Suback(packet.packet_id, codes), conn.version))
    if retained_for:
        _send_retained(broker, session, conn, retained_for)
    if granted:
        broker.lifecycle.subscription(conn, session, "subscribed", granted)
    iotlogs.subscribed(conn, granted)

def _send_retained(broker, session: Session, conn, filters) -> None:
    persistence = broker.persistence
    if persistence.workers is None:
        _deliver_retained(broker, session, conn, persistence.retained_for(session.account, session.region, filters))
        return

    def read(done) -> None:  # PostgreSQL: read on a worker
        if done.cancelled() or done.exception() is not None or conn.session is not session \
                or conn.state != CONNECTED:
            return
        _deliver_retained(broker, session, conn, done.result())
        broker.flush_soon()

    persistence.retained_off_loop(session.account, session.region, filters).add_done_callback(read)


def _deliver_retained(broker, session: Session, conn, found: list) -> None:
    now = broker.clock.now()
    for opts, msg in found:
        if not broker.can_receive(session, msg.topic):
            continue
        qos = min(msg.qos, opts.qos)
        if qos:
            broker.send_qos1(session, conn, msg, True)
        else:
            conn.push(msg.encode(conn.v5, 0, None, True, False, now))

def unsubscribe(broker, conn, packet: codec.Unsubscribe) -> None:
    session = conn.session
    scope = broker.scope(session.account, session.region)
    codes, removed = [], []
    for topic_filter in packet.filters:
        if session.subscriptions.pop(topic_filter, None) is not None:
            scope.trie.remove(topic_filter, session)
            codes.append(codec.SUCCESS)
            removed.append(topic_filter)
        else:
            codes.append(codec.NO_SUBSCRIPTION_EXISTED)
    if removed:
        scope.cache.clear()
        broker.bus.wants_changed()
        if session.persistent:
            broker.persistence.save_soon(session)  # PostgreSQL: on a worker, in the session's order
    conn.push(codec.encode(codec.Unsuback(packet.packet_id, codes), conn.version))
    if removed:
        broker.lifecycle.subscription(conn, session, "unsubscribed", removed)
