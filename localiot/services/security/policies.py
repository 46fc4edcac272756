"""IoT policies: versions, effective policies, TestAuthorization; helpers for the broker.

A policy is a "policy" document named after the policy:

    {policyName, policyArn, defaultVersionId, lastVersionId,
     versions: {"1": {document, creationDate, lastModifiedDate, isDefault}},
     creationDate, lastModifiedDate, generationId}

Version ids count up and are never reused (`lastVersionId`). Attachments
(attachments.py) are links: POLICY_TARGET (src = policy name, dst = a
certificate ARN, thing group ARN or Cognito identity id) and
things.PRINCIPALS (src = thing name, dst = principal).

For the broker: `connection_authorization(tx, principal, client_id, now=...,
extra={"aws:SourceIp": ...})` -> (thing name, compiled policies, variables),
built from `connection_thing` (the thing a connection is associated with),
`effective_policies` / `effective_policy_documents` (what the connection is
subject to) and `connection_variables` (its policy variables); then
`compiled.is_allowed("iot:Publish", topic_arn, variables)` per message.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

from localiot.policy import PolicyError, Variables, certificate_variables, compile_policies, parse_policy
from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import Affects, operation
from localiot.services.common import apply_tags, page_list, tags_to_dict
from localiot.services.registry.things import MEMBER_OF, PRINCIPALS
from localiot.services.tagging import taggable

KIND = "policy"
POLICY_TARGET = "policy-target"  # links: policy name -> target
THING_PRINCIPAL_KIND = "thing-principal"  # doc f"{thing}|{principal}": {"thingPrincipalType": ...}
CERT_KIND = "cert"
GROUP_KIND = "thinggroup"
MAX_VERSIONS = 5  # AWS IoT: a policy has at most five versions
DEFAULT_PAGE_SIZE = 250
ACTIONS = {"PUBLISH": "iot:Publish", "SUBSCRIBE": "iot:Subscribe", "RECEIVE": "iot:Receive", "CONNECT": "iot:Connect"}
EXCLUSIVE, NON_EXCLUSIVE = "EXCLUSIVE_THING", "NON_EXCLUSIVE_THING"

_COGNITO_ID = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+:[0-9a-fA-F-]+$")

taggable("policy", lambda tx, name: tx.get(KIND, name) is not None)


# lookups ---------------------------------------------------------------------
def policy_arn(tx, name: str) -> str:
    return f"arn:aws:iot:{tx.region}:{tx.account}:policy/{name}"


def get(ctx, name: str) -> dict:
    doc = ctx.tx.get(KIND, name)
    if doc is None:
        raise not_found(f"The policy {name} does not exist.")
    return doc


def default_document(doc: dict) -> str:
    return doc["versions"][doc["defaultVersionId"]]["document"]


def ref(doc: dict) -> dict:
    return {"policyName": doc["policyName"], "policyArn": doc["policyArn"]}


def validated(text: str) -> str:
    try:
        parse_policy(text)
    except PolicyError as error:
        raise ServiceError("MalformedPolicyException", str(error)) from None
    return text


def _generation() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:32]


# principals and targets --------------------------------------------------------
def classify(tx, value: str, *, allow_group: bool = True, allow_other_arns: bool = False) -> tuple[str, str]:
    """("cert", certificate id) | ("thinggroup", group name) | ("cognito", id) | ("arn", arn).

    Raises InvalidRequestException for something that is none of those.
    """
    parts = value.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn":
        service, resource = parts[2], parts[5]
        kind, sep, resource_id = resource.partition("/")
        if service == "iot" and sep and resource_id:
            if kind == "cert":
                return "cert", resource_id
            if kind == "thinggroup" and allow_group:
                return "thinggroup", resource_id
        if allow_other_arns and service != "iot":
            return "arn", value
        raise invalid(f"Invalid principal or target: {value}")
    if _COGNITO_ID.match(value):
        return "cognito", value
    raise invalid(
        f"Invalid principal or target: {value}. Use a certificate ARN (arn:aws:iot:region:account:cert/id)"
        + (", a thing group ARN" if allow_group else "")
        + " or an Amazon Cognito identity id (region:id)."
    )


def existing(tx, value: str, **kwargs) -> tuple[str, str, dict | None, str]:
    """`classify`, then check that a certificate or thing group is there (ResourceNotFoundException).

    Returns (kind, key, document, canonical form of `value`)."""
    kind, key = classify(tx, value, **kwargs)
    doc = None
    canonical = value
    if kind == "cert":
        key = key.lower()  # certificate ids are stored in lower case
        doc = tx.get(CERT_KIND, key)
        arn = (doc or {}).get("certificateArn") or f"arn:aws:iot:{tx.region}:{tx.account}:cert/{key}"
        if doc is None or arn.lower() != value.lower():
            raise not_found(f"The certificate {value} does not exist.")
        canonical = arn
    elif kind == "thinggroup":
        doc = tx.get(GROUP_KIND, key)
        if doc is None or doc.get("thingGroupArn", value) != value:
            raise not_found(f"Thing Group {value} cannot be found.")
    return kind, key, doc, canonical


def group_chain(tx, name: str) -> list[dict]:
    """A thing group's document and its ancestors', nearest first."""
    out, seen = [], set()
    doc = tx.get(GROUP_KIND, name)
    while doc is not None and name not in seen:
        out.append(doc)
        seen.add(name)
        parent = doc.get("parentGroupName") or (doc.get("thingGroupMetadata") or {}).get("parentGroupName")
        if not parent:
            break
        name, doc = parent, tx.get(GROUP_KIND, parent)
    return out


def attached_to(tx, target: str) -> list[str]:
    """Names of the policies attached directly to a target, by name."""
    return tx.linked_to(POLICY_TARGET, target)


def _group_policy_names(tx, group_name: str) -> list[str]:
    names = []
    for doc in group_chain(tx, group_name):
        names.extend(attached_to(tx, doc["thingGroupArn"]))
    return names


def _unique(names) -> list[str]:
    seen, out = set(), []
    for name in names:
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def effective_policy_names(tx, principal: str | None, thing_name: str | None = None) -> list[str]:
    """Policies of the principal (a thing group principal: and its ancestors), then of the
    thing's groups and their ancestors; each once, in that order."""
    names: list[str] = []
    if principal:
        if principal.startswith("arn:") and ":thinggroup/" in principal:
            names.extend(_group_policy_names(tx, principal.split(":thinggroup/", 1)[1]))
        else:
            names.extend(attached_to(tx, principal))
    if thing_name:
        for group in sorted(tx.linked_to(MEMBER_OF, thing_name)):
            names.extend(_group_policy_names(tx, group))
    return _unique(names)


