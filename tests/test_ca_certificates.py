"""CA certificates through boto3 against the real server: registration codes,
proof of possession with real verification certificates, device certificates
registered with a CA, listing, updates, deletion and cross-account rules."""

import datetime as dt
import hashlib
import re

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from localiot.services.security import ca_certificates, certificates
from localiot.testing import ACCOUNT, REGION, error_of, make_client

OTHER = "111122223333"
UTC = dt.timezone.utc
ROLE = f"arn:aws:iam::{ACCOUNT}:role/jitp"


def pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def der_sha256(cert) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class CA:
    """A customer's CA made with `cryptography`, as a user would with openssl."""

    def __init__(self, cn="Acme Root CA", key=None, ca=True, days=3650):
        self.key = key or ec_key()
        now = dt.datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = pem(self.cert)

    def issue(self, cn, key=None, days=365, signer=None):
        key = key or ec_key()
        now = dt.datetime.now(UTC)
        cert = (
            x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .sign(signer or self.key, hashes.SHA256())
        )
        return pem(cert), cert


def register(iot, ca, **kw):
    code = iot.get_registration_code()["registrationCode"]
    verification, _ = ca.issue(code)
    return iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=verification, **kw)


def store_call(server, fn, account=ACCOUNT, region=REGION):
    def run():
        with server.app.store.transaction(account, region) as tx:
            return fn(tx)

    return server.call(run)


@pytest.fixture
def other(localiot_server):
    return make_client(localiot_server, access_key=OTHER)


# registration codes ---------------------------------------------------------------------
def test_registration_code_is_stable_until_deleted(iot, other):
    code = iot.get_registration_code()["registrationCode"]
    assert re.fullmatch(r"[0-9a-f]{64}", code)
    assert iot.get_registration_code()["registrationCode"] == code
    assert other.get_registration_code()["registrationCode"] != code  # per account
    iot.delete_registration_code()
    fresh = iot.get_registration_code()["registrationCode"]
    assert fresh != code and re.fullmatch(r"[0-9a-f]{64}", fresh)
    iot.delete_registration_code()
    with pytest.raises(ClientError) as info:
        iot.delete_registration_code()
    assert error_of(info) == ("ResourceNotFoundException", 404)


# RegisterCACertificate -----------------------------------------------------------------------
def test_register_ca_with_verification_certificate(iot, localiot_server):
    ca = CA(key=rsa.generate_private_key(65537, 2048))
    out = register(iot, ca, setAsActive=True, allowAutoRegistration=True,
                   registrationConfig={"templateBody": '{"Resources": {}}', "roleArn": ROLE},
                   tags=[{"Key": "env", "Value": "test"}])
    assert out["certificateId"] == der_sha256(ca.cert)
    assert out["certificateArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:cacert/{out['certificateId']}"
    described = iot.describe_ca_certificate(certificateId=out["certificateId"])
    desc = described["certificateDescription"]
    assert desc["certificateId"] == out["certificateId"]
    assert desc["certificateArn"] == out["certificateArn"]
    assert desc["status"] == "ACTIVE"
    assert desc["autoRegistrationStatus"] == "ENABLE"
    assert desc["certificateMode"] == "DEFAULT"
    assert desc["ownedBy"] == ACCOUNT
    assert desc["customerVersion"] == 1
    assert desc["certificatePem"] == ca.pem
    assert desc["validity"] == {"notBefore": ca.cert.not_valid_before_utc, "notAfter": ca.cert.not_valid_after_utc}
    assert described["registrationConfig"] == {"templateBody": '{"Resources": {}}', "roleArn": ROLE}
    assert iot.list_tags_for_resource(resourceArn=out["certificateArn"])["tags"] == [{"Key": "env", "Value": "test"}]
    doc = store_call(localiot_server, lambda tx: ca_certificates.ca_by_id(tx, out["certificateId"]))
    assert doc["certificateArn"] == out["certificateArn"] and doc["status"] == "ACTIVE"


def test_register_ca_defaults(iot):
    out = register(iot, CA())
    desc = iot.describe_ca_certificate(certificateId=out["certificateId"])
    assert desc["certificateDescription"]["status"] == "INACTIVE"
    assert desc["certificateDescription"]["autoRegistrationStatus"] == "DISABLE"
    assert desc["registrationConfig"] == {}


def test_verification_certificate_with_the_wrong_common_name(iot):
    ca = CA()
    iot.get_registration_code()
    verification, _ = ca.issue("0" * 64)
    with pytest.raises(ClientError) as info:
        iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=verification)
    assert error_of(info) == ("RegistrationCodeValidationException", 400)
    assert iot.list_ca_certificates()["certificates"] == []


