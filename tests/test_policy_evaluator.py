"""The policy evaluator, table-driven through TestAuthorization over HTTP.

Each case creates policies, attaches them (to a real X.509 certificate written
into the store, a Cognito identity or thing groups), optionally creates the
thing `dev-1` and attaches the certificate to it, then asks TestAuthorization
and checks the decision (and, where given, the allowed / denied policy lists
and missing context values). A few evaluator features that TestAuthorization
cannot reach (aws:SourceIp, ARN conditions...) are unit-tested at the end.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache

import pytest

from localiot.policy import Variables, certificate_variables, compile_policies, evaluate
from localiot.testing import ACCOUNT, REGION

PREFIX = f"arn:aws:iot:{REGION}:{ACCOUNT}:"
COGNITO_ID = "us-east-1:1234abcd-12ab-34cd-56ef-1234567890ab"
CN = "dev-cn-1"
SERIAL = 4242


def arn(suffix: str) -> str:
    return suffix if suffix.startswith("arn:") or suffix == "*" else PREFIX + suffix


def allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": _res(resource), **extra}


def deny(action, resource, **extra):
    return {"Effect": "Deny", "Action": action, "Resource": _res(resource), **extra}


def _res(resource):
    return [arn(r) for r in resource] if isinstance(resource, list) else arn(resource)


def cond(action, resource, condition, effect="Allow"):
    return {"Effect": effect, "Action": action, "Resource": _res(resource), "Condition": condition}


# a real certificate ------------------------------------------------------------
@lru_cache(maxsize=None)
def certificate():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "eng"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ops"),
        x509.NameAttribute(NameOID.COMMON_NAME, CN),
    ])
    issuer = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme CA"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Acme Root CA"),
    ])
    san = x509.SubjectAlternativeName([
        x509.DNSName("dev1.example.com"),
        x509.RFC822Name("dev1@example.com"),
        x509.UniformResourceIdentifier("urn:device:dev1"),
        x509.IPAddress(ipaddress.ip_address("10.0.0.7")),
    ])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
        .serial_number(SERIAL)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=timezone.utc))
        .not_valid_after(datetime(2050, 1, 1, tzinfo=timezone.utc))
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return cert.public_bytes(serialization.Encoding.PEM).decode(), hashlib.sha256(der).hexdigest()


def insert_cert(server) -> str:
    pem, cert_id = certificate()
    cert_arn = f"{PREFIX}cert/{cert_id}"

    def put():
        with server.app.store.transaction(ACCOUNT, REGION) as tx:
            tx.put("cert", cert_id, {
                "certificateId": cert_id, "certificateArn": cert_arn, "certificatePem": pem,
                "status": "ACTIVE", "creationDate": time.time(),
            })

    server.call(put)
    return cert_arn


# cases -------------------------------------------------------------------------
@dataclass
class Case:
    id: str
    statements: list | None = None  # one policy "p", attached to the principal
    expect: str = "ALLOWED"
    action: str = "PUBLISH"
    resources: tuple = ("topic/a",)
    client_id: str | None = "dev-1"
    policies: dict = field(default_factory=dict)  # name -> (statements, "principal"|"root"|"mid"|"leaf"|"none")
    thing: str | None = None  # None | "attached" | "exclusive" | "unattached"
    version: str = "2012-10-17"
    principal: str = "cert"  # "cert" | "cognito" | "group" (the leaf group)
    add: tuple = ()
    skip: tuple = ()
    allowed: tuple | None = None
    explicit: tuple | None = None
    implicit: tuple | None = None
    missing: tuple | None = None


TN = "${iot:Connection.Thing.ThingName}"
CASES = [
    # actions
    Case("action-exact", [allow("iot:Publish", "topic/a")]),
    Case("action-case-insensitive", [allow("IOT:PUBLISH", "topic/a")]),
    Case("action-iot-star", [allow("iot:*", "topicfilter/a")], action="SUBSCRIBE", resources=("topicfilter/a",)),
    Case("action-star", [allow("*", "client/dev-1")], action="CONNECT", resources=("client/dev-1",)),
    Case("action-prefix-wildcard", [allow("iot:Pub*", "topic/a")]),
    Case("action-prefix-wildcard-miss", [allow("iot:Pub*", "*")], expect="IMPLICIT_DENY", action="SUBSCRIBE",
         resources=("topicfilter/a",)),
    Case("action-qmark", [allow("iot:?ublish", "topic/a")]),
    Case("action-list", [allow(["iot:Subscribe", "iot:Receive"], "topic/a")], action="RECEIVE"),
    Case("action-mismatch", [allow("iot:Subscribe", "*")], expect="IMPLICIT_DENY"),
    Case("not-action-other", [{"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"}], action="SUBSCRIBE",
         resources=("topicfilter/a",)),
    Case("not-action-self", [{"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"}], expect="IMPLICIT_DENY"),
    Case("deny-not-action-blocks", [allow("*", "*"), {"Effect": "Deny", "NotAction": "iot:Connect", "Resource": "*"}],
         expect="EXPLICIT_DENY"),
    Case("deny-not-action-spares", [allow("*", "*"), {"Effect": "Deny", "NotAction": "iot:Connect", "Resource": "*"}],
         action="CONNECT", resources=("client/dev-1",)),
    # resources
    Case("resource-star", [allow("iot:Publish", "*")], resources=("topic/any/thing",)),
    Case("resource-suffix-wildcard", [allow("iot:Publish", "topic/a/*")], resources=("topic/a/b/c",)),
    Case("resource-suffix-wildcard-needs-slash", [allow("iot:Publish", "topic/a/*")], expect="IMPLICIT_DENY",
         resources=("topic/a",)),
    Case("resource-qmark", [allow("iot:Publish", "topic/a/?")], resources=("topic/a/b",)),
    Case("resource-qmark-one-char", [allow("iot:Publish", "topic/a/?")], expect="IMPLICIT_DENY", resources=("topic/a/bc",)),
    Case("resource-wild-region-account", [allow("iot:Publish", "arn:aws:iot:*:*:topic/x")], resources=("topic/x",)),
    Case("resource-other-account", [allow("iot:Publish", "arn:aws:iot:us-east-1:999999999999:topic/x")],
         expect="IMPLICIT_DENY", resources=("topic/x",)),
    Case("resource-case-sensitive", [allow("iot:Publish", "topic/Room")], expect="IMPLICIT_DENY", resources=("topic/room",)),
    Case("resource-list", [allow("iot:Publish", ["topic/x", "topic/a"])]),
    Case("not-resource-other", [{"Effect": "Allow", "Action": "iot:Publish", "NotResource": arn("topic/secret/*")}],
         resources=("topic/public",)),
    Case("not-resource-self", [{"Effect": "Allow", "Action": "iot:Publish", "NotResource": arn("topic/secret/*")}],
         expect="IMPLICIT_DENY", resources=("topic/secret/x",)),
    Case("deny-not-resource", [allow("iot:*", "*"), {"Effect": "Deny", "Action": "iot:Publish", "NotResource": arn("topic/ok/*")}],
         expect="EXPLICIT_DENY", resources=("topic/other",)),
    Case("deny-not-resource-spares", [allow("iot:*", "*"), {"Effect": "Deny", "Action": "iot:Publish", "NotResource": arn("topic/ok/*")}],
         resources=("topic/ok/1",)),
    # topic filters: + and # are literal characters
    Case("topicfilter-plus-literal", [allow("iot:Subscribe", "topicfilter/a/+")], action="SUBSCRIBE",
         resources=("topicfilter/a/+",)),
    Case("topicfilter-plus-not-wildcard", [allow("iot:Subscribe", "topicfilter/a/+")], expect="IMPLICIT_DENY",
         action="SUBSCRIBE", resources=("topicfilter/a/b",)),
    Case("topicfilter-hash-literal", [allow("iot:Subscribe", "topicfilter/a/#")], action="SUBSCRIBE",
         resources=("topicfilter/a/#",)),
    Case("topicfilter-hash-not-wildcard", [allow("iot:Subscribe", "topicfilter/a/#")], expect="IMPLICIT_DENY",
         action="SUBSCRIBE", resources=("topicfilter/a/b/c",)),
    Case("topicfilter-star-covers-hash", [allow("iot:Subscribe", "topicfilter/a/*")], action="SUBSCRIBE",
         resources=("topicfilter/a/#",)),
    Case("topicfilter-star-covers-plus", [allow("iot:Subscribe", "topicfilter/a/*")], action="SUBSCRIBE",
         resources=("topicfilter/a/+/c",)),
    Case("topic-is-not-topicfilter", [allow("iot:Subscribe", "topic/a")], expect="IMPLICIT_DENY", action="SUBSCRIBE",
         resources=("topicfilter/a",)),
    # deny precedence
    Case("deny-beats-allow", [allow("iot:*", "*"), deny("iot:Publish", "topic/a")], expect="EXPLICIT_DENY"),
    Case("deny-in-other-policy", policies={
        "grant": ([allow("iot:*", "*")], "principal"), "block": ([deny("iot:Publish", "topic/*")], "principal"),
    }, expect="EXPLICIT_DENY", allowed=("grant",), explicit=("block",), implicit=()),
    Case("deny-other-resource", [allow("iot:*", "*"), deny("iot:Publish", "topic/b")]),
    Case("deny-other-action", [allow("iot:*", "*"), deny("iot:Subscribe", "*")]),
    Case("deny-only", [deny("iot:*", "*")], expect="EXPLICIT_DENY"),
    Case("no-policies", policies={}, expect="IMPLICIT_DENY"),
    Case("implicit-lists", policies={
        "grant": ([allow("iot:Publish", "topic/a")], "principal"), "unrelated": ([allow("iot:Connect", "*")], "principal"),
    }, allowed=("grant",), explicit=(), implicit=("unrelated",)),
    Case("multi-resource-one-denied", [allow("iot:Publish", "topic/a")], expect="IMPLICIT_DENY",
         resources=("topic/a", "topic/b")),
    Case("multi-resource-all-allowed", [allow("iot:Publish", ["topic/a", "topic/b"])], resources=("topic/a", "topic/b")),
    # policy variables
    Case("var-client-id", [allow("iot:Publish", "topic/${iot:ClientId}/*")], resources=("topic/dev-1/x",)),
    Case("var-client-id-other", [allow("iot:Publish", "topic/${iot:ClientId}/*")], expect="IMPLICIT_DENY",
         resources=("topic/dev-2/x",)),
    Case("var-client-id-missing", [allow("iot:Publish", "topic/${iot:ClientId}/*")], expect="IMPLICIT_DENY",
         client_id=None, resources=("topic/dev-1/x",), missing=("iot:ClientId",)),
    Case("var-client-id-connect", [allow("iot:Connect", "client/${iot:ClientId}")], action="CONNECT",
         resources=("client/dev-1",)),
    Case("var-name-case-insensitive", [allow("iot:Publish", "topic/${IOT:CLIENTID}")], resources=("topic/dev-1",)),
    Case("var-client-id-is-literal", [allow("iot:Publish", "topic/${iot:ClientId}")], expect="IMPLICIT_DENY",
         client_id="dev*", resources=("topic/dev-1",)),
    Case("var-client-id-literal-match", [allow("iot:Publish", "topic/${iot:ClientId}")], client_id="dev*",
         resources=("topic/dev*",)),
    Case("var-thing-name", [allow("iot:Publish", f"topic/{TN}")], thing="attached", resources=("topic/dev-1",)),
    Case("var-thing-name-no-thing", [allow("iot:Publish", f"topic/{TN}")], expect="IMPLICIT_DENY",
         resources=("topic/dev-1",), missing=("iot:Connection.Thing.ThingName",)),
    Case("var-thing-name-unattached", [allow("iot:Publish", f"topic/{TN}")], expect="IMPLICIT_DENY", thing="unattached",
         resources=("topic/dev-1",)),
    Case("var-thing-type", [allow("iot:Publish", "topic/${iot:Connection.Thing.ThingTypeName}")], thing="attached",
         resources=("topic/sensor",)),
    Case("var-thing-attribute", [allow("iot:Publish", "topic/floor/${iot:Connection.Thing.Attributes[floor]}")],
         thing="attached", resources=("topic/floor/3",)),
    Case("var-thing-attribute-case-kept", [allow("iot:Publish", "topic/${iot:Connection.Thing.Attributes[Color]}")],
         thing="attached", resources=("topic/red",)),
    Case("var-thing-attribute-missing", [allow("iot:Publish", "topic/${iot:Connection.Thing.Attributes[nope]}/*")],
         expect="IMPLICIT_DENY", thing="attached", resources=("topic/x/y",),
         missing=("iot:Connection.Thing.Attributes[nope]",)),
    Case("var-cert-common-name", [allow("iot:Publish", "topic/${iot:Certificate.Subject.CommonName}")],
         resources=(f"topic/{CN}",)),
    Case("var-cert-organization", [allow("iot:Publish", "topic/${iot:Certificate.Subject.Organization}")],
         resources=("topic/Acme",)),
    Case("var-cert-country-state", [allow("iot:Publish",
                                          "topic/${iot:Certificate.Subject.Country}/${iot:Certificate.Subject.State}")],
         resources=("topic/US/WA",)),
    Case("var-cert-ou-first-value", [allow("iot:Publish", "topic/${iot:Certificate.Subject.OrganizationalUnit}")],
         resources=("topic/eng",)),
    Case("var-cert-issuer", [allow("iot:Publish", "topic/${iot:Certificate.Issuer.CommonName}")],
         resources=("topic/Acme Root CA",)),
    Case("var-cert-issuer-org", [allow("iot:Publish", "topic/${iot:Certificate.Issuer.Organization}")],
         resources=("topic/Acme CA",)),
    Case("var-cert-san-dns", [allow("iot:Publish", "topic/${iot:Certificate.SubjectAlternativeName.DNSName}")],
         resources=("topic/dev1.example.com",)),
    Case("var-cert-san-email", [allow("iot:Publish", "topic/${iot:Certificate.SubjectAlternativeName.RFC822Name}")],
         resources=("topic/dev1@example.com",)),
    Case("var-cert-san-uri-ip", [allow("iot:Publish",
                                       "topic/${iot:Certificate.SubjectAlternativeName.UniformResourceIdentifier}/"
                                       "${iot:Certificate.SubjectAlternativeName.IPAddress}")],
         resources=("topic/urn:device:dev1/10.0.0.7",)),
    Case("var-cert-serial", [allow("iot:Publish", "topic/${iot:Certificate.SerialNumber}")], resources=(f"topic/{SERIAL}",)),
    Case("var-cert-missing-field", [allow("iot:Publish", "topic/${iot:Certificate.Subject.Surname}")],
         expect="IMPLICIT_DENY", resources=("topic/x",), missing=("iot:Certificate.Subject.Surname",)),
    Case("var-cognito-sub", [allow("iot:Publish", "topic/${cognito-identity.amazonaws.com:sub}")], principal="cognito",
         resources=(f"topic/{COGNITO_ID}",)),
    Case("escape-star", [allow("iot:Publish", "topic/a${*}")], resources=("topic/a*",)),
    Case("escape-star-is-literal", [allow("iot:Publish", "topic/a${*}")], expect="IMPLICIT_DENY", resources=("topic/ab",)),
    Case("escape-qmark", [allow("iot:Publish", "topic/a${?}")], resources=("topic/a?",)),
    Case("escape-qmark-is-literal", [allow("iot:Publish", "topic/a${?}")], expect="IMPLICIT_DENY", resources=("topic/ab",)),
    Case("escape-dollar", [allow("iot:Publish", "topic/${$}{x}")], resources=("topic/${x}",)),
    Case("version-2008-no-variables", [allow("iot:Publish", "topic/${iot:ClientId}")], version="2008-10-17",
         resources=("topic/${iot:ClientId}",)),
    Case("version-2008-no-substitution", [allow("iot:Publish", "topic/${iot:ClientId}")], version="2008-10-17",
         expect="IMPLICIT_DENY", resources=("topic/dev-1",)),
    Case("deny-unresolvable-ignored", [allow("iot:*", "*"), deny("iot:Publish", f"topic/{TN}")],
         resources=("topic/dev-1",)),
    Case("deny-resolvable-applies", [allow("iot:*", "*"), deny("iot:Publish", f"topic/{TN}")], thing="attached",
         expect="EXPLICIT_DENY", resources=("topic/dev-1",)),
    Case("unresolvable-entry-others-match", [allow("iot:Publish", [f"topic/{TN}", "topic/a"])]),
    # conditions
    Case("cond-string-equals", [cond("iot:Publish", "*", {"StringEquals": {"iot:ClientId": "dev-1"}})]),
    Case("cond-string-equals-miss", [cond("iot:Publish", "*", {"StringEquals": {"iot:ClientId": "dev-2"}})],
         expect="IMPLICIT_DENY"),
    Case("cond-string-equals-any-value", [cond("iot:Publish", "*", {"StringEquals": {"iot:ClientId": ["x", "dev-1"]}})]),
    Case("cond-string-not-equals", [cond("iot:Publish", "*", {"StringNotEquals": {"iot:ClientId": "dev-2"}})]),
    Case("cond-string-not-equals-list", [cond("iot:Publish", "*", {"StringNotEquals": {"iot:ClientId": ["x", "dev-1"]}})],
         expect="IMPLICIT_DENY"),
    Case("cond-equals-ignore-case", [cond("iot:Publish", "*", {"StringEqualsIgnoreCase": {"iot:ClientId": "DEV-1"}})]),
    Case("cond-equals-is-case-sensitive", [cond("iot:Publish", "*", {"StringEquals": {"iot:ClientId": "DEV-1"}})],
         expect="IMPLICIT_DENY"),
    Case("cond-string-like", [cond("iot:Publish", "*", {"StringLike": {"iot:ClientId": "dev-*"}})]),
    Case("cond-string-not-like", [cond("iot:Publish", "*", {"StringNotLike": {"iot:ClientId": "dev-?"}})],
         expect="IMPLICIT_DENY"),
    Case("cond-key-case-insensitive", [cond("iot:Publish", "*", {"StringEquals": {"IOT:clientid": "dev-1"}})]),
    Case("cond-missing-key", [cond("iot:Publish", "*", {"StringEquals": {"iot:DomainName": "x"}})],
         expect="IMPLICIT_DENY", missing=("iot:DomainName",)),
    Case("cond-if-exists-missing", [cond("iot:Publish", "*", {"StringEqualsIfExists": {"iot:DomainName": "x"}})]),
    Case("cond-if-exists-present", [cond("iot:Publish", "*", {"StringEqualsIfExists": {"iot:ClientId": "x"}})],
         expect="IMPLICIT_DENY"),
    Case("cond-negated-missing-key", [cond("iot:Publish", "*", {"StringNotEquals": {"iot:DomainName": "x"}})]),
    Case("cond-null-true", [cond("iot:Publish", "*", {"Null": {"iot:DomainName": "true"}})]),
    Case("cond-null-true-present", [cond("iot:Publish", "*", {"Null": {"iot:ClientId": "true"}})], expect="IMPLICIT_DENY"),
    Case("cond-null-false", [cond("iot:Publish", "*", {"Null": {"iot:ClientId": False}})]),
    Case("cond-numeric", [cond("iot:Publish", "*", {"NumericGreaterThanEquals": {
        "iot:Connection.Thing.Attributes[floor]": 3}})], thing="attached"),
    Case("cond-numeric-miss", [cond("iot:Publish", "*", {"NumericLessThan": {
        "iot:Connection.Thing.Attributes[floor]": "3"}})], thing="attached", expect="IMPLICIT_DENY"),
    Case("cond-numeric-not-a-number", [cond("iot:Publish", "*", {"NumericEquals": {
        "iot:Connection.Thing.Attributes[Color]": "3"}})], thing="attached", expect="IMPLICIT_DENY"),
    Case("cond-bool-is-attached", [cond("iot:Publish", "*", {"Bool": {"iot:Connection.Thing.IsAttached": "true"}})],
         thing="attached"),
    Case("cond-bool-is-attached-not", [cond("iot:Publish", "*", {"Bool": {"iot:Connection.Thing.IsAttached": True}})],
         thing="unattached", expect="IMPLICIT_DENY"),
    Case("cond-date-current-time", [cond("iot:Publish", "*", {"DateGreaterThan": {"aws:CurrentTime": "2001-01-01T00:00:00Z"}})]),
    Case("cond-date-current-time-miss", [cond("iot:Publish", "*", {"DateLessThan": {"aws:CurrentTime": "2001-01-01"}})],
         expect="IMPLICIT_DENY"),
    Case("cond-date-cert-validity", [cond("iot:Publish", "*", {
        "DateLessThan": {"iot:Certificate.Validity.NotAfter": "2060-01-01T00:00:00Z"},
        "DateGreaterThanEquals": {"iot:Certificate.Validity.NotBefore": "2020-01-01T00:00:00Z"}})]),
    Case("cond-date-cert-validity-miss", [cond("iot:Publish", "*", {
        "DateGreaterThan": {"iot:Certificate.Validity.NotAfter": "2060-01-01T00:00:00Z"}})], expect="IMPLICIT_DENY"),
    Case("cond-for-any-value", [cond("iot:Publish", "*", {"ForAnyValue:StringEquals": {
        "iot:Certificate.Subject.OrganizationalUnit.List": ["ops", "qa"]}})]),
    Case("cond-for-any-value-miss", [cond("iot:Publish", "*", {"ForAnyValue:StringEquals": {
        "iot:Certificate.Subject.OrganizationalUnit.List": ["qa"]}})], expect="IMPLICIT_DENY"),
    Case("cond-for-all-values", [cond("iot:Publish", "*", {"ForAllValues:StringLike": {
        "iot:Certificate.Subject.OrganizationalUnit.List": ["e*", "ops"]}})]),
    Case("cond-for-all-values-miss", [cond("iot:Publish", "*", {"ForAllValues:StringEquals": {
        "iot:Certificate.Subject.OrganizationalUnit.List": ["eng"]}})], expect="IMPLICIT_DENY"),
    Case("cond-for-all-values-missing-key", [cond("iot:Publish", "*", {"ForAllValues:StringEquals": {
        "iot:Nothing.List": ["eng"]}})]),
    Case("cond-variable-in-value", [cond("iot:Publish", "*", {"StringEquals": {"iot:ClientId": TN}})], thing="attached"),
    Case("cond-unresolvable-value", [cond("iot:Publish", "*", {"StringNotEquals": {"iot:ClientId": TN}})],
         expect="IMPLICIT_DENY"),
    Case("cond-and-of-operators", [cond("iot:Publish", "*", {"StringEquals": {"iot:ClientId": "dev-1"},
                                                               "StringLike": {"iot:Certificate.Subject.CommonName": "x*"}})],
         expect="IMPLICIT_DENY"),
    Case("cond-not-ip-missing-source-ip", [cond("iot:Publish", "*", {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}})]),
    Case("cond-ip-missing-source-ip", [cond("iot:Publish", "*", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})],
         expect="IMPLICIT_DENY"),
    Case("deny-condition-not-met", [allow("iot:*", "*"), cond("iot:Publish", "*", {"StringEquals": {"iot:ClientId": "bad"}},
                                                             effect="Deny")]),
    Case("deny-condition-met", [allow("iot:*", "*"), cond("iot:Publish", "*", {"StringLike": {"iot:ClientId": "dev*"}},
                                                         effect="Deny")], expect="EXPLICIT_DENY"),
    # thing groups
    Case("group-leaf", policies={"g": ([allow("iot:Publish", "topic/a")], "leaf")}, thing="attached"),
    Case("group-root-inherited", policies={"g": ([allow("iot:Publish", "topic/a")], "root")}, thing="attached"),
    Case("group-needs-attached-thing", policies={"g": ([allow("iot:Publish", "topic/a")], "leaf")}, thing="unattached",
         expect="IMPLICIT_DENY"),
    Case("group-needs-client-id-thing", policies={"g": ([allow("iot:Publish", "topic/a")], "leaf")}, thing="attached",
         client_id="someone-else", expect="IMPLICIT_DENY"),
    Case("group-deny-beats-principal-allow", policies={
        "own": ([allow("iot:*", "*")], "principal"), "g": ([deny("iot:Publish", "topic/*")], "mid"),
    }, thing="attached", expect="EXPLICIT_DENY", allowed=("own",), explicit=("g",)),
    Case("group-policy-thing-variable", policies={"g": ([allow("iot:Publish", f"topic/{TN}/*")], "root")},
         thing="attached", resources=("topic/dev-1/t",)),
    Case("exclusive-thing-any-client-id", [allow("iot:Publish", f"topic/{TN}")], thing="exclusive",
         client_id="other-client", resources=("topic/dev-1",)),
    Case("exclusive-thing-group-policy", policies={"g": ([allow("iot:Publish", "topic/a")], "leaf")}, thing="exclusive",
         client_id="other-client"),
    Case("non-exclusive-other-client-id", [allow("iot:Publish", f"topic/{TN}")], thing="attached",
         client_id="other-client", expect="IMPLICIT_DENY", resources=("topic/dev-1",)),
    Case("group-principal-inherits", policies={"g": ([allow("iot:Publish", "topic/a")], "root")}, principal="group"),
    Case("unrelated-group-not-applied", policies={"g": ([allow("iot:Publish", "topic/a")], "none")}, thing="attached",
         expect="IMPLICIT_DENY"),
    # policyNamesToAdd / policyNamesToSkip
    Case("policy-names-to-add", policies={"extra": ([allow("iot:Publish", "topic/a")], "none")}, add=("extra",),
         allowed=("extra",)),
    Case("policy-names-to-skip", policies={"own": ([allow("iot:Publish", "topic/a")], "principal")}, skip=("own",),
         expect="IMPLICIT_DENY"),
    Case("skip-the-deny", policies={
        "own": ([allow("iot:Publish", "topic/a")], "principal"), "block": ([deny("iot:*", "*")], "principal"),
    }, skip=("block",)),
]


def _document(statements, version):
    return json.dumps({"Version": version, "Statement": statements})


def _groups(iot):
    arns = {"root": iot.create_thing_group(thingGroupName="root")["thingGroupArn"]}
    arns["mid"] = iot.create_thing_group(thingGroupName="mid", parentGroupName="root")["thingGroupArn"]
    arns["leaf"] = iot.create_thing_group(thingGroupName="leaf", parentGroupName="mid")["thingGroupArn"]
    arns["none"] = iot.create_thing_group(thingGroupName="elsewhere")["thingGroupArn"]
    return arns


def run_case(iot, server, case: Case) -> dict:
    cert_arn = insert_cert(server)
    policies = dict(case.policies)
    if case.statements is not None:
        policies["p"] = (case.statements, "principal")
    where_all = {where for _, where in policies.values()}
    need_groups = case.principal == "group" or bool(where_all & {"root", "mid", "leaf"}) or (
        "none" in where_all and case.thing is not None)
    groups = _groups(iot) if need_groups else {}
    principal = {"cert": cert_arn, "cognito": COGNITO_ID, "group": groups.get("leaf")}[case.principal]
    if case.thing:
        iot.create_thing_type(thingTypeName="sensor")
        iot.create_thing(thingName="dev-1", thingTypeName="sensor",
                         attributePayload={"attributes": {"floor": "3", "Color": "red"}})
        if need_groups:
            iot.add_thing_to_thing_group(thingGroupName="leaf", thingName="dev-1")
        if case.thing == "attached":
            iot.attach_thing_principal(thingName="dev-1", principal=principal)
        elif case.thing == "exclusive":
            iot.attach_thing_principal(thingName="dev-1", principal=principal, thingPrincipalType="EXCLUSIVE_THING")
    for name, (statements, where) in policies.items():
        iot.create_policy(policyName=name, policyDocument=_document(statements, case.version))
        if where == "principal":
            iot.attach_policy(policyName=name, target=principal)
        elif where in groups and (where != "none" or need_groups):
            iot.attach_policy(policyName=name, target=groups[where])
    kwargs = {"principal": principal, "authInfos": [{"actionType": case.action,
                                                    "resources": [arn(r) for r in case.resources]}]}
    if case.client_id:
        kwargs["clientId"] = case.client_id
    if case.add:
        kwargs["policyNamesToAdd"] = list(case.add)
    if case.skip:
        kwargs["policyNamesToSkip"] = list(case.skip)
    return iot.test_authorization(**kwargs)["authResults"][0]


def test_enough_cases():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_authorization_case(iot, localiot_server, case):
    result = run_case(iot, localiot_server, case)
    assert result["authDecision"] == case.expect, result

    def names(policies):
        return tuple(sorted(p["policyName"] for p in policies))

    if case.allowed is not None:
        assert names(result["allowed"]["policies"]) == tuple(sorted(case.allowed))
    if case.explicit is not None:
        assert names(result["denied"]["explicitDeny"]["policies"]) == tuple(sorted(case.explicit))
    if case.implicit is not None:
        assert names(result["denied"]["implicitDeny"]["policies"]) == tuple(sorted(case.implicit))
    if case.missing is not None:
        assert set(case.missing) <= set(result.get("missingContextValues", [])), result


# the evaluator directly: what TestAuthorization cannot reach -----------------------------
def _policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.mark.parametrize("ip,operator,expected", [
    ("10.1.2.3", "IpAddress", True),
    ("192.168.0.1", "IpAddress", False),
    ("192.168.0.1", "NotIpAddress", True),
    ("10.1.2.3", "NotIpAddress", False),
    ("2001:db8::1", "IpAddress", False),
    ("not-an-ip", "IpAddress", False),
])
def test_source_ip(ip, operator, expected):
    doc = _policy(cond("iot:Connect", "*", {operator: {"aws:SourceIp": ["10.0.0.0/8", "172.16.0.0/12"]}}))
    assert evaluate([doc], "iot:Connect", arn("client/a"), {"aws:SourceIp": ip}).allowed is expected


@pytest.mark.parametrize("operator,pattern,expected", [
    ("ArnLike", "arn:aws:iot:*:123456789012:thing/dev-*", True),
    ("ArnEquals", "arn:aws:iot:us-east-1:123456789012:thing/dev-1", True),
    ("ArnLike", "arn:aws:iot:*:999999999999:thing/*", False),
    ("ArnNotLike", "arn:aws:iot:*:*:thing/other", True),
    ("ArnLike", "not-an-arn", False),
])
def test_arn_conditions(operator, pattern, expected):
    doc = _policy(cond("iot:Publish", "*", {operator: {"iot:ThingArn": pattern}}))
    variables = {"iot:ThingArn": f"{PREFIX}thing/dev-1"}
    assert evaluate([doc], "iot:Publish", arn("topic/a"), variables).allowed is expected


def test_domain_name_and_binary_and_numeric_variants():
    doc = _policy(
        cond("iot:Connect", "*", {"StringEquals": {"iot:DomainName": "${iot:ClientId}.example.com"}}),
        cond("iot:Publish", "*", {"BinaryEquals": {"iot:Blob": "aGVsbG8="}}),
        cond("iot:Subscribe", "*", {"NumericNotEqualsIfExists": {"iot:Count": ["1", "2"]}}),
    )
    policies = compile_policies([doc])
    assert policies.is_allowed("iot:Connect", arn("client/a"), {"iot:ClientId": "a", "iot:DomainName": "a.example.com"})
    assert not policies.is_allowed("iot:Connect", arn("client/a"), {"iot:ClientId": "b", "iot:DomainName": "a.example.com"})
    assert policies.is_allowed("iot:Publish", arn("topic/a"), {"iot:Blob": "aGVsbG8="})
    assert not policies.is_allowed("iot:Publish", arn("topic/a"), {"iot:Blob": "aGk="})
    assert policies.is_allowed("iot:Subscribe", arn("topicfilter/a"), {})
    assert policies.is_allowed("iot:Subscribe", arn("topicfilter/a"), {"iot:Count": 3})
    assert not policies.is_allowed("iot:Subscribe", arn("topicfilter/a"), {"iot:Count": 2})


def test_decision_details_and_named_policies():
    allow_doc = _policy({"Sid": "pub", **allow("iot:Publish", "topic/*")})
    deny_doc = _policy({"Sid": "no", **deny("iot:Publish", "topic/secret")})
    policies = compile_policies([("a", allow_doc), ("d", deny_doc)])
    decision = policies.evaluate("iot:Publish", arn("topic/secret"), {})
    assert decision.explicit_deny and not decision.allowed and not decision.implicit_deny
    assert decision.decision == "EXPLICIT_DENY"
    assert [(m.policy, m.sid, m.effect) for m in decision.matched] == [("a", "pub", "Allow"), ("d", "no", "Deny")]
    assert decision.allowing_policies == ["a"] and decision.denying_policies == ["d"]
    ok = policies.evaluate("iot:Publish", arn("topic/fine"), {})
    assert ok.allowed and ok.decision == "ALLOWED"
    nothing = policies.evaluate("iot:Connect", arn("client/x"), {})
    assert nothing.implicit_deny and nothing.matched == ()


def test_is_allowed_agrees_with_evaluate():
    docs = [c.statements for c in CASES if c.statements and not c.thing and c.principal == "cert" and c.client_id]
    variables = Variables({"iot:ClientId": "dev-1", **certificate_variables(certificate()[0])})
    for statements in docs:
        policies = compile_policies([_document(statements, "2012-10-17")])
        for action in ("iot:Publish", "iot:Subscribe", "iot:Connect", "iot:Receive"):
            for resource in ("topic/a", "topic/dev-1/x", "topicfilter/a/+", "client/dev-1"):
                decision = policies.evaluate(action, arn(resource), variables)
                assert policies.is_allowed(action, arn(resource), variables) is decision.allowed


def test_certificate_variables():
    values = certificate_variables(certificate()[0])
    assert values["iot:Certificate.Subject.CommonName"] == CN
    assert values["iot:Certificate.Subject.OrganizationalUnit.List"] == ["eng", "ops"]
    assert values["iot:Certificate.Issuer.CommonName"] == "Acme Root CA"
    assert values["iot:Certificate.SubjectAlternativeName.IPAddress"] == "10.0.0.7"
    assert values["iot:Certificate.SerialNumber"] == str(SERIAL)
    assert values["iot:Certificate.Validity.NotBefore"] == "2020-01-01T00:00:00Z"
    assert values["iot:Certificate.Validity.NotAfter"] == "2050-01-01T00:00:00Z"
    assert "iot:Certificate.Subject.CommonName" in values["iot:Certificate.AvailableKeys"]


def test_compiled_set_is_reusable_across_calls():
    # Timing lives in bench/; here only that one compiled set answers many calls alike.
    doc = _policy(
        allow("iot:Connect", "client/${iot:ClientId}"),
        allow(["iot:Publish", "iot:Receive"], ["topic/${iot:ClientId}/*", "topic/broadcast/*"]),
        allow("iot:Subscribe", "topicfilter/${iot:ClientId}/*"),
        deny("iot:Publish", "topic/${iot:ClientId}/admin/*"),
    )
    policies = compile_policies([doc])
    variables = Variables({"iot:ClientId": "dev-1"})
    for _ in range(3):
        assert policies.is_allowed("iot:Publish", arn("topic/dev-1/telemetry"), variables)
        assert not policies.is_allowed("iot:Publish", arn("topic/dev-1/admin/x"), variables)
        assert not policies.is_allowed("iot:Publish", arn("topic/dev-2/telemetry"), variables)


def test_connection_authorization_for_the_broker(iot, localiot_server):
    from localiot.services.security import policies

    cert_arn = insert_cert(localiot_server)
    iot.create_thing_group(thingGroupName="fleet")
    iot.create_thing(thingName="dev-1")
    iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="dev-1")
    iot.attach_thing_principal(thingName="dev-1", principal=cert_arn)
    iot.create_policy(policyName="own", policyDocument=_policy(allow("iot:Connect", "client/${iot:ClientId}")))
    iot.create_policy(policyName="fleet", policyDocument=_policy(allow("iot:Publish", f"topic/{TN}/*")))
    iot.attach_policy(policyName="own", target=cert_arn)
    iot.attach_policy(policyName="fleet", target=iot.describe_thing_group(thingGroupName="fleet")["thingGroupArn"])

    def authorize():
        with localiot_server.app.store.transaction(ACCOUNT, REGION, write=False) as tx:
            docs = policies.effective_policy_documents(tx, cert_arn, "dev-1")
            thing, compiled, variables = policies.connection_authorization(
                tx, cert_arn, "dev-1", now=time.time(), extra={"aws:SourceIp": "10.0.0.1"})
            return docs, thing, compiled, variables

    docs, thing, compiled, variables = localiot_server.call(authorize)
    assert len(docs) == 2
    assert thing == "dev-1"
    assert variables["aws:sourceip"] == "10.0.0.1"
    assert compiled.is_allowed("iot:Connect", arn("client/dev-1"), variables)
    assert compiled.is_allowed("iot:Publish", arn("topic/dev-1/x"), variables)
    assert not compiled.is_allowed("iot:Publish", arn("topic/dev-2/x"), variables)
