"""Who a device is and what it may do: the broker's `authenticate` and
`authorize` for every listener, just-in-time registration and provisioning,
and keeping connected devices' rights current as the API changes them.

Each connection carries a `Door` as its ConnectInfo.listener: the listener's
name plus what the transport learnt (TLS server name, ALPN, the WebSocket
upgrade request). Doors and how they authenticate:

  tcp           plain MQTT (development only): everyone gets in as the default
                account and may do everything
  tls           MQTT over TLS (8883-style): the client certificate; without
                one, a custom authorizer from the MQTT username
  alpn-mqtt-ca  ALPN x-amzn-mqtt-ca on the ALPN port: the client certificate
  alpn-mqtt     ALPN mqtt: a custom authorizer (username/password), else the
                client certificate
  alpn          the ALPN port without ALPN: as tls
  wss           MQTT over WebSocket: a SigV4-presigned URL (checked at the
                upgrade; the identity may do everything in the credentials'
                account and region, as IAM policies are not modelled), else a
                custom authorizer from the upgrade's headers / query string

Certificates: the DER's SHA-256 is the certificate id; `certificates.locate`
says which account/region holds it; it must be ACTIVE, within its validity,
and its CA (if any) registered and ACTIVE. Under mutual TLS the MQTT username
and password are ignored: the AWS IoT Device SDKs put a metrics string there.
The identity's principal is the certificate id (AWS's principalIdentifier),
its thing the one `policies.connection_thing` finds, its policy a `Grant`:
the effective IoT policies compiled once (cached by content across
connections) and the connection's policy variables.

Custom authorizers: the authorizer named by `x-amz-customauthorizer-name`
(MQTT username query string `user?x-amz-customauthorizer-name=...&token=...`,
or WebSocket / HTTP headers or query parameters), else the account's default
authorizer; it must be ACTIVE; with signing enabled the token's signature is
checked against its keys before the Lambda is called. The Lambda is invoked
off the event loop (it blocks); its policyDocuments become the connection's
policies and disconnectAfterInSeconds is enforced by the injectable clock
(moving the clock past it drops the connection within a second). The
authorizer is looked up in the default account, in the region an AWS-style
host name (`....iot.<region>.amazonaws.com`, SNI or Host) names, else the
default region. refreshAfterInSeconds is not acted on.

Authorization: `Grant.policies.is_allowed(action, resource, variables)`; the
broker caches decisions per connection. After every committed API call that
can change rights (policies and their versions, attachments, thing
principals, certificate and CA status, thing attributes and groups ...) the
grants of that account/region go stale and are recomputed on their next use,
the broker's caches are cleared, and clients whose certificate is no longer
usable (revoked, inactive, deleted, CA inactive) are disconnected.

Just-in-time registration: an unknown certificate signed by a registered
ACTIVE CA with autoRegistrationStatus ENABLE is registered PENDING_ACTIVATION
in the CA's account, `$aws/events/certificates/registered/{caCertificateId}`
is published, and the connection is refused, as AWS does on first connect.
With a registrationConfig (templateBody, or templateName of an enabled JITP
template) the template is then evaluated with the certificate's parameters
and applied (JITP); the certificate becomes ACTIVE unless the template says
otherwise, and the device connects on its next attempt. A failing template
leaves the certificate PENDING_ACTIVATION and is logged.

Two reads span every account (the trust anchors of the TLS listeners, and the
CAs that may have issued an unknown certificate); the store port has no such
call, so `trust_anchor_pems` and `_scopes_indexing` query SQLite directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from functools import lru_cache
from urllib.parse import unquote

from cryptography import x509

from localiot import pki
from localiot.broker import codec
from localiot.broker.auth import ConnectInfo, Identity, Refusal
from localiot.policy import PolicyError, Variables, compile_policies
from localiot.protocol.errors import ServiceError
from localiot.protocol import sigv4
from localiot.provisioning import TemplateError, evaluate, validate_template
from localiot.provisioning.apply import apply_plan
from localiot.provisioning.parameters import certificate_parameters
from localiot.services import Affects
from localiot.services.unit_of_work import unit_of_work
from localiot.services.security import authorizers, ca_certificates, certificates, policies, provisioning_templates

log = logging.getLogger("localiot.device_auth")

CERTIFICATE, CUSTOM, SIGV4, OPEN = "certificate", "custom", "sigv4", "open"
MAXIMUM_CONNECT_TIME = 0xA0  # MQTT 5 reason code
SWEEP_SECONDS = 1.0

_AWS_HOST = re.compile(r"\.iot\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?::\d+)?$")
_AUTHORIZER_NAME = "x-amz-customauthorizer-name"
_AUTHORIZER_SIGNATURE = "x-amz-customauthorizer-signature"


class Door(str):
    """A listener's name, as ConnectInfo.listener carries it, with what the transport knew."""

    def __new__(cls, name: str, *, sni: str | None = None, alpn: str | None = None, http: dict | None = None,
                sigv4: tuple | None = None):
        door = super().__new__(cls, name)
        door.sni = sni  # TLS server name (SNI)
        door.alpn = alpn  # negotiated ALPN protocol
        door.http = http  # WebSocket upgrade: {"headers": {...}, "queryString": "...", "host": "..."}
        door.sigv4 = sigv4  # (account, region, access key id) of a verified presigned URL
        return door