def test_verification_certificate_signed_by_another_key(iot):
    ca = CA()
    code = iot.get_registration_code()["registrationCode"]
    verification, _ = ca.issue(code, signer=ec_key())  # right names, wrong key
    with pytest.raises(ClientError) as info:
        iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=verification)
    assert error_of(info) == ("CertificateValidationException", 400)
    assert "not signed by the CA" in info.value.response["Error"]["Message"]
    assert iot.list_ca_certificates()["certificates"] == []


def test_verification_needs_the_current_registration_code(iot):
    ca = CA()
    code = iot.get_registration_code()["registrationCode"]
    verification, _ = ca.issue(code)
    iot.delete_registration_code()
    with pytest.raises(ClientError) as info:
        iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=verification)
    assert error_of(info) == ("RegistrationCodeValidationException", 400)
    iot.get_registration_code()  # a new code: the old verification certificate still fails
    with pytest.raises(ClientError) as info:
        iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=verification)
    assert error_of(info) == ("RegistrationCodeValidationException", 400)


def test_certificate_mode_and_verification_certificate_go_together(iot):
    ca = CA()
    with pytest.raises(ClientError) as info:
        iot.register_ca_certificate(caCertificate=ca.pem)
    assert error_of(info) == ("InvalidRequestException", 400)
    code = iot.get_registration_code()["registrationCode"]
    verification, _ = ca.issue(code)
    with pytest.raises(ClientError) as info:
        iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=verification,
                                    certificateMode="SNI_ONLY")
    assert error_of(info) == ("InvalidRequestException", 400)
    out = iot.register_ca_certificate(caCertificate=ca.pem, certificateMode="SNI_ONLY")
    desc = iot.describe_ca_certificate(certificateId=out["certificateId"])["certificateDescription"]
    assert desc["certificateMode"] == "SNI_ONLY"


@pytest.mark.parametrize("case", ["garbage", "not-a-ca", "expired", "weak-rsa"])
def test_unusable_ca_certificates(iot, localiot_server, case):
    if case == "garbage":
        ca_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    elif case == "not-a-ca":
        ca_pem = CA(ca=False).pem
    elif case == "expired":
        ca_pem = CA(days=2).pem
        localiot_server.clock.advance(5 * 86400)
    else:
        ca_pem = CA(key=rsa.generate_private_key(65537, 1024)).pem
    with pytest.raises(ClientError) as info:
        iot.register_ca_certificate(caCertificate=ca_pem, certificateMode="SNI_ONLY")
    assert error_of(info) == ("CertificateValidationException", 400)


def test_duplicate_and_cross_account_registration(iot, other):
    ca = CA()
    first = register(iot, ca)
    with pytest.raises(ClientError) as info:
        register(iot, ca)
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)
    assert info.value.response["resourceId"] == first["certificateId"]
    assert info.value.response["resourceArn"] == first["certificateArn"]
    # DEFAULT mode: one account per Region; SNI_ONLY: any number
    with pytest.raises(ClientError) as info:
        register(other, ca)
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)
    shared = other.register_ca_certificate(caCertificate=ca.pem, certificateMode="SNI_ONLY")
    assert shared["certificateId"] == first["certificateId"]
    assert shared["certificateArn"] == f"arn:aws:iot:{REGION}:{OTHER}:cacert/{first['certificateId']}"
    # once the DEFAULT registration is gone, another account may take it
    iot.delete_ca_certificate(certificateId=first["certificateId"])
    other.update_ca_certificate(certificateId=shared["certificateId"], newStatus="INACTIVE")
    other.delete_ca_certificate(certificateId=shared["certificateId"])
    assert register(other, ca)["certificateId"] == first["certificateId"]


