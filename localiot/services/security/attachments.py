"""Who a policy applies to, and which principals a thing has.

Policy attachments are links policies.POLICY_TARGET (src = policy name,
dst = certificate ARN, thing group ARN or Cognito identity id).
Thing attachments are links things.PRINCIPALS (src = thing name,
dst = principal) plus a "thing-principal" document f"{thing}|{principal}"
holding {"thingPrincipalType": EXCLUSIVE_THING | NON_EXCLUSIVE_THING}.
"""

from __future__ import annotations

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import Affects, operation
from localiot.services.common import page
from localiot.services.registry import things
from localiot.services.registry.things import PRINCIPALS
from localiot.services.security import policies
from localiot.services.security.policies import (
    EXCLUSIVE,
    NON_EXCLUSIVE,
    POLICY_TARGET,
    THING_PRINCIPAL_KIND,
    attached_to,
    existing,
    group_chain,
    live_targets,
    marker_page,
    ref,
)

# AWS IoT quota: at most 10 policies attached to one certificate, Cognito
# identity or thing group.
MAX_POLICIES_PER_TARGET = 10


# policy attachments ------------------------------------------------------------
def attach(ctx, policy_name: str, target: str) -> None:
    policies.get(ctx, policy_name)
    *_, target = existing(ctx.tx, target)
    tx = ctx.tx
    if tx.is_linked(POLICY_TARGET, policy_name, target):
        return
    if tx.count_links(POLICY_TARGET, dst=target) >= MAX_POLICIES_PER_TARGET:
        raise ServiceError(
            "LimitExceededException",
            f"Cannot attach policy {policy_name} to {target}: at most {MAX_POLICIES_PER_TARGET} "
            "policies can be attached to a target.",
        )
    tx.link(POLICY_TARGET, policy_name, target)


def detach(ctx, policy_name: str, target: str) -> None:
    policies.get(ctx, policy_name)
    if ctx.tx.unlink(POLICY_TARGET, policy_name, target):
        return
    *_, target = existing(ctx.tx, target)  # an unknown target is an error; a policy not attached is not
    ctx.tx.unlink(POLICY_TARGET, policy_name, target)


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def AttachPolicy(ctx, req):
    attach(ctx, req["policyName"], req["target"])
    return {}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def DetachPolicy(ctx, req):
    detach(ctx, req["policyName"], req["target"])
    return {}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def AttachPrincipalPolicy(ctx, req):
    attach(ctx, req["policyName"], req["principal"])
    return {}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def DetachPrincipalPolicy(ctx, req):
    detach(ctx, req["policyName"], req["principal"])
    return {}


@operation("iot")
def ListAttachedPolicies(ctx, req):
    kind, key, _, target = existing(ctx.tx, req["target"])
    names = attached_to(ctx.tx, target)
    if req.get("recursive") and kind == "thinggroup":
        for ancestor in group_chain(ctx.tx, key)[1:]:
            names.extend(attached_to(ctx.tx, ancestor["thingGroupArn"]))
    docs = [d for d in (ctx.tx.get(policies.KIND, n) for n in sorted(set(names))) if d is not None]
    rows, marker = marker_page(docs, req, lambda d: d["policyName"])
    return {"policies": [ref(d) for d in rows], "nextMarker": marker}


@operation("iot")
def ListTargetsForPolicy(ctx, req):
    name = req["policyName"]
    if ctx.tx.get(policies.KIND, name) is None:
        raise not_found("Policy not found")  # AWS's text for this operation
    rows, marker = marker_page(live_targets(ctx.tx, name), req)
    return {"targets": rows, "nextMarker": marker}


@operation("iot")
def ListPrincipalPolicies(ctx, req):
    *_, principal = existing(ctx.tx, req["principal"])
    docs = [d for d in (ctx.tx.get(policies.KIND, n) for n in attached_to(ctx.tx, principal)) if d is not None]
    rows, marker = policies.list_policies_page(docs, req)
    return {"policies": [ref(d) for d in rows], "nextMarker": marker}


@operation("iot")
def ListPolicyPrincipals(ctx, req):
    name = req["policyName"]
    policies.get(ctx, name)
    ascending = req.get("ascendingOrder") is not False  # the list order of every List operation
    targets = sorted(live_targets(ctx.tx, name), reverse=not ascending)
    rows, marker = marker_page(targets, req, descending=not ascending)
    return {"principals": rows, "nextMarker": marker}


