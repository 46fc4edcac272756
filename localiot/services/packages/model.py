"""How software packages and package versions live in the store, their ARNs,
and the client tokens that make their calls idempotent.

Kinds (per account and region):
- "package": one document per package name.
- "packageversion": "{package}/{version}" (neither name can hold "/"), with
  index entries "package" (the package name) and "status".
- "package-token": "{operation}/{clientToken}": what a call with a client
  token answered, so a retry answers the same and a reuse with other
  parameters is refused (ConflictException).
- "package-configuration": the account's configuration ("config").

ARNs: `package/{name}` and `package/{name}/version/{version}`; both take tags.
"""

from __future__ import annotations

import hashlib
import json

from localiot.protocol.errors import ServiceError
from localiot.services.common import taggable

PACKAGE = "package"
VERSION = "packageversion"
TOKEN = "package-token"
CONFIGURATION = "package-configuration"

DRAFT, PUBLISHED, DEPRECATED = "DRAFT", "PUBLISHED", "DEPRECATED"
ATTRIBUTES_BYTES = 3072  # "The combined size of all the attributes on a package version is limited to 3KB."


def package_arn(ctx, name: str) -> str:
    return ctx.arn(f"package/{name}")


def version_arn(ctx, package: str, version: str) -> str:
    return ctx.arn(f"package/{package}/version/{version}")


def version_key(package: str, version: str) -> str:
    return f"{package}/{version}"


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def get_package(ctx, name: str) -> dict:
    doc = ctx.tx.get(PACKAGE, name)
    if doc is None:
        raise not_found(f"Package {name} cannot be found.")
    return doc


def get_version(ctx, package: str, version: str) -> dict:
    doc = ctx.tx.get(VERSION, version_key(package, version))
    if doc is None:
        raise not_found(f"Package version {version} of package {package} cannot be found.")
    return doc


def save_version(ctx, doc: dict) -> None:
    ctx.tx.put(VERSION, version_key(doc["packageName"], doc["versionName"]), doc,
               {"package": doc["packageName"], "status": doc["status"]})


def _exists(tx, resource_id: str) -> bool:
    package, sep, rest = resource_id.partition("/version/")
    if not sep:
        return "/" not in package and tx.get(PACKAGE, package) is not None
    return "/" not in rest and tx.get(VERSION, version_key(package, rest)) is not None


taggable("package", _exists)


# client tokens --------------------------------------------------------------------
def _fingerprint(req: dict) -> str:
    body = {k: v for k, v in req.items() if k != "clientToken"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def replay(ctx, operation: str, req: dict) -> dict | None:
    """The earlier answer to this call's client token, or None when it is new.
    The same token with other parameters is a ConflictException."""
    token = req.get("clientToken")
    if not token:
        return None
    seen = ctx.tx.get(TOKEN, f"{operation}/{token}")
    if seen is None:
        return None
    if seen["fingerprint"] != _fingerprint(req):
        raise ServiceError("ConflictException",
                           f"The client token {token} was already used for a {operation} request with other parameters.")
    return seen["response"]


def remember(ctx, operation: str, req: dict, response: dict) -> dict:
    token = req.get("clientToken")
    if token:
        ctx.tx.put(TOKEN, f"{operation}/{token}", {"fingerprint": _fingerprint(req), "response": response})
    return response


def check_attributes(attributes: dict | None) -> dict:
    attributes = dict(attributes or {})
    size = sum(len(k.encode()) + len(v.encode()) for k, v in attributes.items())
    if size > ATTRIBUTES_BYTES:
        raise validation(f"The combined size of all the attributes on a package version is limited to 3KB "
                         f"({size} bytes given).")
    return attributes
