"""Just-in-time registration (JITR) and provisioning (JITP) over real mutual TLS:
a customer CA made in the test and registered with RegisterCACertificate
(allowAutoRegistration), devices whose certificates AWS IoT has never seen."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from test_mqtt_tls import ALLOW_ALL, NOT_AUTHORIZED, Cert, address, ca_file, device_pool, new_certificate

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/JITPRole"
UTC = dt.timezone.utc


@pytest.fixture
def devices():
    with device_pool() as make:
        yield make


class CustomerCA:
    """A manufacturer's CA, made with `cryptography` as one would with openssl."""

    def __init__(self, cn: str = "Acme Devices CA"):
        # Distinct subjects: the TLS layer finds a device certificate's issuer by name
        # (and authority key identifier), and the tests share one server.
        cn = f"{cn} {uuid.uuid4().hex[:8]}"
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
                             x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = dt.datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, subject: x509.Name, key=None, san: list | None = None):
        key = key or ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(UTC)
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key

    def issue(self, folder, name: str, cn: str, *, country: str | None = None, chain: bool = False,
              extra: list | None = None, san: list | None = None) -> Cert:
        """A device certificate (and key) as files; `chain` appends the CA as devices do for JITR;
        `extra` adds subject attributes, `san` subject alternative names."""
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] + list(extra or [])
        if country:
            attributes.insert(0, x509.NameAttribute(NameOID.COUNTRY_NAME, country))
        cert, key = self.sign(x509.Name(attributes), san=san)
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        device = Cert(folder, name, pem + (self.pem if chain else ""),
                      key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode())
        device.pem = pem
        device.id = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        return device


def register_ca(iot, ca: CustomerCA, **kw) -> str:
    """RegisterCACertificate with proof of possession (a verification certificate)."""
    code = iot.get_registration_code()["registrationCode"]
    verification, _ = ca.sign(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, code)]))
    out = iot.register_ca_certificate(
        caCertificate=ca.pem,
        verificationCertificate=verification.public_bytes(serialization.Encoding.PEM).decode(), **kw)
    return out["certificateId"]


def _watch_registrations(localiot_server, iot, tmp_path, devices, ca_id):
    watcher_cert = new_certificate(iot, tmp_path, "watcher", policy=ALLOW_ALL)
    _, port = address(iot)
    watcher = devices(port, "watcher", ca=ca_file(localiot_server, tmp_path), cert=watcher_cert).connect_ok()
    assert watcher.subscribe(f"$aws/events/certificates/registered/{ca_id}") == [1]
    return watcher


def test_jitr_registers_pending_activation_and_publishes_the_event(localiot_server, iot, tmp_path, devices):
    customer = CustomerCA()
    ca_id = register_ca(iot, customer, setAsActive=True, allowAutoRegistration=True)
    watcher = _watch_registrations(localiot_server, iot, tmp_path, devices, ca_id)
    _, port = address(iot)
    ca = ca_file(localiot_server, tmp_path)
    device = customer.issue(tmp_path, "jitr", "jitr-device", chain=True)

    # First connection: registered and refused, as AWS does.
    assert devices(port, "jitr-device", ca=ca, cert=device).connect() == NOT_AUTHORIZED
    event = json.loads(watcher.expect(f"$aws/events/certificates/registered/{ca_id}").payload)
    assert set(event) == {"certificateId", "caCertificateId", "timestamp", "certificateStatus", "awsAccountId",
                          "certificateRegistrationTimestamp"}
    assert event["certificateId"] == device.id and event["caCertificateId"] == ca_id
    assert event["certificateStatus"] == "PENDING_ACTIVATION" and event["awsAccountId"] == ACCOUNT
    assert isinstance(event["timestamp"], int)
    description = iot.describe_certificate(certificateId=device.id)["certificateDescription"]
    assert description["status"] == "PENDING_ACTIVATION" and description["caCertificateId"] == ca_id
    by_ca = iot.list_certificates_by_ca(caCertificateId=ca_id)["certificates"]
    assert [c["certificateId"] for c in by_ca] == [device.id]

    # Until something activates it, the device stays out; no second event.
    assert devices(port, "jitr-device", ca=ca, cert=device).connect() == NOT_AUTHORIZED
    watcher.expect_none()

    # What a JITR Lambda does: activate and attach a policy. Then it connects.
    iot.update_certificate(certificateId=device.id, newStatus="ACTIVE")
    iot.create_policy(policyName="jitr", policyDocument=json.dumps(ALLOW_ALL))
    iot.attach_policy(policyName="jitr", target=description["certificateArn"])
    connected = devices(port, "jitr-device", ca=ca, cert=device).connect_ok()
    assert connected.publish("jitr/hello", b"hi") == 0


