"""Who a device is: the broker's `authenticate` for every listener.

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
                upgrade by botocore's signer, localiot.protocol.sigv4; the
                identity may do everything in the credentials' account and
                region, as IAM policies are not modelled), else a custom
                authorizer from the upgrade's headers / query string

Certificates: the DER's SHA-256 is the certificate id; `certificates.locate`
says which account/region holds it; it must be ACTIVE, within its validity,
and its CA (if any) registered and ACTIVE. Under mutual TLS the MQTT username
and password are ignored: the AWS IoT Device SDKs put a metrics string there.
The identity's principal is the certificate id (AWS's principalIdentifier),
its thing the one `policies.connection_thing` finds, its policy a
`grants.Grant`. An unknown certificate goes to just-in-time registration.

Custom authorizers: the authorizer named by `x-amz-customauthorizer-name`
(MQTT username query string `user?x-amz-customauthorizer-name=...&token=...`,
or WebSocket / HTTP headers or query parameters), else the account's default
authorizer; it must be ACTIVE; with signing enabled the token's signature is
checked against its keys before the Lambda is called. The Lambda is invoked
off the event loop (it blocks); its policyDocuments become the connection's
policies and disconnectAfterInSeconds is enforced by the injectable clock
(grants.Grants.sweep). The authorizer is looked up in the default account,
in the region an AWS-style host name (`....iot.<region>.amazonaws.com`, SNI
or Host) names, else the default region. refreshAfterInSeconds is not acted
on.

The trust anchors of the TLS listeners span every account: the store port's
`scan_all_scopes` reads them.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from datetime import datetime, timezone
from functools import lru_cache

from localiot.broker import codec
from localiot.broker.auth import ConnectInfo, Identity, Refusal
from localiot.device_auth.base import CERTIFICATE, CUSTOM, OPEN, SIGV4, AuthFailure, query_pairs, region_in
from localiot.device_auth.grants import (ALLOW_ALL, Grant, Grants, certificate_grant, certificate_things, compiled,
                                         unusable)
from localiot.device_auth.just_in_time import JustInTime
from localiot.policy import Variables
from localiot.policy.evaluator import normalize_name
from localiot.protocol import sigv4
from localiot.protocol.errors import ServiceError
from localiot.services.security import authorizers, ca_certificates, certificates

log = logging.getLogger("localiot.device_auth")

_AUTHORIZER_NAME = "x-amz-customauthorizer-name"
_AUTHORIZER_SIGNATURE = "x-amz-customauthorizer-signature"
# normalized names of the variables that differ per connection
_SOURCE_IP, _CLIENT_ID, _CURRENT_TIME, _EPOCH_TIME = (
    normalize_name(name) for name in ("aws:SourceIp", "iot:ClientId", "aws:CurrentTime", "aws:EpochTime"))
KNOWN_MAX = 4096  # certificates remembered, ~3 KB each per thing with their policy variables (then all forgotten)


class Known:
    """What the store said about one certificate (and server name): where it lives, its
    validity, the things it is attached to, and a grant per connection thing (None: no
    thing). Valid while no committed call changed device rights (Grants.epoch) and the
    server was not reset; a new client id costs no store read unless it names another thing."""

    __slots__ = ("epoch", "not_before", "not_after", "arn", "account", "region", "exclusive_thing", "linked",
                 "grants")

    def __init__(self, epoch, not_before, not_after, arn, account, region, exclusive_thing, linked):
        self.epoch, self.not_before, self.not_after = epoch, not_before, not_after
        self.arn, self.account, self.region = arn, account, region
        self.exclusive_thing, self.linked = exclusive_thing, linked
        self.grants: dict[str | None, tuple[Grant, bool]] = {}  # connection thing -> (grant, exclusive)

    def thing_of(self, client_id: str | None) -> str | None:
        """The connection's thing (policies.connection_thing) for this client id."""
        if self.exclusive_thing is not None:
            return self.exclusive_thing
        return client_id if client_id and client_id in self.linked else None


@lru_cache(maxsize=4)
def _current_time(second: int) -> str:
    """aws:CurrentTime of a second (the connections of one second share it)."""
    return datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def trust_anchor_pems(store) -> list[str]:
    """Every registered CA certificate, and every device certificate registered
    without a CA, in any account: what the TLS listeners must trust."""
    docs = [doc for *_, doc in store.scan_all_scopes(ca_certificates.KIND)]
    docs += [doc for *_, doc in store.scan_all_scopes(
        certificates.KIND, {"caCertificateId": None, "certificateMode": "SNI_ONLY"})]
    return [doc["certificatePem"] for doc in docs if doc.get("certificatePem")]


def verify_presigned(method: str, raw_path: str, query: list[tuple[str, str]], headers, *, secrets: dict[str, str],
                     strict: bool, now: float, default_account: str) -> tuple[str, str, str]:
    """(account, region, access key id) of a SigV4-presigned WebSocket URL, checked by
    botocore's signer (localiot.protocol.sigv4.verify_presigned). Raises AuthFailure."""
    try:
        return sigv4.verify_presigned(method, raw_path, query, headers, secrets=secrets, strict=strict, now=now,
                                      default_account=default_account)
    except ServiceError as e:
        raise AuthFailure(e.status, e.message) from None


