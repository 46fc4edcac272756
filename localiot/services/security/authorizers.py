"""Custom authorizers: create, describe, update, delete, list, the account's
default authorizer, and TestInvokeAuthorizer.

`invoke_authorizer(runtime, region, authorizer, event)` calls an authorizer's
Lambda function with the event AWS documents for custom authentication and
validates the answer. TestInvokeAuthorizer uses it, and so will the MQTT
broker for CONNECTs that use custom authentication; `verify_token_signature`
and `build_event` are shared the same way.

The Lambda call is a blocking boto3 call made on the event loop's thread,
inside the API call's store transaction: acceptable for TestInvokeAuthorizer,
a broker should call `invoke_authorizer` from a worker thread.

Markers (ListAuthorizers, and the role alias and domain configuration lists
that use `marker_page`) are standard base64 of the last name returned, as the
models' Marker pattern `[A-Za-z0-9+/]+={0,2}` requires.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from localiot.protocol.errors import ServiceError, conflict, invalid, not_found
from localiot.services import operation
from localiot.services.common import Resource, marker_page, tags_to_dict

KIND = "authorizer"
DEFAULT_KIND = "default-authorizer"
DEFAULT_NAME = "default"
# The developer guide: "Token signing public key ... Its minimum length is 2,048 bits."
MIN_KEY_BITS = 2048
LAMBDA_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,140}(:[A-Za-z0-9_$-]{1,128})?$")
DEFAULT_PAGE_SIZE = 100

# Limits on the Lambda's answer, from the developer guide's custom authentication pages.
PRINCIPAL_ID = re.compile(r"^[a-zA-Z0-9]{1,128}$")
MAX_POLICY_DOCUMENTS = 10
MAX_POLICY_DOCUMENT_CHARS = 2048
MIN_SECONDS, MAX_SECONDS = 300, 86400
DEFAULT_DISCONNECT_AFTER = 86400

AUTHORIZER = Resource(KIND, "authorizer/{name}", not_found="Authorizer {name} cannot be found.",
                      exists="Authorizer {name} already exists.", id_field="authorizerName",
                      arn_field="authorizerArn", taggable=True)
get = AUTHORIZER.get


# keys and signatures -----------------------------------------------------------
def load_public_key(name: str, pem: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise invalid(f"The token signing public key {name} is not a valid PEM-encoded public key.")
    if not isinstance(key, rsa.RSAPublicKey):
        raise invalid(f"The token signing public key {name} is not an RSA public key.")
    if key.key_size < MIN_KEY_BITS:
        raise invalid(
            f"The token signing public key {name} is {key.key_size} bits; the minimum is {MIN_KEY_BITS} bits."
        )
    return key


def _check_keys(keys: dict[str, str]) -> None:
    for name, pem in keys.items():
        load_public_key(name, pem)


def _check_signing(doc: dict) -> None:
    if doc.get("signingDisabled"):
        return
    if not doc.get("tokenKeyName"):
        raise invalid("tokenKeyName is required when signing is enabled (signingDisabled is false).")
    if not doc.get("tokenSigningPublicKeys"):
        raise invalid("tokenSigningPublicKeys is required when signing is enabled (signingDisabled is false).")


def verify_token_signature(authorizer: dict, token: str, signature_b64: str) -> bool:
    """True when `signature_b64` is an RSA-SHA256 (PKCS#1 v1.5) signature of the
    token by the private half of any of the authorizer's public keys."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    for name, pem in (authorizer.get("tokenSigningPublicKeys") or {}).items():
        try:
            key = serialization.load_pem_public_key(pem.encode())
            key.verify(signature, token.encode(), padding.PKCS1v15(), hashes.SHA256())
            return True
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm, AttributeError):
            continue
    return False


