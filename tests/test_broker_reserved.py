"""The reserved-topic table built from the doors, its topic templates, and the
one publish admission path (`admit`) every publisher goes through."""

from __future__ import annotations

import pytest

from localiot.broker import Identity, auth
from localiot.broker.admission import DENIED, INVALID, OK, RESERVED, admit
from localiot.broker.reserved import ReservedTopics, Route, TopicTemplate
from localiot.bus import Bus
from localiot.doors import UNSERVED
from localiot.testing import ACCOUNT, REGION


# templates ----------------------------------------------------------------------------
def test_template_parts():
    t = TopicTemplate("$aws/things/{thing}/shadow/name/{shadow}/{operation:get|update|delete}")
    assert t.match("$aws/things/lamp/shadow/name/main/update") == {"thing": "lamp", "shadow": "main",
                                                                    "operation": "update"}
    assert t.match("$aws/things/lamp/shadow/name/main/update/accepted") is None
    assert t.match("$aws/things/lamp/shadow/name/main/patch") is None
    assert t.match("$aws/things//shadow/name/main/get") is None  # a part is never empty
    rest = TopicTemplate("$aws/rules/{rule}/{topic+}")
    assert rest.match("$aws/rules/r/a/b/c") == {"rule": "r", "topic": "a/b/c"}
    assert rest.match("$aws/rules/r/") == {"rule": "r", "topic": ""}
    assert rest.match("$aws/rules/r") is None


def test_a_constrained_part_stays_in_its_level():
    t = TopicTemplate("a/{x:.+}/c")
    assert t.match("a/b/c") == {"x": "b"}
    assert t.match("a/b/b/c") is None


@pytest.mark.parametrize("bad", ["a/{x+}/b", "a/b{x}", "a/{x}c"])
def test_bad_templates(bad):
    with pytest.raises(ValueError):
        TopicTemplate(bad)


def test_the_most_specific_template_wins_whatever_the_order():
    def named(name):
        return lambda publish: name

    routes = [Route(TopicTemplate("$aws/things/{thing}/{rest+}"), named("rest")),
              Route(TopicTemplate("$aws/things/{thing}/jobs/{op}"), named("part")),
              Route(TopicTemplate("$aws/things/{thing}/jobs/{op:get}"), named("constrained")),
              Route(TopicTemplate("$aws/things/{thing}/jobs/get-all"), named("literal"))]
    for order in (routes, routes[::-1]):
        table = ReservedTopics(order)
        assert table.find("$aws/things/t/jobs/get-all")[0].serve(None) == "literal"
        assert table.find("$aws/things/t/jobs/get")[0].serve(None) == "constrained"
        assert table.find("$aws/things/t/jobs/update")[0].serve(None) == "part"
        assert table.find("$aws/things/t/other/x")[0].serve(None) == "rest"
    with pytest.raises(ValueError):
        ReservedTopics([routes[0], Route(TopicTemplate("$aws/things/{thing}/{rest+}"))])


# the table the doors build -----------------------------------------------------------
@pytest.fixture
def table(localiot_server):
    return localiot_server.app.runtime.broker.reserved_topics


@pytest.mark.parametrize("topic, door", [
    ("$aws/things/lamp/shadow/update", "shadow_request"),
    ("$aws/things/lamp/shadow/name/main/get", "shadow_request"),
    ("$aws/things/lamp/jobs/get", "jobs_request"),
    ("$aws/things/lamp/jobs/j1/namespace-ns/update", "jobs_request"),
    ("$aws/commands/things/lamp/executions/e1/response/json", "command_response"),
    ("$aws/certificates/create/json", "certificates_door"),
    ("$aws/certificates/create-from-csr/cbor", "certificates_door"),
    ("$aws/provisioning-templates/t1/provision/json", "provision_door"),
    ("$aws/rules/r1/any/topic", "basic_ingest"),
    ("$aws/things/lamp/streams/s1/get/json", "stream_request"),
    ("$aws/things/lamp/streams/s1/describe/cbor", "stream_request"),
    ("$aws/rules/r1", "basic_ingest"),
])
def test_each_reserved_topic_goes_to_its_door(table, topic, door):
    route, _ = table.find(topic)
    assert route.serve.func.__name__ == door
    assert table.kind(topic) == "device"


