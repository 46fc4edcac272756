"""Timestamp formats of the AWS protocols, both directions."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime, parsedate_to_datetime


def parse(value, fmt: str | None = None) -> float:
    """Epoch seconds from a number, an epoch string, ISO 8601 or RFC 822."""
    if isinstance(value, bool):
        raise ValueError("boolean is not a timestamp")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    if fmt == "rfc822" or (text[:3].isalpha() and "," in text):
        return parsedate_to_datetime(text).timestamp()
    iso = text.replace("Z", "+00:00")
    parsed = dt.datetime.fromisoformat(iso)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


def format(epoch: float, fmt: str) -> str | float:
    if fmt == "unixTimestamp":
        return round(epoch, 3)
    moment = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    if fmt == "rfc822":
        return format_datetime(moment, usegmt=True)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