def effective_policies(tx, principal: str | None, thing_name: str | None = None) -> list[dict]:
    """The policy documents (default versions) in effect: [{policyName, policyArn, policyDocument}]."""
    out = []
    for name in effective_policy_names(tx, principal, thing_name):
        doc = tx.get(KIND, name)
        if doc is not None:
            out.append({**ref(doc), "policyDocument": default_document(doc)})
    return out


def effective_policy_documents(tx, principal_arn: str, thing_name: str | None = None) -> list[str]:
    """Default-version documents of the policies attached to the principal and to the
    thing's groups and their ancestors (for the broker)."""
    return [p["policyDocument"] for p in effective_policies(tx, principal_arn, thing_name)]


def thing_principal_type(tx, thing_name: str, principal: str) -> str:
    doc = tx.get(THING_PRINCIPAL_KIND, f"{thing_name}|{principal}")
    return (doc or {}).get("thingPrincipalType") or NON_EXCLUSIVE


def connection_thing(tx, principal: str | None, client_id: str | None) -> str | None:
    """The thing a connection is associated with: the thing the principal is attached to
    exclusively, else the thing named like the client id if it is attached to the principal."""
    if not principal:
        return None
    for thing_name in tx.linked_to(PRINCIPALS, principal):
        if thing_principal_type(tx, thing_name, principal) == EXCLUSIVE:
            return thing_name
    if client_id and tx.is_linked(PRINCIPALS, client_id, principal):
        return client_id
    return None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def connection_variables(tx, principal: str | None, client_id: str | None, thing_name: str | None = None, *,
                         now: float | None = None, extra: dict | None = None) -> Variables:
    """Policy variables / condition keys of a connection.

    iot:ClientId, iot:Connection.Thing.* (when `thing_name` is the connection's
    thing), iot:Certificate.* (certificate principals), Cognito identity keys,
    aws:CurrentTime / aws:EpochTime; `extra` adds or overrides (aws:SourceIp,
    iot:DomainName, ...).
    """
    values: dict[str, object] = {}
    if client_id:
        values["iot:ClientId"] = client_id
    if principal:
        kind = None
        try:
            kind, key = classify(tx, principal, allow_other_arns=True)
        except ServiceError:
            pass
        if kind == "cert":
            cert = tx.get(CERT_KIND, key.lower())
            if cert and cert.get("certificatePem"):
                try:
                    values.update(certificate_variables(cert["certificatePem"]))
                except (ValueError, TypeError):
                    pass
        elif kind == "cognito":
            values["cognito-identity.amazonaws.com:sub"] = principal
    thing = tx.get("thing", thing_name) if thing_name else None
    if thing is not None:
        values["iot:Connection.Thing.ThingName"] = thing["thingName"]
        if thing.get("thingTypeName"):
            values["iot:Connection.Thing.ThingTypeName"] = thing["thingTypeName"]
        for attr, value in (thing.get("attributes") or {}).items():
            values[f"iot:Connection.Thing.Attributes[{attr}]"] = value
        values["iot:Connection.Thing.IsAttached"] = "true"
    elif client_id:
        values["iot:Connection.Thing.IsAttached"] = "false"
    if now is not None:
        values["aws:CurrentTime"] = _iso(now)
        values["aws:EpochTime"] = str(int(now))
    values.update(extra or {})
    return Variables(values)


