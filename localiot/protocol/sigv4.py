"""SigV4: read the credential scope (service, region, access key) and, in
strict mode, verify the signature with botocore's own signer."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from localiot.protocol.errors import ServiceError

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<sig>[0-9a-fA-F]+)"
)


@dataclass
class Scope:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    presigned: bool = False


def read_scope(headers, query) -> Scope | None:
    header = headers.get("Authorization")
    if header:
        m = _AUTH.match(header)
        if not m:
            return None
        cred = m.group("cred").split("/")
        signed = m.group("signed").split(";")
        sig = m.group("sig")
        presigned = False
    elif "X-Amz-Credential" in query:
        cred = query.get("X-Amz-Credential", "").split("/")
        signed = query.get("X-Amz-SignedHeaders", "host").split(";")
        sig = query.get("X-Amz-Signature", "")
        presigned = True
    else:
        return None
    if len(cred) != 5:
        return None
    return Scope(cred[0], cred[1], cred[2], cred[3], signed, sig, presigned)


_REGION = re.compile(r"[a-zA-Z0-9-]{1,64}")


def check_region(scope: Scope | None) -> None:
    """The scope's region names every ARN the call makes: refuse one that is no
    region name at all (non-UTF-8 bytes in the header arrive as surrogates)."""
    if scope is not None and not _REGION.fullmatch(scope.region):
        raise ServiceError("InvalidSignatureException", "Credential should be scoped to a valid region. ", status=403)


def account_for(access_key: str, default_account: str) -> str:
    """A 12-digit access key id is the account id, as moto and LocalStack do."""
    return access_key if len(access_key) == 12 and access_key.isdigit() else default_account


def verify(scope: Scope | None, method: str, host: str, raw_path_qs: str, headers, body: bytes, secrets: dict[str, str]) -> None:
    if scope is None:
        raise ServiceError("MissingAuthenticationTokenException", "Missing Authentication Token", status=403)
    secret = secrets.get(scope.access_key)
    if secret is None:
        raise ServiceError(
            "UnrecognizedClientException", "The security token included in the request is invalid.", status=403
        )
    if scope.presigned:
        raise ServiceError(
            "InvalidSignatureException", "Presigned requests are verified by the MQTT WebSocket listener only.", status=403
        )
    amz_date = headers.get("X-Amz-Date", "")
    signed = {name: headers.get(name, "") for name in scope.signed_headers}
    request = AWSRequest(method=method, url=f"http://{host}{raw_path_qs}", data=body, headers=signed)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(scope.access_key, secret), scope.service, scope.region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, scope.signature):
        raise ServiceError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            status=403,
        )