class Grant:
    """What a connection may do: compiled policies and its variables (None: everything)."""

    __slots__ = ("policies", "variables", "generation")

    def __init__(self, policies, variables, generation=None):
        self.policies = policies
        self.variables = variables
        self.generation = generation  # None: never goes stale (custom authorizer answers)


ALLOW_ALL = Grant(None, None)


class AuthFailure(Exception):
    """A request refused before MQTT starts (a WebSocket upgrade): HTTP status and message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@lru_cache(maxsize=1024)
def _compiled(pairs: tuple):
    """Effective policies compiled once per distinct content, shared by connections."""
    try:
        return compile_policies(pairs)
    except PolicyError:
        log.exception("a stored policy does not compile; the connection gets no rights from it")
        return compile_policies([])


# cross-account reads -------------------------------------------------------------
def trust_anchor_pems(store) -> list[str]:
    """Every registered CA certificate, and every device certificate registered
    without a CA, in any account: what the TLS listeners must trust."""
    docs = [doc for *_, doc in store.scan_all_scopes(ca_certificates.KIND)]
    docs += [doc for *_, doc in store.scan_all_scopes(
        certificates.KIND, {"caCertificateId": None, "certificateMode": "SNI_ONLY"})]
    return [doc["certificatePem"] for doc in docs if doc.get("certificatePem")]


def _scopes_indexing(store, kind: str, key: str, value: str) -> list[tuple[str, str]]:
    return store.scopes_indexing(kind, key, value)


# helpers -------------------------------------------------------------------------
def region_in(*names: str | None) -> str | None:
    """The region an AWS IoT endpoint host name (SNI or Host) names, if any."""
    for name in names:
        if name:
            m = _AWS_HOST.search(name.lower())
            if m:
                return m.group(1)
    return None


def _query_pairs(text: str) -> list[tuple[str, str]]:
    """A query string's pairs, percent-decoded without turning '+' into a space
    (token signatures are base64)."""
    pairs = []
    for part in text.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


# SigV4-presigned WebSocket URLs -----------------------------------------------------
def verify_presigned(method: str, raw_path: str, query: list[tuple[str, str]], headers, *, secrets: dict[str, str],
                     strict: bool, now: float, default_account: str) -> tuple[str, str, str]:
    """(account, region, access key id) of a SigV4-presigned WebSocket URL, checked by
    botocore's signer (localiot.protocol.sigv4.verify_presigned). Raises AuthFailure."""
    try:
        return sigv4.verify_presigned(method, raw_path, query, headers, secrets=secrets, strict=strict, now=now,
                                      default_account=default_account)
    except ServiceError as e:
        raise AuthFailure(e.status, e.message) from None