def connection_authorization(tx, principal: str | None, client_id: str | None, *, now: float | None = None,
                             extra: dict | None = None):
    """Everything the broker needs to authorize one connection, computed once at CONNECT:
    (thing name or None, CompiledPolicySet of the effective policies, Variables)."""
    thing_name = connection_thing(tx, principal, client_id)
    compiled = compile_policies(
        [(p["policyName"], p["policyDocument"]) for p in effective_policies(tx, principal, thing_name)]
    )
    return thing_name, compiled, connection_variables(tx, principal, client_id, thing_name, now=now, extra=extra)


# markers (ListPolicies & co.): base64 that fits the model's [A-Za-z0-9+/]+={0,2} ------
def marker_page(items: list, req: dict, key=lambda item: item, *, descending: bool = False):
    """Page a list already sorted by `key` with pageSize / marker. Returns (items, nextMarker)."""
    return page_list(items, req, key, descending=descending, default_size=DEFAULT_PAGE_SIZE,
                     size_key="pageSize", token_key="marker")


def by_creation(docs: list[dict], ascending: bool) -> list[dict]:
    return sorted(docs, key=_creation_key, reverse=not ascending)


def _creation_key(doc: dict) -> tuple:
    return (doc["creationDate"], doc["policyName"])


def list_policies_page(docs: list[dict], req: dict) -> tuple[list[dict], str | None]:
    """Policies in creation order, as the spec documents: ascending unless the
    caller sends ascendingOrder=false (the list order of every List operation)."""
    ascending = req.get("ascendingOrder") is not False
    return marker_page(by_creation(docs, ascending), req, _creation_key, descending=not ascending)


# policies --------------------------------------------------------------------
@operation("iot")
def CreatePolicy(ctx, req):
    name = req["policyName"]
    text = validated(req["policyDocument"])
    arn = policy_arn(ctx.tx, name)
    if ctx.tx.get(KIND, name) is not None:
        raise ServiceError(
            "ResourceAlreadyExistsException",
            f"Policy cannot be created - name already exists (name={name})",
            resourceId=name, resourceArn=arn,
        )
    now = ctx.now()
    doc = {
        "policyName": name,
        "policyArn": arn,
        "defaultVersionId": "1",
        "lastVersionId": 1,
        "versions": {"1": {"document": text, "creationDate": now, "lastModifiedDate": now, "isDefault": True}},
        "creationDate": now,
        "lastModifiedDate": now,
        "generationId": _generation(),
    }
    ctx.tx.put(KIND, name, doc)
    apply_tags(ctx, arn, tags_to_dict(req.get("tags")))
    return {"policyName": name, "policyArn": arn, "policyDocument": text, "policyVersionId": "1"}


