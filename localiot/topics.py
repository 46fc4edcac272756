"""MQTT topic names and filters: validation, matching, shared subscriptions
and the topic trie. A leaf module (it imports nothing from localiot) used by
the broker, the rules engine and the SQL parser alike.

Validation follows AWS IoT's limits: at most 256 bytes of UTF-8, at most 7
forward slashes (8 levels), not counting the mandatory `$aws/rules/{rule}/`
prefix of Basic Ingest topics or the `$share/{group}/` prefix of a shared
subscription; no U+0000; wildcards only as whole levels, `#` last. Topics
that start with `$` are not matched by a filter starting with `+` or `#`.

    TopicTrie          filters -> one value each; match(topic) -> the values of the matching filters
    SubscriptionTrie   filters -> subscribers with their options and $share groups (the broker's)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

MAX_TOPIC_BYTES = 256
MAX_SLASHES = 7

# MQTT 5 reason codes of a refused topic (the same values as localiot.broker.codec's)
TOPIC_FILTER_INVALID = 0x8F
TOPIC_NAME_INVALID = 0x90

SHARE_PREFIX = "$share/"


class TopicError(ValueError):
    def __init__(self, message: str, reason_code: int):
        super().__init__(message)
        self.reason_code = reason_code


def _slashes(topic: str) -> int:
    n = topic.count("/")
    if topic.startswith("$aws/rules/"):
        n -= min(n, 3)  # Basic Ingest: "$aws/rules/{rule}/" does not count
    elif topic.startswith("$aws/"):
        # AWS's own reserved topics are longer than the limit for user topics
        # (named shadow replies, command responses have 8 slashes): not counted.
        n = 0
    return n


# validation ---------------------------------------------------------------------
def validate_topic_name(topic: str, max_bytes: int = MAX_TOPIC_BYTES, max_slashes: int = MAX_SLASHES) -> None:
    """Raise TopicError (reason 0x90 Topic Name invalid) for a topic a client may not publish to."""
    if not topic:
        raise TopicError("The topic name is empty.", TOPIC_NAME_INVALID)
    if "+" in topic or "#" in topic:
        raise TopicError("A topic name cannot contain wildcards.", TOPIC_NAME_INVALID)
    if "\x00" in topic:
        raise TopicError("A topic name cannot contain U+0000.", TOPIC_NAME_INVALID)
    if len(topic.encode()) > max_bytes:
        raise TopicError(f"The topic name is longer than {max_bytes} bytes.", TOPIC_NAME_INVALID)
    if _slashes(topic) > max_slashes:
        raise TopicError(f"The topic name has more than {max_slashes} forward slashes.", TOPIC_NAME_INVALID)


def filter_problem(topic_filter: str) -> str | None:
    """What is wrong with a filter's MQTT grammar (no size limits, no `$share`), or None."""
    if not topic_filter:
        return "it is empty"
    if "\x00" in topic_filter:
        return "it contains a NUL character"
    if "+" in topic_filter or "#" in topic_filter:
        levels = topic_filter.split("/")
        last = len(levels) - 1
        for i, level in enumerate(levels):
            if "#" in level and (level != "#" or i != last):
                return "'#' must be a whole level and the last one"
            if "+" in level and level != "+":
                return "'+' must be a whole level"
    return None


def parse_shared(topic_filter: str) -> tuple[str | None, str]:
    """Split `$share/{group}/{filter}` into (group, filter); (None, filter) otherwise."""
    if not topic_filter.startswith(SHARE_PREFIX):
        return None, topic_filter
    parts = topic_filter.split("/", 2)
    if len(parts) < 3 or not parts[1] or not parts[2]:
        raise TopicError("A shared subscription needs $share/{ShareName}/{TopicFilter}.", TOPIC_FILTER_INVALID)
    group = parts[1]
    if "+" in group or "#" in group:
        raise TopicError("A share name cannot contain wildcards.", TOPIC_FILTER_INVALID)
    return group, parts[2]


