"""Model patterns are Java regular expressions; compile them for Python.

The `regex` module understands the Unicode categories (\\p{L}, \\p{C} ...);
Java's POSIX classes (\\p{Graph} ...) are ASCII-only in Java, so they are
rewritten to the same ASCII ranges. Patterns are matched against the whole
value, as Java's `String.matches` does.
"""

from __future__ import annotations

from functools import lru_cache

import regex

_POSIX = {
    r"\p{Graph}": r"\x21-\x7e",
    r"\p{Print}": r"\x20-\x7e",
    r"\p{Cntrl}": r"\x00-\x1f\x7f",
    r"\p{Upper}": r"A-Z",
    r"\p{Lower}": r"a-z",
    r"\p{Digit}": r"0-9",
    r"\p{Alpha}": r"a-zA-Z",
    r"\p{Alnum}": r"a-zA-Z0-9",
    r"\p{Punct}": r"!-/:-@\[-`{-~",
    r"\p{Space}": r" \t\n\x0b\f\r",
}


def _translate(java: str) -> str:
    out = java
    for posix, ascii_range in _POSIX.items():
        out = out.replace(posix, ascii_range)
    # Java's \x{hhhh} is Python's \U0000hhhh.
    out = regex.sub(r"\\x\{([0-9a-fA-F]+)\}", lambda m: "\\U%08x" % int(m.group(1), 16), out)
    return out


@lru_cache(maxsize=None)
def compile_pattern(java: str):
    return regex.compile(_translate(java), regex.DOTALL)


def matches(java: str, value: str) -> bool:
    return compile_pattern(java).fullmatch(value) is not None