# the Lambda event and answer ---------------------------------------------------
def build_event(*, token=None, signature_verified=False, http=None, mqtt=None, tls=None,
                connection_id: str | None = None) -> dict:
    """The event AWS IoT sends an authorizer's Lambda function.

    `http` is {"headers": {...}, "queryString": "..."}; `mqtt` is {"username",
    "password" (bytes or str), "clientId"}; `tls` is {"serverName"}. `protocols`
    lists the protocols whose data is present. Fields not given are left out,
    as AWS does.
    """
    protocols: list[str] = []
    data: dict = {}
    if tls:
        protocols.append("tls")
        data["tls"] = {k: tls[k] for k in ("serverName",) if tls.get(k) is not None}
    if http:
        protocols.append("http")
        data["http"] = {k: http[k] for k in ("headers", "queryString") if http.get(k) is not None}
    if mqtt:
        protocols.append("mqtt")
        out = {}
        if mqtt.get("username") is not None:
            out["username"] = mqtt["username"]
        password = mqtt.get("password")
        if password is not None:
            raw = password.encode() if isinstance(password, str) else password
            out["password"] = base64.b64encode(raw).decode()
        if mqtt.get("clientId") is not None:
            out["clientId"] = mqtt["clientId"]
        data["mqtt"] = out
    event: dict = {}
    if token is not None:
        event["token"] = token
    event["signatureVerified"] = bool(signature_verified)
    event["protocols"] = protocols
    event["protocolData"] = data
    event["connectionMetadata"] = {"id": connection_id or str(uuid.uuid4())}
    return event


def _bad_response(function_arn: str, why: str) -> ServiceError:
    return ServiceError("InvalidResponseException", f"The authorizer function {function_arn} returned an invalid response: {why}")


def _seconds(answer: dict, key: str, function_arn: str, default: int | None) -> int | None:
    value = answer.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad_response(function_arn, f"{key} must be an integer.")
    if not MIN_SECONDS <= value <= MAX_SECONDS:
        raise _bad_response(function_arn, f"{key} must be between {MIN_SECONDS} and {MAX_SECONDS}.")
    return value


def _policy_documents(answer: dict, function_arn: str, required: bool) -> list[str] | None:
    docs = answer.get("policyDocuments")
    if docs is None:
        if required:
            raise _bad_response(function_arn, "policyDocuments is required when isAuthenticated is true.")
        return None
    if not isinstance(docs, list):
        raise _bad_response(function_arn, "policyDocuments must be a list.")
    if len(docs) > MAX_POLICY_DOCUMENTS:
        raise _bad_response(function_arn, f"policyDocuments can hold at most {MAX_POLICY_DOCUMENTS} documents.")
    out = []
    for doc in docs:
        # The developer guide's examples return policy objects; the API returns them as strings.
        if isinstance(doc, dict):
            text = json.dumps(doc, separators=(",", ":"))
        elif isinstance(doc, str):
            try:
                parsed = json.loads(doc)
            except ValueError:
                raise _bad_response(function_arn, "each policy document must be a JSON policy document.")
            if not isinstance(parsed, dict):
                raise _bad_response(function_arn, "each policy document must be a JSON object.")
            text = doc
        else:
            raise _bad_response(function_arn, "each policy document must be a JSON object or a string holding one.")
        if len(text) > MAX_POLICY_DOCUMENT_CHARS:
            raise _bad_response(function_arn, f"a policy document is longer than {MAX_POLICY_DOCUMENT_CHARS} characters.")
        out.append(text)
    return out


def validate_response(answer, function_arn: str) -> dict:
    """Check a Lambda's answer against the documented shape; InvalidResponseException if it is off."""
    if not isinstance(answer, dict):
        raise _bad_response(function_arn, "the response must be a JSON object.")
    authenticated = answer.get("isAuthenticated")
    if not isinstance(authenticated, bool):
        raise _bad_response(function_arn, "isAuthenticated must be a boolean.")
    principal = answer.get("principalId")
    if principal is None:
        if authenticated:
            raise _bad_response(function_arn, "principalId is required when isAuthenticated is true.")
    elif not isinstance(principal, str) or not PRINCIPAL_ID.match(principal):
        raise _bad_response(function_arn, "principalId must be 1 to 128 alphanumeric characters.")
    result = {
        "isAuthenticated": authenticated,
        "principalId": principal,
        "policyDocuments": _policy_documents(answer, function_arn, authenticated),
        "disconnectAfterInSeconds": _seconds(
            answer, "disconnectAfterInSeconds", function_arn, DEFAULT_DISCONNECT_AFTER if authenticated else None
        ),
        "refreshAfterInSeconds": _seconds(answer, "refreshAfterInSeconds", function_arn, None),
    }
    context = answer.get("context")
    if context is not None:
        if not isinstance(context, dict):
            raise _bad_response(function_arn, "context must be a JSON object.")
        result["context"] = context
    return result


