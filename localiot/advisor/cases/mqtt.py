"""MQTT test cases: connect, publish, subscribe, their retries, PUBACK for
QoS 1, keep-alive and persistent sessions.

Happy cases look at everything the device did since its run started (a
device connects and subscribes once, usually before the case that checks
it); scripted cases act first and then wait for what the device does next.
"""

from __future__ import annotations

from localiot.advisor import catalog
from localiot.advisor import journal as j
from localiot.advisor.cases.base import CaseRun
from localiot.advisor.interposer import DROP

CASES = {}


def case(test_id: str):
    def register(fn):
        CASES[test_id] = fn
        return fn
    return register


def _reserved(topic: str) -> bool:
    return topic.startswith("$")


@case("MQTT_Connect")
async def connect(c: CaseRun) -> None:
    event = await c.wait(lambda e: e.kind == j.CONNACK and e.get("code") == 0,
                         "the device to send a CONNECT that is accepted", since=0)
    first = c.journal.find(0, lambda e: e.kind == j.CONNECT and e.conn == event.conn)
    if first is not None:
        c.log(f"CONNECT from client id {first['client_id']!r} (MQTT level {first['version']}, "
              f"keep-alive {first['keep_alive']} s, clean start {first['clean_start']}) was accepted.")


@case("MQTT_Publish")
async def publish(c: CaseRun) -> None:
    topic = c.config.get("TOPIC_FOR_PUBLISH_VALIDATION") or None
    payload = c.config.get("PAYLOAD_FOR_PUBLISH_VALIDATION")
    payload = None if payload in (None, "") else str(payload).encode()

    def wanted(e):
        if e.kind != j.PUBLISH or (topic is None and _reserved(e["topic"])):
            return False
        return (topic is None or e["topic"] == topic) and (payload is None or e["payload"] == payload)

    what = f"a PUBLISH on {topic!r}" if topic else "a PUBLISH"
    event = await c.wait(wanted, what + (" with the configured payload" if payload is not None else ""), since=0)
    c.log(f"The device published {len(event['payload'])} bytes on {event['topic']!r} with QoS {event['qos']}.")
    if event["qos"] != 0:
        c.log("(AWS's case is named for QoS 0; a QoS 1 publish is accepted too.)")


@case("MQTT_Subscribe")
async def subscribe(c: CaseRun) -> None:
    topics = catalog.topic_list(c.config, "TOPIC_LIST_FOR_SUBSCRIPTION_VALIDATION_ID")
    if not topics:
        event = await c.wait(lambda e: e.kind == j.SUBSCRIBE, "a SUBSCRIBE", since=0)
        c.log(f"The device subscribed to {event['filters']}.")
        return
    for topic in topics:
        event = await c.wait(lambda e, t=topic: e.kind == j.SUBSCRIBE and t in e["filters"],
                             f"a SUBSCRIBE to {topic!r}", since=0)
        c.log(f"The device subscribed to {topic!r} (packet id {event['packet_id']}).")


@case("MQTT_Subscribe_Retry_No_Suback")
async def subscribe_retry(c: CaseRun) -> None:
    topics = set(catalog.topic_list(c.config, "TOPIC_LIST_FOR_SUBSCRIPTION_VALIDATION_ID"))
    held: dict[str, tuple[int, int]] = {}  # filter -> (connection, packet id) of the unanswered SUBSCRIBE
    retried = []

    def script(conn, kind, data):
        if kind != j.SUBSCRIBE:
            return None
        filters = [f for f in data["filters"] if (f in topics if topics else not _reserved(f))]
        if not filters:
            return None
        again = [f for f in filters if f in held]
        if again:
            retried.append(data)
            return None  # the retry goes through: the broker answers it
        for f in filters:
            held[f] = (conn.number, data["packet_id"])
        return DROP  # no SUBACK for the first attempt

    c.run.on_incoming = script
    c.run.hang_up_all()
    c.log("The endpoint now leaves the first SUBSCRIBE to each topic unanswered; the device was disconnected "
          "so that it connects and subscribes again.")
    event = await c.wait(lambda e: e.kind == "held" and e.get("packet") == j.SUBSCRIBE,
                         "a SUBSCRIBE (the endpoint will not answer it)", since=c.mark)
    first = c.journal.find(c.mark, lambda e: e.kind == j.SUBSCRIBE and e.conn == event.conn)
    c.log(f"Held SUBSCRIBE {first['filters']} with packet id {first['packet_id']}; no SUBACK sent.")
    retry = await c.wait(lambda e: e.kind == j.SUBSCRIBE and e.t > event.t
                         and set(e["filters"]) & set(first["filters"]), "the device to retry the SUBSCRIBE")
    c.log(f"The device retried {retry['filters']} after {retry.t - event.t:.3f} s with packet id {retry['packet_id']}.")
    if retry.conn == event.conn and retry["packet_id"] != first["packet_id"]:
        c.fail(f"The retried SUBSCRIBE has packet id {retry['packet_id']}, not the original {first['packet_id']}.")