def test_at_most_ten_cas_with_one_subject(iot):
    for _ in range(10):
        iot.register_ca_certificate(caCertificate=CA(cn="Same").pem, certificateMode="SNI_ONLY")
    with pytest.raises(ClientError) as info:
        iot.register_ca_certificate(caCertificate=CA(cn="Same").pem, certificateMode="SNI_ONLY")
    assert error_of(info) == ("LimitExceededException", 410)
    iot.register_ca_certificate(caCertificate=CA(cn="Different").pem, certificateMode="SNI_ONLY")
    assert len(iot.list_ca_certificates(pageSize=250)["certificates"]) == 11


def test_registration_config_with_a_template(iot, localiot_server):
    ca = CA()
    with pytest.raises(ClientError) as info:
        register(iot, ca, registrationConfig={"templateName": "jitp-template"})
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        register(iot, ca, registrationConfig={"templateBody": "{not json"})
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        register(iot, ca, registrationConfig={"templateBody": "{}", "templateName": "x"})
    assert error_of(info) == ("InvalidRequestException", 400)
    store_call(localiot_server, lambda tx: tx.put("provisioningtemplate", "jitp-template",
                                                  {"templateName": "jitp-template", "type": "JITP"}))
    store_call(localiot_server, lambda tx: tx.put("provisioningtemplate", "fleet",
                                                  {"templateName": "fleet", "type": "FLEET_PROVISIONING"}))
    with pytest.raises(ClientError) as info:
        register(iot, ca, registrationConfig={"templateName": "fleet"})
    assert error_of(info) == ("InvalidRequestException", 400)
    out = register(iot, ca, registrationConfig={"templateName": "jitp-template", "roleArn": ROLE})
    config = iot.describe_ca_certificate(certificateId=out["certificateId"])["registrationConfig"]
    assert config == {"templateName": "jitp-template", "roleArn": ROLE}

    other_ca = register(iot, CA(cn="Other CA"))["certificateId"]
    listed = iot.list_ca_certificates(templateName="jitp-template")["certificates"]
    assert [c["certificateId"] for c in listed] == [out["certificateId"]]
    assert {c["certificateId"] for c in iot.list_ca_certificates()["certificates"]} == {out["certificateId"], other_ca}


