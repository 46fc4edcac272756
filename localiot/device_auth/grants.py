"""What a connected device may do, kept current as the API changes it.

A `Grant` is the effective IoT policies compiled once (cached by content
across connections) and the connection's policy variables;
`Grants.authorize` asks `Grant.policies.is_allowed(action, resource,
variables)` and the broker caches the decisions per connection.

After every committed operation that declared (on its @operation decorator,
localiot.services.Affects) that it changes device rights, the grants of
that account/region (or of all, for a CA certificate) go stale and are
recomputed on their next use, the broker's decision caches are cleared,
and clients whose certificate is no longer usable (revoked, inactive,
deleted, outside its validity, CA inactive) are disconnected. Connections
that a custom authorizer let in are dropped once its
disconnectAfterInSeconds passes by the injectable clock.
"""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache

from localiot.broker import codec
from localiot.broker.auth import Identity
from localiot.device_auth.base import CERTIFICATE
from localiot.policy import PolicyError, compile_policies
from localiot.services import Affects
from localiot.services.security import ca_certificates, certificates, policies

log = logging.getLogger("localiot.device_auth")

MAXIMUM_CONNECT_TIME = 0xA0  # MQTT 5 reason code
SWEEP_SECONDS = 1.0


class Grant:
    """What a connection may do: compiled policies and its variables (None: everything)."""

    __slots__ = ("policies", "variables", "generation")

    def __init__(self, policies, variables, generation=None):
        self.policies = policies
        self.variables = variables
        self.generation = generation  # None: never goes stale (custom authorizer answers)


ALLOW_ALL = Grant(None, None)


@lru_cache(maxsize=1024)
def compiled(pairs: tuple):
    """Effective policies compiled once per distinct content, shared by connections."""
    try:
        return compile_policies(pairs)
    except PolicyError:
        log.exception("a stored policy does not compile; the connection gets no rights from it")
        return compile_policies([])


def unusable(tx, doc: dict | None, now: float) -> str | None:
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


def certificate_grant(tx, attributes: dict, now: float, generation) -> tuple[Grant, str | None, bool]:
    """(grant, thing, whether the thing is attached exclusively) of a certificate connection."""
    principal, client_id = attributes["principalArn"], attributes["clientId"]
    thing = policies.connection_thing(tx, principal, client_id)
    effective = policies.effective_policies(tx, principal, thing)
    policy = compiled(tuple((p["policyName"], p["policyDocument"]) for p in effective))
    extra = {}
    if attributes.get("remote"):
        extra["aws:SourceIp"] = attributes["remote"]
    if attributes.get("sni"):
        extra["iot:DomainName"] = attributes["sni"]
    variables = policies.connection_variables(tx, principal, client_id, thing, now=now, extra=extra)
    exclusive = thing is not None and policies.thing_principal_type(tx, thing, principal) == policies.EXCLUSIVE
    return Grant(policy, variables, generation), thing, exclusive


def certificate_things(tx, principal: str) -> tuple[str | None, frozenset]:
    """(the thing the certificate is attached to exclusively or None, every thing it is attached
    to): what policies.connection_thing decides from, for any client id."""
    linked = tx.linked_to(policies.PRINCIPALS, principal)
    for thing_name in linked:
        if policies.thing_principal_type(tx, thing_name, principal) == policies.EXCLUSIVE:
            return thing_name, frozenset(linked)
    return None, frozenset(linked)


class Grants:
    """The broker's `authorize`, and the invalidation that keeps grants current."""

    def __init__(self, runtime, store, clock):
        self.runtime = runtime
        self.store = store
        self.clock = clock
        self.broker = None
        self.on_trust_change = None  # called when trust anchors may have been added
        self._generation = 0
        self._scope_generations: dict[tuple[str, str], int] = {}
        self._sweeper: asyncio.Task | None = None
        self._deferred: dict[int, Identity] = {}  # grants to refresh once the open transaction ends
        self.epoch = 0  # counts committed changes of device rights anywhere (identity caches check it)

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

    def generation_of(self, account: str, region: str) -> tuple[int, int]:
        return self._generation, self._scope_generations.get((account, region), 0)

    # authorize --------------------------------------------------------------------------
    def authorize(self, identity: Identity, action: str, resource: str) -> bool:
        grant = identity.policy
        if grant is ALLOW_ALL:
            return True
        if not isinstance(grant, Grant):
            return False
        if grant.generation is not None and grant.generation != self.generation_of(identity.account, identity.region):
            grant = self._refresh(identity)
        return grant.policies.is_allowed(action, resource, grant.variables)

    def _refresh(self, identity: Identity) -> Grant:
        if self._in_transaction():  # called from inside someone's transaction: refresh right after it
            if not self._deferred:
                asyncio.get_running_loop().call_soon(self._refresh_deferred)
            self._deferred[id(identity)] = identity
            return identity.policy
        with self.store.transaction(identity.account, identity.region, write=False) as tx:
            grant, thing, exclusive = certificate_grant(
                tx, identity.attributes, self.clock.now(), self.generation_of(identity.account, identity.region))
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
        if not affects:  # most calls (every read) change nothing for devices
            return
        if Affects.TRUST_ANCHORS in affects and self.on_trust_change is not None:
            self.on_trust_change()
        if Affects.DEVICE_RIGHTS not in affects:
            return
        self.epoch += 1
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
                    verdicts[key] = unusable(scoped, certificates.by_id(scoped, identity.principal), now)
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