async def _deliver_and_expect_puback(c: CaseRun, topic: str, payload: bytes) -> None:
    """Publish `payload` with QoS 1 to the device's subscription and wait for its PUBACK."""
    conn = await c.until(lambda: c.live_subscriber(topic, 1), f"the device to subscribe to {topic!r} with QoS 1")
    mark = c.journal.mark()
    c.broker.publish(c.run.account, c.run.region, topic, payload, 1, source="device-advisor")
    c.log(f"Published {len(payload)} bytes with QoS 1 on {topic!r}.")
    out = await c.wait(lambda e: e.kind == j.PUBLISH_OUT and e["topic"] == topic and e["qos"] == 1
                       and e["payload"] == payload, "the message to reach the device", since=mark)
    await c.wait(lambda e: e.kind == j.PUBACK and e.conn == out.conn and e["packet_id"] == out["packet_id"],
                 f"the device's PUBACK for packet id {out['packet_id']}", since=mark)
    c.log(f"The device acknowledged packet id {out['packet_id']} on connection {conn.number}.")


@case("MQTT_Client_Puback_QoS1")
async def client_puback(c: CaseRun) -> None:
    topic = c.config.get("TRIGGER_TOPIC")
    if not topic:
        event = await c.wait(lambda e: e.kind == j.SUBSCRIBE and any(
            q >= 1 and not _reserved(f) and "+" not in f and "#" not in f for f, q in zip(e["filters"], e["qos"])),
            "a QoS 1 SUBSCRIBE to a topic", since=0)
        topic = next(f for f, q in zip(event["filters"], event["qos"]) if q >= 1 and not _reserved(f))
    size = c.config.get("PAYLOAD_SIZE")
    if size not in (None, ""):
        payload = b"x" * (int(size) * 1024)
    else:
        payload = str(c.config.get("PAYLOAD_FOR_PUBLISH_VALIDATION") or "Device Advisor QoS 1 test").encode()
    await _deliver_and_expect_puback(c, topic, payload)


@case("MQTT_Publish_Retry_No_Puback")
async def publish_retry(c: CaseRun) -> None:
    topic = c.config.get("TOPIC_FOR_PUBLISH_VALIDATION") or None
    held = {}

    def script(conn, kind, data):
        if kind == j.PUBACK_OUT and (conn.number, data["packet_id"]) in held and not held[(conn.number, data["packet_id"])]:
            held[(conn.number, data["packet_id"])] = True
            return False  # the first PUBACK is never sent
        return None

    def incoming(conn, kind, data):
        if not held and kind == j.PUBLISH and data["qos"] == 1 and not data["dup"] and (
                data["topic"] == topic if topic else not _reserved(data["topic"])):
            held.setdefault((conn.number, data["packet_id"]), False)

    c.run.on_outgoing, c.run.on_incoming = script, incoming
    c.run.hang_up_all()
    c.log("The endpoint now holds back the PUBACK of the device's first QoS 1 PUBLISH; the device was "
          "disconnected so that it connects and publishes again.")
    first = await c.wait(lambda e: e.kind == "held-back" and e.get("packet") == j.PUBACK_OUT,
                         "a QoS 1 PUBLISH (its PUBACK will be held back)", since=c.mark)
    c.log(f"Held back the PUBACK for packet id {first['packet_id']}.")
    again = await c.wait(lambda e: (e.kind == j.PUBLISH and e.conn == first.conn
                                    and e["packet_id"] == first["packet_id"]) or (e.kind == j.CLOSED
                                                                                  and e.conn == first.conn),
                         "the device to publish the message again")
    if again.kind == j.CLOSED:
        c.fail("The device disconnected before it published the message again.")
    if not again["dup"]:
        c.warn("The republished message does not have the DUP flag set.")
    c.log(f"The device republished packet id {again['packet_id']} after {again.t - first.t:.3f} s.")


