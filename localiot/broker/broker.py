"""The Broker: listeners, sessions, routing and delivery, wills, on the server's event loop.

    broker = Broker(app.runtime, app.store)            # allow-all, default account
    port = await broker.start_tcp("127.0.0.1", 1883)
    broker.publish(account, region, "a/b", b"{}")      # services (rules republish)
    decision = broker.admit(identity, topic, retain)   # a device's publish (admission.py)

Every message also goes to the in-process bus (rules engine, Defender), and events that services
put on the bus reach MQTT subscribers of the same account and region. Store transactions are
`persistence`'s, subscriptions `subscriptions`', lifecycle events `lifecycle`'s.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from functools import partial

from localiot import iotlogs, metering
from localiot.broker import auth, codec, durable, flow, queued, watchers
from localiot.broker.admission import OK, RESERVED, Decision, admit
from localiot.broker.connection import CONNECTED, CLOSED, Connection
from localiot.broker.lifecycle import LifecycleEvents
from localiot.broker.message import Message
from localiot.broker.occasional import NO_OUTPUT
from localiot.broker.reserved import ReservedPublish, ReservedTopics
from localiot.broker.persistence import BrokerStore
from localiot.broker.retained import RetainedQuotaExceeded
from localiot.broker.sessions import NO_ENTRIES, Limits, Session, SessionTable
from localiot.broker.subscriptions import Scope, wanted
from localiot.topics import TopicError, validate_topic_name

log = logging.getLogger("localiot.broker")

_QOS0_DROP_BUFFER = 64 * 1024 * 1024  # a stalled subscriber stops getting QoS 0 past this backlog
# One loop iteration can read megabytes from many publishers (libuv reads a
# socket up to 32 times per wake-up): write a connection's batch early once it
# holds this many packets, so its transport's flow control sees it in time.
_OUT_BATCH_MAX = 1024


class Broker:
    def __init__(self, runtime, store, authenticate=None, authorize=None, *,
                 reserved_topics: ReservedTopics | None = None, limits: Limits | None = None):
        self.runtime = runtime
        self.store = store
        self.persistence = BrokerStore(store, runtime.clock, runtime)
        self.persistence.start_commit = lambda: durable.start_commit(self)
        self.lifecycle = LifecycleEvents(self)
        self.clock = runtime.clock
        self.bus = runtime.bus
        self.limits = limits or Limits()
        default_authn, default_authz = auth.allow_all(runtime.config.default_account, runtime.config.default_region)
        self.authenticate = authenticate or default_authn
        self._authorize = authorize or default_authz
        self._allow_all = bool(getattr(self._authorize, "allows_everything", False))
        # the `$` topics devices may publish to and the doors serving them (none: every `$` topic is refused)
        self.reserved_topics = reserved_topics or ReservedTopics()
        self.max_packet = self.limits.payload_max + 65536 + 16
        self.log = log
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self.connections: set[Connection] = set()
        self.sessions = SessionTable()  # (account, region, client id) -> Session
        self.offline: set[Session] = set()
        self.connecting: dict[tuple[str, str, str], Connection] = {}  # CONNACK waiting for the session's write
        self.scopes: dict[tuple[str, str], Scope] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._dirty: list[Connection] = []
        self._flush_scheduled = False
        self._unsubscribe_bus = None
        self._sweeper: asyncio.Task | None = None
        self._started = False
        self.fabric = getattr(runtime, "fabric", None)  # between nodes (localiot.fabric); None: one process
        self.watched: dict = {}  # (account, region, client id) -> watchers of its messages (watchers.py)
        self.resets = 0  # times the state was wiped (caches keyed on stored state compare it)

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
        from localiot.listeners.plain_transport import serve  # plain TCP on a lean transport of our own

        server = await serve(lambda: Connection(self, name), host, port, ssl_context, backlog=1024)
        self._servers.append(server)
        bound = server.sockets[0].getsockname()[1]
        log.info("MQTT %s listener on %s:%s", name, host, bound)
        return bound

    def _begin(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.rx_clock = self.loop.time()  # connections' last_rx: one float they share, renewed by each sweep
        self._thread = threading.get_ident()
        self._started = True
        if self.fabric is not None:
            self.fabric.attach(self)
        self._load_sessions()
        self._unsubscribe_bus = self.bus.subscribe(self._on_bus, origin=self, wants=partial(wanted, self))
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
        await self.persistence.drain()
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
        self.resets += 1
        for conn in list(self.connections):
            conn.session = None
            conn.drop("SERVER_INITIATED_DISCONNECT", codec.ADMINISTRATIVE_ACTION, will=False)
        self.sessions.clear()
        self.offline.clear()
        self.connecting.clear()
        self.scopes.clear()
        self.bus.wants_changed()  # (the bus keeps wanted() answers)
        self.lifecycle.forget()
        self.persistence.forget()
        if self.fabric is not None:
            self.fabric.forget()

    def _load_sessions(self) -> None:
        fabric = self.fabric
        for s in self.persistence.restore() if fabric is None else fabric.sessions.restorable(self.persistence):
            self.sessions[s.key] = s
            self.offline.add(s)
            scope = self.scope(s.account, s.region)
            for topic_filter, options in s.subscriptions.items():
                scope.trie.add(topic_filter, s, options)
        self.bus.wants_changed()  # (the restored filters: no answer kept before them stands)

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
        durable.flush(self)

    # authorization ---------------------------------------------------------------
    def authorize(self, identity, action: str, resource: str) -> bool:
        if self._allow_all:
            return True
        try:
            return bool(self._authorize(identity, action, resource))
        except Exception:
            log.exception("authorize(%s, %s) failed", action, resource)
            return False

    def admit(self, identity, topic: str, retain: bool = False, *, will: bool = False,
              trusted: bool = False) -> Decision:
        """The publish admission (localiot.broker.admission) with this broker's table, policies and limits."""
        return admit(identity, topic, retain, reserved=self.reserved_topics, limits=self.limits, will=will,
                     authorize=None if trusted or self._allow_all else self.authorize)

    def invalidate_authorization(self) -> None:
        """Forget cached publish/receive decisions (call when policies change)."""
        for conn in self.connections:
            conn.pub_cache.clear()
        for session in self.sessions.values():
            session.receive_cache.clear()

    def can_receive(self, session: Session, topic: str) -> bool:
        cache = session.receive_cache
        ok = cache.get(topic)
        if ok is None:
            identity = session.identity
            if identity is None:  # restored offline session: checked again when it reconnects
                return True
            ok = self.authorize(identity, auth.RECEIVE, auth.arn(identity, "topic", topic))
            iotlogs.receive_checked(session, topic, ok)
            if cache is NO_ENTRIES:
                cache = session.receive_cache = {}
            elif len(cache) >= 1024:
                cache.clear()
            cache[topic] = ok
        return ok

    # sessions ---------------------------------------------------------------------
    def scope(self, account: str, region: str) -> Scope:
        scope = self.scopes.get((account, region))
        if scope is None:
            fabric = self.fabric  # with one, the scope's trie tells it which filters this node holds
            scope = self.scopes[(account, region)] = Scope() if fabric is None else fabric.scope(account, region)
        return scope

    def open_session(self, conn: Connection, identity, client_id: str, clean_start: bool,
                     expiry: int, save: bool = True) -> tuple[Session, bool]:
        """The session of a connection accepted now; a persistent one is stored (unless not
        `save`: the connection stores it itself, off the loop)."""
        key = (identity.account, identity.region, client_id)
        waiting = self.connecting.pop(key, None)
        if waiting is not None and waiting is not conn:  # an older CONNECT still storing its session
            waiting.drop("DUPLICATE_CLIENTID", codec.SESSION_TAKEN_OVER, "Another connection uses this client id.")
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
        if save and (session.persistent or session.stored):
            self.persistence.save(session)
        return session, present

    def hold_for_save(self, conn: Connection, session: Session) -> None:
        """A CONNECT whose session is stored off the loop (PostgreSQL) before its CONNACK: until
        then the session counts as away (what is routed to it is queued for it)."""
        session.conn = conn.session = None
        self.offline.add(session)
        self.connecting[session.key] = conn

    def saved_for(self, conn: Connection, session: Session, done) -> bool:
        """The session's write for `conn` ended: True when `conn` goes on to its CONNACK, holding
        the session; False when another connection took the client id meanwhile or `conn` went."""
        failed = done.cancelled() or done.exception() is not None
        if failed:
            log.error("could not store the session of client %s: %r", session.client_id,
                      None if done.cancelled() else done.exception())
        key = session.key
        mine = self.connecting.get(key) is conn
        if mine:
            del self.connecting[key]
        if failed or not mine or conn.state == CLOSED or session.conn is not None \
                or self.sessions.get(key) is not session:
            if conn.state != CLOSED:  # refused (the store failed), or taken over meanwhile
                conn.refuse(codec.SERVER_UNAVAILABLE) if failed else conn.drop("DUPLICATE_CLIENTID")
            if mine and session.conn is None and self.sessions.get(key) is session:
                session.expires_at = self.clock.now() + session.expiry_interval  # away, as if it had connected
                if not session.persistent:
                    self._discard(session)
            return False
        self.offline.discard(session)
        session.conn, conn.session = conn, session
        return True

    def _discard(self, session: Session) -> None:
        scope = self.scopes.get((session.account, session.region))
        if scope is not None and session.subscriptions:
            for topic_filter in session.subscriptions:
                scope.trie.remove(topic_filter, session)
            scope.cache.clear()
            self.bus.wants_changed()  # (the bus keeps wanted() answers)
        if self.sessions.get(session.key) is session:
            del self.sessions[session.key]
        self.offline.discard(session)
        self.persistence.delete(session)

    def connected(self, conn: Connection, session: Session) -> None:
        self.lifecycle.presence(conn, session, "connected")
        if session.queued:
            queued.deliver(self, conn, session)

    def connection_ended(self, conn: Connection) -> None:
        if conn.meter is not None:
            metering.ended(conn)
        session = conn.session
        if session is None:
            return
        conn.session = None
        iotlogs.disconnected(conn)
        self.lifecycle.presence(conn, session, "disconnected")
        if conn.more.will is not None and conn.more.send_will:
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
        session.expires_at = self.clock.now() + session.expiry_interval
        room = max(0, self.limits.queued_max - session.queued)  # AWS's queued-messages quota per session
        held = [(pid, *entry) for pid, entry in session.inflight.items()] + [(None, *e) for e in session.pending]
        session.inflight.clear()
        session.pending.clear()
        kept, dropped = held[:room], [entry[3] for entry in held[room:] if entry[3] is not None]
        self.persistence.park(session, [e for e in kept if e[0] is not None],
                              [e[1:] for e in kept if e[0] is None], dropped)
        self.offline.add(session)

    def _publish_will(self, identity, will: Message) -> None:
        decision = self.admit(identity, will.topic, will.retain, will=True)
        if decision.status == RESERVED:
            self.serve_reserved(identity, decision, will.payload, will.props or {})
            return
        if decision.status != OK:
            return
        if decision.retain:
            self.retain(identity.account, identity.region, will)
        self.route(identity.account, identity.region, will)

    def disconnect_client(self, account: str, region: str, client_id: str, clean_session: bool = False,
                          prevent_will: bool = False) -> bool:
        """Server-side disconnect (the DeleteConnection API): False if the client is not connected."""
        session = self.sessions.get((account, region, client_id))
        if session is None or session.conn is None:  # connected to another node, perhaps
            fabric = self.fabric
            return fabric is not None and fabric.directory.disconnect(account, region, client_id, clean_session,
                                                                      prevent_will)
        if clean_session:
            session.expiry_interval = 0
        session.conn.drop("API_INITIATED_DISCONNECT", codec.ADMINISTRATIVE_ACTION, will=not prevent_will)
        return True

    def is_connected(self, account: str, region: str, client_id: str) -> bool:
        session = self.sessions.get((account, region, client_id))
        if session is not None and session.conn is not None:
            return True
        return self.fabric is not None and self.fabric.directory.is_connected(account, region, client_id)

    # routing ---------------------------------------------------------------------
    def route(self, account: str, region: str, msg: Message, to_bus: bool = True) -> None:
        fabric = self.fabric
        scope = self.scopes.get((account, region))
        if scope is not None:
            hit = scope.cache.get(msg.topic)
            if hit is None:
                hit = scope.lookup(msg.topic)
            subs, groups = hit
            deliver = self._deliver
            for session, opts in subs:
                deliver(session, opts, msg)
            if fabric is None:  # with a fabric, NATS picks the node of each shared group
                for group in groups:
                    picked = group.pick(_online) or group.pick()
                    if picked is not None:
                        deliver(picked[0], picked[1], msg)
        if fabric is not None:
            fabric.forward(account, region, msg)  # subscribers on the other nodes
        if to_bus:
            origin = msg.origin  # a device's publish says who sent it (the rules' clientid(), principal())
            self.bus.publish(account, region, msg.topic, msg.payload, self,  # origin: not handed back
                             None if origin is None else origin.publisher)

    def _deliver(self, session: Session, opts, msg: Message) -> None:
        if opts[1] and msg.origin is session:  # No Local
            return
        if not self._allow_all and not self.can_receive(session, msg.topic):
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
        if conn.meter is not None:
            conn.meter.received(msg.topic)
        self.watched and watchers.tell(self, conn, "received", msg.topic, msg.payload)  # Fleet Hub's device page
        now = 0.0
        if msg.expires_at is not None:
            now = self.clock.now()
            if now >= msg.expires_at:
                return
        if qos:
            self.send_qos1(session, conn, msg, retain)
            return
        if conn.v5:
            data = msg.v5_qos0(now) if not retain else msg.encode(True, 0, None, True, False, now)
            limit = conn.more.max_out_packet
            if limit is not None and len(data) > limit:
                return
        else:
            data = (msg.raw3 or msg.v3_qos0()) if not retain else msg.encode(False, 0, None, True, False, now)
        if conn.paused_writing:
            flow.hold(self, conn, msg)
            t = conn.transport
            if t is None or t.get_write_buffer_size() >= _QOS0_DROP_BUFFER:
                return  # a stalled subscriber stops getting QoS 0 past this backlog
        out = conn.out
        if not out:
            conn.out = [data]
            self.dirty(conn)
            return
        out.append(data)
        if len(out) >= _OUT_BATCH_MAX and self.persistence.durable_now():  # its PUBACKs may be among them
            t = conn.transport
            if t is not None:
                t.write(b"".join(out))
            conn.out = NO_OUTPUT

    def send_qos1(self, session: Session, conn: Connection, msg: Message, retain: bool,
                   packet_id: int | None = None, name: str | None = None) -> None:
        """Send (or queue for a window slot) one QoS 1 message; a persistent session's is
        stored (`name`) until acknowledged."""
        if name is None and session.expiry_interval:
            name = self.persistence.hold(session, msg, retain)
        inflight = session.inflight
        if len(inflight) >= conn.send_window:  # the client's Receive Maximum: wait for a slot, never dropped
            pending = session.pending
            pending.append((msg, retain, name))
            if len(pending) >= self.limits.pending_high:
                flow.backlog(self, conn, len(pending))
                flow.hold(self, conn, msg)
            return
        if packet_id is None or packet_id in inflight:
            dup, packet_id = False, session.next_packet_id()
        else:
            dup = True
        if inflight is NO_ENTRIES:
            inflight = session.inflight = {}
        inflight[packet_id] = (msg, retain, name)
        now = self.clock.now() if msg.expires_at is not None else 0.0
        data = msg.encode(conn.v5, 1, packet_id, retain, dup, now)
        if conn.paused_writing:
            flow.hold(self, conn, msg)
        conn.push(data)

    def acked(self, conn: Connection, packet_id: int) -> None:
        session = conn.session
        entry = session.inflight.pop(packet_id, None) if session is not None else None
        if entry is None:
            return
        if entry[2] is not None:
            self.persistence.release(session, entry[2])
            self.flush_soon()
        pending = session.pending
        now = self.clock.now() if pending else 0.0
        while pending and len(session.inflight) < conn.send_window:
            msg, retain, name = pending.popleft()
            if not msg.expired(now):
                self.send_qos1(session, conn, msg, retain, None, name)
            elif name is not None:
                self.persistence.release(session, name)
        flow.progress(self, conn, len(pending))

    def _enqueue(self, session: Session, msg: Message, retain: bool) -> None:
        if session.queued >= self.limits.queued_max:
            return  # AWS drops messages past the queued-messages quota
        self.persistence.queue(session, msg, retain)
        self.flush_soon()

    def retain(self, account: str, region: str, msg: Message, quiet: bool = True) -> bool:
        """Store or delete a topic's retained message; False if the account's quota is reached.
        PostgreSQL, on the loop (a will): stored on a worker, in the account's order."""
        if quiet and self.persistence.workers is not None and threading.get_ident() == self._thread:
            self.persistence.retain_off_loop(account, region, msg, self.limits.retained_topics_max)
            return True
        try:
            self.persistence.retain(account, region, msg, self.limits.retained_topics_max)
        except RetainedQuotaExceeded:
            if not quiet:
                raise
            return False
        return True

    def deliver_to(self, session: Session, options, msg: Message) -> None:
        """Deliver one message to one session only (replies meant for the requester)."""
        self._deliver(session, options, msg)

    def serve_reserved(self, identity, decision: Decision, payload: bytes, properties: dict, qos: int = 0,
                       connection: Connection | None = None) -> bool | asyncio.Future:
        """Hand an admitted publish on a reserved topic to the route serving it, with the
        connection that published it (None for a will or an HTTP publish). True: served;
        False: refused; an asyncio future when the door's unit of work still runs
        (PostgreSQL: on a worker), which fails if the door refuses (callers that answer
        the publisher wait for it: localiot.broker.special, listeners.https_publish)."""
        route = decision.route
        if route is None or route.serve is None:
            return False  # reserved for devices, but nothing serves it yet: refused like an unknown topic
        request = ReservedPublish(identity, decision.topic, payload, properties, qos, decision.parts, connection)
        try:
            accepted = route.serve(request)
        except Exception:
            log.exception("the door of %s failed", decision.topic)
            return False
        if not accepted:
            return False
        if route.forward:  # subscribers see the request too (not Basic Ingest's)
            msg = Message.from_properties(decision.topic, payload, qos, False, properties, self.clock.now())
            self.route(identity.account, identity.region, msg)
        return request.pending if request.pending is not None else True

    def publish(self, account: str, region: str, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                properties: dict | None = None, source=None, stored: bool = False) -> None:
        """Publish from outside MQTT (HTTP Publish, services). Raises TopicError for a bad topic,
        RetainedQuotaExceeded when a new retained topic is over the account's quota. `stored`:
        the retained message is stored already. From a worker thread (PostgreSQL: the API's
        Publish) the retained message is stored there, then routed on the loop."""
        here = self.loop is None or threading.get_ident() == self._thread
        if not here and not (retain and not stored and self.persistence.workers is not None):
            self.loop.call_soon_threadsafe(self.publish, account, region, topic, payload, qos, retain,
                                           properties, source, stored)
            return
        if source is None:  # HTTP Publish: the same topic rules as a device
            validate_topic_name(topic, self.limits.topic_max_bytes, self.limits.topic_max_slashes)
        elif not topic or "+" in topic or "#" in topic:
            raise TopicError(f"Invalid topic name {topic!r}.", codec.TOPIC_NAME_INVALID)
        if qos not in (0, 1):
            raise ValueError("QoS must be 0 or 1")
        now = self.clock.now()
        msg = Message.from_properties(topic, bytes(payload), qos, bool(retain), properties, now)
        if retain and not stored:
            self.retain(account, region, msg, quiet=False)
        if not here:
            self.loop.call_soon_threadsafe(self.publish, account, region, topic, payload, qos, retain,
                                           properties, source, True)
            return
        self.route(account, region, msg, to_bus=source != "bus")
        self.flush_soon()

    def _on_bus(self, account: str, region: str, topic: str, payload: bytes) -> None:
        # (the bus does not hand the broker its own messages back: they carry it as their origin)
        try:
            self.publish(account, region, topic, payload, 1, source="bus")
        except (TopicError, ValueError):
            log.warning("bus event on an invalid topic %r not delivered over MQTT", topic)

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
        margin, self.rx_clock = self.limits.sweep_interval, t  # a last_rx is the sweep before, up to that early
        for conn in list(self.connections):
            idle = t - conn.last_rx - margin
            if conn.state == CONNECTED:
                if conn.keep_alive and not conn.more.reading_paused and idle > 1.5 * conn.keep_alive:
                    conn.drop("MQTT_KEEP_ALIVE_TIMEOUT", codec.KEEP_ALIVE_TIMEOUT)
            elif conn.state != CLOSED and idle > 20:  # never sent a CONNECT
                conn.state = CLOSED
                conn.close()
        now = self.clock.now()
        flow.sweep_stuck(self, now)
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
