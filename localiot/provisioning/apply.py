"""Carry a provisioning plan out inside the caller's transaction.

    result = apply_plan(ctx, plan, certificate_id=None)
    result.register_thing_response()        # RegisterThing's answer
    result.fleet_provisioning_response()    # $aws/provisioning-templates/.../accepted

Resources are made through the other families' own handlers and helpers
(CreateThing, UpdateThing, UpdateThingGroupsForThing, AddThingToBillingGroup,
CreateCertificateFromCsr, RegisterCertificate, certificates.set_status,
CreatePolicy, AttachPolicy, AttachThingPrincipal), with the model's
constraints checked first (`call_within(..., checked=True)`) since no HTTP layer stands in between, so what a
template provisions is the same as what those API calls make. Anything that
refuses becomes a ResourceRegistrationFailureException; the caller's
transaction then rolls everything back.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field

from localiot.protocol.errors import ServiceError
from localiot.provisioning.grammar import (
    DO_NOTHING,
    FAIL,
    MERGE,
    REPLACE,
    CertificateSpec,
    PolicySpec,
    ProvisioningPlan,
    ThingSpec,
)
from localiot.services.in_process import call_within
from localiot.services.registry import things

POLICY_TARGET = "policy-target"  # links: policy name -> principal (certificate ARN)
PRINCIPALS = things.PRINCIPALS  # links: thing name -> principal
REGISTRATION_FAILURE = "ResourceRegistrationFailureException"


def registration_failure(message: str) -> ServiceError:
    return ServiceError(REGISTRATION_FAILURE, message)


@dataclass
class ProvisioningResult:
    thing_name: str | None = None
    thing_arn: str | None = None
    certificate_id: str | None = None
    certificate_arn: str | None = None
    certificate_pem: str | None = None
    policy_arns: dict[str, str] = field(default_factory=dict)  # policy name -> ARN
    resource_arns: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    device_configuration: dict = field(default_factory=dict)

    def register_thing_response(self) -> dict:
        out = {"resourceArns": dict(self.resource_arns)}
        if self.certificate_pem:
            out["certificatePem"] = self.certificate_pem
        return out

    def fleet_provisioning_response(self) -> dict:
        return {"deviceConfiguration": dict(self.device_configuration), "thingName": self.thing_name}


# helpers ---------------------------------------------------------------------
@contextmanager
def _as_registration_failure():
    """Errors of the handlers reused below surface as RegisterThing's own error."""
    try:
        yield
    except ServiceError as error:
        if error.code == REGISTRATION_FAILURE:
            raise
        raise registration_failure(error.message) from None


def _call(ctx, operation: str, req: dict) -> dict:
    """iot `operation`(req) in RegisterThing's unit of work, its input checked as
    the API checks it; any error is RegisterThing's registration failure."""
    with _as_registration_failure():
        return call_within(ctx, "iot", operation, req, checked=True) or {}


def _conflict(what: str, name: str, prop: str) -> ServiceError:
    return registration_failure(
        f"{what} {name} already exists with a different {prop} and its OverrideSettings say FAIL"
    )


def _module(name: str, label: str):
    """A service family's module (thing groups, certificates, policies ...), if this build has it."""
    import importlib

    try:
        return importlib.import_module(f"localiot.services.{name}")
    except ImportError:
        raise registration_failure(f"{label} are not available in this build, so the template cannot be applied") from None


def _family(module: str, label: str):
    return _module(f"registry.{module}", label)