@case("MQTT_No_Ack_PingResp")
async def no_pingresp(c: CaseRun) -> None:
    conn = await c.connection()
    c.run.on_outgoing = lambda cn, kind, data: False if kind in (j.PINGRESP, j.PUBACK_OUT, j.SUBACK) else None
    keep_alive = conn.keep_alive
    c.log(f"No PINGRESP, PUBACK or SUBACK is sent from now on (keep-alive {keep_alive} s).")
    ping = await c.wait(lambda e: e.kind == j.PINGREQ and e.conn == conn.number, "a PINGREQ", since=c.mark)
    closed = await c.wait(lambda e: e.kind in (j.CLOSED, j.DISCONNECT) and e.conn == conn.number,
                          "the device to close the connection", since=c.mark)
    c.log(f"The device closed the connection {closed.t - ping.t:.3f} s after its unanswered PINGREQ.")


async def _subscribed_persistently(c: CaseRun, topic: str):
    def persistent_subscribe(e):
        if e.kind != j.SUBSCRIBE or topic not in e["filters"]:
            return False
        connect = c.journal.find(0, lambda x: x.kind == j.CONNECT and x.conn == e.conn)
        return connect is not None and not connect["clean_start"]

    event = await c.wait(persistent_subscribe, f"a SUBSCRIBE to {topic!r} on a persistent session", since=0)
    conn = next((x for x in c.run.connected() if x.number == event.conn), None)
    if conn is None:
        conn = await c.connection()
    return event, conn


@case("MQTT_Persistent_Session_Happy_Case")
async def persistent_session(c: CaseRun) -> None:
    topic = c.config["TRIGGER_TOPIC"]
    payload = str(c.config.get("PAYLOAD") or "Device Advisor persistent session message").encode()
    _, conn = await _subscribed_persistently(c, topic)
    conn.hung_up = True
    conn.hang_up()
    mark = c.journal.mark()
    c.broker.publish(c.run.account, c.run.region, topic, payload, 1, source="device-advisor")
    c.log(f"Disconnected the device and stored a QoS 1 message on {topic!r} for its session.")
    connack = await c.wait(lambda e: e.kind == j.CONNACK and e.get("code") == 0, "the device to reconnect",
                           since=mark)
    if not connack["session_present"]:
        c.fail("The device reconnected with a clean session: the persistent session was not resumed.")
    out = await c.wait(lambda e: e.kind == j.PUBLISH_OUT and e["topic"] == topic and e["payload"] == payload,
                       "the stored message to be delivered", since=mark)
    await c.wait(lambda e: e.kind == j.PUBACK and e.conn == out.conn and e["packet_id"] == out["packet_id"],
                 "the device's PUBACK for the stored message", since=mark)
    if c.subscribed(topic, mark) is not None:
        c.fail(f"The device subscribed to {topic!r} again although its session was resumed.")
    c.log("The device resumed its session and acknowledged the stored message without subscribing again.")


@case("MQTT_Expired_Persistent_Session")
async def expired_session(c: CaseRun) -> None:
    topic = c.config["TRIGGER_TOPIC"]
    event, conn = await _subscribed_persistently(c, topic)
    connect = c.journal.find(0, lambda x: x.kind == j.CONNECT and x.conn == event.conn)
    conn.hung_up = True
    c.broker.disconnect_client(c.run.account, c.run.region, connect["client_id"], clean_session=True,
                               prevent_will=True)
    mark = c.journal.mark()
    c.log("Disconnected the device and ended its persistent session.")
    connack = await c.wait(lambda e: e.kind == j.CONNACK and e.get("code") == 0, "the device to reconnect",
                           since=mark)
    c.log(f"The device reconnected; CONNACK session present: {connack['session_present']}.")
    await c.wait(lambda e: e.kind == j.SUBSCRIBE and topic in e["filters"],
                 f"the device to subscribe to {topic!r} again", since=mark)
    c.log("The device subscribed again after its session expired.")
