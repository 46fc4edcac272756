"""Account audit configuration: which checks are enabled (with their custom
configuration), the audit role and the SNS notification target.

Stored as one document, kind "audit-configuration" name "current":
{"roleArn", "checks": {name: {"enabled", "configuration"?}}, "targets": {"SNS": {...}}}.
"""

from __future__ import annotations

import re

from localiot.protocol.errors import invalid, not_found
from localiot.services import operation
from localiot.services.defender import catalog

KIND = "audit-configuration"
SCHEDULED = "scheduled-audit"  # scheduled audits (localiot.services.defender.scheduled)
ROLE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
SNS_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$")


def current(tx) -> dict | None:
    return tx.get(KIND, "current")


def enabled_checks(tx) -> list[str]:
    doc = current(tx)
    if doc is None:
        return []
    return sorted(name for name, c in doc["checks"].items() if c.get("enabled"))


def threshold_days(tx, check_name: str) -> int:
    key, default, _, _ = catalog.CUSTOM_CONFIG[check_name]
    doc = current(tx) or {"checks": {}}
    value = (doc["checks"].get(check_name) or {}).get("configuration", {}).get(key)
    return int(value) if value is not None else default


def _role(value: str, what: str = "roleArn") -> None:
    if not ROLE_ARN.match(value):
        raise invalid(f"{what} {value} is not a valid IAM role ARN.")


def _check_config(name: str, given: dict, scheduled_checks: set[str]) -> dict:
    catalog.check(name)
    out = {"enabled": bool(given.get("enabled", False))}
    configuration = given.get("configuration") or {}
    if configuration:
        spec = catalog.CUSTOM_CONFIG.get(name)
        for key, value in configuration.items():
            if spec is None or key != spec[0]:
                raise invalid(f"Configuration {key} does not apply to check {name}.")
            if not str(value).isdigit() or not spec[2] <= int(value) <= spec[3]:
                raise invalid(f"{key} must be a whole number of days between {spec[2]} and {spec[3]}.")
        out["configuration"] = {k: str(v) for k, v in configuration.items()}
    if not out["enabled"] and name in scheduled_checks:
        raise invalid(f"Check {name} is used by a scheduled audit; remove it from the scheduled audit first.")
    return out


@operation("iot")
def UpdateAccountAuditConfiguration(ctx, req):
    doc = current(ctx.tx)
    first = doc is None
    doc = doc or {"checks": {}, "targets": {}}
    if req.get("roleArn") is not None:
        _role(req["roleArn"])
        doc["roleArn"] = req["roleArn"]
    elif first:
        raise invalid("roleArn is required on the first call to UpdateAccountAuditConfiguration.")
    given = req.get("auditCheckConfigurations") or {}
    if first and not any(c.get("enabled") for c in given.values()):
        raise invalid("The first UpdateAccountAuditConfiguration must enable at least one audit check.")
    scheduled_checks = {c for _, s in ctx.tx.scan(SCHEDULED) for c in s["targetCheckNames"]}
    for name, config in given.items():
        doc["checks"][name] = _check_config(name, config, scheduled_checks)
    for key, target in (req.get("auditNotificationTargetConfigurations") or {}).items():
        if key != "SNS":
            raise invalid(f"{key} is not a valid audit notification type.")
        if target.get("targetArn") is not None and not SNS_ARN.match(target["targetArn"]):
            raise invalid(f"targetArn {target['targetArn']} is not a valid SNS topic ARN.")
        if target.get("roleArn") is not None:
            _role(target["roleArn"])
        merged = {**doc["targets"].get(key, {}), **{k: v for k, v in target.items() if v is not None}}
        if merged.get("enabled") and not (merged.get("targetArn") and merged.get("roleArn")):
            raise invalid("An enabled SNS notification target needs targetArn and roleArn.")
        doc["targets"][key] = merged
    ctx.tx.put(KIND, "current", doc)
    return {}


@operation("iot")
def DescribeAccountAuditConfiguration(ctx, req):
    doc = current(ctx.tx) or {"checks": {}, "targets": {}}
    checks = {}
    for name in catalog.CHECKS:
        stored = doc["checks"].get(name) or {}
        checks[name] = {"enabled": bool(stored.get("enabled"))}
        if stored.get("configuration"):
            checks[name]["configuration"] = stored["configuration"]
    out = {"auditCheckConfigurations": checks}
    if doc.get("targets"):
        out["auditNotificationTargetConfigurations"] = doc["targets"]
    if doc.get("roleArn"):
        out["roleArn"] = doc["roleArn"]
    return out


@operation("iot")
def DeleteAccountAuditConfiguration(ctx, req):
    if current(ctx.tx) is None:
        raise not_found("The audit configuration of this account does not exist.")
    scheduled = ctx.tx.scan(SCHEDULED)
    if scheduled and not req.get("deleteScheduledAudits"):
        raise invalid("The account has scheduled audits; set deleteScheduledAudits to delete them with the "
                      "audit configuration.")
    for name, doc in scheduled:
        ctx.tx.delete(SCHEDULED, name)
        ctx.tx.drop_tags(doc["scheduledAuditArn"])
    ctx.tx.delete(KIND, "current")
    return {}


def require_enabled(tx, names: list[str]) -> None:
    """InvalidRequestException unless every check is known and enabled."""
    enabled = set(enabled_checks(tx))
    for name in names:
        catalog.check(name)
        if name not in enabled:
            raise invalid(f"Check {name} is not enabled in the account's audit configuration.")