# the broker's plug points ---------------------------------------------------------
class DeviceAuth:
    def __init__(self, app):
        self.app = app
        self.runtime = app.runtime
        self.store = app.store
        self.config = app.config
        self.clock = app.runtime.clock
        self.broker = None
        self.on_trust_change = None  # called when trust anchors may have been added
        self._generation = 0
        self._scope_generations: dict[tuple[str, str], int] = {}
        self._sweeper: asyncio.Task | None = None
        self._deferred: dict[int, Identity] = {}  # grants to refresh once the open transaction ends

    def start(self, broker) -> None:
        self.broker = broker
        self.runtime.commit_listeners.append(self.on_commit)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self.on_commit in self.runtime.commit_listeners:
            self.runtime.commit_listeners.remove(self.on_commit)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    # authenticate -------------------------------------------------------------------
    def authenticate(self, info: ConnectInfo):
        door = info.listener
        name = str(door)
        if name == "tcp":
            return Identity(self.config.default_account, self.config.default_region,
                            principal=info.username or "anonymous", policy=ALLOW_ALL, attributes={"kind": OPEN})
        sni = getattr(door, "sni", None)
        if name == "wss":
            if door.sigv4 is not None:
                account, region, access_key = door.sigv4
                return Identity(account, region, principal=access_key, policy=ALLOW_ALL, attributes={"kind": SIGV4})
            found = self.custom_authentication(info.client_id, info.username, info.password, info.remote_address,
                                               sni, http=door.http)
            return found if found is not None else Refusal(
                codec.NOT_AUTHORIZED, "MQTT over WebSocket needs a SigV4-presigned URL or a custom authorizer.")
        certificate = info.peer_certificate
        if certificate is None or name == "alpn-mqtt":
            found = self.custom_authentication(info.client_id, info.username, info.password, info.remote_address, sni)
            if found is not None:
                return found
        if certificate is not None:
            return self.certificate_identity(certificate, info.client_id, info.remote_address, sni)
        return Refusal(codec.NOT_AUTHORIZED, "No client certificate and no custom authorizer.")

    # certificates -----------------------------------------------------------------------
    def certificate_identity(self, der: bytes, client_id: str | None, remote: str | None = None,
                             sni: str | None = None, *, just_in_time: bool = True):
        """Identity for a client certificate (DER), or a Refusal; unknown certificates
        go through just-in-time registration when `just_in_time`."""
        cert_id = hashlib.sha256(der).hexdigest()
        now = self.clock.now()
        with self.store.transaction(*certificates.GLOBAL, write=False) as tx:
            found = self._home(tx, cert_id, sni)
            if found is not None:
                account, region = found
                scoped = tx.scope(account, region)
                doc = certificates.by_id(scoped, cert_id)
                why = self._unusable(scoped, doc, now)
                if why:
                    log.info("refused certificate %s: %s", cert_id, why)
                    return Refusal(codec.NOT_AUTHORIZED, why)
                attributes = {"kind": CERTIFICATE, "principalArn": doc["certificateArn"], "clientId": client_id,
                              "remote": remote, "sni": sni}
                grant, thing, exclusive = self._certificate_grant(scoped, attributes, now)
                attributes["exclusiveThing"] = exclusive
                return Identity(account, region, principal=cert_id, thing_name=thing, policy=grant,
                                attributes=attributes)
        if not just_in_time:
            return Refusal(codec.NOT_AUTHORIZED, "The certificate is not registered.")
        return self._just_in_time(der, cert_id, sni)

    def _home(self, tx, cert_id: str, sni: str | None) -> tuple[str, str] | None:
        homes = certificates.locate(tx, cert_id)
        if len(homes) <= 1:
            return homes[0] if homes else None
        wanted = region_in(sni)
        ranked = sorted(homes, key=lambda home: (
            home[1] != wanted,
            (certificates.by_id(tx.scope(*home), cert_id) or {}).get("status") != certificates.ACTIVE,
            home[0] != self.config.default_account,
        ))
        return ranked[0]

    @staticmethod
    def _unusable(tx, doc: dict | None, now: float) -> str | None:
        """Why a certificate cannot connect now, or None."""
        if doc is None:
            return "The certificate is not registered."
        if doc["status"] != certificates.ACTIVE:
            return f"The certificate is {doc['status']}."
        if not certificates.is_usable(doc, now):
            return "The certificate is outside its validity period."
        ca_id = doc.get("caCertificateId")
        if ca_id:
            ca = ca_certificates.ca_by_id(tx, ca_id)
            if ca is None:
                for account, region, _ in ca_certificates.locate_ca(tx, ca_id):
                    ca = ca_certificates.ca_by_id(tx.scope(account, region), ca_id)
                    if ca is not None:
                        break
            if ca is None:
                return f"The certificate's CA certificate {ca_id} is not registered."
            if ca["status"] != certificates.ACTIVE:
                return f"The certificate's CA certificate {ca_id} is {ca['status']}."
        return None

    def _generation_of(self, account: str, region: str) -> tuple[int, int]:
        return self._generation, self._scope_generations.get((account, region), 0)

    def _certificate_grant(self, tx, attributes: dict, now: float):
        principal, client_id = attributes["principalArn"], attributes["clientId"]
        thing = policies.connection_thing(tx, principal, client_id)
        effective = policies.effective_policies(tx, principal, thing)
        compiled = _compiled(tuple((p["policyName"], p["policyDocument"]) for p in effective))
        extra = {}
        if attributes.get("remote"):
            extra["aws:SourceIp"] = attributes["remote"]
        if attributes.get("sni"):
            extra["iot:DomainName"] = attributes["sni"]
        variables = policies.connection_variables(tx, principal, client_id, thing, now=now, extra=extra)
        exclusive = thing is not None and policies.thing_principal_type(tx, thing, principal) == policies.EXCLUSIVE
        return Grant(compiled, variables, self._generation_of(tx.account, tx.region)), thing, exclusive

    # custom authorizers -------------------------------------------------------------------
    def custom_authentication(self, client_id: str | None, username: str | None, password: bytes | None,
                              remote: str | None, sni: str | None, *, http: dict | None = None):
        """None when no custom authorizer applies; a Refusal; or an awaitable of the
        Identity / Refusal (the authorizer's Lambda runs in a worker thread)."""
        params: dict[str, str] = {}
        if username and "?" in username:
            params.update((k.lower(), v) for k, v in _query_pairs(username.partition("?")[2]))
        headers = {}
        if http:
            params.update((k.lower(), v) for k, v in _query_pairs(http.get("queryString") or ""))
            headers = {k.lower(): v for k, v in (http.get("headers") or {}).items()}
            params.update((k, v) for k, v in headers.items() if k.startswith("x-amz-customauthorizer-"))
        account = self.config.default_account
        region = region_in(sni, (http or {}).get("host")) or self.config.default_region
        name = params.get(_AUTHORIZER_NAME)
        with self.store.transaction(account, region, write=False) as tx:
            if name:
                doc = tx.get(authorizers.KIND, name)
                if doc is None:
                    return Refusal(codec.NOT_AUTHORIZED, f"The authorizer {name} does not exist.")
            else:
                default = tx.get(authorizers.DEFAULT_KIND, authorizers.DEFAULT_NAME)
                doc = tx.get(authorizers.KIND, default["authorizerName"]) if default else None
                if doc is None:
                    return None
        if doc["status"] != "ACTIVE":
            return Refusal(codec.NOT_AUTHORIZED, f"The authorizer {doc['authorizerName']} is not active.")
        key_name = (doc.get("tokenKeyName") or "").lower()
        token = (headers.get(key_name) or params.get(key_name)) if key_name else None
        verified = False
        if not doc["signingDisabled"]:
            signature = params.get(_AUTHORIZER_SIGNATURE)
            if token is None or signature is None or not authorizers.verify_token_signature(doc, token, signature):
                return Refusal(codec.NOT_AUTHORIZED, "The token signature could not be verified.")
            verified = True
        mqtt = None
        if client_id is not None:
            mqtt = {"username": username, "password": password, "clientId": client_id}
        event = authorizers.build_event(
            token=token, signature_verified=verified,
            http={"headers": http.get("headers"), "queryString": http.get("queryString")} if http else None,
            mqtt=mqtt, tls={"serverName": sni} if sni else None,
        )
        return self._invoke(account, region, doc, event, client_id, remote)

    async def _invoke(self, account, region, doc, event, client_id, remote):
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(None, authorizers.invoke_authorizer, self.runtime, region, doc, event)
        except ServiceError as e:
            log.warning("custom authorizer %s failed: %s", doc["authorizerName"], e.message)
            return Refusal(codec.NOT_AUTHORIZED, "The custom authorizer did not answer.")
        except Exception:
            log.exception("custom authorizer %s failed", doc["authorizerName"])
            return Refusal(codec.SERVER_UNAVAILABLE, "The custom authorizer could not be invoked.")
        if not answer["isAuthenticated"]:
            return Refusal(codec.NOT_AUTHORIZED, "The custom authorizer did not authenticate the connection.")
        documents = answer["policyDocuments"] or []
        compiled = _compiled(tuple((f"{doc['authorizerName']}/{i}", text) for i, text in enumerate(documents)))
        values = {"iot:ClientId": client_id, "aws:SourceIp": remote}
        attributes = {"kind": CUSTOM, "authorizer": doc["authorizerName"],
                      "expires_at": self.clock.now() + answer["disconnectAfterInSeconds"]}
        return Identity(account, region, principal=answer["principalId"], policy=Grant(compiled, Variables(values)),
                        attributes=attributes)

    # authorize --------------------------------------------------------------------------
    def authorize(self, identity: Identity, action: str, resource: str) -> bool:
        grant = identity.policy
        if grant is ALLOW_ALL:
            return True
        if not isinstance(grant, Grant):
            return False
        if grant.generation is not None and grant.generation != self._generation_of(identity.account, identity.region):
            grant = self._refresh(identity)
        return grant.policies.is_allowed(action, resource, grant.variables)

    def _refresh(self, identity: Identity) -> Grant:
        if self._in_transaction():  # called from inside someone's transaction: refresh right after it
            if not self._deferred:
                asyncio.get_running_loop().call_soon(self._refresh_deferred)
            self._deferred[id(identity)] = identity
            return identity.policy
        with self.store.transaction(identity.account, identity.region, write=False) as tx:
            grant, thing, exclusive = self._certificate_grant(tx, identity.attributes, self.clock.now())
        identity.policy = grant
        identity.thing_name = thing
        identity.attributes["exclusiveThing"] = exclusive
        return grant

    def _refresh_deferred(self) -> None:
        identities, self._deferred = self._deferred, {}
        for identity in identities.values():
            self._refresh(identity)
        if self.broker is not None:
            self.broker.invalidate_authorization()

    def _in_transaction(self) -> bool:
        db = getattr(self.store, "db", None)
        return bool(db is not None and db.in_transaction)

    # invalidation ----------------------------------------------------------------------
    def on_commit(self, ctx) -> None:
        """Commit listener: operations declare on their @operation decorator what they
        may change for connected devices (localiot.services.Affects)."""
        affects = ctx.affects
        if Affects.TRUST_ANCHORS in affects and self.on_trust_change is not None:
            self.on_trust_change()
        if Affects.DEVICE_RIGHTS not in affects:
            return
        if Affects.ALL_ACCOUNTS in affects:
            self._generation += 1
        else:
            key = (ctx.account, ctx.region)
            self._scope_generations[key] = self._scope_generations.get(key, 0) + 1
        if self.broker is None:
            return
        self.broker.invalidate_authorization()
        if Affects.CERTIFICATE_STATUS in affects:
            self.drop_unusable(None if Affects.ALL_ACCOUNTS in affects else (ctx.account, ctx.region))

    def drop_unusable(self, scope: tuple[str, str] | None = None) -> int:
        """Disconnect certificate clients (of `scope`, or all) whose certificate can no longer connect."""
        from localiot.broker.connection import CONNECTED

        now = self.clock.now()
        verdicts: dict = {}
        victims = []
        with self.store.transaction(*certificates.GLOBAL, write=False) as tx:
            for conn in list(self.broker.connections):
                identity = conn.identity
                if conn.state != CONNECTED or identity is None or identity.attributes.get("kind") != CERTIFICATE:
                    continue
                if scope is not None and (identity.account, identity.region) != scope:
                    continue
                key = (identity.account, identity.region, identity.principal)
                if key not in verdicts:
                    scoped = tx.scope(identity.account, identity.region)
                    verdicts[key] = self._unusable(scoped, certificates.by_id(scoped, identity.principal), now)
                if verdicts[key]:
                    victims.append((conn, verdicts[key]))
        for conn, why in victims:
            log.info("disconnecting client %s: %s", conn.client_id, why)
            conn.drop("AUTH_ERROR", codec.NOT_AUTHORIZED, why)
        if victims:
            self.broker.flush_soon()
        return len(victims)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                self.sweep()
            except Exception:
                log.exception("device authorization sweep failed")

    def sweep(self) -> None:
        """Custom-authorizer connections past disconnectAfterInSeconds (by the injectable clock)."""
        if self.broker is None:
            return
        now = self.clock.now()
        expired = [conn for conn in self.broker.connections
                   if conn.identity is not None and now >= conn.identity.attributes.get("expires_at", now + 1)]
        for conn in expired:
            conn.drop("CUSTOMAUTH_TTL_EXPIRATION", MAXIMUM_CONNECT_TIME,
                      "The authorizer's disconnectAfterInSeconds passed.")
        if expired:
            self.broker.flush_soon()

    # just-in-time registration and provisioning ------------------------------------------
    def _issuing_cas(self, cert) -> list[tuple[str, str, dict]]:
        key = ca_certificates.subject_key(cert.issuer)
        found = []
        with self.store.transaction(*certificates.GLOBAL, write=False) as tx:
            for account, region in _scopes_indexing(self.store, ca_certificates.KIND, "subject", key):
                for doc in ca_certificates.issuers_of(tx.scope(account, region), cert):
                    found.append((account, region, doc))
        return found

    def _just_in_time(self, der: bytes, cert_id: str, sni: str | None):
        refused = Refusal(codec.NOT_AUTHORIZED, "The certificate is not registered.")
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return refused
        candidates = [c for c in self._issuing_cas(cert)
                      if c[2]["status"] == certificates.ACTIVE and c[2].get("autoRegistrationStatus") == "ENABLE"]
        if not candidates:
            return refused
        wanted = region_in(sni)
        candidates.sort(key=lambda c: (c[1] != wanted, c[0] != self.config.default_account))
        account, region, ca = candidates[0]
        now = self.clock.now()
        if not pki.is_within_validity(cert, now):
            return Refusal(codec.NOT_AUTHORIZED, "The certificate is outside its validity period.")
        try:
            with unit_of_work(self.runtime, account, region, "iot", "RegisterCertificate") as ctx:
                doc = ca_certificates.register_with_ca(ctx, cert, ca, certificates.PENDING_ACTIVATION)
                stamp = int(now * 1000)
                ctx.publish(f"$aws/events/certificates/registered/{ca['certificateId']}", {
                    "certificateId": cert_id,
                    "caCertificateId": ca["certificateId"],
                    "timestamp": stamp,
                    "certificateStatus": doc["status"],
                    "awsAccountId": account,
                    "certificateRegistrationTimestamp": int(doc["creationDate"] * 1000),
                })
        except ServiceError as e:
            log.warning("just-in-time registration of certificate %s failed: %s", cert_id, e.message)
            return refused
        log.info("registered certificate %s just in time (CA %s, account %s)", cert_id, ca["certificateId"], account)
        config = ca.get("registrationConfig") or {}
        if config.get("templateBody") or config.get("templateName"):
            self._provision(account, region, cert, cert_id, config)
        return Refusal(codec.NOT_AUTHORIZED, "The certificate was registered just in time; connect again.")

    def _provision(self, account: str, region: str, cert, cert_id: str, config: dict) -> None:
        try:
            with unit_of_work(self.runtime, account, region, "iot", "RegisterThing") as ctx:
                tx = ctx.tx
                body = config.get("templateBody")
                if not body:
                    template = tx.get(provisioning_templates.KIND, config["templateName"])
                    if template is None or not template.get("enabled"):
                        raise TemplateError(f"the template {config['templateName']} is missing or disabled")
                    body = provisioning_templates.default_body(template)
                plan = evaluate(validate_template(body), certificate_parameters(cert, cert_id), region=region, account=account)
                apply_plan(ctx, plan, certificate_id=cert_id)
                doc = certificates.by_id(tx, cert_id)
                if doc is not None and doc["status"] == certificates.PENDING_ACTIVATION:
                    certificates.set_status(ctx, doc, certificates.ACTIVE)
        except (ServiceError, TemplateError) as e:
            log.warning("just-in-time provisioning of certificate %s failed: %s", cert_id, getattr(e, "message", e))
            return
        log.info("provisioned certificate %s just in time", cert_id)