def test_no_jitr_without_auto_registration_or_with_an_inactive_ca(localiot_server, iot, tmp_path, devices):
    _, port = address(iot)
    ca = ca_file(localiot_server, tmp_path)
    manual = CustomerCA("Manual CA")
    manual_id = register_ca(iot, manual, setAsActive=True, allowAutoRegistration=False)
    inactive = CustomerCA("Inactive CA")
    inactive_id = register_ca(iot, inactive, setAsActive=False, allowAutoRegistration=True)
    for customer, ca_id in ((manual, manual_id), (inactive, inactive_id)):
        device = customer.issue(tmp_path, f"d-{ca_id[:6]}", "not-registered")
        assert devices(port, "not-registered", ca=ca, cert=device).connect() == NOT_AUTHORIZED
        assert iot.list_certificates_by_ca(caCertificateId=ca_id)["certificates"] == []


JITP_TEMPLATE = {
    "Parameters": {
        "AWS::IoT::Certificate::CommonName": {"Type": "String"},
        "AWS::IoT::Certificate::Country": {"Type": "String"},
        "AWS::IoT::Certificate::Id": {"Type": "String"},
    },
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"},
                "AttributePayload": {"country": {"Ref": "AWS::IoT::Certificate::Country"}},
            },
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"},
        },
        "policy": {
            "Type": "AWS::IoT::Policy",
            "Properties": {"PolicyDocument": json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "iot:Connect",
                 "Resource": "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
                {"Effect": "Allow", "Action": "iot:Publish",
                 "Resource": "arn:aws:iot:*:*:topic/things/${iot:Connection.Thing.ThingName}/*"},
            ]})},
        },
    },
}


def _check_provisioned(localiot_server, iot, tmp_path, devices, customer, name):
    _, port = address(iot)
    ca = ca_file(localiot_server, tmp_path)
    device = customer.issue(tmp_path, name, name, country="DE", chain=True)
    assert devices(port, name, ca=ca, cert=device).connect() == NOT_AUTHORIZED  # first connect: provisioned
    thing = iot.describe_thing(thingName=name)
    assert thing["attributes"] == {"country": "DE"}
    description = iot.describe_certificate(certificateId=device.id)["certificateDescription"]
    assert description["status"] == "ACTIVE"
    assert iot.list_thing_principals(thingName=name)["principals"] == [description["certificateArn"]]
    assert len(iot.list_attached_policies(target=description["certificateArn"])["policies"]) == 1
    connected = devices(port, name, ca=ca, cert=device).connect_ok()
    assert connected.publish(f"things/{name}/telemetry", b"{}") == 0
    assert connected.publish("things/someone-else/telemetry", b"{}") == NOT_AUTHORIZED
    # The policy names the thing: another client id may not connect with this certificate.
    assert devices(port, f"{name}-other", ca=ca, cert=device).connect() == NOT_AUTHORIZED


def test_jitp_with_a_template_body(localiot_server, iot, tmp_path, devices):
    customer = CustomerCA()
    ca_id = register_ca(iot, customer, setAsActive=True, allowAutoRegistration=True,
                        registrationConfig={"templateBody": json.dumps(JITP_TEMPLATE), "roleArn": ROLE})
    watcher = _watch_registrations(localiot_server, iot, tmp_path, devices, ca_id)
    _check_provisioned(localiot_server, iot, tmp_path, devices, customer, "jitp-sensor-1")
    assert json.loads(watcher.expect().payload)["caCertificateId"] == ca_id


