"""Security profiles: behaviors, alert targets, metrics to retain, versions;
their targets (all things, all registered things, a static or dynamic thing
group) and which profiles apply to a thing.

Kind "security-profile" (name = securityProfileName, index "metric",
"dimension"); targets are the link TARGET (src = profile name, dst = target ARN).
"""

from __future__ import annotations

import re

from localiot.protocol.errors import ServiceError, invalid
from localiot.services import operation
from localiot.services.common import Resource, check_version, paginate, tags_to_dict
from localiot.services.defender import detect_catalog as catalog, detect_ml, device_stats, metrics_export, violations
from localiot.services.defender.configuration import ROLE_ARN, SNS_ARN
from localiot.services.registry.things import KIND as THING, MEMBER_OF

PROFILE = Resource("security-profile", "securityprofile/{name}",
                   not_found="Security profile {name} does not exist.",
                   exists="Security profile {name} already exists.", arn_field="securityProfileArn", taggable=True)
TARGET = "defender-profile-target"
GROUP = "thinggroup"
_TARGET_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iot:([a-z0-9-]+):(\d{12}):(all/things|all/registered-things|"
                         r"thinggroup/([a-zA-Z0-9:_-]+))$")
FIELDS = ("securityProfileName", "securityProfileArn", "securityProfileDescription", "behaviors", "alertTargets",
          "additionalMetricsToRetain", "additionalMetricsToRetainV2", "version", "creationDate", "lastModifiedDate",
          "metricsExportConfig")


def _index(doc: dict) -> dict:
    metrics = [b["metric"] for b in doc.get("behaviors") or [] if b.get("metric")]
    metrics += [m["metric"] for m in doc.get("additionalMetricsToRetainV2") or []]
    dims = [b["metricDimension"]["dimensionName"] for b in doc.get("behaviors") or [] if b.get("metricDimension")]
    dims += [m["metricDimension"]["dimensionName"] for m in doc.get("additionalMetricsToRetainV2") or []
             if m.get("metricDimension")]
    return {"metric": sorted(set(metrics)), "dimension": sorted(set(dims))}


def public(doc: dict) -> dict:
    return {k: doc[k] for k in FIELDS if doc.get(k) is not None}


def _behaviors(ctx, behaviors: list[dict]) -> list[dict]:
    if len(behaviors) > 100:
        raise invalid("A security profile can have at most 100 behaviors.")
    errors = catalog.validate_behaviors(ctx.tx, behaviors)
    if errors:
        raise invalid(errors[0])
    return behaviors


def _alert_targets(targets: dict) -> dict:
    for kind, target in targets.items():
        if kind != "SNS":
            raise invalid(f"{kind} is not a valid alert target type.")
        if not SNS_ARN.match(target.get("alertTargetArn") or ""):
            raise invalid(f"alertTargetArn {target.get('alertTargetArn')} is not a valid SNS topic ARN.")
        if not ROLE_ARN.match(target.get("roleArn") or ""):
            raise invalid(f"roleArn {target.get('roleArn')} is not a valid IAM role ARN.")
    return targets


def _retained(ctx, req: dict) -> list[dict] | None:
    if req.get("additionalMetricsToRetain") and req.get("additionalMetricsToRetainV2"):
        raise invalid("Specify either additionalMetricsToRetain or additionalMetricsToRetainV2, not both.")
    given = req.get("additionalMetricsToRetainV2")
    if given is None and req.get("additionalMetricsToRetain") is not None:
        given = [{"metric": m} for m in req["additionalMetricsToRetain"]]
    for m in given or []:
        if catalog.metric_of(ctx.tx, m["metric"]) is None:
            raise invalid(f"Metric {m['metric']} is not supported.")
        if m.get("metricDimension") and ctx.tx.get("detect-dimension", m["metricDimension"]["dimensionName"]) is None:
            raise invalid(f"Dimension {m['metricDimension']['dimensionName']} does not exist.")
    return given


