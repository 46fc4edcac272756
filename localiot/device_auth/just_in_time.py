"""Just-in-time registration (JITR) and provisioning (JITP) of a certificate
the broker has never seen.

An unknown certificate signed by a registered ACTIVE CA with
autoRegistrationStatus ENABLE is registered PENDING_ACTIVATION in the CA's
account, `$aws/events/certificates/registered/{caCertificateId}` is
published, and the connection is refused, as AWS does on first connect.
With a registrationConfig (templateBody, or templateName of an enabled JITP
template) the template is then evaluated with the certificate's parameters
(localiot.provisioning.parameters) and applied (JITP); the certificate
becomes ACTIVE unless the template says otherwise, and the device connects
on its next attempt. A failing template leaves the certificate
PENDING_ACTIVATION and is logged.

Finding the CAs that may have issued the certificate spans every account:
the store port's `scopes_indexing` answers which (account, region) index a
CA subject.
"""

from __future__ import annotations

import logging

from cryptography import x509

from localiot import pki
from localiot.broker import codec
from localiot.broker.auth import Refusal
from localiot.device_auth.base import region_in
from localiot.protocol.errors import ServiceError
from localiot.provisioning import TemplateError, evaluate, validate_template
from localiot.provisioning.apply import apply_plan
from localiot.provisioning.parameters import certificate_parameters
from localiot.services.security import ca_certificates, certificates, provisioning_templates
from localiot.services.unit_of_work import unit_of_work

log = logging.getLogger("localiot.device_auth")


class JustInTime:
    def __init__(self, runtime, store, config, clock):
        self.runtime = runtime
        self.store = store
        self.config = config
        self.clock = clock

    def register(self, der: bytes, cert_id: str, sni: str | None) -> Refusal:
        """Register (and provision) an unknown certificate if a CA allows it; the
        connection is refused either way."""
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

    def _issuing_cas(self, cert) -> list[tuple[str, str, dict]]:
        key = ca_certificates.subject_key(cert.issuer)
        found = []
        with self.store.transaction(*certificates.GLOBAL, write=False) as tx:
            for account, region in self.store.scopes_indexing(ca_certificates.KIND, "subject", key):
                for doc in ca_certificates.issuers_of(tx.scope(account, region), cert):
                    found.append((account, region, doc))
        return found

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
                plan = evaluate(validate_template(body), certificate_parameters(cert, cert_id),
                                region=region, account=account)
                apply_plan(ctx, plan, certificate_id=cert_id)
                doc = certificates.by_id(tx, cert_id)
                if doc is not None and doc["status"] == certificates.PENDING_ACTIVATION:
                    certificates.set_status(ctx, doc, certificates.ACTIVE)
        except (ServiceError, TemplateError) as e:
            log.warning("just-in-time provisioning of certificate %s failed: %s", cert_id, getattr(e, "message", e))
            return
        log.info("provisioned certificate %s just in time", cert_id)
