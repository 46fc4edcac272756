"""Which AWS IoT log level applies to a client, from the stored logging options.

Storage (one document per account and region, kind "logging-options"):
  name "v1": {"roleArn", "logLevel"}                      SetLoggingOptions
  name "v2": {"roleArn", "defaultLogLevel", "disableAllLogs", "eventConfigurations"}
kind "log-level", name "<targetType>/<targetName>": {"targetType", "targetName",
  "logLevel"}, index "type" -> targetType                 SetV2LoggingLevel

`level_for(tx, client_id=..., thing_name=..., source_ip=..., principal_id=...)`
answers the level for one client, most specific target first as AWS IoT's
resource-specific logging documents it: CLIENT_ID, then SOURCE_IP, then
PRINCIPAL_ID, then THING_GROUP (a level on the thing's own group beats one on
a parent group; between groups of equal nearness the more verbose level), then
the v2 default (none set: DISABLED). `disableAllLogs` turns everything off. Without v2 options the
v1 level applies; without either, logging is not configured (None).
"""

from __future__ import annotations

from localiot.services.registry.things import MEMBER_OF  # links: thing group -> thing

OPTIONS = "logging-options"
LEVEL = "log-level"
GROUP_KIND = "thinggroup"

# DISABLED (lowest) ... DEBUG (highest verbosity)
VERBOSITY = {"DISABLED": 0, "ERROR": 1, "WARN": 2, "INFO": 3, "DEBUG": 4}
SPECIFIC_TARGETS = ("CLIENT_ID", "SOURCE_IP", "PRINCIPAL_ID")


def level_key(target_type: str, target_name: str) -> str:
    return f"{target_type}/{target_name}"


def v1_options(tx) -> dict | None:
    return tx.get(OPTIONS, "v1")


def v2_options(tx) -> dict | None:
    return tx.get(OPTIONS, "v2")


def logging_enabled(tx) -> bool:
    """Whether any AWS IoT logging is on (the LOGGING_DISABLED_CHECK's question)."""
    v2 = v2_options(tx)
    if v2 is not None:
        if v2.get("disableAllLogs"):
            return False
        if v2.get("defaultLogLevel", "DISABLED") != "DISABLED":
            return True
        return any(doc["logLevel"] != "DISABLED" for _, doc in tx.scan(LEVEL))
    v1 = v1_options(tx)
    return v1 is not None and v1.get("logLevel", "ERROR") != "DISABLED"


def _group_level(tx, thing_name: str) -> str | None:
    best: tuple[int, int] | None = None  # (nearness, -verbosity): smaller wins
    found = None
    for group_name in tx.linked_to(MEMBER_OF, thing_name):
        group = tx.get(GROUP_KIND, group_name)
        if group is None:
            continue
        chain = [group_name] + [a["groupName"] for a in reversed(group.get("ancestors") or [])]
        for nearness, name in enumerate(chain):
            doc = tx.get(LEVEL, level_key("THING_GROUP", name))
            if doc is None:
                continue
            key = (nearness, -VERBOSITY[doc["logLevel"]])
            if best is None or key < best:
                best, found = key, doc["logLevel"]
            break
    return found


def level_for(tx, *, client_id: str | None = None, thing_name: str | None = None,
              source_ip: str | None = None, principal_id: str | None = None) -> str | None:
    """The log level (DEBUG/INFO/WARN/ERROR/DISABLED) for one client, or None
    when the account never configured logging."""
    v2 = v2_options(tx)
    if v2 is None:
        v1 = v1_options(tx)
        return None if v1 is None else v1.get("logLevel", "ERROR")
    if v2.get("disableAllLogs"):
        return "DISABLED"
    for target_type, name in zip(SPECIFIC_TARGETS, (client_id, source_ip, principal_id)):
        if name:
            doc = tx.get(LEVEL, level_key(target_type, name))
            if doc is not None:
                return doc["logLevel"]
    if thing_name:
        level = _group_level(tx, thing_name)
        if level is not None:
            return level
    return v2.get("defaultLogLevel", "DISABLED")