@operation("iot")
def CreateSecurityProfile(ctx, req):
    name = req["securityProfileName"]
    PROFILE.ensure_absent(ctx, name)
    now = ctx.now()
    doc = {"securityProfileName": name, "securityProfileArn": PROFILE.arn(ctx, name), "version": 1,
           "creationDate": now, "lastModifiedDate": now, "behaviors": _behaviors(ctx, req.get("behaviors") or [])}
    if req.get("securityProfileDescription") is not None:
        doc["securityProfileDescription"] = req["securityProfileDescription"]
    if req.get("alertTargets"):
        doc["alertTargets"] = _alert_targets(req["alertTargets"])
    retained = _retained(ctx, req)
    if retained is not None:
        doc["additionalMetricsToRetainV2"] = retained
    if req.get("metricsExportConfig"):
        doc["metricsExportConfig"] = req["metricsExportConfig"]
    metrics_export.check(doc)
    PROFILE.create(ctx, name, doc, tags_to_dict(req.get("tags")), _index(doc))
    detect_ml.sync(ctx, name, [], doc["behaviors"])
    return {"securityProfileName": name, "securityProfileArn": doc["securityProfileArn"]}


@operation("iot")
def DescribeSecurityProfile(ctx, req):
    return public(PROFILE.get(ctx, req["securityProfileName"]))


@operation("iot")
def UpdateSecurityProfile(ctx, req):
    name = req["securityProfileName"]
    doc = PROFILE.get(ctx, name)
    check_version("security profile", name, doc["version"], req.get("expectedVersion"))
    for key, flag in (("behaviors", "deleteBehaviors"), ("alertTargets", "deleteAlertTargets"),
                      ("additionalMetricsToRetainV2", "deleteAdditionalMetricsToRetain"),
                      ("metricsExportConfig", "deleteMetricsExportConfig")):
        given = req.get(key) if key != "additionalMetricsToRetainV2" else (
            req.get(key) or req.get("additionalMetricsToRetain"))
        if req.get(flag) and given:
            raise invalid(f"Specify either {key} or {flag}, not both.")
    old = {b["name"]: b for b in doc.get("behaviors") or []}
    if req.get("deleteBehaviors"):
        doc["behaviors"] = []
    elif req.get("behaviors") is not None:
        doc["behaviors"] = _behaviors(ctx, req["behaviors"])
    if req.get("deleteAlertTargets"):
        doc.pop("alertTargets", None)
    elif req.get("alertTargets") is not None:
        doc["alertTargets"] = _alert_targets(req["alertTargets"])
    if req.get("deleteAdditionalMetricsToRetain"):
        doc.pop("additionalMetricsToRetainV2", None)
    else:
        retained = _retained(ctx, req)
        if retained is not None:
            doc["additionalMetricsToRetainV2"] = retained
    if req.get("deleteMetricsExportConfig"):
        doc.pop("metricsExportConfig", None)
    elif req.get("metricsExportConfig") is not None:
        doc["metricsExportConfig"] = req["metricsExportConfig"]
    if req.get("securityProfileDescription") is not None:
        doc["securityProfileDescription"] = req["securityProfileDescription"]
    metrics_export.check(doc)
    doc["version"] += 1
    doc["lastModifiedDate"] = ctx.now()
    PROFILE.put(ctx, name, doc, _index(doc))
    detect_ml.sync(ctx, name, list(old.values()), doc["behaviors"])
    kept = {b["name"]: b for b in doc["behaviors"]}
    # a behavior that went away or changed invalidates its active violations
    changed = {n for n, b in old.items() if kept.get(n) != b}
    if changed:
        violations.invalidate(ctx, name, lambda v: v["behavior"]["name"] in changed)
    return public(doc)


@operation("iot")
def DeleteSecurityProfile(ctx, req):
    name = req["securityProfileName"]
    doc = PROFILE.find(ctx, name)
    if doc is None:
        return {}  # AWS answers 200 for a profile that is not there
    check_version("security profile", name, doc["version"], req.get("expectedVersion"))
    violations.invalidate(ctx, name, lambda v: True)
    violations.forget_profile(ctx, name)
    detect_ml.forget(ctx, name)
    device_stats.forget(ctx, name)
    ctx.tx.unlink_all(TARGET, src=name)
    PROFILE.delete(ctx, name)
    return {}