# thing -----------------------------------------------------------------------
def _apply_thing(ctx, spec: ThingSpec) -> dict:
    name = spec.thing_name
    existing = ctx.tx.get(things.KIND, name)
    if existing is None:
        req: dict = {"thingName": name}
        if spec.attributes:
            req["attributePayload"] = {"attributes": {k: v for k, v in spec.attributes.items() if v != ""}}
        if spec.thing_type_name:
            req["thingTypeName"] = spec.thing_type_name
        if spec.billing_group:
            billing_groups = _family("billing_groups", "Billing groups")
            with _as_registration_failure():
                billing_groups.get(ctx, spec.billing_group)
            req["billingGroupName"] = spec.billing_group
        _call(ctx, "CreateThing", req)
        if spec.thing_groups:
            _update_groups(ctx, name, add=spec.thing_groups, remove=[])
        return things.get(ctx, name)

    update: dict = {"thingName": name}
    if spec.attributes is not None:
        current = existing["attributes"]
        action = spec.override("AttributePayload")
        if action == MERGE:
            merged = dict(current)
            for key, value in spec.attributes.items():
                if value == "":
                    merged.pop(key, None)
                else:
                    merged[key] = value
            if merged != current:
                update["attributePayload"] = {"attributes": dict(spec.attributes), "merge": True}
        else:
            wanted = {k: v for k, v in spec.attributes.items() if v != ""}
            if wanted != current:
                if action == FAIL:
                    raise _conflict("Thing", name, "AttributePayload")
                if action == REPLACE:
                    update["attributePayload"] = {"attributes": wanted, "merge": False}
    if spec.thing_type_name is not None and spec.thing_type_name != existing.get("thingTypeName"):
        action = spec.override("ThingTypeName")
        if action == FAIL:
            raise _conflict("Thing", name, "ThingTypeName")
        if action == REPLACE:
            update["thingTypeName"] = spec.thing_type_name
    if len(update) > 1:
        _call(ctx, "UpdateThing", update)
    if spec.billing_group and existing.get("billingGroupName") != spec.billing_group:
        billing_groups = _family("billing_groups", "Billing groups")
        _call(ctx, "AddThingToBillingGroup",
              {"billingGroupName": spec.billing_group, "thingName": name})
    if spec.thing_groups is not None:
        _reconcile_groups(ctx, spec)
    return things.get(ctx, name)


def _reconcile_groups(ctx, spec: ThingSpec) -> None:
    action = spec.override("ThingGroups")
    if action == DO_NOTHING:
        return
    thing_groups = _family("thing_groups", "Thing groups")
    name = spec.thing_name
    current = {}
    for group_name in ctx.tx.linked_to(things.MEMBER_OF, name):
        doc = ctx.tx.get(thing_groups.KIND, group_name)
        if doc is not None and not doc.get("dynamic"):
            current[group_name] = doc
    wanted = spec.thing_groups or []
    if action == FAIL:
        if set(current) != set(wanted):
            raise _conflict("Thing", name, "ThingGroups")
        return
    add = [g for g in wanted if g not in current]
    remove = [g for g in current if g not in wanted] if action == REPLACE else []
    _update_groups(ctx, name, add=add, remove=remove)


def _update_groups(ctx, thing_name: str, *, add: list[str], remove: list[str]) -> None:
    if not add and not remove:
        return
    thing_groups = _family("thing_groups", "Thing groups")
    for group in add:
        if ctx.tx.get(thing_groups.KIND, group) is None:
            raise registration_failure(f"Thing group {group} does not exist, so thing {thing_name} cannot be added to it")
    req = {"thingName": thing_name, "thingGroupsToAdd": add, "thingGroupsToRemove": remove}
    _call(ctx, "UpdateThingGroupsForThing", req)


# certificate -----------------------------------------------------------------
def _existing_certificate(ctx, certificate_id: str) -> dict:
    certificates = _module("security.certificates", "Certificates")
    cert = certificates.by_id(ctx.tx, certificate_id)
    if cert is None:
        raise registration_failure(f"Certificate {certificate_id} does not exist")
    return cert


def _new_certificate(ctx, spec: CertificateSpec) -> tuple[dict, bool]:
    """The certificate of a CSR (issued now) or of a PEM (found, or registered with its CA now).

    Returns (doc, created)."""
    certificates = _module("security.certificates", "Certificates")
    if spec.certificate_signing_request:
        out = _call(ctx, "CreateCertificateFromCsr", {
            "certificateSigningRequest": spec.certificate_signing_request,
            "setAsActive": spec.status == "ACTIVE",
        })
        return certificates.by_id(ctx.tx, out["certificateId"]), True
    existing = certificates.find_certificate_by_pem(ctx.tx, spec.certificate_pem)
    if existing is not None:
        return existing, False
    # A device certificate signed by a CA registered in this account, as RegisterCertificate takes it.
    req = {"certificatePem": spec.certificate_pem, "status": spec.status}
    if spec.ca_certificate_pem:
        req["caCertificatePem"] = spec.ca_certificate_pem
    out = _call(ctx, "RegisterCertificate", req)
    return certificates.by_id(ctx.tx, out["certificateId"]), True


