"""Joda-Time style date patterns for parse_time() (format) and time_to_epoch() (parse).

Pattern letters: G era, C century, Y year of era, y year, x week-year,
w week of week-year, e day of week (1 = Monday), E day of week text,
D day of year, M month (MMM short text, MMMM full text), d day of month,
a AM/PM, K hour of half-day (0-11), h clock hour of half-day (1-12),
H hour of day (0-23), k clock hour of day (1-24), m minute, s second,
S fraction of second, z time zone name, Z offset (Z +0800, ZZ +08:00,
ZZZ zone id), V/VV zone id; 'quoted text', '' for a quote.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LETTERS = set("GCYyxweEDMdaKhHkmsSzZV")
NUMERIC = set("CYyxweDdKhHkmsS")
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# java.time.ZoneId.SHORT_IDS
SHORT_IDS = {
    "EST": "-05:00", "MST": "-07:00", "HST": "-10:00", "ACT": "Australia/Darwin", "AET": "Australia/Sydney",
    "AGT": "America/Argentina/Buenos_Aires", "ART": "Africa/Cairo", "AST": "America/Anchorage",
    "BET": "America/Sao_Paulo", "BST": "Asia/Dhaka", "CAT": "Africa/Harare", "CNT": "America/St_Johns",
    "CST": "America/Chicago", "CTT": "Asia/Shanghai", "EAT": "Africa/Addis_Ababa", "ECT": "Europe/Paris",
    "IET": "America/Indiana/Indianapolis", "IST": "Asia/Kolkata", "JST": "Asia/Tokyo", "MIT": "Pacific/Apia",
    "NET": "Asia/Yerevan", "NST": "Pacific/Auckland", "PLT": "Asia/Karachi", "PNT": "America/Phoenix",
    "PRT": "America/Puerto_Rico", "PST": "America/Los_Angeles", "SST": "Pacific/Guadalcanal",
    "VST": "Asia/Ho_Chi_Minh",
}
OFFSET = re.compile(r"(?:UTC|GMT|UT)?([+-])(\d{1,2})(?::?(\d{2}))?")
ZONE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*")


def resolve_zone(name: str) -> tzinfo:
    """A Joda/java.time zone: UTC, fixed offsets (+01:00, UTC+1), region ids, short ids."""
    name = name.strip()
    if name.upper() in ("UTC", "Z", "GMT", "UT", "ZULU"):
        return UTC
    match = OFFSET.fullmatch(name)
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta > timedelta(hours=18):
            raise ValueError(f"offset out of range: {name}")
        return timezone(-delta if sign == "-" else delta)
    if name in SHORT_IDS:
        return resolve_zone(SHORT_IDS[name])
    if not ZONE_ID.fullmatch(name) or ".." in name:
        raise ValueError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def tokenize(pattern: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "'":
            if pattern.startswith("''", i):
                tokens.append(("lit", "'"))
                i += 2
                continue
            j, buf = i + 1, []
            while True:
                if j >= len(pattern):
                    raise ValueError("unterminated quote in date pattern")
                if pattern[j] == "'":
                    if pattern.startswith("''", j):
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(pattern[j])
                j += 1
            tokens.append(("lit", "".join(buf)))
            i = j + 1
        elif c.isascii() and c.isalpha():
            if c not in LETTERS:
                raise ValueError(f"illegal pattern letter {c!r}")
            j = i
            while j < len(pattern) and pattern[j] == c:
                j += 1
            tokens.append((c, j - i))
            i = j
        else:
            tokens.append(("lit", c))
            i += 1
    return tokens


def _offset_text(offset: timedelta, colon: bool) -> str:
    total = int(offset.total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total), 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"


def _zone_id(tz: tzinfo, dt: datetime) -> str:
    if tz is UTC:
        return "UTC"
    if isinstance(tz, ZoneInfo):
        return tz.key
    return _offset_text(dt.utcoffset() or timedelta(0), True)


def format_epoch(pattern: str, epoch_ms: int, zone: str = "UTC") -> str:
    tz = resolve_zone(zone)
    dt = (EPOCH + timedelta(milliseconds=epoch_ms)).astimezone(tz)
    out = []
    for letter, count in tokenize(pattern):
        if letter == "lit":
            out.append(count)
            continue
        out.append(_format_field(letter, count, dt, tz))
    return "".join(out)


def _pad(value: int, count: int) -> str:
    return ("-" if value < 0 else "") + str(abs(value)).zfill(count)


def _format_field(letter: str, count: int, dt: datetime, tz: tzinfo) -> str:
    if letter == "G":
        return "AD"
    if letter in "yYx":
        year = dt.isocalendar()[0] if letter == "x" else dt.year
        return str(year % 100).zfill(2) if count == 2 else _pad(year, count)
    if letter == "C":
        return _pad(dt.year // 100, count)
    if letter == "w":
        return _pad(dt.isocalendar()[1], count)
    if letter == "e":
        return _pad(dt.isoweekday(), count)
    if letter == "E":
        name = DAYS[dt.weekday()]
        return name if count >= 4 else name[:3]
    if letter == "D":
        return _pad(dt.timetuple().tm_yday, count)
    if letter == "M":
        if count >= 4:
            return MONTHS[dt.month - 1]
        if count == 3:
            return MONTHS[dt.month - 1][:3]
        return _pad(dt.month, count)
    if letter == "d":
        return _pad(dt.day, count)
    if letter == "a":
        return "AM" if dt.hour < 12 else "PM"
    if letter == "K":
        return _pad(dt.hour % 12, count)
    if letter == "h":
        return _pad(dt.hour % 12 or 12, count)
    if letter == "H":
        return _pad(dt.hour, count)
    if letter == "k":
        return _pad(dt.hour or 24, count)
    if letter == "m":
        return _pad(dt.minute, count)
    if letter == "s":
        return _pad(dt.second, count)
    if letter == "S":
        millis = f"{dt.microsecond // 1000:03d}"
        return millis[:count] if count <= 3 else millis + "0" * (count - 3)
    if letter == "z":
        if tz is UTC:
            return "Coordinated Universal Time" if count >= 4 else "UTC"
        if isinstance(tz, ZoneInfo):
            return (dt.tzname() or tz.key) if count < 4 else tz.key
        return _offset_text(dt.utcoffset() or timedelta(0), True)
    if letter == "Z":
        if count >= 3:
            return _zone_id(tz, dt)
        return _offset_text(dt.utcoffset() or timedelta(0), count == 2)
    if letter == "V":
        return _zone_id(tz, dt)
    raise ValueError(f"illegal pattern letter {letter!r}")


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------

ZONE_TEXT = (r"(?:Z|[+-]\d{2}:?\d{2}|(?:UTC|GMT|UT)(?:[+-]\d{1,2}(?::?\d{2})?)?"
             r"|[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*)")


def _is_numeric(token: tuple[str, Any]) -> bool:
    letter, count = token
    return letter in NUMERIC or (letter == "M" and count < 3)


def parse_to_epoch(text: str, pattern: str) -> int:
    """Milliseconds since the epoch of `text` read with `pattern`; ValueError if it does not match."""
    tokens = tokenize(pattern)
    regex, fields = [], []
    for i, token in enumerate(tokens):
        letter, count = token
        if letter == "lit":
            regex.append(re.escape(count))
            continue
        adjacent = i + 1 < len(tokens) and tokens[i + 1][0] != "lit" and _is_numeric(tokens[i + 1])
        if _is_numeric(token):
            if adjacent:
                part = rf"\d{{{count}}}"
            elif letter in "yYx":
                part = r"[+-]?\d{1,9}"
            elif letter == "S":
                part = r"\d{1,9}"
            else:
                part = rf"\d{{1,{max(count, 3 if letter == 'D' else 2)}}}"
        elif letter == "M":
            part = "|".join(MONTHS + [m[:3] for m in MONTHS])
        elif letter == "E":
            part = "|".join(DAYS + [d[:3] for d in DAYS])
        elif letter == "a":
            part = "AM|PM|am|pm"
        elif letter == "G":
            part = "AD|BC|ad|bc"
        else:  # z Z V
            part = ZONE_TEXT
        regex.append(f"({part})")
        fields.append(token)
    match = re.fullmatch("".join(regex), text.strip(), re.IGNORECASE)
    if match is None:
        raise ValueError(f"{text!r} does not match the pattern {pattern!r}")
    values: dict[str, Any] = {}
    for (letter, count), raw in zip(fields, match.groups()):
        if letter == "M" and count >= 3:
            names = [m.lower() for m in MONTHS]
            raw_lower = raw.lower()
            values["M"] = next(i + 1 for i, m in enumerate(names) if m == raw_lower or m[:3] == raw_lower)
        elif letter in "yYx" and count == 2 and len(raw) <= 2:
            values["y"] = 2000 + int(raw)
        elif letter in "yYx":
            values["y"] = int(raw)
        elif letter == "S":
            values["S"] = int((raw + "000")[:3])
        elif letter in "zZV":
            values["zone"] = raw
        elif letter in "aGE":
            values[letter] = raw.upper()
        else:
            values[letter] = int(raw)
    year = values.get("y", 1970)
    if "D" in values and "M" not in values:
        start = datetime(year, 1, 1) + timedelta(days=values["D"] - 1)
        month, day = start.month, start.day
    else:
        month, day = values.get("M", 1), values.get("d", 1)
    if "H" in values:
        hour = values["H"]
    elif "k" in values:
        hour = values["k"] % 24
    elif "h" in values or "K" in values:
        hour = values.get("h", values.get("K", 0)) % 12 + (12 if values.get("a") == "PM" else 0)
    else:
        hour = 0
    tz = resolve_zone(values["zone"]) if "zone" in values else UTC
    local = datetime(year, month, day, hour, values.get("m", 0), values.get("s", 0),
                     values.get("S", 0) * 1000, tzinfo=tz)
    return (local - EPOCH) // timedelta(milliseconds=1)

