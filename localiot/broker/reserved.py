"""Reserved topics: the `$` topics devices may publish to, and who serves each.

Every other topic starting with `$` is refused. The table is built from
routes, each an MQTT-style topic template with named parts:

    $aws/things/{thing}/shadow/name/{shadow}/{operation:get|update|delete}

- a literal level matches itself;
- `{name}` matches one whole, non-empty level;
- `{name:regex}` matches one whole level that the regular expression matches;
- `{name+}`, as the last level only, matches the rest of the topic (one or
  more levels, empty ones included).

A route's `serve(ReservedPublish) -> bool` says whether it accepted the
publish; a route without one reserves topics for devices that nothing serves
yet (a publish there is allowed by the admission, then refused like an
unknown topic). Dispatch is by pattern: when several templates match, the
most specific wins (level by level: literal, then constrained part, then
part, then the rest), whatever order the routes were declared in; two routes
with the same template are an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

_PART = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?:(\+)|:(.+))?\}$")
LITERAL, CONSTRAINED, PART, REST = 0, 1, 2, 3


class TopicTemplate:
    """One compiled template: `match(topic)` gives its named parts, or None."""

    __slots__ = ("template", "regex", "rank", "_single")

    def __init__(self, template: str):
        self.template = template
        pattern, rank, single = [], [], []
        levels = template.split("/")
        for i, level in enumerate(levels):
            part = _PART.match(level)
            if part is None:
                if "{" in level or "}" in level:
                    raise ValueError(f"{template}: a named part must take a whole level ({level!r})")
                pattern.append(re.escape(level))
                rank.append(LITERAL)
                continue
            name, plus, constraint = part.groups()
            if plus:
                if i != len(levels) - 1:
                    raise ValueError(f"{template}: {{{name}+}} must be the last level")
                pattern.append(f"(?P<{name}>.*)")
                rank.append(REST)
            elif constraint:
                pattern.append(f"(?P<{name}>(?:{constraint}))")
                rank.append(CONSTRAINED)
                single.append(name)
            else:
                pattern.append(f"(?P<{name}>[^/]+)")
                rank.append(PART)
        self.regex = re.compile("/".join(pattern))
        self.rank = tuple(rank)
        self._single = tuple(single)  # constrained parts, which must not span levels

    def match(self, topic: str) -> dict[str, str] | None:
        found = self.regex.fullmatch(topic)
        if found is None:
            return None
        parts = found.groupdict()
        for name in self._single:
            if "/" in parts[name]:
                return None
        return parts

    def __repr__(self) -> str:
        return f"TopicTemplate({self.template!r})"


@dataclass(slots=True)
class ReservedPublish:
    """What a door gets: a publish on one of its topics."""

    identity: Any  # localiot.broker.auth.Identity of the publisher
    topic: str
    payload: bytes
    properties: dict  # MQTT 5 PUBLISH properties ({} for MQTT 3.1.1 and HTTP)
    qos: int
    parts: dict[str, str]  # the template's named parts
    connection: Any = None  # the MQTT connection that published; None for a will or an HTTP publish
    pending: Any = None  # set by a door whose unit of work still runs (an asyncio future): the PUBACK waits


@dataclass(slots=True)
class Route:
    template: TopicTemplate
    serve: Callable[[ReservedPublish], bool] | None = None  # None: reserved, no door yet
    forward: bool = True  # an accepted publish also reaches the topic's subscribers (Basic Ingest: not)


class ReservedTopics:
    """The reserved-topic table: which `$` topics devices may publish to, and the route serving each."""

    def __init__(self, routes: list[Route] | tuple = ()):
        seen: dict[str, Route] = {}
        for route in routes:
            if route.template.template in seen:
                raise ValueError(f"two routes for {route.template.template}")
            seen[route.template.template] = route
        # most specific first: the first match is the best one
        self.routes = sorted(seen.values(), key=lambda r: r.template.rank)

    def find(self, topic: str) -> tuple[Route, dict[str, str]] | None:
        if not topic.startswith("$"):
            return None
        for route in self.routes:
            parts = route.template.match(topic)
            if parts is not None:
                return route, parts
        return None

    def kind(self, topic: str) -> str | None:
        """None for an ordinary topic, 'device' for a reserved topic devices may publish to,
        'forbidden' for any other `$` topic."""
        if not topic.startswith("$"):
            return None
        return "device" if self.find(topic) is not None else "forbidden"

    @property
    def templates(self) -> list[str]:
        return [route.template.template for route in self.routes]