@operation("iot")
def GetPolicy(ctx, req):
    doc = get(ctx, req["policyName"])
    return {
        **ref(doc),
        "policyDocument": default_document(doc),
        "defaultVersionId": doc["defaultVersionId"],
        "creationDate": doc["creationDate"],
        "lastModifiedDate": doc["lastModifiedDate"],
        "generationId": doc["generationId"],
    }


def live_targets(tx, name: str) -> list[str]:
    """Targets of a policy, dropping links to thing groups that no longer exist."""
    targets = tx.linked(POLICY_TARGET, name)
    live = []
    for target in targets:
        if ":thinggroup/" in target and target.startswith("arn:"):
            group = tx.get(GROUP_KIND, target.split(":thinggroup/", 1)[1])
            if group is None or group.get("thingGroupArn") != target:
                tx.unlink(POLICY_TARGET, name, target)
                continue
        live.append(target)
    return live


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def DeletePolicy(ctx, req):
    name = req["policyName"]
    doc = get(ctx, name)
    if len(doc["versions"]) > 1:
        raise ServiceError(
            "DeleteConflictException",
            f"Cannot delete the policy because it has one or more policy versions attached to it (name={name}). "
            "Delete its non-default versions first.",
        )
    if live_targets(ctx.tx, name):
        raise ServiceError(
            "DeleteConflictException",
            f"The policy cannot be deleted as the policy is attached to one or more principals (name={name})",
        )
    ctx.tx.delete(KIND, name)
    ctx.tx.drop_tags(doc["policyArn"])
    return {}


@operation("iot")
def ListPolicies(ctx, req):
    docs = [doc for _, doc in ctx.tx.scan(KIND)]
    rows, marker = list_policies_page(docs, req)
    return {"policies": [ref(d) for d in rows], "nextMarker": marker}


# versions --------------------------------------------------------------------
def _version(ctx, doc: dict, version_id: str) -> tuple[str, dict]:
    key = str(int(version_id)) if version_id.isdigit() else version_id
    version = doc["versions"].get(key)
    if version is None:
        raise not_found(f"The policy {doc['policyName']} has no version {version_id}.")
    return key, version


def _set_default(doc: dict, key: str, now: float) -> None:
    for vid, version in doc["versions"].items():
        version["isDefault"] = vid == key
    doc["defaultVersionId"] = key
    doc["generationId"] = _generation()
    doc["lastModifiedDate"] = now


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def CreatePolicyVersion(ctx, req):
    name = req["policyName"]
    doc = get(ctx, name)
    text = validated(req["policyDocument"])
    if len(doc["versions"]) >= MAX_VERSIONS:
        raise ServiceError(
            "VersionsLimitExceededException",
            f"The policy {name} already has the maximum number of versions ({MAX_VERSIONS})",
        )
    now = ctx.now()
    number = int(doc.get("lastVersionId") or max(int(v) for v in doc["versions"])) + 1
    key = str(number)
    doc["lastVersionId"] = number
    doc["versions"][key] = {"document": text, "creationDate": now, "lastModifiedDate": now, "isDefault": False}
    doc["lastModifiedDate"] = now
    if req.get("setAsDefault"):
        _set_default(doc, key, now)
    ctx.tx.put(KIND, name, doc)
    return {
        "policyArn": doc["policyArn"],
        "policyDocument": text,
        "policyVersionId": key,
        "isDefaultVersion": doc["defaultVersionId"] == key,
    }


@operation("iot")
def GetPolicyVersion(ctx, req):
    doc = get(ctx, req["policyName"])
    key, version = _version(ctx, doc, req["policyVersionId"])
    return {
        **ref(doc),
        "policyDocument": version["document"],
        "policyVersionId": key,
        "isDefaultVersion": key == doc["defaultVersionId"],
        "creationDate": version["creationDate"],
        "lastModifiedDate": version.get("lastModifiedDate", version["creationDate"]),
        "generationId": doc["generationId"],
    }


