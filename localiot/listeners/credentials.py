"""The credential provider, as AWS serves it on its iot:CredentialProvider
endpoint: `GET /role-aliases/{alias}/credentials` over mutual TLS (here on the
ALPN port), answered with temporary credentials for the alias's IAM role.

What AWS checks, in the order its answers show:

1. the client certificate: registered, ACTIVE, its CA ACTIVE, within its
   validity (403 AccessDeniedException "Access Denied" otherwise);
2. `x-amzn-iot-thingname`, when sent: the thing exists and is attached to the
   certificate (403 "Invalid thing name passed"); it makes the thing's policy
   variables (iot:Connection.Thing.*) available;
3. `iot:AssumeRoleWithCertificate` on the alias's ARN, allowed by the policies
   of the certificate (and of the thing's groups) with those variables (403
   "Access Denied");
4. the role alias exists (404 "Role alias does not exist");
5. STS AssumeRole of the alias's role for `credentialDurationSeconds`, at the
   downstream endpoint (LOCALIOT_AWS_ENDPOINT_URL); its refusal is 400
   "Unable to assume the role, or the role to assume does not exist" (or the
   duration message when the role's MaxSessionDuration is the reason).

The answer: {"credentials": {"accessKeyId", "secretAccessKey",
"sessionToken", "expiration"}}; the role session name is the certificate id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime, timezone

from aiohttp import web

from localiot.broker.auth import Identity
from localiot.device_auth.grants import compiled
from localiot.listeners.tls import sni_of
from localiot.services.registry.things import PRINCIPALS
from localiot.services.security import policies, role_aliases
from localiot.services.unit_of_work import run_off_loop

log = logging.getLogger("localiot.listeners")

PATH_PREFIX, PATH_SUFFIX = "/role-aliases/", "/credentials"
ACTION = "iot:AssumeRoleWithCertificate"
THING_HEADER = "x-amzn-iot-thingname"
_ERROR_TYPES = {403: "AccessDeniedException", 404: "ResourceNotFoundException", 400: "InvalidRequestException"}
UNABLE = "Unable to assume the role, or the role to assume does not exist"
TOO_LONG = "The requested CredentialDurationSeconds exceeds the MaxSessionDuration set for the role"


def alias_of(raw_path: str) -> str | None:
    """The alias of a credentials path, or None when the path is not one."""
    if raw_path.startswith(PATH_PREFIX) and raw_path.endswith(PATH_SUFFIX):
        alias = raw_path[len(PATH_PREFIX):-len(PATH_SUFFIX)]
        if alias and "/" not in alias:
            return alias
    return None


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=json.dumps({"message": message}).encode(),
                        content_type="application/json",
                        headers={"x-amzn-ErrorType": _ERROR_TYPES[status], "x-amzn-RequestId": str(uuid.uuid4())})


def _iso(value) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _decide(app, device_auth, der: bytes, alias: str, remote, sni, thing):
    """(certificate id, region, role alias document) of an allowed request, or the error response."""
    identity = device_auth.certificate_identity(der, None, remote, sni, just_in_time=False)
    if not isinstance(identity, Identity):
        log.info("credential provider: refused a certificate: %s", getattr(identity, "message", identity))
        return _error(403, "Access Denied")
    account, region, cert_id = identity.account, identity.region, identity.principal
    principal = identity.attributes["principalArn"]
    now = app.runtime.clock.now()
    with app.store.transaction(account, region, write=False) as tx:
        if thing is not None and thing not in tx.linked_to(PRINCIPALS, principal):
            return _error(403, "Invalid thing name passed")
        effective = policies.effective_policies(tx, principal, thing)
        variables = policies.connection_variables(tx, principal, None, thing, now=now,
                                                  extra={"aws:SourceIp": remote} if remote else None)
        alias_doc = tx.get(role_aliases.KIND, alias)
    granted = compiled(tuple((p["policyName"], p["policyDocument"]) for p in effective))
    alias_arn = f"arn:aws:iot:{region}:{account}:rolealias/{alias}"
    if not granted.is_allowed(ACTION, alias_arn, variables):
        return _error(403, "Access Denied")
    if alias_doc is None:
        return _error(404, "Role alias does not exist")
    return cert_id, region, alias_doc


async def serve_credentials(request: web.BaseRequest, alias: str, app, device_auth) -> web.Response:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return _error(403, "Access Denied")
    # the certificate, policy and role alias reads: on a worker with PostgreSQL
    decided = await run_off_loop(app.runtime, _decide, app, device_auth, der, alias, request.remote,
                                 sni_of(request.transport), request.headers.get(THING_HEADER))
    if isinstance(decided, web.Response):
        return decided
    cert_id, region, alias_doc = decided
    duration = int(alias_doc.get("credentialDurationSeconds") or role_aliases.DEFAULT_DURATION)
    sts = app.runtime.aws_client("sts", region)
    try:
        answer = await asyncio.to_thread(sts.assume_role, RoleArn=alias_doc["roleArn"], RoleSessionName=cert_id,
                                         DurationSeconds=duration)
    except Exception as error:  # botocore ClientError, or the downstream endpoint unreachable
        message = str(error)
        log.info("credential provider: STS AssumeRole of %s failed: %s", alias_doc["roleArn"], message)
        return _error(400, TOO_LONG if "MaxSessionDuration" in message else UNABLE)
    found = answer["Credentials"]
    body = {"credentials": {"accessKeyId": found["AccessKeyId"], "secretAccessKey": found["SecretAccessKey"],
                            "sessionToken": found["SessionToken"], "expiration": _iso(found["Expiration"])}}
    return web.Response(status=200, body=json.dumps(body).encode(), content_type="application/json",
                        headers={"x-amzn-RequestId": str(uuid.uuid4())})
