"""Topic names, topic filters and the subscription trie.

Validation follows AWS IoT's limits: at most 256 bytes of UTF-8, at most 7
forward slashes (8 levels), not counting the mandatory `$aws/rules/{rule}/`
prefix of Basic Ingest topics or the `$share/{group}/` prefix of a shared
subscription; no U+0000; wildcards only as whole levels, `#` last. Topics
that start with `$` are not matched by a filter starting with `+` or `#`.
"""

from __future__ import annotations

from localiot.broker import codec

MAX_TOPIC_BYTES = 256
MAX_SLASHES = 7


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


def validate_topic_name(topic: str, max_bytes: int = MAX_TOPIC_BYTES, max_slashes: int = MAX_SLASHES) -> None:
    """Raise TopicError (reason 0x90 Topic Name invalid) for a topic a client may not publish to."""
    if not topic:
        raise TopicError("The topic name is empty.", codec.TOPIC_NAME_INVALID)
    if "+" in topic or "#" in topic:
        raise TopicError("A topic name cannot contain wildcards.", codec.TOPIC_NAME_INVALID)
    if "\x00" in topic:
        raise TopicError("A topic name cannot contain U+0000.", codec.TOPIC_NAME_INVALID)
    if len(topic.encode()) > max_bytes:
        raise TopicError(f"The topic name is longer than {max_bytes} bytes.", codec.TOPIC_NAME_INVALID)
    if _slashes(topic) > max_slashes:
        raise TopicError(f"The topic name has more than {max_slashes} forward slashes.", codec.TOPIC_NAME_INVALID)


def parse_shared(topic_filter: str) -> tuple[str | None, str]:
    """Split `$share/{group}/{filter}` into (group, filter); (None, filter) otherwise."""
    if not topic_filter.startswith("$share/"):
        return None, topic_filter
    parts = topic_filter.split("/", 2)
    if len(parts) < 3 or not parts[1] or not parts[2]:
        raise TopicError("A shared subscription needs $share/{ShareName}/{TopicFilter}.",
                         codec.TOPIC_FILTER_INVALID)
    group = parts[1]
    if "+" in group or "#" in group:
        raise TopicError("A share name cannot contain wildcards.", codec.TOPIC_FILTER_INVALID)
    return group, parts[2]


def validate_topic_filter(topic_filter: str, max_bytes: int = MAX_TOPIC_BYTES,
                          max_slashes: int = MAX_SLASHES) -> tuple[str | None, str]:
    """Check a subscription filter; returns (share group or None, filter without the share prefix)."""
    if not topic_filter:
        raise TopicError("The topic filter is empty.", codec.TOPIC_FILTER_INVALID)
    if "\x00" in topic_filter:
        raise TopicError("A topic filter cannot contain U+0000.", codec.TOPIC_FILTER_INVALID)
    group, inner = parse_shared(topic_filter)
    if len(inner.encode()) > max_bytes:
        raise TopicError(f"The topic filter is longer than {max_bytes} bytes.", codec.TOPIC_FILTER_INVALID)
    if _slashes(inner) > max_slashes:
        raise TopicError(f"The topic filter has more than {max_slashes} forward slashes.",
                         codec.TOPIC_FILTER_INVALID)
    if "+" in inner or "#" in inner:
        levels = inner.split("/")
        last = len(levels) - 1
        for i, level in enumerate(levels):
            if level == "#":
                if i != last:
                    raise TopicError("'#' must be the last level of a topic filter.", codec.TOPIC_FILTER_INVALID)
            elif level != "+" and ("+" in level or "#" in level):
                raise TopicError("A wildcard must take a whole topic level.", codec.TOPIC_FILTER_INVALID)
    return group, inner


def matches(topic_filter: str, topic: str) -> bool:
    """Does a (non-shared, valid) filter match a topic name?"""
    if topic_filter == topic:
        return True
    f_levels = topic_filter.split("/")
    if topic.startswith("$") and f_levels[0] in ("+", "#"):
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


# subscription trie ------------------------------------------------------------
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


class _Node:
    __slots__ = ("children", "subs", "shared")

    def __init__(self):
        self.children: dict[str, _Node] = {}
        self.subs: dict = {}
        self.shared: dict[str, SharedGroup] = {}

    def empty(self) -> bool:
        return not (self.children or self.subs or self.shared)


def _merge(out: dict, subs: dict) -> None:
    for subscriber, options in subs.items():
        seen = out.get(subscriber)
        if seen is None or options[0] > seen[0]:
            out[subscriber] = options


class SubscriptionTrie:
    """Topic filters to subscribers, matched level by level.

    `add(filter, subscriber, options)` accepts `$share/{group}/{filter}` too.
    `match(topic)` returns ({subscriber: options}, [SharedGroup, ...]): each
    subscriber once (the options of its highest-QoS matching filter), and
    each shared group that has a matching filter, to pick one member from.
    Options are anything whose first item is the QoS (codec.SubOptions).
    """

    def __init__(self):
        self.root = _Node()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, topic_filter: str, subscriber, options) -> bool:
        group, inner = parse_shared(topic_filter)
        node = self.root
        for level in inner.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Node()
            node = child
        if group is None:
            new = subscriber not in node.subs
            node.subs[subscriber] = options
        else:
            shared = node.shared.get(group)
            if shared is None:
                shared = node.shared[group] = SharedGroup(group, inner)
            new = shared.add(subscriber, options)
        self._count += new
        return new

    def remove(self, topic_filter: str, subscriber) -> bool:
        group, inner = parse_shared(topic_filter)
        path = [self.root]
        levels = inner.split("/")
        node = self.root
        for level in levels:
            node = node.children.get(level)
            if node is None:
                return False
            path.append(node)
        if group is None:
            if node.subs.pop(subscriber, None) is None:
                return False
        else:
            shared = node.shared.get(group)
            if shared is None or not shared.remove(subscriber):
                return False
            if not len(shared):
                del node.shared[group]
        self._count -= 1
        for i in range(len(levels), 0, -1):  # prune empty branches
            if not path[i].empty():
                break
            del path[i - 1].children[levels[i - 1]]
        return True

    def match(self, topic: str) -> tuple[dict, list[SharedGroup]]:
        out: dict = {}
        groups: list[SharedGroup] = []
        levels = topic.split("/")
        nodes = [self.root]
        dollar = topic.startswith("$")
        last = len(levels) - 1
        for i, level in enumerate(levels):
            nxt = []
            wild = not (dollar and i == 0)
            for node in nodes:
                children = node.children
                if not children:
                    continue
                if wild:
                    h = children.get("#")
                    if h is not None:
                        if h.subs:
                            _merge(out, h.subs)
                        if h.shared:
                            groups.extend(h.shared.values())
                    plus = children.get("+")
                    if plus is not None:
                        nxt.append(plus)
                child = children.get(level)
                if child is not None:
                    nxt.append(child)
            nodes = nxt
            if not nodes:
                return out, groups
            if i == last:
                for node in nodes:
                    if node.subs:
                        _merge(out, node.subs)
                    if node.shared:
                        groups.extend(node.shared.values())
                    h = node.children.get("#")  # "a/#" matches "a" too
                    if h is not None:
                        if h.subs:
                            _merge(out, h.subs)
                        if h.shared:
                            groups.extend(h.shared.values())
        return out, groups
