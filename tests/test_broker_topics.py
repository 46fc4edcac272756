"""localiot.topics: topic validation as AWS IoT documents it, filter matching, the generic
topic trie the rules engine uses and the broker's subscription trie built on it."""

import random

import pytest

import localiot.topics as topics_module
from localiot.broker import codec
from localiot.broker.codec import SubOptions
from localiot.topics import (
    SubscriptionTrie, TopicError, TopicTrie, filter_problem, literal_prefix, matches, parse_shared,
    validate_topic_filter, validate_topic_name,
)


@pytest.mark.parametrize("topic", ["a", "a/b", "/", "a//b", "a/b/c/d/e/f/g/h", "x" * 256, "ü/\u2603",
                                   "$aws/things/t/shadow/name/s/update/accepted", "$aws/rules/r/a/b/c/d/e/f/g/h"])
def test_valid_topic_names(topic):
    validate_topic_name(topic)


@pytest.mark.parametrize("topic", ["", "a/+", "#", "a/b#", "a\x00b", "x" * 257, "ü" * 129, "a/b/c/d/e/f/g/h/i",
                                   "$aws/rules/r/a/b/c/d/e/f/g/h/i"])
def test_invalid_topic_names(topic):
    with pytest.raises(TopicError) as e:
        validate_topic_name(topic)
    assert e.value.reason_code == codec.TOPIC_NAME_INVALID


@pytest.mark.parametrize("topic_filter, expected", [
    ("a/+/c", (None, "a/+/c")), ("#", (None, "#")), ("+", (None, "+")), ("a/#", (None, "a/#")),
    ("+/+/+/+/+/+/+/#", (None, "+/+/+/+/+/+/+/#")), ("$share/g/a/#", ("g", "a/#")),
    ("$share/g/a/b/c/d/e/f/g/h", ("g", "a/b/c/d/e/f/g/h")),  # the $share prefix does not count
])
def test_valid_filters(topic_filter, expected):
    assert validate_topic_filter(topic_filter) == expected


@pytest.mark.parametrize("topic_filter", ["", "a/#/b", "a#", "a/b+", "+a", "a\x00", "a/b/c/d/e/f/g/h/i",
                                          "$share/g", "$share//a", "$share/g+/a", "$share/g/", "y" * 257])
def test_invalid_filters(topic_filter):
    with pytest.raises(TopicError) as e:
        validate_topic_filter(topic_filter)
    assert e.value.reason_code == codec.TOPIC_FILTER_INVALID


def test_parse_shared():
    assert parse_shared("a/b") == (None, "a/b")
    assert parse_shared("$share/grp/a/+/c") == ("grp", "a/+/c")


@pytest.mark.parametrize("topic_filter, topic, expected", [
    ("a/b", "a/b", True), ("a/+", "a/b", True), ("a/+", "a/b/c", False), ("a/#", "a", True),
    ("a/#", "a/b/c", True), ("#", "a/b", True), ("+/+", "/x", True), ("+", "/x", False), ("a/+/c", "a//c", True),
    ("#", "$aws/x", False), ("+/x", "$SYS/x", False), ("$aws/#", "$aws/x/y", True), ("$aws/+/y", "$aws/x/y", True),
    ("a/b", "a/c", False), ("a/b/c", "a/b", False), ("A", "a", False),
])
def test_matches(topic_filter, topic, expected):
    assert matches(topic_filter, topic) is expected


def test_literal_prefix():
    assert literal_prefix("a/b/+/c") == "a/b/"
    assert literal_prefix("#") == ""
    assert literal_prefix("a/b") == "a/b"
    assert literal_prefix("a/#") == "a/"


def test_trie_basic_match_and_dedupe():
    trie = SubscriptionTrie()
    q0, q1 = SubOptions(0), SubOptions(1)
    assert trie.add("a/b", "s1", q0)
    assert trie.add("a/+", "s1", q1)  # overlapping: one delivery, highest QoS
    assert trie.add("#", "s2", q0)
    assert trie.add("a/#", "s3", q1)
    assert not trie.add("a/#", "s3", q0)  # replaced, not added
    assert len(trie) == 4
    subs, groups = trie.match("a/b")
    assert subs == {"s1": q1, "s2": q0, "s3": q0}
    assert groups == []
    assert trie.match("a")[0] == {"s2": q0, "s3": q0}
    assert trie.match("b/c")[0] == {"s2": q0}
    assert trie.match("$aws/things/x")[0] == {}


def test_trie_dollar_topics_only_explicit():
    trie = SubscriptionTrie()
    trie.add("#", "all", SubOptions(0))
    trie.add("+/events/#", "plus", SubOptions(0))
    trie.add("$aws/events/#", "events", SubOptions(1))
    trie.add("$aws/+/presence/#", "mixed", SubOptions(0))
    assert set(trie.match("$aws/events/presence/connected/c1")[0]) == {"events", "mixed"}
    assert set(trie.match("$aws/x/presence/y")[0]) == {"mixed"}
    assert set(trie.match("x/events/y")[0]) == {"all", "plus"}


def test_trie_remove_prunes():
    trie = SubscriptionTrie()
    trie.add("a/b/c", "s", SubOptions(0))
    trie.add("a/+", "s", SubOptions(0))
    assert trie.remove("a/b/c", "s")
    assert not trie.remove("a/b/c", "s")
    assert not trie.remove("nope/x", "s")
    assert "b" not in trie.filters.root.children["a"].children
    assert trie.remove("a/+", "s")
    assert trie.filters.root.children == {}
    assert len(trie) == 0


