"""The logging-options API: v1 and v2 options, resource-specific v2 log levels."""

from __future__ import annotations

import re

from localiot.protocol.errors import ServiceError, invalid
from localiot.services import operation
from localiot.services.common import paginate
from localiot.services.logging_options.levels import GROUP_KIND, LEVEL, OPTIONS, level_key, v1_options, v2_options

ROLE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
# AWS IoT quota: resource-specific logging configurations per account and region.
MAX_LOG_LEVELS = 1000


def _role_arn(value: str | None) -> None:
    if value is not None and not ROLE_ARN.match(value):
        raise invalid(f"The role ARN {value} is not a valid IAM role ARN.")


def _not_configured() -> ServiceError:
    return ServiceError("NotConfiguredException", "Logging options are not configured. Call SetV2LoggingOptions first.")


def set_v2_options(ctx, options: dict) -> None:
    """Store v2 options (SetV2LoggingOptions and the ENABLE_IOT_LOGGING mitigation)."""
    _role_arn(options.get("roleArn"))
    doc = {"disableAllLogs": bool(options.get("disableAllLogs", False))}
    for key in ("roleArn", "defaultLogLevel", "eventConfigurations"):
        if options.get(key) is not None:
            doc[key] = options[key]
    ctx.tx.put(OPTIONS, "v2", doc)


@operation("iot")
def GetLoggingOptions(ctx, req):
    doc = v1_options(ctx.tx) or {}
    return {key: doc[key] for key in ("roleArn", "logLevel") if key in doc}


@operation("iot")
def SetLoggingOptions(ctx, req):
    payload = req["loggingOptionsPayload"]
    _role_arn(payload["roleArn"])
    doc = {"roleArn": payload["roleArn"], "logLevel": payload.get("logLevel") or "ERROR"}
    ctx.tx.put(OPTIONS, "v1", doc)
    return {}


@operation("iot")
def GetV2LoggingOptions(ctx, req):
    doc = v2_options(ctx.tx)
    if doc is None:
        raise _not_configured()
    return dict(doc)


@operation("iot")
def SetV2LoggingOptions(ctx, req):
    set_v2_options(ctx, req)
    return {}


def _target(req: dict) -> tuple[str, str]:
    target = req.get("logTarget") or req
    target_type, name = target["targetType"], target.get("targetName")
    if target_type == "DEFAULT":
        raise invalid("The DEFAULT log level is set with SetV2LoggingOptions (defaultLogLevel).")
    if not name:
        raise invalid(f"targetName is required for target type {target_type}.")
    return target_type, name


@operation("iot")
def SetV2LoggingLevel(ctx, req):
    if v2_options(ctx.tx) is None:
        raise _not_configured()
    target_type, name = _target(req)
    if target_type == "THING_GROUP" and ctx.tx.get(GROUP_KIND, name) is None:
        raise invalid(f"Thing Group {name} cannot be found.")
    key = level_key(target_type, name)
    if ctx.tx.get(LEVEL, key) is None and ctx.tx.count(LEVEL) >= MAX_LOG_LEVELS:
        raise ServiceError("LimitExceededException",
                           f"An account can have at most {MAX_LOG_LEVELS} resource-specific log levels.")
    ctx.tx.put(LEVEL, key, {"targetType": target_type, "targetName": name, "logLevel": req["logLevel"]},
               {"type": target_type})
    return {}


@operation("iot")
def ListV2LoggingLevels(ctx, req):
    if v2_options(ctx.tx) is None:
        raise _not_configured()
    target_type = req.get("targetType")
    if target_type:
        rows = ctx.tx.find(LEVEL, "type", target_type)
    else:
        rows = ctx.tx.scan(LEVEL)
    rows.sort(key=lambda row: row[0])
    found, extra = paginate(ctx, req, rows, key=lambda row: row[0])
    configs = [{"logTarget": {"targetType": d["targetType"], "targetName": d["targetName"]}, "logLevel": d["logLevel"]}
               for _, d in found]
    return {"logTargetConfigurations": configs, **extra}


@operation("iot")
def DeleteV2LoggingLevel(ctx, req):
    target_type, name = _target(req)
    ctx.tx.delete(LEVEL, level_key(target_type, name))
    return {}