@pytest.mark.parametrize("topic", [
    "$aws/things/lamp/shadow/update/accepted", "$aws/things/lamp/shadow/get/rejected",
    "$aws/things/lamp/shadow/patch", "$aws/things/la.mp/jobs/get",
    "$aws/commands/things/lamp/executions/e1/response/accepted/json", "$aws/certificates/create/json/accepted",
    "$aws/certificates/create/xml", "$aws/events/presence/connected/c1", "$SYS/broker",
    "$aws/things/lamp/streams/s1/data/json", "$aws/things/lamp/streams/s1/get/xml",
])
def test_topics_no_door_serves_are_forbidden(table, topic):
    assert table.find(topic) is None and table.kind(topic) == "forbidden"


def test_upcoming_families_stay_reserved_without_a_door(table):
    assert set(UNSERVED) <= set(table.templates)
    for topic in ("$aws/things/lamp/tunnels/notify",):
        route, _ = table.find(topic)
        assert route.serve is None and table.kind(topic) == "device"
    assert table.find("$aws/things/lamp/defender/metrics/json")[0].serve is not None  # its door (issue 15)
    assert table.kind("$aws/things/lamp/defender/metrics/xml") == "forbidden"
    assert table.kind("plain/topic") is None


def test_only_basic_ingest_keeps_publishes_from_subscribers(table):
    assert sorted(r.template.template for r in table.routes if not r.forward) == [
        "$aws/rules/{rule}", "$aws/rules/{rule}/{topic+}"]


# admission ---------------------------------------------------------------------------
def _policy(*allowed):
    """An authorize plug point (localiot.broker.auth's contract) allowing (action, topic) pairs."""
    def authorize(identity, action, resource):
        return (action, resource.rsplit("topic/", 1)[-1]) in allowed
    return authorize


RESERVED_TOPICS = ReservedTopics([Route(TopicTemplate("$aws/things/{thing}/shadow/{operation:get|update}"))])
DEVICE = Identity(ACCOUNT, REGION, principal="dev")


def test_admission_order():
    authorize = _policy((auth.PUBLISH, "a/b"), (auth.PUBLISH, "$aws/things/t/shadow/update"),
                        (auth.PUBLISH, "$SYS/x"))
    decide = lambda topic, retain=False, **kw: admit(DEVICE, topic, retain, reserved=RESERVED_TOPICS,  # noqa: E731
                                                     authorize=authorize, **kw)
    invalid = decide("$SYS/#")  # an invalid name is invalid before it is forbidden
    assert invalid.status == INVALID and "wildcards" in invalid.reason
    assert decide("$SYS/x").status == DENIED  # allowed by policy, but no door
    assert decide("c/d").status == DENIED  # no iot:Publish
    assert decide("a/b").status == OK and decide("a/b").retain is False
    assert decide("a/b", True).status == DENIED  # no iot:RetainPublish
    will = decide("a/b", True, will=True)
    assert (will.status, will.retain) == (OK, False)  # a will goes out unretained instead
    reserved = decide("$aws/things/t/shadow/update")
    assert reserved.status == RESERVED and reserved.parts == {"thing": "t", "operation": "update"}
    assert decide("$aws/things/t/shadow/get").status == DENIED  # no iot:Publish on it


def test_a_trusted_caller_skips_the_policy_not_the_table():
    trusted = lambda topic, retain=False: admit(DEVICE, topic, retain, reserved=RESERVED_TOPICS)  # noqa: E731
    assert (trusted("a/b", True).status, trusted("a/b", True).retain) == (OK, True)
    assert trusted("$aws/things/t/shadow/get").status == RESERVED
    assert trusted("$aws/events/x").status == DENIED
    assert trusted("a/" * 9 + "b").status == INVALID


# the bus ------------------------------------------------------------------------------
def test_bus_messages_carry_their_origin():
    bus, heard, own = Bus(), [], object()
    bus.subscribe(lambda a, r, topic, payload: heard.append(("any", topic)))
    bus.subscribe(lambda a, r, topic, payload: heard.append(("own", topic)), origin=own)
    bus.publish(ACCOUNT, REGION, "from/own", b"x", origin=own)
    bus.publish(ACCOUNT, REGION, "from/service", b"x")
    assert heard == [("any", "from/own"), ("any", "from/service"), ("own", "from/service")]
