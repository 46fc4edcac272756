"""Model patterns matched with Python's `re` where it reads them as the `regex` module
does (localiot.protocol.patterns.plain): for every pattern of the shipped models, both
give the same verdict on the same values."""

import random

import regex

from localiot.protocol import patterns
from localiot.protocol.models import load_services

ALPHABET = ("abcXYZ019 _-.:/=+@,;!#$%&*()[]{}<>?'\"\\|^~`\t\n\r" "\u00e9\u4e2d\u0660\u200b\U0001f600\x00\x7f")


def model_patterns() -> set[str]:
    found, seen = set(), set()

    def walk(shape):
        if id(shape) in seen:
            return
        seen.add(id(shape))
        if shape.metadata.get("pattern") is not None:
            found.add(shape.metadata["pattern"])
        if shape.type_name == "structure":
            for member in shape.members.values():
                walk(member)
        elif shape.type_name == "list":
            walk(shape.member)
        elif shape.type_name == "map":
            walk(shape.key)
            walk(shape.value)

    for service in load_services():
        for operation in service.operations.values():
            if operation.input_shape is not None:
                walk(operation.input_shape)
    return found


def values_for(java: str, rng: random.Random) -> list[str]:
    """Random values, and values built from the pattern's own characters (which match more often)."""
    own = "".join(sorted(set(java) - set("[]{}()*+?^$|\\"))) or "a"
    out = ["", "a", "A-1", "arn:aws:iot:us-east-1:123456789012:thing/t1", "x" * 300]
    for _ in range(300):
        source = own if rng.random() < 0.6 else ALPHABET
        out.append("".join(rng.choice(source) for _ in range(rng.randint(1, 40))))
    return out


def test_re_and_regex_agree_on_every_plain_model_pattern():
    rng = random.Random(22)
    plain = 0
    for java in sorted(model_patterns()):
        translated = patterns._translate(java)
        compiled = patterns.compile_pattern(java)
        if compiled.__class__.__module__ in ("regex", "_regex"):
            assert not patterns.plain(translated) or "CERTIFICATE" in java, java
            continue
        plain += 1
        reference = regex.compile(translated, regex.DOTALL)
        for value in values_for(java, rng):
            assert (compiled.fullmatch(value) is None) == (reference.fullmatch(value) is None), (java, value)
    assert plain > 80  # nearly all of the ~100 patterns


def test_unicode_categories_stay_with_regex():
    compiled = patterns.compile_pattern(r"[^\p{C}]+")
    assert compiled.__class__.__module__ in ("regex", "_regex")
    assert compiled.fullmatch("caf\u00e9") and not compiled.fullmatch("a\x00")
