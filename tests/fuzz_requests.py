"""A seeded, bounded, model-driven request generator for the fuzz test.

For one operation it yields (kind, method, path, headers, body) requests:
"shaped" ones, built from random values of the operation's botocore input
shape and serialized by botocore's own serializer, and mutations of them
that aim at the parser: JSON nested 100,000 levels deep, lone UTF-16
surrogates in body strings, non-UTF-8 bytes in headers, URI labels and the
query, JSON values of the wrong type, out-of-range numbers, truncated and
non-JSON bodies, and JSON carried in a header (jsonvalue) nested too deep.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import random
import string
import zlib
from urllib.parse import urlencode

from botocore.serialize import create_serializer

DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000
ODD_TEXT = ["", " ", "é", "日本", "😀", "a/b", "%2F", "..", "\x00", "\t\n", "$aws/things", "+", "#", "'\"",
            "a" * 300, "-1", "null"]


def _serializer():
    return create_serializer("rest-json", include_validation=False)


class Generator:
    def __init__(self, operation, seed: int):
        self.op = operation
        self.rng = random.Random(zlib.crc32(f"{seed}:{operation.name}".encode()))

    # values from shapes ---------------------------------------------------
    def value(self, shape, depth: int = 0):
        kind = shape.type_name
        rng = self.rng
        meta = shape.metadata
        if kind == "string":
            if shape.enum and rng.random() < 0.8:
                return rng.choice(shape.enum)
            if rng.random() < 0.25:
                return rng.choice(ODD_TEXT)
            low, high = meta.get("min", 1), min(meta.get("max", 24), 24)
            size = rng.randint(min(low, high), max(low, high))
            return "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(size))
        if kind in ("integer", "long"):
            low, high = meta.get("min", -5), meta.get("max", 1000)
            return rng.choice([low, high, 0, 1, rng.randint(min(low, high), max(low, high))])
        if kind in ("float", "double"):
            return rng.choice([0.0, 1.5, -2.25, 1e6])
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "timestamp":
            return datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
                seconds=rng.randint(-10**6, 10**6))
        if kind == "blob":
            return bytes(rng.randrange(256) for _ in range(rng.randint(0, 16)))
        if kind == "list":
            return [self.value(shape.member, depth + 1) for _ in range(rng.randint(0, 2 if depth < 4 else 0))]
        if kind == "map":
            return {self.value(shape.key, depth + 1): self.value(shape.value, depth + 1)
                    for _ in range(rng.randint(0, 2 if depth < 4 else 0))}
        if kind == "structure":
            if meta.get("document"):
                return rng.choice([{"a": 1}, [1, "x"], "text", 3, None, {"k": {"n": [True]}}])
            out = {}
            for name, member in shape.members.items():
                if name in shape.required_members or (depth < 5 and rng.random() < 0.5):
                    out[name] = self.value(member, depth + 1)
            return out
        return None

    def params(self) -> dict:
        shape = self.op.input_shape
        return self.value(shape) if shape is not None else {}

    # requests ---------------------------------------------------------------
    def shaped(self, params: dict):
        try:
            request = _serializer().serialize_to_request(params, self.op)
        except Exception:  # a value botocore itself will not serialize: skip it
            return None
        body = request["body"]
        if isinstance(body, str):
            body = body.encode()
        path = request["url_path"]
        if request["query_string"]:
            path += "?" + urlencode(request["query_string"], doseq=True)
        return request["method"], path, dict(request["headers"]), body or b""

    def requests(self, shaped_count: int):
        for _ in range(shaped_count):
            built = self.shaped(self.params())
            if built is not None:
                yield ("shaped", *built)
        base = None
        for _ in range(5):
            base = self.shaped(self.params())
            if base is not None:
                break
        if base is None:
            return
        method, path, headers, body = base
        yield from self._mutations(method, path, headers, body)

    def _json_in_strings(self, method, path, headers, document, members):
        """String members, at any structure depth, that may carry JSON (policy
        documents, template bodies, job documents ...): JSON nested past the
        recursion limit, and a JSON escape of a lone surrogate, each within the
        member's length limit."""
        for where, member in _string_members(members):
            depth = min(5000, member.metadata.get("max", 10 ** 6) // 2)
            label = ".".join(where)
            if depth >= 1100:
                deep = "[" * depth + "]" * depth
                yield f"deep-json-string:{label}", method, path, headers, _dumps(_put(document, where, deep))
            yield f"json-string-surrogate:{label}", method, path, headers, _dumps(
                _put(document, where, '{"Version":"2012-10-17","a":"\\ud800","\\udc00":1}'))

    def _mutations(self, method, path, headers, body):
        rng = self.rng
        shape = self.op.input_shape
        members = shape.members if shape is not None else {}
        takes_body = any(m.serialization.get("location") is None for m in members.values())
        if takes_body or method in ("POST", "PUT", "PATCH"):
            yield "deep-array", method, path, headers, DEEP_ARRAY
            yield "deep-object", method, path, headers, DEEP_OBJECT
            yield "not-json", method, path, headers, b"\xff\xfe{not json"
            yield "truncated", method, path, headers, body[: max(1, len(body) // 2)]
        document = _json(body)
        if isinstance(document, dict) and document:
            fresh = lambda: copy.deepcopy(document)  # noqa: E731 - each mutation starts from the same body
            yield "surrogate", method, path, headers, _dumps(_replace_string(fresh(), rng, "\ud800"))
            yield "surrogate-key", method, path, headers, _dumps({**fresh(), "\udfff": "x"})
            yield "wrong-type", method, path, headers, _dumps(_replace_any(fresh(), rng))
            yield "huge-number", method, path, headers, _dumps(_replace_any(fresh(), rng, 10 ** 400)).replace(
                b"1" + b"0" * 400, b"1e400")
            yield "nan", method, path, headers, _dumps(_replace_any(fresh(), rng, "__NAN__")).replace(
                b'"__NAN__"', b"NaN")
        elif document is None:
            yield "payload-surrogate", method, path, headers, b'{"state":{"reported":{"\\udc00":1}}}'
        else:  # a payload that is itself JSON (a shadow document ...)
            yield "payload-surrogate", method, path, headers, b'{"state":{"desired":{"a":"\\ud800"}}}'
        if isinstance(document, dict):
            yield from self._json_in_strings(method, path, headers, document, members)
        # non-UTF-8 bytes and percent-encoded surrogates outside the body
        bad_headers = dict(headers)
        for name, member in members.items():
            if member.serialization.get("location") == "header":
                wire = member.serialization.get("name", name)
                if member.serialization.get("jsonvalue"):
                    bad_headers[wire] = base64.b64encode(DEEP_ARRAY[:4000] + DEEP_ARRAY[-4000:]).decode()
                    yield "deep-header-json", method, path, bad_headers, body
                    bad_headers = dict(headers)
                    bad_headers[wire] = base64.b64encode(b'[{"a":"\\ud800"}]').decode()
                    yield "surrogate-header-json", method, path, bad_headers, body
                    bad_headers = dict(headers)
                bad_headers[wire] = b"\xff\xfe\xed\xa0\x80"
        bad_headers["x-amz-mqtt5-correlation-data"] = b"\xc3\x28"
        yield "header-bytes", method, path, bad_headers, body
        yield "scope-bytes", method, path, {**headers, "Authorization": b"AWS4-HMAC-SHA256 Credential=testing/"
                                            b"20260101/us-\xff\xfe/iot/aws4_request, SignedHeaders=host, Signature=0"}, body
        segments = path.split("?", 1)
        label_path = "/".join(s if i != len(segments[0].split("/")) - 1 else s + "%ED%A0%80%FF"
                              for i, s in enumerate(segments[0].split("/")))
        yield "uri-bytes", method, label_path + ("?" + segments[1] if len(segments) > 1 else ""), headers, body
        query = segments[1] if len(segments) > 1 else ""
        bad_query = "&".join(f"{kv.split('=')[0]}=%ED%A0%80%FF" for kv in query.split("&") if kv) or "x=%ED%A0%80"
        yield "query-bytes", method, segments[0] + "?" + bad_query, headers, body


def _json(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return None


def _dumps(document) -> bytes:
    return json.dumps(document).encode()


def _paths(document, prefix=()):
    if isinstance(document, dict):
        for key, value in document.items():
            yield prefix + (key,), value
            yield from _paths(value, prefix + (key,))
    elif isinstance(document, list):
        for i, value in enumerate(document):
            yield prefix + (i,), value
            yield from _paths(value, prefix + (i,))


def _set(document, path, value):
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


def _replace_string(document, rng, text):
    strings = [p for p, v in _paths(document) if isinstance(v, str)]
    if not strings:
        return _set(document, (rng.choice(list(document)),), text)
    path = rng.choice(strings)
    return _set(document, path, text + "x")


def _replace_any(document, rng, value=None):
    path = rng.choice([p for p, _ in _paths(document)])
    if value is None:
        value = rng.choice([[], {}, 7, -1, "s", True, None, [[{}]], 2 ** 70, 1.5])
    return _set(document, path, value)


def _string_members(members, prefix=(), depth=0):
    """(wire path, shape) of the free-text string members in the body, through structures."""
    for name, member in members.items():
        if member.serialization.get("location"):
            continue
        wire = prefix + (member.serialization.get("name", name),)
        if member.type_name == "string" and not member.enum:
            yield wire, member
        elif member.type_name == "structure" and depth < 3 and not member.metadata.get("document"):
            yield from _string_members(member.members, wire, depth + 1)


def _put(document, where, value):
    out = copy.deepcopy(document)
    target = out
    for key in where[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[where[-1]] = value
    return out