def test_jitp_with_a_template_name(localiot_server, iot, tmp_path, devices):
    iot.create_provisioning_template(templateName="jitp", templateBody=json.dumps(JITP_TEMPLATE),
                                     provisioningRoleArn=ROLE, type="JITP", enabled=True)
    customer = CustomerCA("Named Template CA")
    register_ca(iot, customer, setAsActive=True, allowAutoRegistration=True,
                registrationConfig={"templateName": "jitp"})
    _check_provisioned(localiot_server, iot, tmp_path, devices, customer, "jitp-sensor-2")


def test_jitp_failure_leaves_the_certificate_pending(localiot_server, iot, tmp_path, devices):
    broken = json.loads(json.dumps(JITP_TEMPLATE))
    broken["Resources"]["thing"]["Properties"]["ThingGroups"] = ["no-such-group"]
    customer = CustomerCA("Broken Template CA")
    register_ca(iot, customer, setAsActive=True, allowAutoRegistration=True,
                registrationConfig={"templateBody": json.dumps(broken), "roleArn": ROLE})
    _, port = address(iot)
    ca = ca_file(localiot_server, tmp_path)
    device = customer.issue(tmp_path, "broken", "broken-sensor", country="FR")
    assert devices(port, "broken-sensor", ca=ca, cert=device).connect() == NOT_AUTHORIZED
    assert iot.describe_certificate(certificateId=device.id)["certificateDescription"]["status"] == "PENDING_ACTIVATION"
    assert iot.list_things()["things"] == []
    assert devices(port, "broken-sensor", ca=ca, cert=device).connect() == NOT_AUTHORIZED


SUBJECT_TEMPLATE = {
    "Parameters": {f"AWS::IoT::Certificate::{name}": {"Type": "String"} for name in (
        "Id", "CommonName", "Country", "Organization", "OrganizationalUnit", "DistinguishedNameQualifier",
        "StateName", "Locality", "Title", "SerialNumber", "SubjectAlternativeName")},
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"},
                "ThingTypeName": "subject-fields",  # more than three attributes need a thing type
                "AttributePayload": {name.lower(): {"Ref": f"AWS::IoT::Certificate::{name}"} for name in (
                    "Country", "Organization", "OrganizationalUnit", "DistinguishedNameQualifier", "StateName",
                    "Locality", "Title", "SerialNumber", "SubjectAlternativeName")},
            },
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"},
        },
    },
}


def test_jitp_takes_every_subject_field_and_the_subject_alternative_name(localiot_server, iot, tmp_path, devices):
    iot.create_thing_type(thingTypeName="subject-fields")
    customer = CustomerCA("Subject Fields CA")
    register_ca(iot, customer, setAsActive=True, allowAutoRegistration=True,
                registrationConfig={"templateBody": json.dumps(SUBJECT_TEMPLATE), "roleArn": ROLE})
    _, port = address(iot)
    ca = ca_file(localiot_server, tmp_path)
    extra = [x509.NameAttribute(oid, value) for oid, value in (
        (NameOID.ORGANIZATION_NAME, "Acme"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "Sensors"),
        (NameOID.DN_QUALIFIER, "q1"), (NameOID.STATE_OR_PROVINCE_NAME, "Bavaria"),
        (NameOID.LOCALITY_NAME, "Munich"), (NameOID.TITLE, "thermometer"), (NameOID.SERIAL_NUMBER, "SN-42"))]
    device = customer.issue(tmp_path, "fields", "fields-sensor", country="DE", chain=True, extra=extra,
                            san=[x509.DNSName("fields-sensor.example.com"), x509.DNSName("second.example.com")])
    assert devices(port, "fields-sensor", ca=ca, cert=device).connect() == NOT_AUTHORIZED  # provisioned
    assert iot.describe_thing(thingName="fields-sensor")["attributes"] == {
        "country": "DE", "organization": "Acme", "organizationalunit": "Sensors",
        "distinguishednamequalifier": "q1", "statename": "Bavaria", "locality": "Munich", "title": "thermometer",
        "serialnumber": "SN-42", "subjectalternativename": "fields-sensor.example.com",
    }
    assert iot.describe_certificate(certificateId=device.id)["certificateDescription"]["status"] == "ACTIVE"
