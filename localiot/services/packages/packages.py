"""Software packages: CreatePackage, GetPackage, UpdatePackage, DeletePackage, ListPackages.

A package names its default version (optional): only a PUBLISHED or
DEPRECATED version can be the default ("can't be named as the default
version until you transition the package version to published"), and
naming a default and unsetDefaultVersion together is refused. "All package
versions must be deleted before deleting the software package"; deleting
one that is not there succeeds (the API models no not-found error for it).
"""

from __future__ import annotations

from localiot.protocol.errors import ServiceError
from localiot.services import operation
from localiot.services.common import apply_tags, paginate
from localiot.services.packages import model
from localiot.services.packages.model import DEPRECATED, PACKAGE, PUBLISHED, VERSION


def _created(doc: dict) -> dict:
    return {"packageName": doc["packageName"], "packageArn": doc["packageArn"], "description": doc.get("description")}


@operation("iot")
def CreatePackage(ctx, req):
    earlier = model.replay(ctx, "CreatePackage", req)
    if earlier is not None:
        return earlier
    name = req["packageName"]
    if ctx.tx.get(PACKAGE, name) is not None:
        raise ServiceError("ConflictException", f"Package {name} already exists.")
    at = ctx.now()
    doc = {
        "packageName": name,
        "packageArn": model.package_arn(ctx, name),
        "description": req.get("description"),
        "defaultVersionName": None,
        "creationDate": at,
        "lastModifiedDate": at,
    }
    ctx.tx.put(PACKAGE, name, doc)
    apply_tags(ctx, doc["packageArn"], req.get("tags") or {})
    return model.remember(ctx, "CreatePackage", req, _created(doc))


@operation("iot")
def GetPackage(ctx, req):
    doc = model.get_package(ctx, req["packageName"])
    return {**_created(doc), "defaultVersionName": doc.get("defaultVersionName"),
            "creationDate": doc["creationDate"], "lastModifiedDate": doc["lastModifiedDate"]}


@operation("iot")
def UpdatePackage(ctx, req):
    if model.replay(ctx, "UpdatePackage", req) is not None:
        return {}
    doc = model.get_package(ctx, req["packageName"])
    default = req.get("defaultVersionName")
    if default and req.get("unsetDefaultVersion"):
        raise model.validation("You cannot name a defaultVersion and set unsetDefaultVersion equal to true "
                               "at the same time.")
    if default:
        version = model.get_version(ctx, doc["packageName"], default)
        if version["status"] not in (PUBLISHED, DEPRECATED):
            raise model.validation(f"Package version {default} is {version['status']}: only a PUBLISHED or "
                                   "DEPRECATED version can be the default version.")
        doc["defaultVersionName"] = default
    elif req.get("unsetDefaultVersion"):
        doc["defaultVersionName"] = None
    if "description" in req:
        doc["description"] = req["description"]
    doc["lastModifiedDate"] = ctx.now()
    ctx.tx.put(PACKAGE, doc["packageName"], doc)
    model.remember(ctx, "UpdatePackage", req, {})
    return {}


@operation("iot")
def DeletePackage(ctx, req):
    name = req["packageName"]
    doc = ctx.tx.get(PACKAGE, name)
    if doc is None:
        return {}
    if ctx.tx.find(VERSION, "package", name, limit=1):
        raise model.validation(f"All package versions must be deleted before deleting the software package {name}.")
    ctx.tx.delete(PACKAGE, name)
    ctx.tx.drop_tags(doc["packageArn"])
    return {}


@operation("iot")
def ListPackages(ctx, req):
    docs = [doc for _, doc in ctx.tx.scan(PACKAGE)]
    found, extra = paginate(ctx, req, docs, key=lambda d: d["packageName"])
    return {"packageSummaries": [{
        "packageName": d["packageName"], "defaultVersionName": d.get("defaultVersionName"),
        "creationDate": d["creationDate"], "lastModifiedDate": d["lastModifiedDate"],
    } for d in found], **extra}
