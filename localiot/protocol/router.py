"""Maps (method, path, query, X-Amz-Target) to an operation of one service.

Templates come from each operation's `requestUri`. Literal segments beat
labels, so `/thing-groups/addThingToThingGroup` wins over
`/thing-groups/{thingGroupName}`; greedy labels (`{arn+}`) match slashes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import unquote as _decode

from botocore.model import OperationModel

from localiot.protocol.models import Service


@dataclass
class Route:
    service: Service
    operation: OperationModel
    method: str
    pattern: re.Pattern
    labels: list[tuple[str, str]]  # (regex group, member name); a group is named after its member
    required_query: dict[str, str | None] = field(default_factory=dict)
    score: tuple = ()
    first_segment: str | None = None  # literal first path segment, None for a label
    segments: int = 1  # path segments (a greedy label may span more)
    greedy: bool = False
    steps: object = None  # the engine's Steps for this operation, made at its first call
    by_name: bool = False  # every group is named after its member: groupdict() is the labels
    # When every segment is a literal or one whole label (not greedy): (index in the path's
    # "/"-split, literal or None, member) per segment, which match compares without the regex.
    simple: tuple | None = None
    # Read on every call: plain attributes (a cached_property is looked up past its
    # descriptor on each read), set from the service and operation.
    service_name: str = field(init=False)
    protocol: str = field(init=False)
    label: str = field(init=False)  # the x-localiot-operation header's value

    def __post_init__(self) -> None:
        self.service_name = self.service.name
        self.protocol = self.service.protocol
        self.label = f"{self.service.name}.{self.operation.name}"

    @property
    def name(self) -> str:
        return self.operation.name

    @cached_property
    def validation_error(self) -> str:
        """The error this operation models for bad input: InvalidRequestException
        where it declares one, else ValidationException where it declares that
        (e.g. the newer Commands operations), else the service's own."""
        declared = {shape.name for shape in self.operation.error_shapes}
        for code in ("InvalidRequestException", "ValidationException"):
            if code in declared:
                return code
        return self.service.validation_error


def _label_members(operation: OperationModel) -> dict[str, str]:
    shape = operation.input_shape
    if shape is None:
        return {}
    return {
        m.serialization.get("name", name): name
        for name, m in shape.members.items()
        if m.serialization.get("location") == "uri"
    }


def compile_route(service: Service, operation: OperationModel) -> Route:
    uri = operation.http["requestUri"]
    path, _, query = uri.partition("?")
    required_query: dict[str, str | None] = {}
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        required_query[key] = value if eq else None
    members = _label_members(operation)
    labels: list[tuple[str, str]] = []
    regex_parts = []
    literal_segments = 0
    greedy = 0
    by_name = True
    simple: list | None = []
    for index, segment in enumerate(path.strip("/").split("/") if path.strip("/") else [], 1):
        whole = re.fullmatch(r"\{([^}+]+)\}", segment)
        if "{" not in segment:
            if simple is not None:
                simple.append((index, segment, None))
        elif whole is not None and simple is not None:
            simple.append((index, None, members.get(whole.group(1), whole.group(1))))
        else:
            simple = None
        out = ""
        pos = 0
        for m in re.finditer(r"\{([^}]+)\}", segment):
            out += re.escape(segment[pos : m.start()])
            label = m.group(1)
            greedy_label = label.endswith("+")
            if greedy_label:
                label = label[:-1]
            member = members.get(label, label)
            # the group named after its member, so the match's groupdict() is the labels
            named = member.isidentifier() and member not in {name for _, name in labels}
            group = member if named else f"g{len(labels)}"
            out += f"(?P<{group}>.+)" if greedy_label else f"(?P<{group}>[^/]+)"
            greedy += greedy_label
            labels.append((group, member))
            by_name = by_name and named
            pos = m.end()
        if pos == 0:
            literal_segments += 1
        out += re.escape(segment[pos:])
        regex_parts.append(out)
    pattern = re.compile("^/" + "/".join(regex_parts) + "/?$")
    score = (-literal_segments, greedy, -len(required_query), -len(path))
    first = path.strip("/").split("/", 1)[0]
    first_segment = None if "{" in first else first
    return Route(service, operation, operation.http["method"], pattern, labels, required_query, score, first_segment,
                 max(1, len(regex_parts)), greedy > 0, by_name=by_name,
                 simple=tuple(simple) if simple and greedy == 0 else None)


