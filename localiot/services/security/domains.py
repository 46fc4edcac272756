"""Domain configurations: create, describe, update, delete, list.

A configuration with a domainName is CUSTOMER_MANAGED and needs its server
certificate ARN; one without is AWS_MANAGED and gets a generated AWS-shaped
domain name. Certificates are recorded as given (ACM is not consulted) and
reported VALID. The default authorizer named in authorizerConfig must exist.
A configuration must be DISABLED before it can be deleted, as the Developer
Guide walks through; an AWS-managed one must have stayed DISABLED for 7 days
(by the injectable clock), a customer-managed one may go at once. localiot does not serve a configuration's domain: devices
reach the listeners that DescribeEndpoint reports.

The AWS-managed default configurations (names starting "iot:") are not
materialised: Create's name pattern refuses ':' and Describe/Update of such a
name finds nothing.
"""

from __future__ import annotations

import secrets
import string

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import operation
from localiot.services.common import apply_tags, marker_page, tags_to_dict
from localiot.services.tagging import taggable

KIND = "domainconfiguration"
AWS_MANAGED_DISABLED_DAYS = 7  # the Developer Guide's waiting period before deletion
DEFAULT_SECURITY_POLICY = "IoTSecurityPolicy_TLS13_1_2_2022_10"
_ID_ALPHABET = string.ascii_lowercase + string.digits


def _exists(tx, resource_id: str) -> bool:
    doc = tx.get(KIND, resource_id.split("/", 1)[0])
    return doc is not None and doc["domainConfigurationArn"].endswith(f":{KIND}/{resource_id}")


taggable("domainconfiguration", _exists)


def get(ctx, name: str) -> dict:
    doc = ctx.tx.get(KIND, name)
    if doc is None:
        raise not_found(f"Domain configuration {name} cannot be found.")
    return doc


def _save(ctx, doc: dict) -> None:
    index = {
        "authorizer": (doc.get("authorizerConfig") or {}).get("defaultAuthorizerName"),
        "domainName": doc.get("domainName"),
        "serviceType": doc["serviceType"],
    }
    ctx.tx.put(KIND, doc["domainConfigurationName"], doc, index)


def _check_authorizer_config(ctx, config: dict | None) -> None:
    name = (config or {}).get("defaultAuthorizerName")
    if name and ctx.tx.get("authorizer", name) is None:
        raise invalid(f"The default authorizer {name} does not exist.")


def _random_id(length: int) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


@operation("iot")
def CreateDomainConfiguration(ctx, req):
    name = req["domainConfigurationName"]
    existing = ctx.tx.get(KIND, name)
    if existing is not None:
        raise ServiceError(
            "ResourceAlreadyExistsException", f"Domain configuration {name} already exists.",
            resourceId=name, resourceArn=existing["domainConfigurationArn"],
        )
    domain_name = req.get("domainName")
    certificates = req.get("serverCertificateArns") or []
    validation = req.get("validationCertificateArn")
    if domain_name:
        if not certificates:
            raise invalid("serverCertificateArns is required for a customer-managed domain (one with a domainName).")
        in_use = ctx.tx.find(KIND, "domainName", domain_name, limit=1)
        if in_use:
            raise ServiceError(
                "ResourceAlreadyExistsException",
                f"Domain name {domain_name} is already used by domain configuration {in_use[0][0]}.",
                resourceId=in_use[0][0], resourceArn=in_use[0][1]["domainConfigurationArn"],
            )
        domain_type = "CUSTOMER_MANAGED"
    else:
        if certificates or validation:
            raise invalid("serverCertificateArns and validationCertificateArn need a domainName: "
                          "AWS-managed domains do not take certificates.")
        domain_type = "AWS_MANAGED"
        domain_name = f"{_random_id(14)}-ats.iot.{ctx.region}.amazonaws.com"
    _check_authorizer_config(ctx, req.get("authorizerConfig"))
    now = ctx.now()
    doc = {
        "domainConfigurationName": name,
        "domainConfigurationArn": ctx.arn(f"{KIND}/{name}/{_random_id(5)}"),
        "domainName": domain_name,
        "serverCertificates": [
            {"serverCertificateArn": arn, "serverCertificateStatus": "VALID"} for arn in certificates
        ],
        "validationCertificateArn": validation,
        "authorizerConfig": req.get("authorizerConfig"),
        "domainConfigurationStatus": "ENABLED",
        "serviceType": req.get("serviceType") or "DATA",
        "domainType": domain_type,
        "lastStatusChangeDate": now,
        "creationDate": now,
        "tlsConfig": {"securityPolicy": DEFAULT_SECURITY_POLICY, **(req.get("tlsConfig") or {})},
        "serverCertificateConfig": req.get("serverCertificateConfig"),
        "authenticationType": req.get("authenticationType"),
        "applicationProtocol": req.get("applicationProtocol"),
        "clientCertificateConfig": req.get("clientCertificateConfig"),
    }
    _save(ctx, doc)
    apply_tags(ctx, doc["domainConfigurationArn"], tags_to_dict(req.get("tags")))
    return {"domainConfigurationName": name, "domainConfigurationArn": doc["domainConfigurationArn"]}