@operation("iot")
def ListPolicyVersions(ctx, req):
    doc = get(ctx, req["policyName"])
    versions = sorted(doc["versions"].items(), key=lambda kv: int(kv[0]), reverse=True)
    return {"policyVersions": [
        {"versionId": vid, "isDefaultVersion": vid == doc["defaultVersionId"], "createDate": v["creationDate"]}
        for vid, v in versions
    ]}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def SetDefaultPolicyVersion(ctx, req):
    name = req["policyName"]
    doc = get(ctx, name)
    key, _ = _version(ctx, doc, req["policyVersionId"])
    if key != doc["defaultVersionId"]:
        _set_default(doc, key, ctx.now())
        ctx.tx.put(KIND, name, doc)
    return {}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def DeletePolicyVersion(ctx, req):
    name = req["policyName"]
    doc = get(ctx, name)
    key, _ = _version(ctx, doc, req["policyVersionId"])
    if key == doc["defaultVersionId"]:
        raise ServiceError(
            "DeleteConflictException",
            f"Cannot delete the default version {key} of policy {name}; use DeletePolicy to delete the policy.",
        )
    del doc["versions"][key]
    ctx.tx.put(KIND, name, doc)
    return {}


# effective policies and authorization tests ------------------------------------------
def _principal_for_request(ctx, req) -> tuple[str | None, str | None, dict | None]:
    """(principal, kind, document) of a GetEffectivePolicies / TestAuthorization request."""
    principal = req.get("principal")
    if not principal:
        return None, None, None
    kind, _, doc, principal = existing(ctx.tx, principal)
    return principal, kind, doc


@operation("iot")
def GetEffectivePolicies(ctx, req):
    principal, _, _ = _principal_for_request(ctx, req)
    thing_name = req.get("thingName")
    if thing_name and ctx.tx.get("thing", thing_name) is None:
        raise not_found(f"Thing {thing_name} cannot be found.")
    if not principal and not thing_name:
        raise invalid("Specify a principal, a thingName, or both.")
    return {"effectivePolicies": effective_policies(ctx.tx, principal, thing_name)}


@operation("iot")
def TestAuthorization(ctx, req):
    tx = ctx.tx
    principal, kind, _ = _principal_for_request(ctx, req)
    client_id = req.get("clientId")
    thing_name = connection_thing(tx, principal, client_id) if kind in ("cert", "cognito") else None
    names = effective_policy_names(tx, principal, thing_name)
    for name in req.get("policyNamesToAdd") or []:
        get(ctx, name)
        if name not in names:
            names.append(name)
    skip = set(req.get("policyNamesToSkip") or [])
    docs = [d for d in (tx.get(KIND, n) for n in names if n not in skip) if d is not None]
    compiled = compile_policies([(d["policyName"], default_document(d)) for d in docs])
    refs = {d["policyName"]: ref(d) for d in docs}
    extra = {}
    if kind == "cognito" and req.get("cognitoIdentityPoolId"):
        extra["cognito-identity.amazonaws.com:aud"] = req["cognitoIdentityPoolId"]
    variables = connection_variables(tx, principal, client_id, thing_name, now=ctx.now(), extra=extra)

    results = []
    for info in req["authInfos"]:
        action_type = info.get("actionType")
        if action_type not in ACTIONS:
            raise invalid(f"authInfo actionType must be one of {', '.join(ACTIONS)}.")
        resources = info.get("resources") or []
        if not resources:
            raise invalid("Each authInfo needs at least one resource.")
        allow: set[str] = set()
        deny: set[str] = set()
        missing: set[str] = set()
        outcome = "ALLOWED"
        for resource in resources:
            decision = compiled.evaluate(ACTIONS[action_type], resource, variables)
            allow.update(decision.allowing_policies)
            deny.update(decision.denying_policies)
            missing.update(decision.missing)
            if decision.explicit_deny:
                outcome = "EXPLICIT_DENY"
            elif not decision.allowed and outcome == "ALLOWED":
                outcome = "IMPLICIT_DENY"
        allowed = [refs[n] for n in refs if n in allow and n not in deny]
        explicit = [refs[n] for n in refs if n in deny]
        implicit = [refs[n] for n in refs if n not in allow and n not in deny]
        results.append({
            "authInfo": {"actionType": action_type, "resources": list(resources)},
            "allowed": {"policies": allowed},
            "denied": {"implicitDeny": {"policies": implicit}, "explicitDeny": {"policies": explicit}},
            "authDecision": outcome,
            "missingContextValues": sorted(missing),
        })
    return {"authResults": results}