def invoke_authorizer(runtime, region: str, authorizer: dict, event: dict) -> dict:
    """Invoke the authorizer's Lambda function with `event` and return its validated answer.

    Returns {isAuthenticated, principalId, policyDocuments (JSON strings),
    disconnectAfterInSeconds, refreshAfterInSeconds[, context]}. Raises
    ServiceError: InvalidResponseException when the function fails or answers
    out of shape, InvalidRequestException when it does not exist,
    ServiceUnavailableException when Lambda cannot be reached. Blocking.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    function_arn = authorizer["authorizerFunctionArn"]
    try:
        client = runtime.aws_client("lambda", region)
        reply = client.invoke(
            FunctionName=function_arn,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        body = reply["Payload"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if code == "ResourceNotFoundException":
            raise invalid(f"The authorizer function {function_arn} does not exist: {message}")
        raise _bad_response(function_arn, f"Lambda refused the invocation ({code}: {message}).")
    except BotoCoreError as exc:
        raise ServiceError(
            "ServiceUnavailableException", f"Lambda could not be reached to invoke {function_arn}: {exc}", status=503
        )
    if reply.get("FunctionError"):
        detail = body.decode("utf-8", "replace")[:512]
        raise _bad_response(function_arn, f"the function failed ({reply['FunctionError']}): {detail}")
    try:
        answer = json.loads(body) if body else None
    except ValueError:
        raise _bad_response(function_arn, "the response is not JSON.")
    return validate_response(answer, function_arn)


# handlers ----------------------------------------------------------------------
def describe(doc: dict) -> dict:
    return {
        "authorizerName": doc["authorizerName"],
        "authorizerArn": doc["authorizerArn"],
        "authorizerFunctionArn": doc["authorizerFunctionArn"],
        "tokenKeyName": doc.get("tokenKeyName"),
        "tokenSigningPublicKeys": doc.get("tokenSigningPublicKeys"),
        "status": doc["status"],
        "creationDate": doc["creationDate"],
        "lastModifiedDate": doc["lastModifiedDate"],
        "signingDisabled": doc["signingDisabled"],
        "enableCachingForHttp": doc["enableCachingForHttp"],
    }


def _check_function_arn(value: str) -> None:
    if not LAMBDA_ARN.match(value):
        raise invalid(f"authorizerFunctionArn {value!r} is not a Lambda function ARN.")


@operation("iot")
def CreateAuthorizer(ctx, req):
    name = req["authorizerName"]
    AUTHORIZER.ensure_absent(ctx, name)
    _check_function_arn(req["authorizerFunctionArn"])
    keys = req.get("tokenSigningPublicKeys")
    if keys:
        _check_keys(keys)
    now = ctx.now()
    doc = {
        "authorizerName": name,
        "authorizerArn": AUTHORIZER.arn(ctx, name),
        "authorizerFunctionArn": req["authorizerFunctionArn"],
        "tokenKeyName": req.get("tokenKeyName"),
        "tokenSigningPublicKeys": keys or None,
        "status": req.get("status") or "ACTIVE",
        "creationDate": now,
        "lastModifiedDate": now,
        "signingDisabled": bool(req.get("signingDisabled")),
        "enableCachingForHttp": bool(req.get("enableCachingForHttp")),
    }
    _check_signing(doc)
    AUTHORIZER.create(ctx, name, doc, tags_to_dict(req.get("tags")))
    return {"authorizerName": name, "authorizerArn": doc["authorizerArn"]}


@operation("iot")
def DescribeAuthorizer(ctx, req):
    return {"authorizerDescription": describe(get(ctx, req["authorizerName"]))}


@operation("iot")
def UpdateAuthorizer(ctx, req):
    name = req["authorizerName"]
    doc = get(ctx, name)
    if req.get("authorizerFunctionArn") is not None:
        _check_function_arn(req["authorizerFunctionArn"])
        doc["authorizerFunctionArn"] = req["authorizerFunctionArn"]
    if req.get("tokenKeyName") is not None:
        doc["tokenKeyName"] = req["tokenKeyName"]
    if req.get("tokenSigningPublicKeys") is not None:
        _check_keys(req["tokenSigningPublicKeys"])
        doc["tokenSigningPublicKeys"] = req["tokenSigningPublicKeys"] or None
    if req.get("status") is not None:
        doc["status"] = req["status"]
    if req.get("enableCachingForHttp") is not None:
        doc["enableCachingForHttp"] = req["enableCachingForHttp"]
    _check_signing(doc)
    doc["lastModifiedDate"] = ctx.now()
    ctx.tx.put(KIND, name, doc)
    return {"authorizerName": name, "authorizerArn": doc["authorizerArn"]}


def _default_name(ctx) -> str | None:
    current = ctx.tx.get(DEFAULT_KIND, DEFAULT_NAME)
    return current["authorizerName"] if current else None


@operation("iot")
def DeleteAuthorizer(ctx, req):
    name = req["authorizerName"]
    doc = get(ctx, name)
    if doc["status"] == "ACTIVE":
        raise conflict("DeleteConflictException", f"Authorizer {name} is ACTIVE; set its status to INACTIVE before deleting it.")
    if _default_name(ctx) == name:
        raise conflict("DeleteConflictException", f"Authorizer {name} is the default authorizer; clear the default authorizer before deleting it.")
    from localiot.services.security import domains

    users = ctx.tx.find(domains.KIND, "authorizer", name, limit=1)
    if users:
        raise conflict(
            "DeleteConflictException",
            f"Authorizer {name} is the default authorizer of domain configuration {users[0][0]}.",
        )
    AUTHORIZER.delete(ctx, name)
    return {}


@operation("iot")
def ListAuthorizers(ctx, req):
    status = req.get("status")
    keep = (lambda doc: doc["status"] == status) if status else None
    rows, marker = marker_page(ctx.tx, KIND, req, keep=keep, default_size=DEFAULT_PAGE_SIZE)
    return {
        "authorizers": [{"authorizerName": d["authorizerName"], "authorizerArn": d["authorizerArn"]} for _, d in rows],
        "nextMarker": marker,
    }


@operation("iot")
def SetDefaultAuthorizer(ctx, req):
    name = req["authorizerName"]
    doc = get(ctx, name)
    if _default_name(ctx) == name:
        raise ServiceError(
            "ResourceAlreadyExistsException", f"Authorizer {name} is already the default authorizer.",
            resourceId=name, resourceArn=doc["authorizerArn"],
        )
    ctx.tx.put(DEFAULT_KIND, DEFAULT_NAME, {"authorizerName": name})
    return {"authorizerName": name, "authorizerArn": doc["authorizerArn"]}


@operation("iot")
def DescribeDefaultAuthorizer(ctx, req):
    name = _default_name(ctx)
    if name is None:
        raise not_found("No default authorizer is set.")
    return {"authorizerDescription": describe(get(ctx, name))}


@operation("iot")
def ClearDefaultAuthorizer(ctx, req):
    if not ctx.tx.delete(DEFAULT_KIND, DEFAULT_NAME):
        raise not_found("No default authorizer is set.")
    return {}


@operation("iot")
def TestInvokeAuthorizer(ctx, req):
    doc = get(ctx, req["authorizerName"])
    token = req.get("token")
    signature = req.get("tokenSignature")
    verified = False
    if not doc["signingDisabled"]:
        if token is None or signature is None:
            raise invalid(
                f"Authorizer {doc['authorizerName']} has signing enabled: token and tokenSignature are required."
            )
        if not verify_token_signature(doc, token, signature):
            raise invalid("The token signature could not be verified with the authorizer's token signing public keys.")
        verified = True
    event = build_event(
        token=token,
        signature_verified=verified,
        http=req.get("httpContext"),
        mqtt=req.get("mqttContext"),
        tls=req.get("tlsContext"),
    )
    result = invoke_authorizer(ctx.runtime, ctx.region, doc, event)
    return {
        "isAuthenticated": result["isAuthenticated"],
        "principalId": result["principalId"],
        "policyDocuments": result["policyDocuments"],
        "refreshAfterInSeconds": result["refreshAfterInSeconds"],
        "disconnectAfterInSeconds": result["disconnectAfterInSeconds"],
    }