# thing principals --------------------------------------------------------------
def _tp_name(thing_name: str, principal: str) -> str:
    return f"{thing_name}|{principal}"


def _principal(ctx, principal: str) -> str:
    *_, canonical = existing(ctx.tx, principal, allow_group=False, allow_other_arns=True)
    return canonical


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def AttachThingPrincipal(ctx, req):
    tx = ctx.tx
    thing_name = req["thingName"]
    things.get(ctx, thing_name)
    principal = _principal(ctx, req["principal"])
    wanted = req.get("thingPrincipalType") or NON_EXCLUSIVE
    others = [t for t in tx.linked_to(PRINCIPALS, principal) if t != thing_name]
    if wanted == EXCLUSIVE and others:
        raise invalid(
            f"Cannot attach principal {principal} to thing {thing_name} exclusively: it is already "
            f"attached to {len(others)} other thing(s) ({', '.join(others[:5])})."
        )
    for other in others:
        if policies.thing_principal_type(tx, other, principal) == EXCLUSIVE:
            raise invalid(
                f"Cannot attach principal {principal} to thing {thing_name}: it is exclusively "
                f"attached to thing {other}."
            )
    tx.link(PRINCIPALS, thing_name, principal)
    tx.put(THING_PRINCIPAL_KIND, _tp_name(thing_name, principal), {
        "thingName": thing_name, "principal": principal, "thingPrincipalType": wanted,
    }, {"principal": principal, "type": wanted})
    return {}


@operation("iot", affects=Affects.DEVICE_RIGHTS)
def DetachThingPrincipal(ctx, req):
    thing_name = req["thingName"]
    things.get(ctx, thing_name)
    principal = req["principal"]
    if not ctx.tx.unlink(PRINCIPALS, thing_name, principal):
        # An unknown principal is an error; one that is not attached is not.
        principal = _principal(ctx, principal)
        ctx.tx.unlink(PRINCIPALS, thing_name, principal)
    ctx.tx.delete(THING_PRINCIPAL_KIND, _tp_name(thing_name, principal))
    return {}


def _type_of(ctx, thing_name: str, principal: str) -> str:
    return policies.thing_principal_type(ctx.tx, thing_name, principal)


@operation("iot")
def ListThingPrincipals(ctx, req):
    name = req["thingName"]
    if ctx.tx.get(things.KIND, name) is None:  # AWS's own text for this operation
        raise not_found(f"Failed to list principals for thing {name} because the thing does not exist in your account")
    rows, token = page(lambda after, limit: ctx.tx.linked(PRINCIPALS, name, after=after, limit=limit), req)
    return {"principals": rows, "nextToken": token}


@operation("iot")
def ListThingPrincipalsV2(ctx, req):
    name = req["thingName"]
    things.get(ctx, name)
    wanted = req.get("thingPrincipalType")

    def fetch(after, limit):
        return [(p, _type_of(ctx, name, p)) for p in ctx.tx.linked(PRINCIPALS, name, after=after, limit=limit)]

    if wanted:
        fetch = things.filtered(fetch, lambda row: row[1] == wanted)
    rows, token = page(fetch, req)
    return {
        "thingPrincipalObjects": [{"principal": p, "thingPrincipalType": t} for p, t in rows],
        "nextToken": token,
    }


@operation("iot")
def ListPrincipalThings(ctx, req):
    principal = _principal(ctx, req["principal"])
    rows, token = page(lambda after, limit: ctx.tx.linked_to(PRINCIPALS, principal, after=after, limit=limit), req)
    return {"things": rows, "nextToken": token}


@operation("iot")
def ListPrincipalThingsV2(ctx, req):
    principal = _principal(ctx, req["principal"])
    wanted = req.get("thingPrincipalType")

    def fetch(after, limit):
        return [(t, _type_of(ctx, t, principal)) for t in ctx.tx.linked_to(PRINCIPALS, principal, after=after, limit=limit)]

    if wanted:
        fetch = things.filtered(fetch, lambda row: row[1] == wanted)
    rows, token = page(fetch, req)
    return {
        "principalThingObjects": [{"thingName": t, "thingPrincipalType": k} for t, k in rows],
        "nextToken": token,
    }
