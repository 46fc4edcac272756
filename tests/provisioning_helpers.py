"""What the provisioning template tests share: a fleet provisioning template, and
device certificates written straight into the store."""

import datetime
import hashlib
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from localiot.testing import ACCOUNT, REGION

ROLE = f"arn:aws:iam::{ACCOUNT}:role/Provisioning"
HOOK = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:pre-provision"
POLICY_TEXT = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["iot:Publish"], "Resource": [f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/foo/bar"]}],
})


def template_arn(name):
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:provisioningtemplate/{name}"


def fleet_template(thing_extra=None, thing_overrides=None, policy=None, certificate=None):
    thing = {
        "ThingName": {"Ref": "ThingName"},
        "AttributePayload": {"version": "v1", "serialNumber": {"Ref": "SerialNumber"}},
    }
    thing.update(thing_extra or {})
    resources = {
        "thing": {"Type": "AWS::IoT::Thing", "Properties": thing},
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": certificate or {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"},
        },
        "policy": {"Type": "AWS::IoT::Policy", "Properties": policy or {"PolicyDocument": POLICY_TEXT}},
    }
    if thing_overrides:
        resources["thing"]["OverrideSettings"] = thing_overrides
    return json.dumps({
        "Parameters": {
            "ThingName": {"Type": "String"},
            "SerialNumber": {"Type": "String"},
            "Location": {"Type": "String", "Default": "WA"},
            "AWS::IoT::Certificate::Id": {"Type": "String"},
        },
        "Resources": resources,
        "DeviceConfiguration": {"Url": {"Fn::Join": ["", ["https://example.aws/", {"Ref": "SerialNumber"}]]}},
    })


BODY = fleet_template()


def create(iot, name="tpl", **kwargs):
    args = {"templateName": name, "templateBody": BODY, "provisioningRoleArn": ROLE}
    args.update(kwargs)
    return iot.create_provisioning_template(**args)


# certificates, written straight into the store ---------------------------------
def make_certificate(common_name="device", issuer=None):
    """(certificate ID, PEM, key) of a fresh certificate, self-signed or issued by `issuer` (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    cert = builder.sign(signer, hashes.SHA256())
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(), cert.public_bytes(Encoding.PEM).decode(), cert, key


def in_store(server, fn):
    def run():
        with server.app.store.transaction(ACCOUNT, REGION) as tx:
            return fn(tx)

    return server.call(run)


def put_certificate(server, status="INACTIVE", common_name="device"):
    """A device certificate document as the certificates family stores it, put straight into the store."""
    certificate_id, pem, cert, _ = make_certificate(common_name)
    doc = {
        "certificateId": certificate_id,
        "certificateArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{certificate_id}",
        "status": status,
        "certificatePem": pem,
        "ownedBy": ACCOUNT,
        "caCertificateId": None,
        "certificateMode": "DEFAULT",
        "creationDate": 1.0,
        "lastModifiedDate": 1.0,
        "customerVersion": 1,
        "generationId": "0",
        "validity": {
            "notBefore": cert.not_valid_before_utc.timestamp(),
            "notAfter": cert.not_valid_after_utc.timestamp(),
        },
        "transferData": {},
    }
    in_store(server, lambda tx: tx.put("cert", certificate_id, doc))
    return doc


def params(cert, name="bulb-1", serial="42"):
    return {"ThingName": name, "SerialNumber": serial, "AWS::IoT::Certificate::Id": cert["certificateId"]}
