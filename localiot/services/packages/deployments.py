"""The package configuration and what the catalog does for jobs.

- GetPackageConfiguration / UpdatePackageConfiguration:
  `versionUpdateByJobsConfig` {enabled, roleArn}: "If configured, Jobs
  updates the thing's reserved named shadow with the package version
  information up on successful job completion" (API reference,
  VersionUpdateByJobsConfig). Enabling it needs the role.
- A job's `destinationPackageVersions` (at most 25 package version ARNs, one
  per package, in the caller's account and region) are checked when the job
  is created (hooks.JOB_CREATING, fired by the jobs family): the package must
  exist and the version be PUBLISHED or DEPRECATED ("You can still deploy
  jobs with a deprecated package version"); `.../version/$default` is
  replaced by the package's default version and `.../version/$null` asks to
  remove the package from the shadow ("a reserved placeholder that prompts
  the AWS IoT Jobs service to remove the existing software package").
- When an execution of such a job SUCCEEDS (hooks.JOB_EXECUTION_SUCCEEDED)
  and the configuration is enabled, the thing's reserved named shadow
  `$package` is updated, in the same unit of work, with
  `{"state": {"reported": {"<packageName>": {"version": "<versionName>"}}}}`
  (the structure of the `$package` shadow in AWS's guide). A version deleted
  while the job ran is not written: "you will receive an error message when
  the job successfully completes and attempts to update the reserved named
  shadow": the error goes to the shadow's `update/rejected` topic.
"""

from __future__ import annotations

import json
import re

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import hooks, operation
from localiot.services.iam import is_role_arn
from localiot.services.packages import model
from localiot.services.packages.model import CONFIGURATION, DEPRECATED, PUBLISHED, VERSION
from localiot.shadows import service as shadows
from localiot.shadows.document import ShadowError

MAX_DESTINATIONS = 25
PACKAGE_SHADOW = "$package"
_VERSION_ARN = re.compile(r"^arn:aws[a-z-]*:iot:([a-z0-9-]+):(\d{12}):package/([a-zA-Z0-9-_.]+)/version/"
                          r"([a-zA-Z0-9-_.]+|\$default|\$null)$")


def configuration(ctx) -> dict:
    stored = ctx.tx.get(CONFIGURATION, "config") or {}
    return stored.get("versionUpdateByJobsConfig") or {"enabled": False}


@operation("iot")
def GetPackageConfiguration(ctx, req):
    return {"versionUpdateByJobsConfig": configuration(ctx)}


@operation("iot")
def UpdatePackageConfiguration(ctx, req):
    if model.replay(ctx, "UpdatePackageConfiguration", req) is not None:
        return {}
    given = req.get("versionUpdateByJobsConfig")
    if given is not None:
        config = dict(configuration(ctx))
        if "enabled" in given:
            config["enabled"] = bool(given["enabled"])
        if given.get("roleArn"):
            if not is_role_arn(given["roleArn"]):
                raise model.validation(f"roleArn {given['roleArn']} is not a valid IAM role ARN.")
            config["roleArn"] = given["roleArn"]
        if config.get("enabled") and not config.get("roleArn"):
            raise model.validation("versionUpdateByJobsConfig needs a roleArn to be enabled.")
        ctx.tx.put(CONFIGURATION, "config", {"versionUpdateByJobsConfig": config})
    model.remember(ctx, "UpdatePackageConfiguration", req, {})
    return {}


# jobs -------------------------------------------------------------------------------
def parse_version_arn(ctx, arn: str) -> tuple[str, str]:
    found = _VERSION_ARN.match(arn)
    if found is None:
        raise invalid(f"{arn} is not a package version ARN.")
    region, account, package, version = found.groups()
    if (region, account) != (ctx.region, ctx.account):
        raise invalid(f"Package version {arn} is not in account {ctx.account} and region {ctx.region}.")
    return package, version


def check_destinations(ctx, spec: dict) -> None:
    """hooks.JOB_CREATING: refuse versions a job cannot deploy; resolve $default."""
    arns = spec.get("destinationPackageVersions")
    if not arns:
        return
    if len(arns) > MAX_DESTINATIONS:
        raise ServiceError("LimitExceededException",
                           f"A job can have at most {MAX_DESTINATIONS} destinationPackageVersions.")
    resolved, packages = [], set()
    for arn in arns:
        package, version = parse_version_arn(ctx, arn)
        if package in packages:
            raise invalid(f"destinationPackageVersions names package {package} more than once.")
        packages.add(package)
        owner = ctx.tx.get(model.PACKAGE, package)
        if owner is None:
            raise not_found(f"Package {package} cannot be found.")
        if version == "$default":
            version = owner.get("defaultVersionName")
            if not version:
                raise invalid(f"Package {package} has no default version for {arn}.")
            arn = model.version_arn(ctx, package, version)
        if version != "$null":
            doc = ctx.tx.get(VERSION, model.version_key(package, version))
            if doc is None:
                raise not_found(f"Package version {version} of package {package} cannot be found.")
            if doc["status"] not in (PUBLISHED, DEPRECATED):
                raise invalid(f"Package version {version} of package {package} is {doc['status']}: only a PUBLISHED "
                              "or DEPRECATED version can be deployed.")
        resolved.append(arn)
    if resolved != list(arns):
        spec["destinationPackageVersionsBeforeSubstitution"] = list(arns)
    spec["destinationPackageVersions"] = resolved


def report_installed(ctx, job: dict, execution: dict) -> None:
    """hooks.JOB_EXECUTION_SUCCEEDED: write the job's versions to the thing's $package shadow."""
    arns = job.get("destinationPackageVersions")
    if not arns or not configuration(ctx).get("enabled"):
        return
    thing = execution["thingName"]
    reported, missing = {}, []
    for arn in arns:
        package, version = parse_version_arn(ctx, arn)
        if version == "$null":
            reported[package] = None
        elif ctx.tx.get(VERSION, model.version_key(package, version)) is None:
            missing.append(f"{package}/{version}")
        else:
            reported[package] = {"version": version}
    if missing:
        error = ShadowError(404, f"Job {job['jobId']} succeeded on {thing} but package version(s) "
                                 f"{', '.join(missing)} no longer exist: the {PACKAGE_SHADOW} shadow was not "
                                 "updated for them.")
        ctx.publish(f"{shadows.topic_prefix(thing, PACKAGE_SHADOW)}/update/rejected", error.document())
    if reported:
        shadows.update_shadow(ctx, thing, PACKAGE_SHADOW, json.dumps({"state": {"reported": reported}}),
                              publish_rejected=True)


hooks.on(hooks.JOB_CREATING, check_destinations)
hooks.on(hooks.JOB_EXECUTION_SUCCEEDED, report_installed)
