"""Shadow document semantics through the service functions (the door every
other door calls), on a real SQLite store; plus the pure functions and the
service's options for the MQTT door."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest

from localiot.bus import Bus
from localiot.clock import Clock
from localiot.config import Config
from localiot.runtime import Runtime
from localiot.services.context import RequestContext
from localiot.shadows import document, service
from localiot.shadows.document import ShadowError
from localiot.store import SQLiteStore
from shadow_cases import CASES, THING, Outcome, T, run_case


class ServiceDoor:
    """Calls the service functions as a door does: one transaction per request,
    topics read from the events the call queued."""

    def __init__(self):
        self.store = SQLiteStore(":memory:")
        self.clock = Clock()
        bus = Bus()
        bus.subscribe(lambda *message: None)  # a listener to every topic: the service builds each event
        self.runtime = Runtime(Config.from_env(environ={}), self.clock, bus)

    def set_time(self, epoch):
        self.clock.set(epoch)

    @contextmanager
    def ctx(self):
        with self.store.transaction("123456789012", "us-east-1") as tx:
            yield RequestContext("123456789012", "us-east-1", tx, self.runtime, "iot-data")

    def call(self, thing, shadow, fn, *args, **kwargs) -> Outcome:
        out = Outcome()
        with self.ctx() as ctx:
            try:
                out.reply = fn(ctx, thing, shadow, *args, **kwargs)
            except ShadowError as error:
                out.error = error.document()
            prefix = service.topic_prefix(thing, shadow) + "/"
            for topic, payload in ctx.events:
                out.published[topic.removeprefix(prefix)] = json.loads(payload)
        return out

    def update(self, thing, shadow, payload):
        return self.call(thing, shadow, service.update_shadow, payload)

    def get(self, thing, shadow):
        return self.call(thing, shadow, service.get_shadow)

    def delete(self, thing, shadow):
        return self.call(thing, shadow, service.delete_shadow)


@pytest.fixture
def door():
    door = ServiceDoor()
    door.set_time(T)
    yield door
    door.store.close()


def test_the_table_has_enough_cases():
    assert len(CASES) >= 40
    assert len({c["name"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case, door):
    run_case(case, door)


# the options the MQTT door uses -------------------------------------------------
def test_publish_rejected_queues_the_error_instead_of_raising(door):
    out = door.call(THING, None, service.update_shadow, b'{"clientToken":"c1"}', publish_rejected=True)
    assert out.reply is None and out.error is None
    assert out.published == {"update/rejected": {"code": 400, "message": "Missing required node: state",
                                                 "clientToken": "c1"}}
    out = door.call(THING, "cfg", service.get_shadow, "tok", publish_rejected=True)
    assert out.published == {"get/rejected": {"code": 404, "message": "No shadow exists with name: 'cfg'",
                                              "clientToken": "tok"}}
    out = door.call(THING, None, service.delete_shadow, publish_rejected=True)
    assert out.published == {"delete/rejected": {"code": 404, "message": f"No shadow exists with name: '{THING}'"}}


def test_get_accepted_is_published_only_when_asked(door):
    door.update(THING, None, b'{"state":{"reported":{"a":1}}}')
    plain = door.get(THING, None)
    assert plain.published == {}
    asked = door.call(THING, None, service.get_shadow, "t-9", publish_accepted=True)
    assert asked.reply["clientToken"] == "t-9"
    assert asked.published == {"get/accepted": asked.reply}


def test_delete_echoes_a_client_token(door):
    door.update(THING, None, b'{"state":{"reported":{"a":1}}}')
    out = door.call(THING, None, service.delete_shadow, "del-1")
    assert out.reply == {"version": 1, "timestamp": T, "clientToken": "del-1"}
    assert out.published == {"delete/accepted": out.reply}


def test_topics_of_classic_and_named_shadows():
    assert service.topic_prefix("t1") == "$aws/things/t1/shadow"
    assert service.topic_prefix("t1", "cfg") == "$aws/things/t1/shadow/name/cfg"


@pytest.mark.parametrize("thing,shadow", [("bad name", None), ("x" * 129, None), ("t", "a/b"), ("t", "x" * 65),
                                          ("t", "")])
def test_names_are_validated_for_callers_outside_the_http_model(door, thing, shadow):
    out = door.update(thing, shadow, b'{"state":{"reported":{"a":1}}}')
    assert out.error["code"] == 400
    assert out.published == {}


def test_client_token_of_get_and_delete_requests():
    assert document.client_token_from_payload(b"") is None
    assert document.client_token_from_payload(b'{"clientToken":"abc"}') == "abc"
    assert document.client_token_from_payload(b"{}") is None
    with pytest.raises(ShadowError) as info:
        document.client_token_from_payload(b"{")
    assert (info.value.code, info.value.message) == (400, "Payload contains invalid json")
    with pytest.raises(ShadowError) as info:
        document.client_token_from_payload(json.dumps({"clientToken": "x" * 65}).encode())
    assert info.value.message == "Invalid clientToken"


def test_failed_update_writes_nothing(door):
    door.update(THING, None, b'{"state":{"desired":{"a":1}}}')
    before = door.store.db.execute("SELECT doc FROM objects").fetchall()
    door.update(THING, None, b'{"state":{"desired":{"a":"' + b"x" * 9000 + b'"}}}')
    assert door.store.db.execute("SELECT doc FROM objects").fetchall() == before


# listing -------------------------------------------------------------------------
def test_list_named_shadows_pages_in_name_order_without_classic_or_deleted(door):
    for name in ["c", "a", "b", "d", "e"]:
        door.update(THING, name, b'{"state":{"reported":{"v":1}}}')
    door.update(THING, None, b'{"state":{"reported":{"v":1}}}')
    door.update("other", "zz", b'{"state":{"reported":{"v":1}}}')
    door.delete(THING, "d")
    seen, token = [], None
    with door.ctx() as ctx:
        while True:
            page = service.list_named_shadows(ctx, THING, token, 2)
            assert page["timestamp"] == T
            assert len(page["results"]) <= 2
            seen += page["results"]
            token = page.get("nextToken")
            if token is None:
                break
        assert seen == ["a", "b", "c", "e"]
        assert service.list_named_shadows(ctx, "nothing-here") == {"results": [], "timestamp": T}
        with pytest.raises(ShadowError):
            service.list_named_shadows(ctx, THING, "garbage", 2)
        first = service.list_named_shadows(ctx, THING, None, 1)
        with pytest.raises(ShadowError):  # a token belongs to its thing
            service.list_named_shadows(ctx, "other", first["nextToken"], 1)


# pure functions --------------------------------------------------------------------
@pytest.mark.parametrize("a,b,equal", [
    (1, 1.0, True), (True, 1, False), (False, 0, False), (None, None, True), ("1", 1, False),
    ([1, [2]], [1, [2.0]], True), ([1, 2], [2, 1], False), ({"a": 1}, {"a": 1, "b": None}, False),
    ({"a": [True]}, {"a": [True]}, True),
])
def test_json_equal(a, b, equal):
    assert document.json_equal(a, b) is equal


def test_delta_of():
    assert document.delta_of(None, {"a": 1}) is None
    assert document.delta_of({"a": 1}, None) == {"a": 1}
    assert document.delta_of({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}, "z": 0}) == {"a": {"c": 2}}
    assert document.delta_of({"a": {"b": 1}}, {"a": {"b": 1}}) is None


def test_apply_update_is_pure():
    stored = {"state": {"desired": {"a": {"b": 1}}}, "metadata": {"desired": {"a": {"b": {"timestamp": 1}}}},
              "version": 4}
    snapshot = json.dumps(stored)
    result = document.update(stored, b'{"state":{"desired":{"a":{"b":null,"c":[1]}}}}', 10)
    assert json.dumps(stored) == snapshot
    assert result.shadow == {"state": {"desired": {"a": {"c": [1]}}},
                             "metadata": {"desired": {"a": {"c": [{"timestamp": 10}]}}}, "version": 5}
    assert result.documents["previous"]["version"] == 4


def test_deeply_nested_payload_is_rejected_not_crashing():
    payload = b'{"state":{"desired":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}}"
    with pytest.raises(ShadowError) as info:
        document.parse_update(payload)
    assert info.value.code == 400
    assert info.value.message == "JSON contains too many levels of nesting; maximum is 6"


# events only for topics someone could receive ------------------------------------
class Listener:
    """A bus subscriber that would do something only with the topics `wanted` accepts."""

    def __init__(self, bus: Bus, wanted):
        self.heard: list[str] = []
        bus.subscribe(lambda account, region, topic, payload: self.heard.append(topic),
                      wants=lambda account, region, topic: wanted(topic))


def test_an_update_queues_only_the_events_someone_wants():
    everyone = ServiceDoor()
    everyone.set_time(T)
    wanting = ServiceDoor()
    wanting.set_time(T)
    wanting.runtime.bus = Bus()
    Listener(wanting.runtime.bus, lambda topic: topic.endswith("/update/documents"))
    nobody = ServiceDoor()
    nobody.set_time(T)
    nobody.runtime.bus = Bus()
    requests = [b'{"state":{"desired":{"a":1}},"clientToken":"c"}', b'{"state":{"reported":{"a":2}}}']
    for payload in requests:
        full, some, none = (door.call(THING, None, service.update_shadow, payload, as_bytes=True)
                            for door in (everyone, wanting, nobody))
        assert full.reply == some.reply == none.reply  # the reply is built whoever listens
        assert some.published == {"update/documents": full.published["update/documents"]}
        assert none.published == {}
    assert set(full.published) == {"update/accepted", "update/delta", "update/documents"}
    out = nobody.call(THING, None, service.delete_shadow)
    assert out.reply["version"] == 2 and out.published == {}
    for door in (everyone, wanting, nobody):
        door.store.close()


def test_the_bus_asks_every_subscriber_within_its_prefix():
    bus = Bus()
    assert not bus.wants("a", "r", "x/y")
    stop = bus.subscribe(lambda *m: None, prefix="$aws/events/")  # no `wants`: every topic of its prefix
    assert bus.wants("a", "r", "$aws/events/presence/connected/c1") and not bus.wants("a", "r", "x/y")
    asked = []
    bus.subscribe(lambda *m: None, wants=lambda account, region, topic: asked.append(topic) or topic == "x/y")
    assert bus.wants("a", "r", "x/y") and not bus.wants("a", "r", "x/z")
    assert asked == ["x/y", "x/z"]
    stop()
    assert not bus.wants("a", "r", "$aws/events/presence/connected/c1")


def test_the_bus_keeps_its_answers_until_a_subscriber_says_they_changed():
    bus = Bus()
    wanted, asked = set(), []
    bus.subscribe(lambda *m: None, wants=lambda account, region, topic: asked.append(topic) or (account, topic) in wanted)
    assert not bus.wants("a", "r", "x/y") and not bus.wants("a", "r", "x/y") and asked == ["x/y"]
    wanted.add(("a", "x/y"))
    assert not bus.wants("a", "r", "x/y")  # the subscriber did not say its answer changed
    bus.wants_changed()
    assert bus.wants("a", "r", "x/y") and bus.wants("a", "r", "x/y") and asked == ["x/y", "x/y"]
    assert not bus.wants("b", "r", "x/y")  # answers are per account and region
    stop = bus.subscribe(lambda *m: None)  # a subscriber joining (or leaving) is a change too
    assert bus.wants("b", "r", "x/y")
    stop()
    assert not bus.wants("b", "r", "x/y")


def test_a_failing_wants_counts_as_wanting():
    bus = Bus()

    def broken(account, region, topic):
        raise KeyError(topic)

    bus.subscribe(lambda *m: None, wants=broken)
    assert bus.wants("a", "r", "x/y")