# describe, list, update, delete -----------------------------------------------------------------------
def test_describe_missing_ca(iot):
    for call in (
        lambda: iot.describe_ca_certificate(certificateId="e" * 64),
        lambda: iot.update_ca_certificate(certificateId="e" * 64, newStatus="ACTIVE"),
        lambda: iot.delete_ca_certificate(certificateId="e" * 64),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert error_of(info) == ("ResourceNotFoundException", 404)


def test_list_ca_certificates_orders_and_pages(iot, localiot_server):
    ids = []
    for i in range(5):
        ids.append(iot.register_ca_certificate(caCertificate=CA(cn=f"CA {i}").pem, certificateMode="SNI_ONLY",
                                               setAsActive=i == 0)["certificateId"])
        localiot_server.clock.advance(1)
    assert [c["certificateId"] for c in iot.list_ca_certificates()["certificates"]] == ids
    everything = iot.list_ca_certificates(ascendingOrder=False)["certificates"]
    assert [c["certificateId"] for c in everything] == ids[::-1]
    assert set(everything[-1]) == {"certificateArn", "certificateId", "status", "creationDate"}
    assert everything[-1]["status"] == "ACTIVE" and everything[0]["status"] == "INACTIVE"
    seen, marker = [], None
    while True:
        kwargs = {"pageSize": 2, "ascendingOrder": True, **({"marker": marker} if marker else {})}
        page = iot.list_ca_certificates(**kwargs)
        seen += [c["certificateId"] for c in page["certificates"]]
        marker = page.get("nextMarker")
        if not marker:
            break
        assert re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", marker)
    assert seen == ids


def test_update_ca_certificate(iot, localiot_server):
    ca_id = register(iot, CA(), registrationConfig={"templateBody": "{}", "roleArn": ROLE})["certificateId"]
    before = iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
    localiot_server.clock.advance(2)
    iot.update_ca_certificate(certificateId=ca_id, newStatus="ACTIVE", newAutoRegistrationStatus="ENABLE")
    after = iot.describe_ca_certificate(certificateId=ca_id)
    desc = after["certificateDescription"]
    assert desc["status"] == "ACTIVE" and desc["autoRegistrationStatus"] == "ENABLE"
    assert desc["customerVersion"] == 2
    assert desc["lastModifiedDate"] > before["lastModifiedDate"]
    assert desc["generationId"] != before["generationId"]
    assert after["registrationConfig"] == {"templateBody": "{}", "roleArn": ROLE}

    iot.update_ca_certificate(certificateId=ca_id, registrationConfig={"templateBody": '{"a": 1}'})
    assert iot.describe_ca_certificate(certificateId=ca_id)["registrationConfig"] == {"templateBody": '{"a": 1}'}
    with pytest.raises(ClientError) as info:
        iot.update_ca_certificate(certificateId=ca_id, registrationConfig={"templateBody": "{}"},
                                  removeAutoRegistration=True)
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        iot.update_ca_certificate(certificateId=ca_id, registrationConfig={"templateName": "missing"})
    assert error_of(info) == ("ResourceNotFoundException", 404)
    iot.update_ca_certificate(certificateId=ca_id, removeAutoRegistration=True)
    assert iot.describe_ca_certificate(certificateId=ca_id)["registrationConfig"] == {}

    iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE", newAutoRegistrationStatus="DISABLE")
    desc = iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
    assert (desc["status"], desc["autoRegistrationStatus"]) == ("INACTIVE", "DISABLE")
    with pytest.raises(ClientError) as info:
        iot.update_ca_certificate(certificateId=ca_id, newStatus="REVOKED")
    assert error_of(info) == ("InvalidRequestException", 400)


def test_delete_ca_certificate(iot):
    ca = CA()
    out = register(iot, ca, setAsActive=True, tags=[{"Key": "k", "Value": "v"}])
    device_pem, _ = ca.issue("device")
    device = iot.register_certificate(certificatePem=device_pem)["certificateId"]
    with pytest.raises(ClientError) as info:
        iot.delete_ca_certificate(certificateId=out["certificateId"])
    assert error_of(info) == ("CertificateStateException", 406)
    iot.update_ca_certificate(certificateId=out["certificateId"], newStatus="INACTIVE")
    iot.delete_ca_certificate(certificateId=out["certificateId"])
    with pytest.raises(ClientError) as info:
        iot.describe_ca_certificate(certificateId=out["certificateId"])
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.list_tags_for_resource(resourceArn=out["certificateArn"])
    assert error_of(info) == ("ResourceNotFoundException", 404)
    assert iot.list_ca_certificates()["certificates"] == []
    # device certificates it signed stay registered
    desc = iot.describe_certificate(certificateId=device)["certificateDescription"]
    assert desc["caCertificateId"] == out["certificateId"]


# RegisterCertificate and ListCertificatesByCA ------------------------------------------------------------
def test_register_certificate_signed_by_a_registered_ca(iot, localiot_server):
    ca = CA(key=rsa.generate_private_key(65537, 2048))
    ca_id = register(iot, ca, setAsActive=True)["certificateId"]
    device_pem, device = ca.issue("device-1")
    out = iot.register_certificate(certificatePem=device_pem, status="ACTIVE")
    assert out["certificateId"] == der_sha256(device)
    assert out["certificateArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{out['certificateId']}"
    desc = iot.describe_certificate(certificateId=out["certificateId"])["certificateDescription"]
    assert desc["caCertificateId"] == ca_id
    assert desc["status"] == "ACTIVE"
    assert desc["certificateMode"] == "DEFAULT"
    assert desc["certificatePem"] == device_pem
    assert desc["validity"]["notAfter"] == device.not_valid_after_utc
    index = store_call(localiot_server, lambda tx: [n for n, _ in tx.find("cert", "ca", ca_id)])
    assert index == [out["certificateId"]]

    second_pem, _ = ca.issue("device-2")
    second = iot.register_certificate(certificatePem=second_pem, caCertificatePem=ca.pem)
    assert iot.describe_certificate(certificateId=second["certificateId"])["certificateDescription"]["status"] == "INACTIVE"
    third_pem, _ = ca.issue("device-3")
    third = iot.register_certificate(certificatePem=third_pem, setAsActive=True)
    assert iot.describe_certificate(certificateId=third["certificateId"])["certificateDescription"]["status"] == "ACTIVE"

    with pytest.raises(ClientError) as info:
        iot.register_certificate(certificatePem=device_pem)
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)
    assert info.value.response["resourceId"] == out["certificateId"]
    with pytest.raises(ClientError) as info:
        iot.register_certificate(certificatePem=ca.issue("x")[0], status="PENDING_ACTIVATION")
    assert error_of(info) == ("InvalidRequestException", 400)


def test_register_certificate_takes_the_mode_of_its_ca(iot):
    ca = CA()
    iot.register_ca_certificate(caCertificate=ca.pem, certificateMode="SNI_ONLY", setAsActive=True)
    cert_id = iot.register_certificate(certificatePem=ca.issue("d")[0])["certificateId"]
    assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["certificateMode"] == "SNI_ONLY"


def test_register_certificate_not_signed_by_a_registered_ca(iot):
    registered, stranger = CA(cn="Registered"), CA(cn="Stranger")
    register(iot, registered, setAsActive=True)
    foreign_pem, _ = stranger.issue("device")
    with pytest.raises(ClientError) as info:
        iot.register_certificate(certificatePem=foreign_pem)
    assert error_of(info) == ("CertificateValidationException", 400)
    # same issuer name, another key: the signature decides
    impostor_pem, _ = registered.issue("device", signer=ec_key())
    with pytest.raises(ClientError) as info:
        iot.register_certificate(certificatePem=impostor_pem)
    assert error_of(info) == ("CertificateValidationException", 400)
    # naming an unregistered CA, or a registered CA that did not sign it
    with pytest.raises(ClientError) as info:
        iot.register_certificate(certificatePem=foreign_pem, caCertificatePem=stranger.pem)
    assert error_of(info) == ("CertificateValidationException", 400)
    with pytest.raises(ClientError) as info:
        iot.register_certificate(certificatePem=foreign_pem, caCertificatePem=registered.pem)
    assert error_of(info) == ("CertificateValidationException", 400)
    with pytest.raises(ClientError) as info:
        iot.register_certificate(certificatePem="garbage")
    assert error_of(info) == ("CertificateValidationException", 400)
    assert iot.list_certificates()["certificates"] == []


def test_register_certificate_needs_an_active_ca(iot):
    ca = CA()
    ca_id = register(iot, ca)["certificateId"]
    device_pem, _ = ca.issue("device")
    with pytest.raises(ClientError) as info:
        iot.register_certificate(certificatePem=device_pem)
    assert error_of(info) == ("CertificateStateException", 406)
    iot.update_ca_certificate(certificateId=ca_id, newStatus="ACTIVE")
    assert iot.register_certificate(certificatePem=device_pem)["certificateId"]


def test_two_registered_cas_with_one_subject_and_key_conflict(iot):
    key = ec_key()
    original, reissued = CA(cn="Shared", key=key), CA(cn="Shared", key=key)
    assert original.pem != reissued.pem
    for ca in (original, reissued):
        iot.register_ca_certificate(caCertificate=ca.pem, certificateMode="SNI_ONLY", setAsActive=True)
    device_pem, _ = original.issue("device")
    with pytest.raises(ClientError) as info:
        iot.register_certificate(certificatePem=device_pem)
    assert error_of(info) == ("CertificateConflictException", 409)
    out = iot.register_certificate(certificatePem=device_pem, caCertificatePem=reissued.pem)
    desc = iot.describe_certificate(certificateId=out["certificateId"])["certificateDescription"]
    assert desc["caCertificateId"] == der_sha256(reissued.cert)


def test_list_certificates_by_ca(iot, localiot_server):
    ca_a, ca_b = CA(cn="A"), CA(cn="B")
    id_a = register(iot, ca_a, setAsActive=True)["certificateId"]
    id_b = register(iot, ca_b, setAsActive=True)["certificateId"]
    by_a = []
    for i in range(5):
        by_a.append(iot.register_certificate(certificatePem=ca_a.issue(f"a{i}")[0])["certificateId"])
        localiot_server.clock.advance(1)
    by_b = iot.register_certificate(certificatePem=ca_b.issue("b")[0])["certificateId"]
    iot.create_keys_and_certificate()

    assert [c["certificateId"] for c in iot.list_certificates_by_ca(caCertificateId=id_a)["certificates"]] == by_a
    listed = iot.list_certificates_by_ca(caCertificateId=id_a, ascendingOrder=False)["certificates"]
    assert [c["certificateId"] for c in listed] == by_a[::-1]
    assert listed[0]["status"] == "INACTIVE" and listed[0]["certificateMode"] == "DEFAULT"
    assert [c["certificateId"] for c in iot.list_certificates_by_ca(caCertificateId=id_b)["certificates"]] == [by_b]
    page = iot.list_certificates_by_ca(caCertificateId=id_a, pageSize=3, ascendingOrder=True)
    assert [c["certificateId"] for c in page["certificates"]] == by_a[:3]
    rest = iot.list_certificates_by_ca(caCertificateId=id_a, pageSize=3, ascendingOrder=True,
                                       marker=page["nextMarker"])
    assert [c["certificateId"] for c in rest["certificates"]] == by_a[3:]
    assert "nextMarker" not in rest
    assert iot.list_certificates_by_ca(caCertificateId="f" * 64)["certificates"] == []
    assert len(iot.list_certificates()["certificates"]) == 7

    iot.delete_certificate(certificateId=by_a[0])
    assert [c["certificateId"] for c in iot.list_certificates_by_ca(caCertificateId=id_a)["certificates"]] == by_a[1:]


def test_jitr_helpers(iot, localiot_server):
    ca = CA()
    ca_id = register(iot, ca, setAsActive=True, allowAutoRegistration=True)["certificateId"]
    _, device = ca.issue("jitr-device")

    def auto_register(tx):
        from localiot.services.context import RequestContext

        ctx = RequestContext(ACCOUNT, REGION, tx, localiot_server.app.runtime)
        issuers = ca_certificates.issuers_of(tx, device)
        assert [d["certificateId"] for d in issuers] == [ca_id]
        return ca_certificates.register_with_ca(ctx, device, issuers[0], "PENDING_ACTIVATION")["certificateId"]

    cert_id = store_call(localiot_server, auto_register)
    desc = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert desc["status"] == "PENDING_ACTIVATION" and desc["caCertificateId"] == ca_id
    assert store_call(localiot_server, lambda tx: ca_certificates.locate_ca(tx, ca_id)) == [(ACCOUNT, REGION, "DEFAULT")]
    iot.update_certificate(certificateId=cert_id, newStatus="ACTIVE")
    doc = store_call(localiot_server, lambda tx: certificates.by_id(tx, cert_id))
    assert certificates.is_usable(doc, localiot_server.clock.now())
