"""Fleet provisioning by claim: the device provisioning MQTT API.

    $aws/certificates/create/{json|cbor}                       CreateKeysAndCertificate
    $aws/certificates/create-from-csr/{json|cbor}              CreateCertificateFromCsr
    $aws/provisioning-templates/{template}/provision/{json|cbor}  RegisterThing

A device connected with its claim credentials asks for a certificate (keys
made here, or from its CSR) and gets {certificateId, certificatePem,
[privateKey,] certificateOwnershipToken} on `<topic>/accepted`. The new
certificate is PENDING_ACTIVATION, as AWS documents. It then provisions
itself with {certificateOwnershipToken, parameters}: the template (which
must exist, be enabled and be of type FLEET_PROVISIONING) is evaluated with
the device's parameters, the pre-provisioning hook's overrides and the
AWS::IoT::Certificate::* values of the new certificate, and applied in one
transaction through `localiot.provisioning.apply_plan` (thing, certificate
status, policies, attachments); the answer is {deviceConfiguration,
thingName}. Payloads and answers are JSON or CBOR after the topic's last
level; failures go to `<topic>/rejected` as {statusCode, errorCode,
errorMessage}.

As on AWS, the answers travel only on the connection that asked (they hold
private keys and tokens), to its subscriptions matching the reply topic.
A publish that does not come from an MQTT connection (a will, HTTP Publish)
is refused.

The ownership token is random, stored only as its SHA-256 with the
certificate id, the claim principal it was issued to and its expiry (one
hour, AWS's lifetime); another principal's token is refused like an unknown
one. A token stays usable until it expires, so a device that lost the
accepted answer can ask again.

The pre-provisioning hook (a Lambda at the downstream endpoint) runs on a
worker thread before the provisioning transaction opens; the door answers
the publish at once and the reply follows when the hook has decided.

Rejections (AWS documents the shape, not the full list of codes; these
follow the service's own exception names):

    400 InvalidPayload                  not a JSON / CBOR object, fields of the wrong type
    400 InvalidCertificateOwnershipToken  empty, unknown, expired or not this principal's
    404 ResourceNotFound                no such template
    403 AccessDenied                    template disabled, hook refused
    400 InvalidRequest                  not a FLEET_PROVISIONING template, CSR not valid
    400 InvalidParameters               the template cannot be evaluated with the parameters
    400 ResourceRegistrationFailure     the plan could not be applied
    500 InternalError                   anything else (logged)
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import re
import secrets

from localiot import cbor, iotlogs, pki
from localiot.broker.connection import CONNECTED
from localiot.broker.message import Message
from localiot.topics import matches
from localiot.doors import ReservedPublish, door, serve
from localiot.protocol.errors import DEFAULT_STATUS, ServiceError
from localiot.provisioning import TemplateError, evaluate, validate_template
from localiot.provisioning.apply import apply_plan
from localiot.provisioning.parameters import certificate_parameters
from localiot.services.context import RequestContext
from localiot.services.unit_of_work import run_off_loop
from localiot.services.security import certificates, provisioning_templates

log = logging.getLogger("localiot.provisioning")

TOKEN_KIND = "fp-ownership-token"  # name: SHA-256 of the token
TOKEN_LIFETIME = 3600  # seconds, as AWS documents for the ownership token
_CERTIFICATE_ID = re.compile(r"^[0-9a-f]{64}$")
_hook_tasks: set[asyncio.Task] = set()


class Rejected(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def document(self) -> dict:
        return {"statusCode": self.status, "errorCode": self.code, "errorMessage": self.message}

    @classmethod
    def of(cls, error: ServiceError) -> "Rejected":
        status = error.status or DEFAULT_STATUS.get(error.code, 400)
        return cls(status, error.code.removesuffix("Exception"), error.message)


# the doors ---------------------------------------------------------------------------
@door("$aws/certificates/{operation:create|create-from-csr}/{format:json|cbor}")
def certificates_door(app, publish: ReservedPublish) -> bool:
    conn, identity, topic = publish.connection, publish.identity, publish.topic
    if conn is None:
        return False  # the answers hold private keys: only for an MQTT connection that asks itself
    operation, fmt = publish.parts["operation"], publish.parts["format"]

    def work():
        try:
            request = _decode(publish.payload, fmt)
            if operation == "create":
                answer = _guarded(serve, app, identity, "iot", "CreateKeysAndCertificate",
                                  lambda ctx: _create_keys(ctx, identity))
            else:
                csr = request.get("certificateSigningRequest")
                if not isinstance(csr, str) or not csr:
                    raise Rejected(400, "InvalidPayload", "certificateSigningRequest must be a PEM string.")
                answer = _guarded(serve, app, identity, "iot", "CreateCertificateFromCsr",
                                  lambda ctx: _create_from_csr(ctx, identity, csr))
        except Rejected as rejection:
            return f"{topic}/rejected", rejection.document()
        return f"{topic}/accepted", answer

    _off_loop(app, publish, work, lambda reply: _reply(conn, *reply, fmt))
    return True


@door("$aws/provisioning-templates/{template}/provision/{format:json|cbor}")
def provision_door(app, publish: ReservedPublish) -> bool:
    conn, identity, topic = publish.connection, publish.identity, publish.topic
    if conn is None:
        return False  # the answers hold tokens: only for an MQTT connection that asks itself
    template_name, fmt = publish.parts["template"], publish.parts["format"]

    def work():
        try:
            token, parameters = _provision_request(_decode(publish.payload, fmt))
            template, certificate = _guarded(_read, app, identity,
                                             lambda ctx: _claim(ctx, identity, template_name, token))
        except Rejected as rejection:
            return f"{topic}/rejected", rejection.document()
        if template.get("preProvisioningHook"):
            return template, certificate, token, parameters  # the hook's call goes on on the loop
        return _provision(app, identity, topic, template_name, token, parameters)

    def then(outcome):
        if len(outcome) == 2:
            _reply(conn, *outcome, fmt)
            return
        task = asyncio.get_running_loop().create_task(_provision_after_hook(app, identity, conn, topic, fmt, *outcome))
        _hook_tasks.add(task)
        task.add_done_callback(_hook_tasks.discard)

    _off_loop(app, publish, work, then)
    return True


def _off_loop(app, publish: ReservedPublish, work, then) -> None:
    """`then(work())`: `work` (the door's store work) on a worker with PostgreSQL, after the device's
    earlier door requests, its PUBACK once `then` (on the loop: the replies) ran; here with SQLite."""
    workers = app.runtime.workers
    if workers is None:
        then(work())
        return
    identity = publish.identity
    task = workers.in_order((identity.account, identity.region, identity.principal), work)

    async def answered():
        then(await task)

    publish.pending = asyncio.get_running_loop().create_task(answered())


# certificates --------------------------------------------------------------------------
def _create_keys(ctx, identity) -> dict:
    out = certificates.create_keys_and_certificate(ctx, set_as_active=False)
    _pending_activation(ctx, out["certificateId"])
    return {
        "certificateId": out["certificateId"],
        "certificatePem": out["certificatePem"],
        "privateKey": out["keyPair"]["PrivateKey"],
        "certificateOwnershipToken": _issue_token(ctx, identity, out["certificateId"]),
    }


def _create_from_csr(ctx, identity, csr: str) -> dict:
    out = certificates.create_certificate_from_csr(ctx, csr, set_as_active=False)
    _pending_activation(ctx, out["certificateId"])
    return {
        "certificateOwnershipToken": _issue_token(ctx, identity, out["certificateId"]),
        "certificateId": out["certificateId"],
        "certificatePem": out["certificatePem"],
    }


def _pending_activation(ctx, certificate_id: str) -> None:
    # Part of creating it, not a later change: no new customerVersion.
    doc = certificates.by_id(ctx.tx, certificate_id)
    doc["status"] = certificates.PENDING_ACTIVATION
    certificates.save(ctx.tx, doc)


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue_token(ctx, identity, certificate_id: str) -> str:
    token = secrets.token_urlsafe(96)
    now = ctx.now()
    ctx.tx.put(TOKEN_KIND, _token_key(token), {
        "certificateId": certificate_id, "principal": identity.principal,
        "issuedAt": now, "expiresAt": now + TOKEN_LIFETIME,
    })
    return token


# RegisterThing ---------------------------------------------------------------------------
def _provision_request(request: dict) -> tuple[str, dict]:
    token = request.get("certificateOwnershipToken")
    if token is None or token == "":
        raise Rejected(400, "InvalidCertificateOwnershipToken", "Certificate ownership token cannot be empty.")
    if not isinstance(token, str):
        raise Rejected(400, "InvalidPayload", "certificateOwnershipToken must be a string.")
    parameters = request.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict) or not all(isinstance(k, str) for k in parameters):
        raise Rejected(400, "InvalidPayload", "parameters must be a map of strings.")
    return token, parameters


def _claim(ctx, identity, template_name: str, token: str) -> tuple[dict, dict]:
    """The template and the token's certificate, if this principal may provision with them."""
    template = ctx.tx.get(provisioning_templates.KIND, template_name)
    if template is None:
        raise Rejected(404, "ResourceNotFound", f"Template {template_name} not found.")
    if template.get("type", provisioning_templates.FLEET_PROVISIONING) != provisioning_templates.FLEET_PROVISIONING:
        raise Rejected(400, "InvalidRequest", f"Template {template_name} is not a FLEET_PROVISIONING template.")
    if not template.get("enabled"):
        raise Rejected(403, "AccessDenied", f"Template {template_name} is disabled.")
    record = ctx.tx.get(TOKEN_KIND, _token_key(token))
    if record is None or record["principal"] != identity.principal or ctx.now() >= record["expiresAt"]:
        raise Rejected(400, "InvalidCertificateOwnershipToken", "Certificate ownership token is not valid.")
    certificate = certificates.by_id(ctx.tx, record["certificateId"])
    if certificate is None:
        raise Rejected(400, "InvalidCertificateOwnershipToken",
                       "The certificate of this ownership token no longer exists.")
    return template, certificate


def _register(ctx, identity, template_name: str, token: str, parameters: dict) -> dict:
    template, certificate = _claim(ctx, identity, template_name, token)
    cert = pki.load_certificate(certificate["certificatePem"])
    values = {**parameters, **certificate_parameters(cert, certificate["certificateId"])}
    try:
        plan = evaluate(validate_template(provisioning_templates.default_body(template)), values,
                        region=ctx.region, account=ctx.account)
    except TemplateError as error:
        raise Rejected(400, "InvalidParameters", str(error)) from None
    result = apply_plan(ctx, plan, certificate_id=certificate["certificateId"])
    return {k: v for k, v in result.fleet_provisioning_response().items() if v is not None}


def _provision(app, identity, topic, template_name, token, parameters) -> tuple[str, dict]:
    """The RegisterThing unit of work: the reply (topic, body)."""
    try:
        answer = _guarded(serve, app, identity, "iot", "RegisterThing",
                          lambda ctx: _register(ctx, identity, template_name, token, parameters))
    except Rejected as rejection:
        return f"{topic}/rejected", rejection.document()
    return f"{topic}/accepted", answer


async def _provision_after_hook(app, identity, conn, topic, fmt, template, certificate, token, parameters):
    try:
        principal = identity.principal if _CERTIFICATE_ID.match(identity.principal or "") else None
        run = functools.partial(
            provisioning_templates.run_pre_provisioning_hook, app.runtime, identity.region, template, parameters,
            claim_certificate_id=principal, certificate_id=certificate["certificateId"],
            certificate_pem=certificate["certificatePem"], client_id=conn.client_id,
        )
        allowed, overrides = await asyncio.get_running_loop().run_in_executor(None, run)
    except Exception:
        log.exception("pre-provisioning hook of %s failed", template["templateName"])
        allowed, overrides = False, {}
    if not allowed:
        rejection = Rejected(403, "AccessDenied", "Provisioning was refused by the pre-provisioning hook.")
        _reply(conn, f"{topic}/rejected", rejection.document(), fmt)
        return
    reply = await run_off_loop(app.runtime, _provision, app, identity, topic, template["templateName"], token,
                               {**parameters, **overrides})
    _reply(conn, *reply, fmt)


# plumbing ------------------------------------------------------------------------------
def _guarded(fn, *args):
    """fn(*args) with every failure as a Rejected (the transaction has rolled back)."""
    try:
        return fn(*args)
    except Rejected:
        raise
    except ServiceError as error:
        raise Rejected.of(error) from None
    except Exception:
        log.exception("fleet provisioning request failed")
        raise Rejected(500, "InternalError", "An internal error occurred.") from None


def _read(app, identity, fn):
    with app.store.transaction(identity.account, identity.region, write=False) as tx:
        return fn(RequestContext(identity.account, identity.region, tx, app.runtime, "iot", "FleetProvisioning"))


def _decode(payload: bytes, fmt: str) -> dict:
    if not payload:
        return {}
    try:
        request = cbor.loads(payload) if fmt == "cbor" else json.loads(bytes(payload).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, "InvalidPayload", f"The payload is not valid {fmt.upper()}.") from None
    if not isinstance(request, dict):
        raise Rejected(400, "InvalidPayload", f"The payload must be a {fmt.upper()} object.")
    return request


def _reply(conn, topic: str, body: dict, fmt: str) -> None:
    """Deliver to the requesting connection only, through its subscriptions matching `topic`."""
    iotlogs.provisioning_replied(conn, topic, body)
    broker, session = conn.broker, conn.session
    if session is None or conn.state != CONNECTED:
        return
    best = None
    for topic_filter, options in session.subscriptions.items():
        if not topic_filter.startswith("$share/") and matches(topic_filter, topic):
            if best is None or options.qos > best.qos:
                best = options
    if best is None:
        return  # not subscribed: the answer is lost, as AWS warns
    payload = cbor.dumps(body) if fmt == "cbor" else json.dumps(body, separators=(",", ":")).encode()
    broker.deliver_to(session, best, Message(topic, payload, 1))
    broker.flush_soon()