def validate_topic_filter(topic_filter: str, max_bytes: int = MAX_TOPIC_BYTES,
                          max_slashes: int = MAX_SLASHES) -> tuple[str | None, str]:
    """Check a subscription filter; returns (share group or None, filter without the share prefix)."""
    if not topic_filter:
        raise TopicError("The topic filter is empty.", TOPIC_FILTER_INVALID)
    if "\x00" in topic_filter:
        raise TopicError("A topic filter cannot contain U+0000.", TOPIC_FILTER_INVALID)
    group, inner = parse_shared(topic_filter)
    if len(inner.encode()) > max_bytes:
        raise TopicError(f"The topic filter is longer than {max_bytes} bytes.", TOPIC_FILTER_INVALID)
    if _slashes(inner) > max_slashes:
        raise TopicError(f"The topic filter has more than {max_slashes} forward slashes.", TOPIC_FILTER_INVALID)
    problem = filter_problem(inner)
    if problem:
        raise TopicError(f"Invalid topic filter: {problem}.", TOPIC_FILTER_INVALID)
    return group, inner


# matching -----------------------------------------------------------------------
def matches(topic_filter: str, topic: str) -> bool:
    """Does a (non-shared, valid) filter match a topic name? '+' is exactly one
    level, '#' the rest including the parent level; wildcards in the first
    level skip topics that start with '$'. Nothing matches the empty topic."""
    if not topic:
        return False
    if topic_filter == topic:
        return True
    f_levels = topic_filter.split("/")
    if topic[0] == "$" and f_levels[0] in ("+", "#"):
        return False
    t_levels = topic.split("/")
    for i, f in enumerate(f_levels):
        if f == "#":
            return True
        if i >= len(t_levels):
            return False
        if f != "+" and f != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)


def literal_prefix(topic_filter: str) -> str:
    """The leading levels before the first wildcard, with their trailing '/' (for store prefix scans)."""
    levels = topic_filter.split("/")
    out = []
    for level in levels:
        if level in ("+", "#"):
            return "/".join(out) + "/" if out else ""
        out.append(level)
    return topic_filter


# the trie -------------------------------------------------------------------------
V = TypeVar("V")


class _Node:
    __slots__ = ("children", "value")

    def __init__(self):
        self.children: dict[str, _Node] = {}
        self.value = None  # what is stored for the filter ending here; None: nothing


class TopicTrie(Generic[V]):
    """Topic filters -> one value each, matched level by level (`+`, `#`, `$` rules of MQTT).

    What a value is belongs to the user: the rules engine stores the list of
    rules with that filter, the broker a `Subscribers` entry."""

    def __init__(self):
        self.root = _Node()

    def get(self, topic_filter: str) -> V | None:
        node = self.root
        for level in topic_filter.split("/"):
            node = node.children.get(level)
            if node is None:
                return None
        return node.value

    def setdefault(self, topic_filter: str, factory: Callable[[], V]) -> V:
        """The value stored for `topic_filter`, `factory()` stored first if there is none."""
        node = self.root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Node()
            node = child
        if node.value is None:
            node.value = factory()
        return node.value

    def discard(self, topic_filter: str) -> None:
        """Forget the value of `topic_filter` and the branches left empty."""
        levels = topic_filter.split("/")
        path = [self.root]
        node = self.root
        for level in levels:
            node = node.children.get(level)
            if node is None:
                return
            path.append(node)
        node.value = None
        for i in range(len(levels), 0, -1):
            node = path[i]
            if node.children or node.value is not None:
                break
            del path[i - 1].children[levels[i - 1]]

    def match(self, topic: str) -> list[V]:
        """The values of every filter that matches `topic` (each once), in trie order."""
        out: list = []
        if not topic:
            return out
        levels = topic.split("/")
        nodes = [self.root]
        wild = topic[0] != "$"  # wildcards at the first level skip '$' topics
        for level in levels:
            nxt = []
            for node in nodes:
                children = node.children
                if not children:
                    continue
                if wild:
                    h = children.get("#")
                    if h is not None and h.value is not None:
                        out.append(h.value)
                    plus = children.get("+")
                    if plus is not None:
                        nxt.append(plus)
                child = children.get(level)
                if child is not None:
                    nxt.append(child)
            if not nxt:
                return out
            nodes = nxt
            wild = True
        for node in nodes:
            if node.value is not None:
                out.append(node.value)
            h = node.children.get("#")  # "a/#" matches "a" too
            if h is not None and h.value is not None:
                out.append(h.value)
        return out


