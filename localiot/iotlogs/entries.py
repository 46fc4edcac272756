"""One AWS IoT log entry: its fields in AWS's order, its level, its JSON line.

Field names and values are those of AWS IoT's "CloudWatch AWS IoT log
entries" page (see the package docstring). An entry is a plain dict, built
only once the caller knows it will be written.
"""

from __future__ import annotations

import json
import random
import time

# log levels, least to most verbose (localiot.services.logging_options.levels.VERBOSITY)
DISABLED, ERROR, WARN, INFO, DEBUG = 0, 1, 2, 3, 4
LEVEL_NAMES = {ERROR: "ERROR", WARN: "WARN", INFO: "INFO", DEBUG: "DEBUG"}

SUCCESS, FAILURE = "Success", "Failure"

# reasons (AWS's strings)
AUTHORIZATION_FAILURE = "AUTHORIZATION_FAILURE"
AUTHENTICATION_FAILURE = "AUTHENTICATION_FAILURE"
CLIENT_ERROR = "CLIENT_ERROR"
SERVER_ERROR = "SERVER_ERROR"

# the common attributes first, then each event's own, in the order AWS's examples show them
_ORDER = ("timestamp", "logLevel", "traceId", "accountId", "status", "eventType", "protocol", "topicName",
          "deviceShadowName", "clientId", "jobId", "clientToken", "versionNumber", "ruleName", "ruleAction",
          "resources", "principalId", "provisioningTemplateName", "deviceCertificateId", "sourceIp", "sourcePort",
          "reason", "details", "disconnectReason")


_second: tuple = (None, "")  # the last whole second formatted, and its text (one assignment: thread-safe)
_encode = json.JSONEncoder(separators=(", ", ": "), default=str).encode


def timestamp(now: float) -> str:
    """AWS's entry timestamp: "2017-08-10 15:37:23.476" (UTC)."""
    global _second
    second = int(now)
    cached, text = _second
    if cached != second:
        text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        _second = (second, text)
    return f"{text}.{int(now * 1000) % 1000:03d}"


def trace_id() -> str:
    """A random identifier in AWS's traceId shape (8-4-4-4-12 hex digits)."""
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def build(now: float, level: int, status: str, event_type: str, account: str, fields: dict,
          trace: str | None = None) -> dict:
    """The entry: common attributes, then the event's fields (None values left out)."""
    entry = {"timestamp": timestamp(now), "logLevel": LEVEL_NAMES[level], "traceId": trace or trace_id(),
             "accountId": account, "status": status, "eventType": event_type}
    for key in _ORDER[6:]:
        value = fields.get(key)
        if value is not None:
            entry[key] = value
    for key, value in fields.items():  # anything else an event carries, after the known ones
        if key not in entry and value is not None:
            entry[key] = value
    return entry


def line(entry: dict) -> str:
    """One JSON line (no newline inside, so grep and jq work on the server log)."""
    return _encode(entry)