def _apply_certificate(ctx, spec: CertificateSpec | None, certificate_id: str | None) -> dict | None:
    if spec is None:
        return _existing_certificate(ctx, certificate_id) if certificate_id else None
    if spec.certificate_id:
        cert, created = _existing_certificate(ctx, spec.certificate_id), False
    else:
        cert, created = _new_certificate(ctx, spec)
    if certificate_id is not None and cert["certificateId"] != certificate_id.lower():
        raise registration_failure(
            f"The template provisions certificate {cert['certificateId']}, not the device's certificate {certificate_id}"
        )
    status = cert.get("status")
    if status in ("REVOKED", "PENDING_TRANSFER"):
        raise registration_failure(f"Certificate {cert['certificateId']} is {status} and cannot be provisioned")
    if not created and status != spec.status:
        action = spec.override("Status")
        if action == FAIL:
            raise _conflict("Certificate", cert["certificateId"], "Status")
        if action == REPLACE:
            _module("security.certificates", "Certificates").set_status(ctx, cert, spec.status)
    return cert


# policy ----------------------------------------------------------------------
def _same_json(a: str | None, b: str | None) -> bool:
    try:
        return json.loads(a) == json.loads(b)
    except (TypeError, ValueError):
        return a == b


def _apply_policy(ctx, spec: PolicySpec) -> dict:
    policies = _module("security.policies", "Policies")
    name = spec.policy_name
    policy = ctx.tx.get(policies.KIND, name)
    if policy is None:
        if spec.policy_document is None:
            raise registration_failure(f"Policy {name} does not exist; give the template a PolicyDocument to create it")
        _call(ctx, "CreatePolicy", {"policyName": name, "policyDocument": spec.policy_document})
        return ctx.tx.get(policies.KIND, name)
    if spec.named and spec.policy_document is not None and not _same_json(
        policies.default_document(policy), spec.policy_document
    ):
        raise registration_failure(f"Policy {name} already exists with a different policy document")
    return policy


def _attach_policy(ctx, policy: dict, cert_arn: str) -> None:
    if ctx.tx.is_linked(POLICY_TARGET, policy["policyName"], cert_arn):
        return
    _call(ctx, "AttachPolicy", {"policyName": policy["policyName"], "target": cert_arn})


# thing <-> certificate -------------------------------------------------------
def _attach_principal(ctx, thing_name: str, cert_arn: str) -> None:
    if ctx.tx.is_linked(PRINCIPALS, thing_name, cert_arn):
        return  # attached already, perhaps exclusively: leave it so
    _call(ctx, "AttachThingPrincipal", {"thingName": thing_name, "principal": cert_arn})


# entry point -----------------------------------------------------------------
def apply_plan(ctx, plan: ProvisioningPlan, *, certificate_id: str | None = None) -> ProvisioningResult:
    """Create or update the plan's thing, certificate and policies, and attach them.

    `certificate_id` is the certificate of the device being provisioned (fleet
    provisioning, JITP): the template's certificate must be that one, and
    without a certificate resource it is still attached to the thing and the
    policies (its status left as it is).
    """
    result = ProvisioningResult(device_configuration=dict(plan.device_configuration or {}))
    cert = _apply_certificate(ctx, plan.certificate, certificate_id)
    if cert is not None:
        result.certificate_id = cert["certificateId"]
        result.certificate_arn = cert.get("certificateArn") or ctx.arn(f"cert/{cert['certificateId']}")
        result.certificate_pem = cert.get("certificatePem")
        if plan.certificate is not None:
            result.resource_arns[plan.certificate.logical_id] = result.certificate_arn
    if plan.thing is not None:
        thing = _apply_thing(ctx, plan.thing)
        result.thing_name = thing["thingName"]
        result.thing_arn = thing["thingArn"]
        result.resource_arns[plan.thing.logical_id] = thing["thingArn"]
    for spec in plan.policies:
        policy = _apply_policy(ctx, spec)
        result.policy_arns[policy["policyName"]] = policy["policyArn"]
        result.resource_arns[spec.logical_id] = policy["policyArn"]
        if result.certificate_arn:
            _attach_policy(ctx, policy, result.certificate_arn)
    if result.thing_name and result.certificate_arn:
        _attach_principal(ctx, result.thing_name, result.certificate_arn)
    return result