@operation("iot")
def DescribeDomainConfiguration(ctx, req):
    doc = get(ctx, req["domainConfigurationName"])
    return {
        "domainConfigurationName": doc["domainConfigurationName"],
        "domainConfigurationArn": doc["domainConfigurationArn"],
        "domainName": doc.get("domainName"),
        "serverCertificates": doc["serverCertificates"],
        "authorizerConfig": doc.get("authorizerConfig"),
        "domainConfigurationStatus": doc["domainConfigurationStatus"],
        "serviceType": doc["serviceType"],
        "domainType": doc["domainType"],
        "lastStatusChangeDate": doc["lastStatusChangeDate"],
        "tlsConfig": doc.get("tlsConfig"),
        "serverCertificateConfig": doc.get("serverCertificateConfig"),
        "authenticationType": doc.get("authenticationType") or "DEFAULT",
        "applicationProtocol": doc.get("applicationProtocol") or "DEFAULT",
        "clientCertificateConfig": doc.get("clientCertificateConfig"),
    }


@operation("iot")
def UpdateDomainConfiguration(ctx, req):
    doc = get(ctx, req["domainConfigurationName"])
    if req.get("removeAuthorizerConfig") and req.get("authorizerConfig") is not None:
        raise invalid("authorizerConfig and removeAuthorizerConfig cannot be used together.")
    if req.get("removeAuthorizerConfig"):
        doc["authorizerConfig"] = None
    elif req.get("authorizerConfig") is not None:
        _check_authorizer_config(ctx, req["authorizerConfig"])
        doc["authorizerConfig"] = req["authorizerConfig"]
    status = req.get("domainConfigurationStatus")
    if status is not None and status != doc["domainConfigurationStatus"]:
        doc["domainConfigurationStatus"] = status
        doc["lastStatusChangeDate"] = ctx.now()
    if req.get("tlsConfig") is not None:
        doc["tlsConfig"] = {"securityPolicy": DEFAULT_SECURITY_POLICY, **req["tlsConfig"]}
    for key in ("serverCertificateConfig", "authenticationType", "applicationProtocol", "clientCertificateConfig"):
        if req.get(key) is not None:
            doc[key] = req[key]
    _save(ctx, doc)
    return {"domainConfigurationName": doc["domainConfigurationName"],
            "domainConfigurationArn": doc["domainConfigurationArn"]}


@operation("iot")
def DeleteDomainConfiguration(ctx, req):
    name = req["domainConfigurationName"]
    doc = get(ctx, name)
    if doc["domainConfigurationStatus"] != "DISABLED":
        raise invalid(f"Domain configuration {name} is ENABLED; disable it before deleting it.")
    # "You must keep AWS-managed domains in DISABLED status for 7 days before you can delete
    # them. You can put custom domains in DISABLED status and then delete them immediately."
    if doc["domainType"] == "AWS_MANAGED":
        ready = doc["lastStatusChangeDate"] + AWS_MANAGED_DISABLED_DAYS * 86400
        if ctx.now() < ready:
            raise invalid(f"Domain configuration {name} is AWS-managed: it must stay DISABLED for "
                          f"{AWS_MANAGED_DISABLED_DAYS} days before it can be deleted.")
    ctx.tx.delete(KIND, name)
    ctx.tx.drop_tags(doc["domainConfigurationArn"])
    return {}


@operation("iot")
def ListDomainConfigurations(ctx, req):
    service_type = req.get("serviceType")
    keep = (lambda doc: doc["serviceType"] == service_type) if service_type else None
    rows, marker = marker_page(ctx.tx, KIND, req, keep=keep)
    return {
        "domainConfigurations": [
            {
                "domainConfigurationName": doc["domainConfigurationName"],
                "domainConfigurationArn": doc["domainConfigurationArn"],
                "serviceType": doc["serviceType"],
            }
            for _, doc in rows
        ],
        "nextMarker": marker,
    }
