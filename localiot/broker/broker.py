"""The Broker: listeners, sessions, routing, retained messages, wills and
AWS IoT lifecycle events, on the server's event loop.

    broker = Broker(app.runtime, app.store)            # allow-all, default account
    port = await broker.start_tcp("127.0.0.1", 1883)
    broker.publish(account, region, "a/b", b"{}")      # HTTP Publish, service events

Every message also goes to the in-process bus (rules engine, Defender), and
events that services put on the bus reach MQTT subscribers of the same
account and region.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading

from localiot.broker import auth, codec
from localiot.broker.connection import CONNECTED, CLOSED, Connection
from localiot.broker.message import Message
from localiot.broker.retained import RetainedQuotaExceeded, matching, put_retained
from localiot.broker.sessions import (
    BROKER_SCOPE, Limits, Session, delete_session, load_sessions, queue_message, save_session, take_queued,
)
from localiot.topics import SubscriptionTrie, TopicError, validate_topic_filter, validate_topic_name

log = logging.getLogger("localiot.broker")

_ROUTE_CACHE_MAX = 10_000
_QOS0_DROP_BUFFER = 64 * 1024 * 1024  # a stalled subscriber stops getting QoS 0 past this backlog
# One loop iteration can read megabytes from many publishers (libuv reads a
# socket up to 32 times per wake-up): write a connection's batch early once it
# holds this many packets, so its transport's flow control sees it in time.
_OUT_BATCH_MAX = 1024


class _Scope:
    """One account/region: its subscriptions and a cache of topic -> matches."""

    __slots__ = ("trie", "cache")

    def __init__(self):
        self.trie = SubscriptionTrie()
        self.cache: dict[str, tuple] = {}

    def lookup(self, topic: str) -> tuple:
        subs, groups = self.trie.match(topic)
        hit = (tuple(subs.items()), tuple(groups))
        if len(self.cache) >= _ROUTE_CACHE_MAX:
            self.cache.clear()
        self.cache[topic] = hit
        return hit


class Broker:
    def __init__(self, runtime, store, authenticate=None, authorize=None, *, reserved_topic_handler=None,
                 limits: Limits | None = None):
        self.runtime = runtime
        self.store = store
        self.clock = runtime.clock
        self.bus = runtime.bus
        self.limits = limits or Limits()
        default_authn, default_authz = auth.allow_all(runtime.config.default_account, runtime.config.default_region)
        self.authenticate = authenticate or default_authn
        self._authorize = authorize or default_authz
        self._allow_all = bool(getattr(self._authorize, "allows_everything", False))
        # reserved_topic_handler(identity, topic, payload, properties) -> bool (accepted)
        self.reserved_topic_handler = reserved_topic_handler
        self.max_packet = self.limits.payload_max + 65536 + 16
        self.log = log
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self.connections: set[Connection] = set()
        self.sessions: dict[tuple[str, str, str], Session] = {}
        self.offline: set[Session] = set()
        self.scopes: dict[tuple[str, str], _Scope] = {}
        self.publisher: Connection | None = None  # the connection whose bytes are being processed
        self._servers: list[asyncio.AbstractServer] = []
        self._dirty: list[Connection] = []
        self._flush_scheduled = False
        self._store_ops: list = []
        self._versions: dict[tuple[str, str, str], int] = {}
        self._echo = None
        self._unsubscribe_bus = None
        self._sweeper: asyncio.Task | None = None
        self._started = False

    # listeners -------------------------------------------------------------
    def start(self) -> None:
        """Join the bus and restore stored sessions; listeners call it too. Call on the loop."""
        if not self._started:
            self._begin()

    async def start_tcp(self, host: str, port: int, name: str = "tcp") -> int:
        return await self._listen(host, port, None, name)

    async def start_tls(self, host: str, port: int, ssl_context, name: str = "tls") -> int:
        return await self._listen(host, port, ssl_context, name)

    async def _listen(self, host, port, ssl_context, name) -> int:
        if not self._started:
            self._begin()
        server = await self.loop.create_server(lambda: Connection(self, name), host, port, ssl=ssl_context,
                                               backlog=1024)
        self._servers.append(server)
        bound = server.sockets[0].getsockname()[1]
        log.info("MQTT %s listener on %s:%s", name, host, bound)
        return bound

    def _begin(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._started = True
        self._load_sessions()
        self._unsubscribe_bus = self.bus.subscribe(self._on_bus)
        self._sweeper = self.loop.create_task(self._sweep_forever())

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            if conn.state == CONNECTED:
                conn.drop("SERVER_INITIATED_DISCONNECT", codec.SERVER_SHUTTING_DOWN, will=False)
            else:
                conn.state = CLOSED
                conn.close()
        self._commit_store_ops()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._unsubscribe_bus is not None:
            self._unsubscribe_bus()
            self._unsubscribe_bus = None
        self._started = False

    def reset(self) -> None:
        """Forget every session and subscription (after the store was wiped)."""
        for conn in list(self.connections):
            conn.session = None
            conn.drop("SERVER_INITIATED_DISCONNECT", codec.ADMINISTRATIVE_ACTION, will=False)
        self.sessions.clear()
        self.offline.clear()
        self.scopes.clear()
        self._store_ops.clear()

    def _load_sessions(self) -> None:
        with self.store.transaction(*BROKER_SCOPE, write=False) as tx:
            stored = load_sessions(tx)
        now = self.clock.now()
        expired = [s for s in stored if s.expires_at is not None and s.expires_at <= now]
        if expired:
            with self.store.transaction(*BROKER_SCOPE) as tx:
                for s in expired:
                    delete_session(tx, s)
        for s in stored:
            if s in expired:
                continue
            self.sessions[s.key] = s
            self.offline.add(s)
            scope = self._scope(s.account, s.region)
            for topic_filter, options in s.subscriptions.items():
                scope.trie.add(topic_filter, s, options)
        if stored:
            log.info("restored %d MQTT sessions (%d expired)", len(stored) - len(expired), len(expired))

    # output batching -----------------------------------------------------------
    def dirty(self, conn: Connection) -> None:
        self._dirty.append(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def flush_soon(self) -> None:
        if not self._flush_scheduled and self.loop is not None:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._store_ops:
            self._commit_store_ops()  # durable before any PUBACK leaves
        dirty = self._dirty
        if not dirty:
            return
        self._dirty = []
        for conn in dirty:
            out = conn.out
            if out:
                t = conn.transport
                if t is not None:
                    t.write(out[0] if len(out) == 1 else b"".join(out))
                out.clear()

    def _commit_store_ops(self) -> None:
        ops, self._store_ops = self._store_ops, []
        if not ops:
            return
        try:
            with self.store.transaction(*BROKER_SCOPE) as tx:
                for op in ops:
                    op(tx)
        except Exception:
            log.exception("could not store %d queued MQTT messages", len(ops))

    # authorization ---------------------------------------------------------------
    def authorize(self, identity, action: str, resource: str) -> bool:
        if self._allow_all:
            return True
        try:
            return bool(self._authorize(identity, action, resource))
        except Exception:
            log.exception("authorize(%s, %s) failed", action, resource)
            return False

    def invalidate_authorization(self) -> None:
        """Forget cached publish/receive decisions (call when policies change)."""
        for conn in self.connections:
            conn.pub_cache.clear()
        for session in self.sessions.values():
            session.receive_cache.clear()

    def _can_receive(self, session: Session, topic: str) -> bool:
        cache = session.receive_cache
        ok = cache.get(topic)
        if ok is None:
            identity = session.identity
            if identity is None:  # restored offline session: checked again when it reconnects
                return True
            ok = self.authorize(identity, auth.RECEIVE, auth.arn(identity, "topic", topic))
            if len(cache) >= 1024:
                cache.clear()
            cache[topic] = ok
        return ok

    # sessions ---------------------------------------------------------------------
    def _scope(self, account: str, region: str) -> _Scope:
        scope = self.scopes.get((account, region))
        if scope is None:
            scope = self.scopes[(account, region)] = _Scope()
        return scope

    def open_session(self, conn: Connection, identity, client_id: str, clean_start: bool,
                     expiry: int) -> tuple[Session, bool]:
        key = (identity.account, identity.region, client_id)
        old = self.sessions.get(key)
        if old is not None and old.conn is not None:  # duplicate client id: the old connection goes
            old.conn.drop("DUPLICATE_CLIENTID", codec.SESSION_TAKEN_OVER, "Another connection uses this client id.")
            old = self.sessions.get(key)
        if old is not None and clean_start:
            self._discard(old)
            old = None
        if old is None:
            session, present = Session(identity.account, identity.region, client_id), False
            self.sessions[key] = session
        else:
            session, present = old, True
            self.offline.discard(session)
            session.will = session.will_due = None
        session.expiry_interval = expiry
        session.conn = conn
        session.identity = identity
        session.version = conn.version
        session.expires_at = None
        session.receive_cache.clear()
        conn.session = session
        if session.persistent or session.stored:
            self._save(session)
        return session, present

    def _save(self, session: Session) -> None:
        now = self.clock.now()
        with self.store.transaction(*BROKER_SCOPE) as tx:
            if session.persistent:
                save_session(tx, session, now)
                session.stored = True
            elif session.stored:
                delete_session(tx, session)
                session.stored = False
                session.queued = 0

    def _discard(self, session: Session) -> None:
        scope = self.scopes.get((session.account, session.region))
        if scope is not None and session.subscriptions:
            for topic_filter in session.subscriptions:
                scope.trie.remove(topic_filter, session)
            scope.cache.clear()
        if self.sessions.get(session.key) is session:
            del self.sessions[session.key]
        self.offline.discard(session)
        if session.stored:
            self._commit_store_ops()
            with self.store.transaction(*BROKER_SCOPE) as tx:
                delete_session(tx, session)
            session.stored = False

    def connected(self, conn: Connection, session: Session) -> None:
        self._lifecycle_presence(conn, session, "connected")
        if session.queued:
            self._commit_store_ops()
            with self.store.transaction(*BROKER_SCOPE) as tx:
                queued = take_queued(tx, session)
            session.queued = 0
            now = self.clock.now()
            for msg, packet_id in queued:
                if msg.expired(now) or not self._can_receive(session, msg.topic):
                    continue
                self._send_qos1(session, conn, msg, msg.retain, packet_id)

    def connection_ended(self, conn: Connection) -> None:
        session = conn.session
        if session is None:
            return
        conn.session = None
        self._lifecycle_presence(conn, session, "disconnected")
        if conn.will is not None and conn.send_will:
            if conn.will_delay and session.persistent:
                session.will = conn.will
                session.will_due = self.clock.now() + min(conn.will_delay, session.expiry_interval)
            else:
                self._publish_will(conn.identity, conn.will)
        if session.conn is conn:
            self._detach(session)

    def _detach(self, session: Session) -> None:
        session.conn = None
        if not session.persistent:
            self._discard(session)
            return
        now = self.clock.now()
        session.expires_at = now + session.expiry_interval
        inflight = list(session.inflight.items())
        pending = list(session.pending)
        session.inflight.clear()
        session.pending.clear()
        session.queued += len(inflight) + len(pending)
        self._commit_store_ops()
        with self.store.transaction(*BROKER_SCOPE) as tx:
            for pid, (msg, retain) in inflight:
                queue_message(tx, session, msg, 1, retain, pid)
            for msg, retain in pending:
                queue_message(tx, session, msg, 1, retain)
            save_session(tx, session, now)
        session.stored = True
        self.offline.add(session)

    def _publish_will(self, identity, will: Message) -> None:
        topic = will.topic
        kind = auth.reserved_kind(topic)
        if kind == "forbidden" or not self.authorize(identity, auth.PUBLISH, auth.arn(identity, "topic", topic)):
            return
        if kind == "device":
            self._reserved(identity, topic, will.payload, will.props or {})
            return
        if will.retain and self.authorize(identity, auth.RETAIN_PUBLISH, auth.arn(identity, "topic", topic)):
            self.retain(identity.account, identity.region, will)
        self.route(identity.account, identity.region, will)

    def disconnect_client(self, account: str, region: str, client_id: str, clean_session: bool = False,
                          prevent_will: bool = False) -> bool:
        """Server-side disconnect (the DeleteConnection API): False if the client is not connected."""
        session = self.sessions.get((account, region, client_id))
        if session is None or session.conn is None:
            return False
        if clean_session:
            session.expiry_interval = 0
        session.conn.drop("API_INITIATED_DISCONNECT", codec.ADMINISTRATIVE_ACTION, will=not prevent_will)
        return True

    def is_connected(self, account: str, region: str, client_id: str) -> bool:
        session = self.sessions.get((account, region, client_id))
        return session is not None and session.conn is not None

    # subscriptions ---------------------------------------------------------------
    def subscribe(self, conn: Connection, packet: codec.Subscribe) -> None:
        session, identity, limits, v5 = conn.session, conn.identity, self.limits, conn.v5
        if "subscription_identifier" in packet.properties:
            conn.drop("CLIENT_ERROR", codec.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
                      "Subscription identifiers are not supported.")
            return
        scope = self._scope(identity.account, identity.region)
        too_many = len(packet.subscriptions) > limits.subscriptions_per_request
        codes, granted, retained_for = [], [], []
        for topic_filter, opts in packet.subscriptions:
            if too_many:
                codes.append(codec.QUOTA_EXCEEDED if v5 else codec.V3_SUBACK_FAILURE)
                continue
            try:
                group, _ = validate_topic_filter(topic_filter, limits.topic_max_bytes, limits.topic_max_slashes)
            except TopicError:
                codes.append(codec.TOPIC_FILTER_INVALID if v5 else codec.V3_SUBACK_FAILURE)
                continue
            if group is not None and opts.no_local:
                conn.drop("CLIENT_ERROR", codec.PROTOCOL_ERROR, "No Local on a shared subscription.")
                return
            if not self.authorize(identity, auth.SUBSCRIBE, auth.arn(identity, "topicfilter", topic_filter)):
                codes.append(codec.NOT_AUTHORIZED if v5 else codec.V3_SUBACK_FAILURE)
                continue
            existed = topic_filter in session.subscriptions
            if not existed and len(session.subscriptions) >= limits.subscriptions_per_connection:
                codes.append(codec.QUOTA_EXCEEDED if v5 else codec.V3_SUBACK_FAILURE)
                continue
            if opts.qos > 1:  # AWS IoT grants QoS 1 for a QoS 2 request
                opts = opts._replace(qos=1)
            session.subscriptions[topic_filter] = opts
            scope.trie.add(topic_filter, session, opts)
            codes.append(opts.qos)
            granted.append(topic_filter)
            if group is None and (opts.retain_handling == 0 or (opts.retain_handling == 1 and not existed)):
                retained_for.append((topic_filter, opts))
        if granted:
            scope.cache.clear()
            if session.persistent:
                self._save(session)
        conn.push(codec.encode(codec.Suback(packet.packet_id, codes), conn.version))
        if retained_for:
            self._send_retained(session, conn, retained_for)
        if granted:
            self._lifecycle_subscription(conn, session, "subscribed", granted)

    def _send_retained(self, session: Session, conn: Connection, filters) -> None:
        now = self.clock.now()
        with self.store.transaction(session.account, session.region, write=False) as tx:
            found = [(opts, msg) for topic_filter, opts in filters for msg in matching(tx, topic_filter, now)]
        for opts, msg in found:
            if not self._can_receive(session, msg.topic):
                continue
            qos = min(msg.qos, opts.qos)
            if qos:
                self._send_qos1(session, conn, msg, True)
            else:
                conn.push(msg.encode(conn.v5, 0, None, True, False, now))

    def unsubscribe(self, conn: Connection, packet: codec.Unsubscribe) -> None:
        session = conn.session
        scope = self._scope(session.account, session.region)
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
            if session.persistent:
                self._save(session)
        conn.push(codec.encode(codec.Unsuback(packet.packet_id, codes), conn.version))
        if removed:
            self._lifecycle_subscription(conn, session, "unsubscribed", removed)

    # routing ---------------------------------------------------------------------
    def route(self, account: str, region: str, msg: Message, to_bus: bool = True) -> None:
        scope = self.scopes.get((account, region))
        if scope is not None:
            hit = scope.cache.get(msg.topic)
            if hit is None:
                hit = scope.lookup(msg.topic)
            subs, groups = hit
            deliver = self._deliver
            for session, opts in subs:
                deliver(session, opts, msg)
            for group in groups:
                picked = group.pick(_online) or group.pick()
                if picked is not None:
                    deliver(picked[0], picked[1], msg)
        if to_bus:
            self._echo = msg.payload
            try:
                self.bus.publish(account, region, msg.topic, msg.payload)
            finally:
                self._echo = None

    def _deliver(self, session: Session, opts, msg: Message) -> None:
        if opts[1] and msg.origin is session:  # No Local
            return
        if not self._allow_all and not self._can_receive(session, msg.topic):
            return
        qos = msg.qos if msg.qos < opts[0] else opts[0]
        retain = msg.retain and opts[2]  # Retain As Published
        conn = session.conn
        if conn is None:
            if qos and session.persistent:
                self._enqueue(session, msg, retain)
            return
        if conn.state != CONNECTED:
            return
        now = 0.0
        if msg.expires_at is not None:
            now = self.clock.now()
            if now >= msg.expires_at:
                return
        if qos:
            self._send_qos1(session, conn, msg, retain)
            return
        if conn.v5:
            data = msg.v5_qos0(now) if not retain else msg.encode(True, 0, None, True, False, now)
            if conn.max_out_packet is not None and len(data) > conn.max_out_packet:
                return
        else:
            data = (msg.raw3 or msg.v3_qos0()) if not retain else msg.encode(False, 0, None, True, False, now)
        if conn.paused_writing and not self._congested(conn):
            return
        out = conn.out
        if not out:
            self.dirty(conn)
        out.append(data)
        if len(out) >= _OUT_BATCH_MAX:
            t = conn.transport
            if t is not None:
                t.write(b"".join(out))
            out.clear()

    def _congested(self, conn: Connection) -> bool:
        """Back-pressure: the publisher feeding a stalled subscriber stops reading. False: drop this QoS 0."""
        pub = self.publisher
        if pub is not None and pub is not conn and pub.blocked_by is None:
            pub.blocked_by = conn
            if conn.waiters is None:
                conn.waiters = []
            conn.waiters.append(pub)
        t = conn.transport
        return t is not None and t.get_write_buffer_size() < _QOS0_DROP_BUFFER

    def _send_qos1(self, session: Session, conn: Connection, msg: Message, retain: bool,
                   packet_id: int | None = None) -> None:
        inflight = session.inflight
        if len(inflight) >= conn.send_window:
            if len(session.pending) < self.limits.pending_max:
                session.pending.append((msg, retain))
            return
        if packet_id is None or packet_id in inflight:
            dup, packet_id = False, session.next_packet_id()
        else:
            dup = True
        inflight[packet_id] = (msg, retain)
        now = self.clock.now() if msg.expires_at is not None else 0.0
        data = msg.encode(conn.v5, 1, packet_id, retain, dup, now)
        if conn.paused_writing:
            self._congested(conn)
        conn.push(data)

    def acked(self, conn: Connection, packet_id: int) -> None:
        session = conn.session
        if session is None or session.inflight.pop(packet_id, None) is None:
            return
        pending = session.pending
        now = self.clock.now() if pending else 0.0
        while pending and len(session.inflight) < conn.send_window:
            msg, retain = pending.popleft()
            if not msg.expired(now):
                self._send_qos1(session, conn, msg, retain)

    def _enqueue(self, session: Session, msg: Message, retain: bool) -> None:
        if session.queued >= self.limits.queued_max:
            return  # AWS drops messages past the queued-messages quota
        session.queued += 1
        self._store_ops.append(lambda tx: queue_message(tx, session, msg, 1, retain))
        self.flush_soon()

    def retain(self, account: str, region: str, msg: Message, quiet: bool = True) -> bool:
        """Store or delete a topic's retained message; False if the account's quota is reached."""
        try:
            with self.store.transaction(account, region) as tx:
                put_retained(tx, msg, self.clock.now(), self.limits.retained_topics_max)
        except RetainedQuotaExceeded:
            if not quiet:
                raise
            return False
        return True

    def reserved_publish(self, conn: Connection, topic: str, payload: bytes, qos: int, props: dict) -> bool:
        return self._reserved(conn.identity, topic, payload, props, qos)

    def publish_reserved(self, identity, topic: str, payload: bytes, props: dict, qos: int = 0) -> bool:
        """A publish on a reserved topic on behalf of `identity` (HTTP Publish): served by
        the reserved-topic handler exactly as if the device had published it over MQTT."""
        return self._reserved(identity, topic, payload, props, qos)

    def deliver_to(self, session: Session, options, msg: Message) -> None:
        """Deliver one message to one session only (replies meant for the requester)."""
        self._deliver(session, options, msg)

    def _reserved(self, identity, topic: str, payload: bytes, props: dict, qos: int = 0) -> bool:
        handler = self.reserved_topic_handler
        if handler is None:
            return False  # nothing serves this reserved topic: refused like an unknown one
        try:
            accepted = handler(identity, topic, payload, props)
        except Exception:
            log.exception("reserved topic handler failed for %s", topic)
            return False
        if not accepted:
            return False
        if not auth.is_basic_ingest(topic):  # Basic Ingest reaches its rule only
            msg = Message.from_properties(topic, payload, qos, False, props, self.clock.now())
            self.route(identity.account, identity.region, msg)
        return True

    def publish(self, account: str, region: str, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                properties: dict | None = None, source=None) -> None:
        """Publish from outside MQTT (HTTP Publish, services). Raises TopicError for a bad topic,
        RetainedQuotaExceeded when a new retained topic is over the account's quota."""
        if self.loop is not None and threading.get_ident() != self._thread:
            self.loop.call_soon_threadsafe(self.publish, account, region, topic, payload, qos, retain,
                                           properties, source)
            return
        if source is None:  # HTTP Publish: the same topic rules as a device
            validate_topic_name(topic, self.limits.topic_max_bytes, self.limits.topic_max_slashes)
        elif not topic or "+" in topic or "#" in topic:
            raise TopicError(f"Invalid topic name {topic!r}.", codec.TOPIC_NAME_INVALID)
        if qos not in (0, 1):
            raise ValueError("QoS must be 0 or 1")
        now = self.clock.now()
        msg = Message.from_properties(topic, bytes(payload), qos, bool(retain), properties, now)
        if retain:
            self.retain(account, region, msg, quiet=False)
        self.route(account, region, msg, to_bus=source != "bus")
        self.flush_soon()

    def _on_bus(self, account: str, region: str, topic: str, payload: bytes) -> None:
        if payload is self._echo:
            return  # our own message coming back
        try:
            self.publish(account, region, topic, payload, 1, source="bus")
        except (TopicError, ValueError):
            log.warning("bus event on an invalid topic %r not delivered over MQTT", topic)

    # lifecycle events ---------------------------------------------------------------
    def _lifecycle(self, account: str, region: str, topic: str, body: dict) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.route(account, region, Message(topic, payload, 1))

    def _lifecycle_presence(self, conn: Connection, session: Session, event: str) -> None:
        client_id = session.client_id
        if "#" in client_id or "+" in client_id:
            return  # AWS: such client ids get no lifecycle events
        key = session.key
        if event == "connected":
            self._versions[key] = version = self._versions.get(key, -1) + 1
        else:
            version = self._versions.get(key, 0)
        body = {
            "clientId": client_id,
            "timestamp": int(self.clock.now() * 1000),
            "eventType": event,
            "sessionIdentifier": session.session_id,
            "principalIdentifier": conn.identity.principal,
        }
        if event == "disconnected":
            body["clientInitiatedDisconnect"] = conn.client_initiated
            body["disconnectReason"] = conn.disconnect_reason
        body["ipAddress"] = conn.remote
        body["versionNumber"] = version
        if conn.identity.thing_name and conn.identity.attributes.get("exclusiveThing"):
            body["thingName"] = conn.identity.thing_name
        self._lifecycle(session.account, session.region, f"$aws/events/presence/{event}/{client_id}", body)

    def _lifecycle_subscription(self, conn: Connection, session: Session, event: str, topics: list[str]) -> None:
        client_id = session.client_id
        if "#" in client_id or "+" in client_id:
            return
        body = {
            "clientId": client_id,
            "timestamp": int(self.clock.now() * 1000),
            "eventType": event,
            "sessionIdentifier": session.session_id,
            "principalIdentifier": conn.identity.principal,
            "topics": topics,
        }
        self._lifecycle(session.account, session.region, f"$aws/events/subscriptions/{event}/{client_id}", body)

    # timers ---------------------------------------------------------------------
    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.limits.sweep_interval)
            try:
                self.sweep()
            except Exception:
                log.exception("broker sweep failed")

    def sweep(self) -> None:
        """Keep-alive timeouts (real time), delayed wills and session expiry (broker clock)."""
        t = self.loop.time()
        for conn in list(self.connections):
            idle = t - conn.last_rx
            if conn.state == CONNECTED:
                if conn.keep_alive and not conn.reading_paused and idle > 1.5 * conn.keep_alive:
                    conn.drop("MQTT_KEEP_ALIVE_TIMEOUT", codec.KEEP_ALIVE_TIMEOUT)
            elif conn.state != CLOSED and idle > 20:  # never sent a CONNECT
                conn.state = CLOSED
                conn.close()
        now = self.clock.now()
        for session in list(self.offline):
            if session.will is not None and (now >= session.will_due or now >= session.expires_at):
                will, session.will = session.will, None
                self._publish_will(session.identity, will)
            if session.expires_at is not None and now >= session.expires_at:
                self._discard(session)
        self.flush_soon()


def _online(session: Session) -> bool:
    conn = session.conn
    return conn is not None and conn.state == CONNECTED