def test_trie_shared_groups_round_robin():
    trie = SubscriptionTrie()
    for member in ("m1", "m2", "m3"):
        trie.add("$share/g/sensors/#", member, SubOptions(1))
    trie.add("$share/h/sensors/+", "n1", SubOptions(0))
    trie.add("sensors/#", "plain", SubOptions(0))
    subs, groups = trie.match("sensors/t1")
    assert subs == {"plain": SubOptions(0)}
    assert sorted(g.name for g in groups) == ["g", "h"]
    g = next(g for g in groups if g.name == "g")
    picks = [g.pick()[0] for _ in range(6)]
    assert picks == ["m1", "m2", "m3", "m1", "m2", "m3"]
    assert g.pick(lambda m: m == "m3")[0] == "m3"
    assert g.pick(lambda m: False) is None
    assert trie.remove("$share/g/sensors/#", "m2")
    assert [g.pick()[0] for _ in range(4)].count("m2") == 0
    for member in ("m1", "m3"):
        trie.remove("$share/g/sensors/#", member)
    assert [x.name for x in trie.match("sensors/t1")[1]] == ["h"]


def test_trie_agrees_with_matches_on_random_filters():
    rng = random.Random(7)
    words = ["a", "b", "c", "$aws", ""]
    filters = set()
    for _ in range(400):
        levels = [rng.choice(words + ["+"]) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.3:
            levels.append("#")
        filters.add("/".join(levels))
    trie = SubscriptionTrie()
    for f in filters:
        trie.add(f, f, SubOptions(0))
    for _ in range(300):
        topic = "/".join(rng.choice(words) for _ in range(rng.randint(1, 5)))
        assert set(trie.match(topic)[0]) == {f for f in filters if matches(f, topic)}, topic


def test_trie_with_100k_subscriptions():
    trie = SubscriptionTrie()
    for i in range(100_000):
        trie.add(f"devices/{i}/cmd", i, SubOptions(1))
    trie.add("devices/+/cmd", "fleet", SubOptions(0))
    trie.add("devices/#", "ops", SubOptions(1))
    assert len(trie) == 100_002
    subs, _ = trie.match("devices/4242/cmd")
    assert set(subs) == {4242, "fleet", "ops"}
    assert set(trie.match("devices/x/cmd")[0]) == {"fleet", "ops"}
    for i in range(0, 100_000, 2):
        assert trie.remove(f"devices/{i}/cmd", i)
    assert len(trie) == 50_002
    assert set(trie.match("devices/4242/cmd")[0]) == {"fleet", "ops"}
    assert set(trie.match("devices/4243/cmd")[0]) == {4243, "fleet", "ops"}


def test_reason_codes_are_the_codecs():
    assert topics_module.TOPIC_NAME_INVALID == codec.TOPIC_NAME_INVALID
    assert topics_module.TOPIC_FILTER_INVALID == codec.TOPIC_FILTER_INVALID


@pytest.mark.parametrize("topic_filter, problem", [
    ("a/+/#", None), ("$share/g/a", None), ("", "it is empty"), ("a\x00", "it contains a NUL character"),
    ("a/#/b", "'#' must be a whole level and the last one"), ("a#", "'#' must be a whole level and the last one"),
    ("a/b+", "'+' must be a whole level"), ("+#", "'#' must be a whole level and the last one"),
])
def test_filter_problem(topic_filter, problem):
    assert filter_problem(topic_filter) == problem


def test_nothing_matches_the_empty_topic():
    assert not matches("#", "") and not matches("", "")
    trie = TopicTrie()
    trie.setdefault("#", list).append("all")
    assert trie.match("") == []
    assert trie.match("x") == [["all"]]


def test_topic_trie_holds_any_value_per_filter():
    trie = TopicTrie()
    rules = trie.setdefault("sensors/+/temp", list)
    rules.append("r1")
    assert trie.setdefault("sensors/+/temp", list) is rules  # one value per filter
    rules.append("r2")
    trie.setdefault("sensors/#", list).append("r3")
    trie.setdefault("#", list).append("r4")
    assert trie.get("sensors/+/temp") == ["r1", "r2"]
    assert trie.get("sensors/+") is None and trie.get("nope") is None
    assert sorted(r for values in trie.match("sensors/k/temp") for r in values) == ["r1", "r2", "r3", "r4"]
    assert trie.match("sensors") == [["r4"], ["r3"]]  # "sensors/#" matches its parent level
    assert trie.match("$aws/sensors") == []
    trie.discard("sensors/+/temp")
    assert "+" not in trie.root.children["sensors"].children  # the empty branch is pruned
    trie.discard("sensors/+/temp")  # already gone: nothing happens
    trie.discard("sensors/#")
    trie.discard("#")
    assert trie.root.children == {}


def test_topic_trie_agrees_with_matches_on_random_filters():
    rng = random.Random(11)
    words = ["a", "b", "$x", ""]
    filters = set()
    for _ in range(300):
        levels = [rng.choice(words + ["+"]) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.3:
            levels.append("#")
        filters.add("/".join(levels))
    trie = TopicTrie()
    for f in filters:
        trie.setdefault(f, list).append(f)
    for _ in range(300):
        topic = "/".join(rng.choice(words) for _ in range(rng.randint(1, 5)))
        found = [f for values in trie.match(topic) for f in values]
        assert len(found) == len(set(found)), topic  # each filter once
        assert set(found) == {f for f in filters if matches(f, topic)}, topic