# subscriptions ------------------------------------------------------------------
class SharedGroup:
    """The members of one shared subscription ($share/{name}/{filter}); picks them in turn."""

    __slots__ = ("name", "topic_filter", "members", "_order", "_next")

    def __init__(self, name: str, topic_filter: str):
        self.name = name
        self.topic_filter = topic_filter
        self.members: dict = {}
        self._order: list = []
        self._next = 0

    def add(self, subscriber, options) -> bool:
        new = subscriber not in self.members
        self.members[subscriber] = options
        if new:
            self._order.append(subscriber)
        return new

    def remove(self, subscriber) -> bool:
        if subscriber not in self.members:
            return False
        del self.members[subscriber]
        self._order.remove(subscriber)
        return True

    def pick(self, accept=None):
        """The next member in round-robin order (optionally the next one `accept(member)` takes)."""
        order = self._order
        n = len(order)
        for _ in range(n):
            i = self._next % n
            self._next = i + 1
            member = order[i]
            if accept is None or accept(member):
                return member, self.members[member]
        return None

    def __len__(self) -> int:
        return len(self._order)


class Subscribers:
    """What SubscriptionTrie stores per filter: plain subscribers and shared groups."""

    __slots__ = ("subs", "shared")

    def __init__(self):
        self.subs: dict = {}  # subscriber -> options
        self.shared: dict[str, SharedGroup] = {}  # share name -> group

    def __bool__(self) -> bool:
        return bool(self.subs or self.shared)


def _merge(out: dict, subs: dict) -> None:
    for subscriber, options in subs.items():
        seen = out.get(subscriber)
        if seen is None or options[0] > seen[0]:
            out[subscriber] = options


class SubscriptionTrie:
    """Topic filters to subscribers: the broker's subscriptions of one scope.

    `add(filter, subscriber, options)` accepts `$share/{group}/{filter}` too.
    `match(topic)` returns ({subscriber: options}, [SharedGroup, ...]): each
    subscriber once (the options of its highest-QoS matching filter), and
    each shared group that has a matching filter, to pick one member from.
    Options are anything whose first item is the QoS (codec.SubOptions).
    """

    def __init__(self):
        self.filters: TopicTrie[Subscribers] = TopicTrie()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, topic_filter: str, subscriber, options) -> bool:
        group, inner = parse_shared(topic_filter)
        entry = self.filters.setdefault(inner, Subscribers)
        if group is None:
            new = subscriber not in entry.subs
            entry.subs[subscriber] = options
        else:
            shared = entry.shared.get(group)
            if shared is None:
                shared = entry.shared[group] = SharedGroup(group, inner)
            new = shared.add(subscriber, options)
        self._count += new
        return new

    def remove(self, topic_filter: str, subscriber) -> bool:
        group, inner = parse_shared(topic_filter)
        entry = self.filters.get(inner)
        if entry is None:
            return False
        if group is None:
            if entry.subs.pop(subscriber, None) is None:
                return False
        else:
            shared = entry.shared.get(group)
            if shared is None or not shared.remove(subscriber):
                return False
            if not len(shared):
                del entry.shared[group]
        self._count -= 1
        if not entry:
            self.filters.discard(inner)
        return True

    def match(self, topic: str) -> tuple[dict, list[SharedGroup]]:
        out: dict = {}
        groups: list[SharedGroup] = []
        for entry in self.filters.match(topic):
            if entry.subs:
                _merge(out, entry.subs)
            if entry.shared:
                groups.extend(entry.shared.values())
        return out, groups
