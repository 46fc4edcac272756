"""Reads the constraints of CreateManagedThing's request fields from the copy
of its API reference page (tests/data), so the tests check what the page says."""

from __future__ import annotations

import re
from pathlib import Path

PAGE = Path(__file__).parent / "data" / "managed-integrations-CreateManagedThing.txt"


def _lines() -> list[str]:
    return [line.strip() for line in PAGE.read_text().splitlines()]


def request_fields() -> dict[str, dict]:
    """Field name -> {type, min, max, pattern, enum, required, entries_max, key_*, value_*}."""
    lines = _lines()
    body = lines[lines.index("Request Body") + 1 : lines.index("Response Syntax")]
    fields: dict[str, dict] = {}
    current = None
    syntax = lines[lines.index("Request Syntax") + 2]
    names = set(re.findall(r'"([A-Z][A-Za-z]+)":', syntax))  # the body's top-level members are capitalized
    for line in body:
        if line in names:
            current = fields.setdefault(line, {"required": False})
            continue
        if current is None:
            continue
        _read_constraint(current, line)
    return fields


def response_fields() -> dict[str, dict]:
    lines = _lines()
    body = lines[lines.index("Response Elements") + 1 : lines.index("Errors")]
    fields: dict[str, dict] = {}
    current = None
    for line in body:
        if re.fullmatch(r"[A-Z][A-Za-z]+", line):
            current = fields.setdefault(line, {})
        elif current is not None:
            _read_constraint(current, line)
    return fields


def errors() -> dict[str, int]:
    lines = _lines()
    body = lines[lines.index("Errors") + 1 :]
    found = {}
    for i, line in enumerate(body):
        m = re.fullmatch(r"HTTP Status Code: (\d+)", line)
        if m:
            found[body[i - 4]] = int(m.group(1))
    return found


def _read_constraint(field: dict, line: str) -> None:
    if m := re.fullmatch(r"Type: (.+)", line):
        field["type"] = m.group(1)
    elif m := re.fullmatch(r"(Key |Value )?Length Constraints: Minimum length of (\d+)\. Maximum length of (\d+)\.", line):
        prefix = (m.group(1) or "").strip().lower()
        field[f"{prefix}_min" if prefix else "min"] = int(m.group(2))
        field[f"{prefix}_max" if prefix else "max"] = int(m.group(3))
    elif m := re.fullmatch(r"(Key |Value )?Pattern: (.+)", line):
        prefix = (m.group(1) or "").strip().lower()
        field[f"{prefix}_pattern" if prefix else "pattern"] = m.group(2)
    elif m := re.fullmatch(r"Valid Values: (.+)", line):
        field["enum"] = [v.strip() for v in m.group(1).split("|")]
    elif m := re.fullmatch(r"Map Entries: Maximum number of (\d+) items\.", line):
        field["entries_max"] = int(m.group(1))
    elif m := re.fullmatch(r"Required: (Yes|No)", line):
        field["required"] = m.group(1) == "Yes"
