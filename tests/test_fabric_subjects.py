"""The documented mapping of MQTT topics and filters to NATS subjects
(localiot.fabric.subjects), checked against a real nats-server's matching:
a filter's subjects match exactly the subjects of the topics the MQTT
filter matches (apart from the '$' rule, which the receiving node's trie applies)."""

import asyncio

import pytest

from localiot.fabric import subjects
from localiot.fabric.client import NatsConnection, NoResponders
from localiot.topics import matches

TOPICS = ["a", "a/b", "a/b/c", "a//b", "/a", "a/", "a.b", "a/*", "a/>", "sp ace", "tab\there", "%", "%25",
          "caf\u00e9/x", "$aws/things/t/shadow/update", "b/a"]
FILTERS = ["a", "a/#", "#", "+", "a/+", "+/b", "+/+/c", "a/b/#", "a.b", "%", "$aws/things/+/shadow/#", "/+"]


def test_topics_map_one_to_one_and_back():
    seen = {}
    for topic in TOPICS:
        subject = subjects.topic_subject("123456789012", "us-east-1", topic)
        assert " " not in subject and "\t" not in subject and ".." not in subject and not subject.endswith(".")
        assert "*" not in subject and ">" not in subject
        assert subjects.subject_topic(subject) == ("123456789012", "us-east-1", topic)
        assert seen.setdefault(subject, topic) == topic


def test_accounts_and_regions_are_separate_subject_spaces():
    one = subjects.filter_subjects("111111111111", "us-east-1", "#")
    assert subjects.topic_subject("222222222222", "us-east-1", "a").startswith("liot.m.222222222222.")
    assert one == ["liot.m.111111111111.us-east-1.>"]


def test_filter_subjects_match_what_mqtt_matches_on_a_real_nats_server(localiot_nats):
    async def run():
        conn = await NatsConnection(localiot_nats).connect()
        got: dict[str, set] = {f: set() for f in FILTERS}
        for f in FILTERS:
            for name in subjects.filter_subjects("1", "r", f):
                conn.subscribe(name, lambda subject, reply, body, f=f: got[f].add(body.decode()))
        await conn.flush()
        sender = await NatsConnection(localiot_nats).connect()
        for topic in TOPICS:
            sender.publish(subjects.topic_subject("1", "r", topic), topic.encode())
            sender.publish(subjects.topic_subject("2", "r", topic), b"other account")
        await sender.flush()
        await conn.flush()
        with pytest.raises(NoResponders):
            await sender.request("liot.n.nobody-here", b"", 1.0)
        await sender.close()
        await conn.close()
        return got

    got = asyncio.run(run())
    for f in FILTERS:
        assert got[f] == {t for t in TOPICS if matches(f, t) or dollar_superset(f, t)}, f


def dollar_superset(topic_filter: str, topic: str) -> bool:
    """A wildcard first level matches a '$' topic's subject too (the trie drops it, not NATS)."""
    return (topic.startswith("$") and topic_filter.split("/")[0] in ("+", "#")
            and matches(topic_filter, "x" + topic[1:]))
