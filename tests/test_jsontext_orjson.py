"""jsontext.dumps / jsontext.loads take orjson's fast path only where its result
is exactly json's: checked against json on seeded random documents and texts."""

from __future__ import annotations

import json
import random

import pytest

from localiot.protocol import jsontext

CHARS = [chr(i) for i in range(0, 0x80)] + ["é", "€", "😀", "\u2028", "\ud800"]
FLOATS = [1e-5, 1e-4, 1e16, 9999999999999998.0, 1e300, float("inf"), float("nan"), -0.0, 0.0, 21.5]


def _value(rng: random.Random, depth: int = 0):
    r = rng.random()
    if depth > 4 or r < 0.5:
        kind = rng.randrange(5)
        if kind == 0:
            return rng.randint(-10**25, 10**25) if rng.random() < 0.2 else rng.randint(-1000, 1000)
        if kind == 1:
            return rng.choice(FLOATS) if rng.random() < 0.5 else rng.random() * 10 ** rng.randint(-30, 30)
        if kind == 2:
            return "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 6)))
        return rng.choice([True, False, None])
    if r < 0.75:
        return {("".join(rng.choice(CHARS) for _ in range(3)) if rng.random() < 0.95 else rng.randint(0, 9)):
                _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def _outcome(fn, *args, **kwargs):
    try:
        return "ok", repr(fn(*args, **kwargs))
    except jsontext.JsonRefused as refused:
        return "refused", refused.too_deep, refused.where
    except (ValueError, TypeError, RecursionError) as error:
        return "error", type(error).__name__


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_dumps_writes_json_bytes(ensure_ascii):
    rng = random.Random(11)
    for _ in range(5000):
        value = _value(rng)
        want = _outcome(lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=ensure_ascii).encode(), value)
        assert _outcome(jsontext.dumps, value, ensure_ascii=ensure_ascii) == want, value


def test_loads_reads_what_json_reads():
    rng = random.Random(12)
    texts = ["1e400", "NaN", "-Infinity", '"\\ud800"', '"\\ud83d\\ude00"', "[" * 150 + "]" * 150,
             "[" * 2000 + "]" * 2000, '{"a":1,}', "", "01", '{"a":"\\u0000"}', "1234567890123456789",
             "-12345678901234567890", '{"a":1,"a":2}']
    texts += [json.dumps(_value(rng)) for _ in range(3000)]
    texts += [text[:rng.randint(0, len(text))] for text in texts[:500]]

    def reject(name):
        raise ValueError(name)

    for text in texts:
        for kwargs in ({}, {"surrogates": True}, {"parse_constant": reject}):
            # object_hook=None keeps json's own behaviour: the path every call took before orjson
            assert _outcome(jsontext.loads, text, **kwargs) == _outcome(jsontext.loads, text, object_hook=None,
                                                                         **kwargs), (text[:60], kwargs)


def test_routes_by_segment_count_keep_trailing_slashes_and_greedy_labels():
    from localiot.protocol.models import load_services
    from localiot.protocol.router import Router

    router = Router(load_services())
    for path in ("/things/abc", "/things/abc/"):
        route, labels = router.match("GET", path, {}, None)
        assert (route.name, labels) == ("DescribeThing", {"thingName": "abc"})
    for path in ("/destinations/arn:aws:iot:us-east-1:123456789012:ruledestination/http/a/b/c",
                 "/destinations/x", "/destinations/a/" + "b/" * 40):
        route, labels = router.match("GET", path, {}, {"iot"})
        assert route.name == "GetTopicRuleDestination"
        assert labels["arn"] in (path[len("/destinations/"):], path[len("/destinations/"):-1])
    assert router.match("GET", "/things/a/b/c/d/e/f/g/h", {}, None) is None
