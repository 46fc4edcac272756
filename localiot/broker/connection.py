"""One client connection: an asyncio Protocol that frames packets and runs
each packet type's handler. Routing, sessions and events live in the Broker.

Outgoing bytes are collected in `out` and written once per loop iteration by
the broker's flush (a CONNACK that waits for no commit goes at once); an
incoming PUBLISH is decoded in place, without building a packet object.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import uuid

from localiot import iotlogs, metering
from localiot.broker import auth, codec, durable, flow, occasional, retaining, special, subscriptions, watchers
from localiot.broker.admission import Decision
from localiot.broker.codec import MalformedPacket, decode_connect_plain, decode_publish, decode_varint
from localiot.broker.message import Message
from localiot.broker.occasional import NO_OUTPUT
from localiot.broker.sessions import check_client_id, negotiate_keep_alive, negotiate_session_expiry
from localiot.broker.states import AUTHENTICATING, CLOSED, CONNECTED, NEW  # noqa: F401 (broker.py imports them from here)
from localiot.topics import TopicError, validate_topic_name

_PUB_CACHE_MAX = 1024  # admission decisions cached per connection, by topic bytes
_YIELD_EVERY = 256  # PUBLISH packets handled per read before the loop gets a turn
_KEEP_WHOLE = 4096  # bytes left unread from which the read's buffer is kept as it is, not copied
_CONNACK_V3 = (b"\x20\x02\x00\x00", b"\x20\x02\x01\x00")  # accepted, by session present
_NONE: dict = {}  # shared by connections that have no cached decisions yet (never written to)
_DISCONNECT = codec.Disconnect(0, {})  # a DISCONNECT without a body (never written to)


class Connection(asyncio.Protocol):
    # Slots, and the dicts a connection may never need shared until it does: an idle
    # connection costs a few hundred bytes of Python objects besides its transport.
    # The fields most connections never change are on `more` (localiot.broker.occasional).
    __slots__ = ("broker", "listener", "transport", "version", "v5", "state", "session", "identity", "client_id",
                 "out", "keep_alive", "last_rx", "remote", "send_window", "pub_cache",
                 "paused_writing", "blocked_by", "_pending", "meter", "more", "_iotlogs_who",
                 "_iotlogs")

    def __init__(self, broker, listener: str):
        self.broker = broker
        self.listener = listener
        self.transport = None
        self.version = codec.MQTT311
        self.v5 = False
        self.state = NEW
        self.session = None
        self.identity = None
        self.client_id = None
        self.out: list[bytes] | tuple = NO_OUTPUT
        self.keep_alive = 0
        self.last_rx = 0.0  # the broker's rx_clock when it last read (a float shared by many connections)
        self.remote = None
        self.send_window = broker.limits.receive_maximum
        self.pub_cache: dict[bytes, Decision] = _NONE  # made on the first PUBLISH
        self.paused_writing = False
        self.blocked_by = None  # a congested subscriber this publisher waits for (localiot.broker.flow)
        self._pending: list[bytes] | None = None  # bytes kept unread (a partial packet, or held): see `more`
        self.meter = None  # cloud-side Device Defender metrics of the thing (localiot.metering)
        self.more = occasional.ORDINARY

    # asyncio callbacks ---------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.last_rx = self.broker.rx_clock
        peer = transport.get_extra_info("peername")
        self.remote = sys.intern(peer[0]) if peer else None  # one string per client address, not per connection
        self.broker.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.broker.connections.discard(self)
        self.transport = None
        more = self.more
        if more.backlogged:
            self.backlogged = False
        if more.waiters:
            flow.release(self)
        if self.state != CLOSED:
            self.state = CLOSED
            self.broker.connection_ended(self)

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        if self.waiters:
            self.progress_at = self.broker.clock.now()
            if not self.backlogged:
                flow.release(self)

    def resume(self) -> None:
        """No longer held by a congested subscriber: read again, starting with what was kept unread."""
        if self.transport is None or self.state != CONNECTED or self.blocked_by is not None:
            return
        if self._pending:  # reading resumes once they are handled (new bytes behind them would mean a copy)
            self.broker.loop.call_soon(self._resume_pending)
        elif self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    def _resume_pending(self) -> None:
        if self.blocked_by is not None or self.state != CONNECTED:
            return
        if self._pending and self._process(*self._take()):
            return  # yielded or held again: still not reading
        if self.reading_paused and self.transport is not None and self.state == CONNECTED:
            self.reading_paused = False
            self.transport.resume_reading()

    def _take(self) -> tuple[bytes, int]:
        """The bytes kept unread: one buffer, and where they start in it."""
        more = self.more
        pending, skip = self._pending, more.skip
        self._pending = None
        if skip:
            more.skip = 0
        if len(pending) == 1:
            return pending[0], skip
        if skip:
            pending[0] = pending[0][skip:]
        return b"".join(pending), 0

    def eof_received(self):
        return False

    def data_received(self, data: bytes) -> None:
        self.last_rx = self.broker.rx_clock
        pending = self._pending
        if self.state == AUTHENTICATING or self.blocked_by is not None:  # held until the CONNECT is decided
            if pending is None:  # or the subscriber it feeds drains
                self._pending = [data]
            else:
                pending.append(data)
            return
        if pending:
            pending.append(data)
            more = occasional.of(self)
            more.have += len(data)
            if more.have < more.need:
                return
            self._process(*self._take())
            return
        self._process(data, 0)

    def _process(self, buf: bytes, pos: int) -> bool:
        """Handle the packets in buf[pos:]; keep the rest. True: reading stays paused (the
        loop gets a turn, a congested subscriber drains, a CONNECT is decided, or closed)."""
        n = len(buf)
        max_size = self.broker.max_packet
        handled = 0
        yielded = False
        try:
            while n - pos >= 2:
                first = buf[pos]
                length = buf[pos + 1]
                if length < 128:
                    start = pos + 2
                else:
                    got = decode_varint(buf, pos + 1, n)
                    if got is None:
                        break
                    length, start = got
                    if length > max_size:
                        raise MalformedPacket("packet too large", codec.PACKET_TOO_LARGE)
                end = start + length
                if end > n:
                    break
                if first & 0xF0 == 0x30 and self.state == CONNECTED:
                    if first == 0x30 and not self.v5:
                        self._publish_plain(buf, pos, start, end)
                    else:
                        self._publish(first, buf, pos, start, end)
                    handled += 1
                    if handled >= _YIELD_EVERY and end < n:  # let timers, keep-alives and API calls run
                        pos = end
                        yielded = True
                        break
                else:
                    self._packet(first, buf[start:end])
                pos = end
                if self.state == CLOSED:
                    return True
                if self.state == AUTHENTICATING or self.blocked_by is not None:
                    break  # keep the rest until the CONNECT is decided, or the subscriber drains
        except MalformedPacket as e:
            self.protocol_failure(e)
            return True
        if pos < n:
            have = n - pos
            more = occasional.of(self)
            if have < _KEEP_WHOLE:  # a partial packet: a copy of it, not the whole read
                self._pending, more.skip = [buf[pos:]], 0
            else:  # held or yielded with much left: no copy (copying the rest at every yield is quadratic)
                self._pending, more.skip = [buf], pos
            more.have = have
            need = have + 1
            if have >= 2:
                got = decode_varint(buf, pos + 1, n)
                if got is not None:
                    need = got[1] - pos + got[0]
            more.need = need
        if (self.blocked_by is not None or yielded) and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        if yielded and self.blocked_by is None:
            self.broker.loop.call_soon(self.resume)
        return yielded or self.blocked_by is not None or self.state != CONNECTED

    # output ----------------------------------------------------------------
    def push(self, data: bytes) -> None:
        out = self.out
        if out:
            out.append(data)
        else:
            self.out = [data]
            self.broker.dirty(self)

    def close(self) -> None:
        """Write what is queued, then close (no more callbacks for this session)."""
        t = self.transport
        if t is None:
            return
        data = b"".join(self.out) if self.out else b""
        self.out = NO_OUTPUT
        self.broker.persistence.after_durable(durable.write_and_close, t, data)  # a PUBACK among them: after its commit

    def send_disconnect(self, reason_code: int, reason: str | None = None) -> None:
        if self.v5 and self.state in (CONNECTED, AUTHENTICATING):
            props = {"reason_string": reason} if reason else {}
            self.push(codec.encode(codec.Disconnect(reason_code, props), codec.MQTT5))

    def drop(self, reason: str, reason_code: int = codec.UNSPECIFIED_ERROR, message: str | None = None,
             will: bool = True) -> None:
        """Server-side disconnect with an AWS disconnectReason (and a v5 DISCONNECT)."""
        if self.state == CLOSED:
            return
        self.send_disconnect(reason_code, message)
        self.disconnect_reason = reason
        self.send_will = will
        was = self.state
        self.state = CLOSED
        if was == CONNECTED:
            self.broker.connection_ended(self)
        self.close()

    def protocol_failure(self, e: MalformedPacket) -> None:
        if self.state == NEW:
            self.state = CLOSED
            self.close()
            return
        self.drop("CLIENT_ERROR", e.reason_code, str(e))

    # packets -----------------------------------------------------------------
    def _packet(self, first: int, body: bytes) -> None:
        if self.state == NEW:
            if first >> 4 != codec.CONNECT:
                raise MalformedPacket("the first packet must be CONNECT", codec.PROTOCOL_ERROR)
            connect = decode_connect_plain(body) if first == 0x10 else None
            self._connect(connect if connect is not None else codec.decode(first, body, None))
            return
        if first == 0xE0 and not body:  # the usual DISCONNECT (reason 0, no properties): nothing to decode
            self._disconnect(_DISCONNECT)
            return
        packet = codec.decode(first, body, self.version)
        t = packet.type
        if t == codec.PUBACK:
            self.broker.acked(self, packet.packet_id)
        elif t == codec.SUBSCRIBE:
            subscriptions.subscribe(self.broker, self, packet)
        elif t == codec.UNSUBSCRIBE:
            subscriptions.unsubscribe(self.broker, self, packet)
        elif t == codec.PINGREQ:
            self.push(b"\xd0\x00")
        elif t == codec.DISCONNECT:
            self._disconnect(packet)
        elif t == codec.CONNECT:
            raise MalformedPacket("second CONNECT", codec.PROTOCOL_ERROR)
        elif t == codec.PUBLISH:  # only while authenticating is over, via _process
            raise MalformedPacket("PUBLISH before CONNACK", codec.PROTOCOL_ERROR)
        else:  # QoS 2 flow, AUTH, or server-to-client packets
            raise MalformedPacket(f"unexpected {codec.PACKET_NAMES[t]}", codec.PROTOCOL_ERROR)

    def _disconnect(self, packet: codec.Disconnect) -> None:
        session = self.session
        properties = packet.properties
        interval = properties.get("session_expiry_interval") if properties else None
        if interval is not None and session is not None:
            if session.expiry_interval == 0 and interval > 0:
                raise MalformedPacket("session expiry raised from 0 at DISCONNECT", codec.PROTOCOL_ERROR)
            session.expiry_interval = min(interval, self.broker.limits.session_expiry_max)
        with_will = packet.reason_code == codec.DISCONNECT_WITH_WILL
        if self.more is occasional.ORDINARY and not with_will:
            self.more = occasional.CLIENT_GONE  # (shared: how most connections end)
        else:
            self.client_initiated = True
            self.disconnect_reason = "CLIENT_INITIATED_DISCONNECT"
            self.send_will = with_will
        self.state = CLOSED
        self.broker.connection_ended(self)
        self.close()

    # CONNECT -------------------------------------------------------------
    def refuse(self, reason_code: int, message: str | None = None) -> None:
        iotlogs.connect_refused(self, reason_code, message)
        if self.v5:
            props = {"reason_string": message} if message else {}
            self.push(codec.encode(codec.Connack(False, reason_code, props), codec.MQTT5))
        else:
            v3 = auth.Refusal(reason_code).v3_return_code
            self.push(bytes((0x20, 2, 0, v3)))
        self.state = CLOSED
        self.close()

    def _connect(self, c: codec.Connect) -> None:
        if c.protocol_level not in (codec.MQTT311, codec.MQTT5):
            self.push(bytes((0x20, 2, 0, codec.V3_BAD_VERSION)))
            self.state = CLOSED
            self.close()
            return
        self.version = c.protocol_level
        self.v5 = self.version == codec.MQTT5
        iotlogs.connecting(self, c.client_id)
        broker = self.broker
        limits = broker.limits
        client_id = c.client_id
        assigned = None
        if not client_id:
            if not self.v5 and not c.clean_start:
                return self.refuse(codec.CLIENT_IDENTIFIER_NOT_VALID, "An empty client id needs a clean session.")
            client_id = assigned = "localiot-" + uuid.uuid4().hex
        code = check_client_id(client_id, limits)
        if code is not None:
            return self.refuse(code, f"The client id is longer than {limits.client_id_max} bytes.")
        if "authentication_method" in c.properties:
            return self.refuse(codec.BAD_AUTHENTICATION_METHOD, "Enhanced authentication is not supported.")
        if c.will is not None:
            w = c.will
            try:
                validate_topic_name(w.topic, limits.topic_max_bytes, limits.topic_max_slashes)
            except TopicError as e:
                return self.refuse(codec.TOPIC_NAME_INVALID, str(e))
            if len(w.payload) > limits.payload_max:
                return self.refuse(codec.PACKET_TOO_LARGE, "The will payload is too large.")
            if w.qos == 2:
                if self.v5:
                    return self.refuse(codec.QOS_NOT_SUPPORTED, "QoS 2 is not supported.")
                w.qos = 1
        info = auth.ConnectInfo(
            client_id=client_id, username=c.username, password=c.password,
            peer_certificate=auth.peer_certificate(self.transport), listener=self.listener,
            protocol_version=self.version, remote_address=self.remote, properties=c.properties,
        )
        try:
            result = broker.authenticate(info)
        except Exception:
            broker.log.exception("authenticate failed for client %s", client_id)
            return self.refuse(codec.SERVER_UNAVAILABLE)
        if result.__class__ is not auth.Identity and inspect.isawaitable(result):  # (a custom authorizer's)
            self.state = AUTHENTICATING
            self.reading_paused = True
            self.transport.pause_reading()
            task = asyncio.ensure_future(result, loop=broker.loop)
            task.add_done_callback(lambda t: self._authenticated(c, client_id, assigned, t))
            return
        self._accept(c, client_id, assigned, result)

    def _authenticated(self, c, client_id, assigned, task) -> None:
        if self.state == CLOSED or self.transport is None:
            return
        self.state = NEW
        if task.exception() is not None:
            self.broker.log.error("authenticate failed for client %s: %r", client_id, task.exception())
            return self.refuse(codec.SERVER_UNAVAILABLE)
        self._accept(c, client_id, assigned, task.result())
        self._read_on()

    def _read_on(self) -> None:
        """Connected after an asynchronous step: read again, starting with what arrived meanwhile."""
        if self.state == CONNECTED:
            self.reading_paused = False
            self.transport.resume_reading()
            if self._pending:
                self._process(*self._take())
        self.broker.flush_soon()

    def _accept(self, c: codec.Connect, client_id: str, assigned: str | None, result) -> None:
        broker = self.broker
        limits = broker.limits
        iotlogs.connecting(self, client_id, result)
        if not isinstance(result, auth.Identity):
            refusal = result if isinstance(result, auth.Refusal) else auth.Refusal()
            return self.refuse(refusal.reason_code, refusal.message)
        identity = result
        if not broker.authorize(identity, auth.CONNECT, auth.arn(identity, "client", client_id)):
            metering.refused(broker.runtime, identity)
            return self.refuse(codec.NOT_AUTHORIZED, "Not authorized to connect with this client id.")
        self.identity = identity
        self.client_id = client_id
        self.keep_alive = negotiate_keep_alive(c.keep_alive, limits)
        expiry = negotiate_session_expiry(self.version, c.clean_start, c.properties, limits)
        if c.will is not None:
            self.will = Message.from_properties(c.will.topic, c.will.payload, c.will.qos, c.will.retain,
                                                c.will.properties, broker.clock.now(), raw3=None)
            self.will_delay = c.will.properties.get("will_delay_interval", 0)
        if self.v5:
            self.send_window = min(c.properties.get("receive_maximum", 65535), limits.receive_maximum)
            self.max_out_packet = c.properties.get("maximum_packet_size")
        workers = getattr(broker.runtime, "workers", None)  # PostgreSQL: the session's store write off the loop
        session, present = broker.open_session(self, identity, client_id, c.clean_start, expiry,
                                               save=workers is None)
        if workers is not None and (session.persistent or session.stored):
            self._save_then_welcome(workers, c, session, present, assigned)
            return
        self._welcome(c, session, present, assigned)

    def _save_then_welcome(self, workers, c, session, present: bool, assigned) -> None:
        """Store the session on a worker, then CONNACK. Meanwhile the session counts as away (what is
        routed to it is queued for it) and further packets wait unread, as during authentication."""
        broker = self.broker
        broker.hold_for_save(self, session)
        self.state = AUTHENTICATING
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

        def saved(done) -> None:
            if broker.saved_for(self, session, done):
                self.state = NEW
                self._welcome(c, session, present, assigned)
                self._read_on()

        broker.persistence.save_soon(session).add_done_callback(saved)

    def _welcome(self, c, session, present: bool, assigned) -> None:
        broker = self.broker
        limits = broker.limits
        identity = self.identity
        client_id = self.client_id
        expiry = session.expiry_interval
        props = {}
        if self.v5:
            requested = c.properties.get("session_expiry_interval", 0)
            if requested != expiry:
                props["session_expiry_interval"] = expiry
            if assigned:
                props["assigned_client_identifier"] = assigned
            if self.keep_alive != c.keep_alive:
                props["server_keep_alive"] = self.keep_alive
            props.update(receive_maximum=limits.receive_maximum, maximum_qos=1, retain_available=1,
                         topic_alias_maximum=limits.topic_alias_max, wildcard_subscription_available=1,
                         subscription_identifier_available=0, shared_subscription_available=1)
        connack = codec.encode(codec.Connack(present, 0, props), self.version) if self.v5 else _CONNACK_V3[present]
        persistence, t = broker.persistence, self.transport
        if self.out or persistence.pending or persistence.unfinished or session.queued or t is None:
            self.push(connack)  # after the commit that makes the session's state true (durable.flush)
        else:  # nothing to wait for: at once, not after the rest of the loop's batch of connections
            t.write(connack)
        self.state = CONNECTED
        self.meter = metering.connected(broker.runtime, identity, client_id, self.remote)
        iotlogs.connected(self)
        broker.connected(self, session)

    # PUBLISH (hot path) ----------------------------------------------------
    def _publish_plain(self, buf: bytes, pos: int, start: int, end: int) -> None:
        """A v3.1.1 PUBLISH at QoS 0 without retain, the hottest path: decoded here and forwarded
        as it came; anything out of the ordinary (a refusal, metering, a watcher) takes `_publish`."""
        broker = self.broker
        p = start + 2 + ((buf[start] << 8) | buf[start + 1]) if end - start >= 2 else end + 1
        if p > end or end - p > broker.limits.payload_max or self.meter is not None or broker.watched:
            self._publish(0x30, buf, pos, start, end)
            return
        tb = buf[start + 2:p]
        decision = self.pub_cache.get(tb)
        if decision is None:
            decision = self._admit(tb)
        if decision.status:
            self._publish(0x30, buf, pos, start, end)
            return
        identity = self.identity
        topic = decision.topic
        broker.route(identity.account, identity.region,
                     Message(topic, buf[p:end], 0, False, None, None, self.session, buf[pos:end]))
        iotlogs.published(self, topic)

    def _publish(self, first: int, buf: bytes, pos: int, start: int, end: int) -> None:
        v5 = self.v5
        tb, pid, props, p = decode_publish(first, buf, start, end, v5)
        qos = (first >> 1) & 3
        broker = self.broker
        raw = None
        if props is None:
            if not qos and not first & 1 and (tb or not v5):
                raw = buf[pos:end]  # forwarded as it came (v3), or reused for v5 subscribers
        else:
            alias = props.get("topic_alias")
            if alias is not None:
                if not 0 < alias <= broker.limits.topic_alias_max:
                    self.drop("CLIENT_ERROR", codec.TOPIC_ALIAS_INVALID, "Topic alias out of range.")
                    return
                more = occasional.of(self)
                if tb:
                    if more.aliases is None:
                        more.aliases = {}
                    more.aliases[alias] = tb
                else:
                    tb = more.aliases.get(alias) if more.aliases is not None else None
                    if tb is None:
                        raise MalformedPacket("unknown topic alias", codec.PROTOCOL_ERROR)
            if "subscription_identifier" in props:
                raise MalformedPacket("subscription identifier in PUBLISH", codec.PROTOCOL_ERROR)
        if qos == 2:
            if v5:
                self.drop("CLIENT_ERROR", codec.QOS_NOT_SUPPORTED, "QoS 2 is not supported.")
            else:
                self.drop("CLIENT_ERROR")
            return
        if end - p > broker.limits.payload_max:
            iotlogs.publish_refused(self, tb, f"The payload exceeds {broker.limits.payload_max // 1024} KB.")
            self.drop("CLIENT_ERROR", codec.PACKET_TOO_LARGE, "The payload exceeds 128 KB.")
            return
        decision = self.pub_cache.get(tb)
        if decision is None:
            decision = self._admit(tb)
        if self.meter is not None:
            self.meter.sent(decision.topic, end - p)
        if broker.watched:
            watchers.tell(broker, self, "sent", decision.topic, buf[p:end])
        retain = first & 1
        if decision.status or retain:
            if retain:  # iot:RetainPublish too: asked per message, never cached
                decision = broker.admit(self.identity, decision.topic, True)
            if decision.status:
                special.publish(self, decision, qos, pid, buf[p:end], props)
                return
        msg = Message(decision.topic, buf[p:end], qos, bool(retain), None, None, self.session, None)
        if raw is not None:
            if v5:
                msg.raw5 = raw
            else:
                msg.raw3 = raw
        if props is not None:
            msg.props = {k: props[k] for k in ("payload_format_indicator", "content_type", "response_topic",
                                               "correlation_data", "user_property") if k in props} or None
            interval = props.get("message_expiry_interval")
            if interval is not None:
                msg.expires_at = broker.clock.now() + interval
        identity = self.identity
        if retain and broker.persistence.workers is not None:  # PostgreSQL: stored on a worker first
            return retaining.publish(self, msg, decision.topic, qos, pid)
        if retain and not broker.retain(identity.account, identity.region, msg):
            if qos:
                self._puback(pid, codec.QUOTA_EXCEEDED)
            return
        broker.route(identity.account, identity.region, msg)
        iotlogs.published(self, decision.topic)
        if qos:
            fabric = broker.fabric  # several nodes: the PUBACK waits until the others made it safe
            if fabric is None or not fabric.confirm.after(self._confirmed, pid):
                self.push(b"\x40\x02" + pid.to_bytes(2, "big"))

    def _confirmed(self, pid: int, safe: bool = True) -> None:
        """Every node holding a matching subscriber made the message safe (localiot.fabric.confirm),
        or could not be made to: no PUBACK, the client sends it again on its next connection."""
        if self.state == CONNECTED and safe:
            self.push(b"\x40\x02" + pid.to_bytes(2, "big"))
        elif self.state == CONNECTED:
            self.drop("SERVER_INITIATED_DISCONNECT", codec.SERVER_UNAVAILABLE, "A node did not store it.")

    def _puback(self, pid: int, code: int) -> None:
        if self.v5:
            self.push(bytes((0x40, 3)) + pid.to_bytes(2, "big") + bytes((code,)))
        else:
            self.push(b"\x40\x02" + pid.to_bytes(2, "big"))

    def _admit(self, tb: bytes) -> Decision:
        """The broker's admission of a topic for this connection, cached by the topic's bytes."""
        topic = codec.decode_utf8(tb)
        if not topic:
            raise MalformedPacket("empty topic name", codec.PROTOCOL_ERROR)
        if "+" in topic or "#" in topic:
            raise MalformedPacket("wildcard in a topic name", codec.TOPIC_NAME_INVALID)
        decision = self.broker.admit(self.identity, topic)
        cache = self.pub_cache
        if cache is _NONE:
            cache = self.pub_cache = {}
        elif len(cache) >= _PUB_CACHE_MAX:
            cache.clear()
        cache[tb] = decision
        return decision


for _name in ("will", "will_delay", "max_out_packet", "reading_paused", "waiters", "backlogged", "progress_at",
              "disconnect_reason", "client_initiated", "send_will"):  # fields to the broker, flow and logs
    setattr(Connection, _name, occasional.field(_name))