_OPEN_MAX = 1024  # user names whose plain-listener identity is kept


class Authentication:
    def __init__(self, runtime, store, config, clock, grants: Grants, just_in_time: JustInTime):
        self.runtime = runtime
        self.store = store
        self.config = config
        self.clock = clock
        self.grants = grants
        self.just_in_time = just_in_time
        # (certificate id, SNI) -> what the store said (Known)
        self._known: dict[tuple, Known] = {}
        self._open: dict[str, Identity] = {}  # user name -> the plain listener's identity for it

    def authenticate(self, info: ConnectInfo):
        door = info.listener
        name = str(door)
        if name == "tcp":  # the plain listener: one Identity per user name, shared (nothing changes it)
            principal = info.username or "anonymous"
            identity = self._open.get(principal)
            if identity is None:
                if len(self._open) >= _OPEN_MAX:
                    self._open.clear()
                identity = self._open[principal] = Identity(
                    self.config.default_account, self.config.default_region, principal=principal, policy=ALLOW_ALL,
                    attributes={"kind": OPEN})
            return identity
        sni = getattr(door, "sni", None)
        if name == "wss":
            if door.sigv4 is not None:
                account, region, access_key = door.sigv4
                return Identity(account, region, principal=access_key, policy=ALLOW_ALL, attributes={"kind": SIGV4})
            return self.custom_authentication(
                info.client_id, info.username, info.password, info.remote_address, sni, http=door.http,
                otherwise=lambda: Refusal(codec.NOT_AUTHORIZED,
                                          "MQTT over WebSocket needs a SigV4-presigned URL or a custom authorizer."))
        if info.peer_certificate is None or name == "alpn-mqtt":
            return self.custom_authentication(info.client_id, info.username, info.password, info.remote_address, sni,
                                              otherwise=lambda: self._by_certificate(info, sni))
        return self._by_certificate(info, sni)

    def _by_certificate(self, info: ConnectInfo, sni: str | None):
        certificate = info.peer_certificate
        if certificate is None:
            return Refusal(codec.NOT_AUTHORIZED, "No client certificate and no custom authorizer.")
        workers = getattr(self.runtime, "workers", None)
        if workers is None:  # (certificate_identity looks in memory first itself)
            return self.certificate_identity(certificate, info.client_id, info.remote_address, sni)
        # PostgreSQL: a remembered certificate answers here; the certificate and policy reads
        # go to a worker, the loop awaits them
        identity = self._remembered(hashlib.sha256(certificate).hexdigest(), info.client_id, info.remote_address,
                                    sni, self.clock.now())
        if identity is not None:
            return identity
        return workers.call(self.certificate_identity, certificate, info.client_id, info.remote_address, sni)

    # certificates -----------------------------------------------------------------------
    def certificate_identity(self, der: bytes, client_id: str | None, remote: str | None = None,
                             sni: str | None = None, *, just_in_time: bool = True):
        """Identity for a client certificate (DER), or a Refusal; unknown certificates
        go through just-in-time registration when `just_in_time`."""
        cert_id = hashlib.sha256(der).hexdigest()
        now = self.clock.now()
        identity = self._remembered(cert_id, client_id, remote, sni, now)
        if identity is not None:
            return identity
        key = (cert_id, sni)
        known = self._known.get(key)
        if known is not None and (known.epoch != self._epoch() or not known.not_before <= now <= known.not_after):
            known = None
        with self.store.transaction(*certificates.GLOBAL, write=False) as tx:
            found = self._home(tx, cert_id, sni)
            if found is not None:
                account, region = found
                scoped = tx.scope(account, region)
                doc = certificates.by_id(scoped, cert_id)
                why = unusable(scoped, doc, now)
                if why:
                    log.info("refused certificate %s: %s", cert_id, why)
                    return Refusal(codec.NOT_AUTHORIZED, why)
                attributes = {"kind": CERTIFICATE, "principalArn": doc["certificateArn"], "clientId": client_id,
                              "remote": remote, "sni": sni}
                epoch = self._epoch()
                grant, thing, exclusive = certificate_grant(scoped, attributes, now,
                                                            self.grants.generation_of(account, region))
                attributes["exclusiveThing"] = exclusive
                if known is None:
                    if len(self._known) >= KNOWN_MAX:
                        self._known.clear()
                    validity = doc["validity"]  # (its status is ACTIVE: changing it moves the epoch)
                    exclusive_thing, linked = certificate_things(scoped, doc["certificateArn"])
                    known = self._known[key] = Known(epoch, validity["notBefore"], validity["notAfter"],
                                                     doc["certificateArn"], account, region, exclusive_thing, linked)
                if known.thing_of(client_id) == thing:
                    known.grants[thing] = (grant, exclusive)
                return Identity(account, region, principal=cert_id, thing_name=thing, policy=grant,
                                attributes=attributes)
        if not just_in_time:
            return Refusal(codec.NOT_AUTHORIZED, "The certificate is not registered.")
        return self.just_in_time.register(der, cert_id, sni)

    def _remembered(self, cert_id: str, client_id: str | None, remote, sni: str | None, now: float):
        """The identity of a certificate seen before, from `_known` alone (no store read, so
        no worker hop with PostgreSQL), or None when the store must be asked."""
        known = self._known.get((cert_id, sni))
        if known is None or known.epoch != self._epoch() or not known.not_before <= now <= known.not_after:
            return None
        thing = known.thing_of(client_id)
        grant = known.grants.get(thing)
        if grant is None:
            return None
        return self._known_identity(known, grant, thing, cert_id, client_id, remote, sni, now)

    def _epoch(self) -> tuple:
        broker = self.grants.broker
        return self.grants.epoch, getattr(broker, "resets", 0)

    def _known_identity(self, known: Known, hit: tuple, thing, cert_id: str, client_id, remote, sni,
                        now: float) -> Identity:
        """The identity of a certificate seen before (with this connection's thing: none, or the
        same), with nothing committed since that changes device rights: no store read, no
        certificate parse. Only what differs per connection is new (client id, source address,
        time variables)."""
        grant, exclusive = hit
        attributes = {"kind": CERTIFICATE, "principalArn": known.arn, "clientId": client_id,
                      "remote": remote, "sni": sni, "exclusiveThing": exclusive}
        variables = Variables()
        dict.update(variables, grant.variables)
        second = int(now)
        variables[_CURRENT_TIME] = _current_time(second)
        variables[_EPOCH_TIME] = str(second)
        # the remembered grant's client id and address are an earlier connection's: this one's or none
        if remote is not None:
            variables[_SOURCE_IP] = remote
        else:
            dict.pop(variables, _SOURCE_IP, None)
        if client_id:
            variables[_CLIENT_ID] = client_id
        else:  # (HTTPS publish, the credential provider: no MQTT client id)
            dict.pop(variables, _CLIENT_ID, None)
        return Identity(known.account, known.region, principal=cert_id, thing_name=thing,
                        policy=Grant(grant.policies, variables, grant.generation), attributes=attributes)

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

    # custom authorizers -------------------------------------------------------------------
    def custom_authentication(self, client_id: str | None, username: str | None, password: bytes | None,
                              remote: str | None, sni: str | None, *, http: dict | None = None, otherwise=None):
        """None when no custom authorizer applies (`otherwise()` when given); a Refusal; or an
        awaitable of the Identity / Refusal (the authorizer's Lambda runs in a worker thread).
        With PostgreSQL a coroutine of any of these: the authorizer is read on a worker."""
        params: dict[str, str] = {}
        if username and "?" in username:
            params.update((k.lower(), v) for k, v in query_pairs(username.partition("?")[2]))
        headers = {}
        if http:
            params.update((k.lower(), v) for k, v in query_pairs(http.get("queryString") or ""))
            headers = {k.lower(): v for k, v in (http.get("headers") or {}).items()}
            params.update((k, v) for k, v in headers.items() if k.startswith("x-amz-customauthorizer-"))
        account = self.config.default_account
        region = region_in(sni, (http or {}).get("host")) or self.config.default_region
        name = params.get(_AUTHORIZER_NAME)
        go_on = (client_id, username, password, remote, sni, http, params, headers, account, region, otherwise)
        workers = getattr(self.runtime, "workers", None)
        if workers is None:
            return self._custom_with(self._authorizer(account, region, name), *go_on)
        return self._custom_off_loop(workers.call(self._authorizer, account, region, name), go_on)

    async def _custom_off_loop(self, reading, go_on):
        result = self._custom_with(await reading, *go_on)
        while inspect.isawaitable(result):
            result = await result
        return result

    def _authorizer(self, account: str, region: str, name: str | None):
        """The authorizer named (or the default one: None if there is none), or a Refusal."""
        with self.store.transaction(account, region, write=False) as tx:
            if name:
                doc = tx.get(authorizers.KIND, name)
                if doc is None:
                    return Refusal(codec.NOT_AUTHORIZED, f"The authorizer {name} does not exist.")
                return doc
            default = tx.get(authorizers.DEFAULT_KIND, authorizers.DEFAULT_NAME)
            return tx.get(authorizers.KIND, default["authorizerName"]) if default else None

    def _custom_with(self, doc, client_id, username, password, remote, sni, http, params, headers, account, region,
                     otherwise):
        if doc is None:
            return otherwise() if otherwise is not None else None
        if isinstance(doc, Refusal):
            return doc
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
        policy = compiled(tuple((f"{doc['authorizerName']}/{i}", text) for i, text in enumerate(documents)))
        values = {"iot:ClientId": client_id, "aws:SourceIp": remote}
        attributes = {"kind": CUSTOM, "authorizer": doc["authorizerName"],
                      "expires_at": self.clock.now() + answer["disconnectAfterInSeconds"]}
        return Identity(account, region, principal=answer["principalId"], policy=Grant(policy, Variables(values)),
                        attributes=attributes)
