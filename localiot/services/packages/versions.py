"""Package versions: CreatePackageVersion, GetPackageVersion, UpdatePackageVersion,
DeletePackageVersion, ListPackageVersions, and the version lifecycle.

From AWS's "Package version lifecycle": a version is created DRAFT, where
its description, attributes, artifact and tags can change; DRAFT ->
PUBLISHED (action PUBLISH); PUBLISHED -> DEPRECATED (DEPRECATE) and
DEPRECATED -> PUBLISHED (PUBLISH). Once published, "the package version
attributes and artifacts location become immutable"; the description and
the recipe ("can be updated when a package version is in the published
status") still change. Any other transition is refused. A version named as
the package's default cannot be deleted until the default is changed or
unset.
"""

from __future__ import annotations

from localiot.protocol.errors import ServiceError
from localiot.services import operation
from localiot.services.common import apply_tags, paginate
from localiot.services.packages import model
from localiot.services.packages.model import DEPRECATED, DRAFT, PACKAGE, PUBLISHED, VERSION

TRANSITIONS = {("PUBLISH", DRAFT): PUBLISHED, ("PUBLISH", DEPRECATED): PUBLISHED, ("DEPRECATE", PUBLISHED): DEPRECATED}


def _view(doc: dict) -> dict:
    return {
        "packageVersionArn": doc["packageVersionArn"],
        "packageName": doc["packageName"],
        "versionName": doc["versionName"],
        "description": doc.get("description"),
        "attributes": doc.get("attributes") or {},
        "status": doc["status"],
        "errorReason": doc.get("errorReason"),
    }


def _artifact(value: dict | None) -> dict | None:
    if not value:
        return None
    location = value.get("s3Location") or {}
    if not location.get("bucket") or not location.get("key"):
        raise model.validation("The artifact needs an s3Location with a bucket and a key.")
    return {"s3Location": {k: location[k] for k in ("bucket", "key", "version") if location.get(k)}}


@operation("iot")
def CreatePackageVersion(ctx, req):
    earlier = model.replay(ctx, "CreatePackageVersion", req)
    if earlier is not None:
        return earlier
    package, name = req["packageName"], req["versionName"]
    if ctx.tx.get(PACKAGE, package) is None:
        raise model.validation(f"Package {package} does not exist.")
    if ctx.tx.get(VERSION, model.version_key(package, name)) is not None:
        raise ServiceError("ConflictException", f"Package version {name} of package {package} already exists.")
    at = ctx.now()
    doc = {
        "packageName": package,
        "versionName": name,
        "packageVersionArn": model.version_arn(ctx, package, name),
        "description": req.get("description"),
        "attributes": model.check_attributes(req.get("attributes")),
        "artifact": _artifact(req.get("artifact")),
        "recipe": req.get("recipe"),
        "status": DRAFT,
        "creationDate": at,
        "lastModifiedDate": at,
    }
    model.save_version(ctx, doc)
    apply_tags(ctx, doc["packageVersionArn"], req.get("tags") or {})
    return model.remember(ctx, "CreatePackageVersion", req, _view(doc))


@operation("iot")
def GetPackageVersion(ctx, req):
    doc = model.get_version(ctx, req["packageName"], req["versionName"])
    return {**_view(doc), "artifact": doc.get("artifact"), "recipe": doc.get("recipe"),
            "creationDate": doc["creationDate"], "lastModifiedDate": doc["lastModifiedDate"]}


@operation("iot")
def UpdatePackageVersion(ctx, req):
    if model.replay(ctx, "UpdatePackageVersion", req) is not None:
        return {}
    doc = model.get_version(ctx, req["packageName"], req["versionName"])
    label = f"Package version {doc['versionName']} of package {doc['packageName']}"
    if req.get("attributes") is not None or req.get("artifact") is not None:
        if doc["status"] != DRAFT:
            raise model.validation(f"{label} is {doc['status']}: its attributes and artifact can be updated only "
                                   "in the DRAFT state.")
        if req.get("attributes") is not None:
            doc["attributes"] = model.check_attributes(req["attributes"])
        if req.get("artifact") is not None:
            doc["artifact"] = _artifact(req["artifact"])
    for field in ("description", "recipe"):
        if field in req:
            doc[field] = req[field]
    action = req.get("action")
    if action:
        status = TRANSITIONS.get((action, doc["status"]))
        if status is None:
            raise model.validation(f"{label} is {doc['status']} and cannot take the action {action}.")
        doc["status"] = status
    doc["lastModifiedDate"] = ctx.now()
    model.save_version(ctx, doc)
    model.remember(ctx, "UpdatePackageVersion", req, {})
    return {}


@operation("iot")
def DeletePackageVersion(ctx, req):
    package, name = req["packageName"], req["versionName"]
    doc = ctx.tx.get(VERSION, model.version_key(package, name))
    if doc is None:
        return {}
    owner = ctx.tx.get(PACKAGE, package)
    if owner is not None and owner.get("defaultVersionName") == name:
        raise model.validation(f"Package version {name} is the default version of package {package}: name another "
                               "default version or unset it with UpdatePackage before deleting it.")
    ctx.tx.delete(VERSION, model.version_key(package, name))
    ctx.tx.drop_tags(doc["packageVersionArn"])
    return {}


@operation("iot")
def ListPackageVersions(ctx, req):
    rows = ctx.tx.find(VERSION, "package", req["packageName"])
    docs = [doc for _, doc in rows if not req.get("status") or doc["status"] == req["status"]]
    docs.sort(key=lambda d: d["versionName"])
    found, extra = paginate(ctx, req, docs, key=lambda d: d["versionName"])
    return {"packageVersionSummaries": [{
        "packageName": d["packageName"], "versionName": d["versionName"], "status": d["status"],
        "creationDate": d["creationDate"], "lastModifiedDate": d["lastModifiedDate"],
    } for d in found], **extra}
