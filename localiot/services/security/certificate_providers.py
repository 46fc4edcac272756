"""Certificate providers: the account's Lambda that signs CSRs for
CreateCertificateFromCsr (Create/Describe/Update/Delete/ListCertificateProviders).

Kind "certprovider", name = certificateProviderName; taggable by ARN.
"""

from __future__ import annotations

from localiot.protocol.errors import ServiceError, invalid
from localiot.services import operation
from localiot.services.common import Resource, tags_to_dict
from localiot.services.security.certificates import page_keys

PROVIDER = "certprovider"
MAX_PROVIDERS = 1  # one certificate provider per account: it is the account default for its operations

CERTIFICATE_PROVIDER = Resource(
    PROVIDER, "certprovider/{name}", not_found="The certificate provider {name} does not exist.",
    exists="The certificate provider {name} already exists.", id_field="certificateProviderName",
    arn_field="certificateProviderArn", taggable=True)
_provider = CERTIFICATE_PROVIDER.get


def certificate_provider_for(tx, operation_name: str) -> dict | None:
    for _, doc in tx.scan(PROVIDER):
        if operation_name in doc["accountDefaultForOperations"]:
            return doc
    return None


def _check_lambda_arn(value: str) -> None:
    parts = value.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "lambda" or parts[5] != "function" or not parts[6]:
        raise invalid(f"The lambdaFunctionArn {value} is not a Lambda function ARN.")


@operation("iot")
def CreateCertificateProvider(ctx, req):
    name = req["certificateProviderName"]
    operations = list(req["accountDefaultForOperations"])
    _check_lambda_arn(req["lambdaFunctionArn"])
    existing = CERTIFICATE_PROVIDER.find(ctx, name)
    if existing is not None:
        same = (
            req.get("clientToken") is not None and existing.get("clientToken") == req["clientToken"]
            and existing["lambdaFunctionArn"] == req["lambdaFunctionArn"]
            and existing["accountDefaultForOperations"] == operations
        )
        if same:
            return {"certificateProviderName": name, "certificateProviderArn": existing["certificateProviderArn"]}
        CERTIFICATE_PROVIDER.ensure_absent(ctx, name)
    if ctx.tx.count(PROVIDER) >= MAX_PROVIDERS:
        raise ServiceError("LimitExceededException", "An account can have only one certificate provider.")
    now = ctx.now()
    doc = {
        "certificateProviderName": name,
        "certificateProviderArn": CERTIFICATE_PROVIDER.arn(ctx, name),
        "lambdaFunctionArn": req["lambdaFunctionArn"],
        "accountDefaultForOperations": operations,
        "creationDate": now,
        "lastModifiedDate": now,
        "clientToken": req.get("clientToken"),
    }
    CERTIFICATE_PROVIDER.create(ctx, name, doc, tags_to_dict(req.get("tags")))
    return {"certificateProviderName": name, "certificateProviderArn": doc["certificateProviderArn"]}


@operation("iot")
def DescribeCertificateProvider(ctx, req):
    doc = _provider(ctx, req["certificateProviderName"])
    return {key: doc[key] for key in (
        "certificateProviderName", "certificateProviderArn", "lambdaFunctionArn",
        "accountDefaultForOperations", "creationDate", "lastModifiedDate",
    )}


@operation("iot")
def UpdateCertificateProvider(ctx, req):
    doc = _provider(ctx, req["certificateProviderName"])
    if req.get("lambdaFunctionArn") is not None:
        _check_lambda_arn(req["lambdaFunctionArn"])
        doc["lambdaFunctionArn"] = req["lambdaFunctionArn"]
    if req.get("accountDefaultForOperations") is not None:
        doc["accountDefaultForOperations"] = list(req["accountDefaultForOperations"])
    doc["lastModifiedDate"] = ctx.now()
    ctx.tx.put(PROVIDER, doc["certificateProviderName"], doc)
    return {"certificateProviderName": doc["certificateProviderName"],
            "certificateProviderArn": doc["certificateProviderArn"]}


@operation("iot")
def DeleteCertificateProvider(ctx, req):
    CERTIFICATE_PROVIDER.delete(ctx, _provider(ctx, req["certificateProviderName"])["certificateProviderName"])
    return {}


@operation("iot")
def ListCertificateProviders(ctx, req):
    providers = {name: doc for name, doc in ctx.tx.scan(PROVIDER)}
    names, token = page_keys(sorted(providers), req, token_key="nextToken")
    return {
        "certificateProviders": [
            {"certificateProviderName": n, "certificateProviderArn": providers[n]["certificateProviderArn"]}
            for n in names
        ],
        "nextToken": token,
    }