# Escaped label texts -> their text: urllib's unquote is Python code (a regex split and a
# generator per call, ~30x a dict look-up), and the same escaped labels come again and
# again (iot-data Publish's topic, "a%2Fb", on every publish to it). Bounded; long texts
# are not kept.
_DECODED: dict[str, str] = {}
_DECODED_AT_MOST = 4096
_DECODED_LONGEST = 512


def unquote(text: str) -> str:
    """urllib.parse.unquote(text), remembered."""
    decoded = _DECODED.get(text)
    if decoded is None:
        decoded = _decode(text)
        if len(text) <= _DECODED_LONGEST:
            if len(_DECODED) >= _DECODED_AT_MOST:
                _DECODED.clear()
            _DECODED[text] = decoded
    return decoded


def _lacks(required_query: dict, query) -> bool:
    """Whether `query` lacks a parameter the route requires (or has it with another value)."""
    return any(key not in query or (value is not None and query.get(key) != value)
               for key, value in required_query.items())


class Router:
    def __init__(self, services: list[Service]):
        self.services = services
        self._routes: dict[str, list[Route]] = {}
        # (method, first path segment) -> candidate routes, most specific first;
        # routes that start with a label are candidates for every segment.
        self._buckets: dict[tuple[str, str], list[Route]] = {}
        self._targets: dict[str, Route] = {}
        for service in services:
            for op in service.operations.values():
                route = compile_route(service, op)
                if service.protocol == "json":
                    prefix = service.model.metadata["targetPrefix"]
                    self._targets[f"{prefix}.{op.name}"] = route
                else:
                    self._routes.setdefault(route.method, []).append(route)
        # "method first-segment" -> {segment count: the bucket's routes that can match a
        # path of that many segments}, filled on first use; counts beyond the longest
        # route have the same candidates (only greedy routes can match them).
        self._by_count: dict[str, dict[int, list[Route]]] = {}
        self._longest = max((r.segments for routes in self._routes.values() for r in routes), default=1)
        for method, routes in self._routes.items():
            routes.sort(key=lambda r: r.score)
            self._buckets[(method, "")] = [r for r in routes if r.first_segment is None]
            for segment in {r.first_segment for r in routes if r.first_segment is not None}:
                self._buckets[(method, segment)] = [
                    r for r in routes if r.first_segment in (segment, None)
                ]

    def by_target(self, target: str) -> Route | None:
        return self._targets.get(target)

    def match(
        self, method: str, raw_path: str, query, services: set[str] | None
    ) -> tuple[Route, dict[str, str]] | None:
        """First matching route, restricted to `services` when the caller named one."""
        parts = raw_path.split("/")  # ["", first, ...]: (str.find and str.count parse their arguments slowly)
        count = len(parts) - 1  # the segments a route must have (one trailing slash is optional)
        if count > 1 and not parts[-1]:
            count -= 1
        first = parts[1] if count else ""
        if count > self._longest:
            count = self._longest + 1
        by_count = self._by_count.get(method + " " + first)
        candidates = by_count.get(count) if by_count is not None else None
        if candidates is None:
            candidates = self._candidates(method, first, count)
        for route in candidates:
            if services is not None and route.service_name not in services:
                continue
            simple = route.simple
            if simple is not None:  # the regex's answer, from the segments
                labels = {}
                for index, literal, member in simple:
                    text = parts[index]
                    if literal is not None:
                        if text != literal:
                            break
                    elif not text:
                        break
                    else:
                        labels[member] = unquote(text) if "%" in text else text
                else:
                    if route.required_query and _lacks(route.required_query, query):
                        continue
                    return route, labels
                continue
            m = route.pattern.match(raw_path)
            if m is None:
                continue
            if route.required_query and _lacks(route.required_query, query):
                continue
            if route.by_name:
                labels = m.groupdict()
                if "%" in raw_path:
                    for member, text in labels.items():
                        if "%" in text:
                            labels[member] = unquote(text)
            else:
                labels = {}
                for group, member in route.labels:
                    text = m.group(group)
                    labels[member] = unquote(text) if "%" in text else text
            return route, labels
        return None

    def _candidates(self, method: str, first: str, count: int) -> list[Route]:
        bucket = self._buckets.get((method, first))
        known = bucket is not None
        if not known:  # an unknown first segment: only routes starting with a label (not cached)
            bucket = self._buckets.get((method, ""), ())
        candidates = [r for r in bucket if r.segments == count or (r.greedy and r.segments <= count)]
        if known:
            by_count = self._by_count.setdefault(method + " " + first, {})
            by_count[count] = candidates
        return candidates

    def all_routes(self):
        for routes in self._routes.values():
            yield from routes
        yield from self._targets.values()