@operation("iot")
def ListSecurityProfiles(ctx, req):
    if req.get("dimensionName") and req.get("metricName"):
        raise invalid("Specify either dimensionName or metricName, not both.")
    if req.get("dimensionName"):
        rows = ctx.tx.find(PROFILE.kind, "dimension", req["dimensionName"])
    elif req.get("metricName"):
        rows = ctx.tx.find(PROFILE.kind, "metric", req["metricName"])
    else:
        rows = PROFILE.list(ctx)
    rows = sorted(rows, key=lambda row: row[0])
    found, extra = paginate(ctx, req, rows, key=lambda row: row[0])
    return {"securityProfileIdentifiers": [{"name": d["securityProfileName"], "arn": d["securityProfileArn"]}
                                           for _, d in found], **extra}


@operation("iot")
def ValidateSecurityProfileBehaviors(ctx, req):
    errors = catalog.validate_behaviors(ctx.tx, req["behaviors"])
    return {"valid": not errors, "validationErrors": [{"errorMessage": e} for e in errors]}


# targets -------------------------------------------------------------------------------
def _target(ctx, arn: str) -> str:
    m = _TARGET_ARN.match(arn)
    if m is None:
        raise invalid(f"{arn} is not a valid security profile target ARN.")
    if (m.group(1), m.group(2)) != (ctx.region, ctx.account):
        raise ServiceError("ResourceNotFoundException", f"Target {arn} does not exist.")
    if m.group(4) and ctx.tx.get(GROUP, m.group(4)) is None:
        raise ServiceError("ResourceNotFoundException", f"Thing group {m.group(4)} does not exist.")
    return arn


@operation("iot")
def AttachSecurityProfile(ctx, req):
    name = req["securityProfileName"]
    PROFILE.get(ctx, name)
    ctx.tx.link(TARGET, name, _target(ctx, req["securityProfileTargetArn"]))
    return {}


@operation("iot")
def DetachSecurityProfile(ctx, req):
    name = req["securityProfileName"]
    PROFILE.get(ctx, name)
    arn = req["securityProfileTargetArn"]
    if not ctx.tx.unlink(TARGET, name, arn):
        raise ServiceError("ResourceNotFoundException",
                           f"Security profile {name} is not attached to {arn}.")
    violations.invalidate(ctx, name, lambda v: name not in profiles_for_thing(ctx.tx, ctx, v["thingName"]))
    return {}


@operation("iot")
def ListTargetsForSecurityProfile(ctx, req):
    PROFILE.get(ctx, req["securityProfileName"])
    arns = sorted(ctx.tx.linked(TARGET, req["securityProfileName"]))
    found, extra = paginate(ctx, req, arns)
    return {"securityProfileTargets": [{"arn": a} for a in found], **extra}


@operation("iot")
def ListSecurityProfilesForTarget(ctx, req):
    arn = _target(ctx, req["securityProfileTargetArn"])
    arns = [arn]
    if req.get("recursive"):
        m = _TARGET_ARN.match(arn)
        if m.group(4):  # the group's ancestors, whose profiles apply to its things too
            group = ctx.tx.get(GROUP, m.group(4))
            arns += [a["groupArn"] for a in group.get("ancestors") or []]
    rows = sorted((profile, target) for target in arns for profile in ctx.tx.linked_to(TARGET, target))
    found, extra = paginate(ctx, req, rows)
    out = []
    for profile, target in found:
        doc = PROFILE.get(ctx, profile)
        out.append({"securityProfileIdentifier": {"name": profile, "arn": doc["securityProfileArn"]},
                    "target": {"arn": target}})
    return {"securityProfileTargetMappings": out, **extra}


# which profiles apply ------------------------------------------------------------------------
def profiles_for_thing(tx, ctx, thing: str) -> set[str]:
    """Names of the security profiles that apply to `thing`: attached to all things, to all
    registered things (when it is registered), or to a group it belongs to or one of its ancestors."""
    prefix = f"arn:aws:iot:{ctx.region}:{ctx.account}:"
    names = set(tx.linked_to(TARGET, prefix + "all/things"))
    if tx.get(THING, thing) is None:
        return names
    names |= set(tx.linked_to(TARGET, prefix + "all/registered-things"))
    for group_name in tx.linked_to(MEMBER_OF, thing):
        group = tx.get(GROUP, group_name)
        if group is None:
            continue
        for arn in [group.get("thingGroupArn") or prefix + f"thinggroup/{group_name}"] + [
                a["groupArn"] for a in group.get("ancestors") or []]:
            names |= set(tx.linked_to(TARGET, arn))
    return names
