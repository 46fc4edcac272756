"""Device certificates through boto3 against the real server: issuing with real
cryptography, listing, status transitions, deletion rules, registration
without a CA and provisioning claims (transfers across accounts and
certificate providers: test_certificate_transfers, test_certificate_providers)."""

import datetime as dt
import hashlib
import re
import urllib.request

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from localiot.services.security import certificates
from localiot.testing import ACCOUNT, REGION, error_of, make_client

OTHER = "111122223333"
THIRD = "444455556666"
MARKER = re.compile(r"[A-Za-z0-9+/]+={0,2}")
UTC = dt.timezone.utc


def root_ca(server) -> x509.Certificate:
    with urllib.request.urlopen(server.endpoint + "/_localiot/ca.pem") as response:
        return x509.load_pem_x509_certificate(response.read())


def device_ca(server) -> x509.Certificate:
    with urllib.request.urlopen(server.endpoint + "/_localiot/device-ca.pem") as response:
        return x509.load_pem_x509_certificate(response.read())


def issued_by_the_device_ca(cert: x509.Certificate, server) -> bool:
    """Issued by the installation's device CA, as AWS's by its own device issuer, and not
    by the root devices trust for the server (ca.pem)."""
    aws_issuer = x509.Name([x509.NameAttribute(
        NameOID.ORGANIZATIONAL_UNIT_NAME, "Amazon Web Services O=Amazon.com Inc. L=Seattle ST=Washington C=US")])
    return (verifies(cert, device_ca(server)) and not verifies(cert, root_ca(server))
            and cert.issuer == aws_issuer)


def verifies(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:
        return False
    return True


def der_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def csr_pem(key, cn="device-1") -> str:
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def public_der(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def store_call(server, fn, account=ACCOUNT, region=REGION):
    """Run fn(tx) in one store transaction on the server's thread (fixtures other families own)."""

    def run():
        with server.app.store.transaction(account, region) as tx:
            return fn(tx)

    return server.call(run)


def attach(server, rel, src, dst, account=ACCOUNT):
    store_call(server, lambda tx: tx.link(rel, src, dst), account)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def other(localiot_server):
    return make_client(localiot_server, access_key=OTHER)


def new_cert(iot, ec_key, active=False, cn="device-1"):
    """A certificate from a CSR: fast (no key generation on the server)."""
    return iot.create_certificate_from_csr(certificateSigningRequest=csr_pem(ec_key, cn), setAsActive=active)


# issuing ------------------------------------------------------------------------------
def test_create_keys_and_certificate_issues_a_real_certificate(iot, localiot_server):
    before = dt.datetime.now(UTC).replace(microsecond=0)
    out = iot.create_keys_and_certificate(setAsActive=True)
    cert = x509.load_pem_x509_certificate(out["certificatePem"].encode())
    assert issued_by_the_device_ca(cert, localiot_server)
    assert out["certificateId"] == der_sha256(cert)
    assert out["certificateArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{out['certificateId']}"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "AWS IoT Certificate"
    assert cert.not_valid_after_utc == dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert before <= cert.not_valid_before_utc <= dt.datetime.now(UTC)
    private = serialization.load_pem_private_key(out["keyPair"]["PrivateKey"].encode(), None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    assert out["keyPair"]["PrivateKey"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert public_der(private.public_key()) == public_der(cert.public_key())
    public = serialization.load_pem_public_key(out["keyPair"]["PublicKey"].encode())
    assert public_der(public) == public_der(cert.public_key())

    desc = iot.describe_certificate(certificateId=out["certificateId"])["certificateDescription"]
    assert desc["certificateId"] == out["certificateId"]
    assert desc["certificateArn"] == out["certificateArn"]
    assert desc["certificatePem"] == out["certificatePem"]
    assert desc["status"] == "ACTIVE"
    assert desc["ownedBy"] == ACCOUNT
    assert desc["certificateMode"] == "DEFAULT"
    assert desc["customerVersion"] == 1
    assert len(desc["generationId"]) == 36
    assert desc["transferData"] == {}
    assert "caCertificateId" not in desc and "previousOwnedBy" not in desc
    assert desc["validity"]["notAfter"] == cert.not_valid_after_utc
    assert desc["validity"]["notBefore"] == cert.not_valid_before_utc
    assert desc["creationDate"] == desc["lastModifiedDate"]


def test_certificates_are_inactive_unless_set_as_active(iot):
    out = iot.create_keys_and_certificate()
    assert iot.describe_certificate(certificateId=out["certificateId"])["certificateDescription"]["status"] == "INACTIVE"


@pytest.mark.parametrize("make_key", [
    lambda: rsa.generate_private_key(65537, 2048),
    lambda: rsa.generate_private_key(65537, 3072),
    lambda: ec.generate_private_key(ec.SECP256R1()),
    lambda: ec.generate_private_key(ec.SECP384R1()),
    lambda: ec.generate_private_key(ec.SECP521R1()),
], ids=["rsa2048", "rsa3072", "p256", "p384", "p521"])
def test_certificate_from_csr_carries_the_csr_key(iot, localiot_server, make_key):
    key = make_key()
    out = iot.create_certificate_from_csr(certificateSigningRequest=csr_pem(key, "thing-42"), setAsActive=True)
    cert = x509.load_pem_x509_certificate(out["certificatePem"].encode())
    assert issued_by_the_device_ca(cert, localiot_server)
    assert public_der(cert.public_key()) == public_der(key.public_key())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "thing-42"
    assert out["certificateId"] == der_sha256(cert)
    assert out["certificateArn"].endswith(f":cert/{out['certificateId']}")
    desc = iot.describe_certificate(certificateId=out["certificateId"])["certificateDescription"]
    assert desc["status"] == "ACTIVE"
    assert desc["certificatePem"] == out["certificatePem"]


def test_same_csr_twice_gives_two_certificates(iot, ec_key):
    first, second = new_cert(iot, ec_key), new_cert(iot, ec_key)
    assert first["certificateId"] != second["certificateId"]
    assert len(iot.list_certificates()["certificates"]) == 2


def test_forged_csr_is_rejected(iot):
    for key in (rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP256R1())):
        der = x509.load_pem_x509_csr(csr_pem(key).encode()).public_bytes(serialization.Encoding.DER)
        forged = der[:-1] + bytes([der[-1] ^ 0x01])  # one bit of the signature
        pem = x509.load_der_x509_csr(forged).public_bytes(serialization.Encoding.PEM).decode()
        with pytest.raises(ClientError) as info:
            iot.create_certificate_from_csr(certificateSigningRequest=pem)
        assert error_of(info) == ("InvalidRequestException", 400)
        assert "signature" in info.value.response["Error"]["Message"]
    assert iot.list_certificates()["certificates"] == []


@pytest.mark.parametrize("csr", [
    "not a csr",
    "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    csr_pem(rsa.generate_private_key(65537, 1024)),
    csr_pem(ec.generate_private_key(ec.SECP256K1())),
], ids=["garbage", "bad-der", "rsa1024", "secp256k1"])
def test_unusable_csr_is_rejected(iot, csr):
    with pytest.raises(ClientError) as info:
        iot.create_certificate_from_csr(certificateSigningRequest=csr)
    assert error_of(info) == ("InvalidRequestException", 400)


def test_describe_missing_and_malformed_ids(iot):
    with pytest.raises(ClientError) as info:
        iot.describe_certificate(certificateId="a" * 64)
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.describe_certificate(certificateId="xyz" * 21 + "x")
    assert error_of(info) == ("InvalidRequestException", 400)


# listing -----------------------------------------------------------------------------------
def test_list_certificates_orders_by_creation_and_pages_with_markers(iot, localiot_server, ec_key):
    created = []
    for i in range(7):
        created.append(new_cert(iot, ec_key, active=i % 2 == 0)["certificateId"])
        localiot_server.clock.advance(1)
    first = iot.list_certificates(ascendingOrder=False)
    assert [c["certificateId"] for c in first["certificates"]] == created[::-1]  # newest first when asked
    assert [c["certificateId"] for c in iot.list_certificates()["certificates"]] == created  # ascending by default
    assert "nextMarker" not in first
    summary = first["certificates"][-1]
    assert set(summary) == {"certificateArn", "certificateId", "status", "certificateMode", "creationDate"}
    assert summary["status"] == "ACTIVE" and summary["certificateMode"] == "DEFAULT"

    for ascending, expected in ((True, created), (False, created[::-1])):
        seen, marker, pages = [], None, 0
        while True:
            kwargs = {"pageSize": 3, "ascendingOrder": ascending}
            if marker:
                kwargs["marker"] = marker
            page = iot.list_certificates(**kwargs)
            pages += 1
            seen += [c["certificateId"] for c in page["certificates"]]
            marker = page.get("nextMarker")
            if not marker:
                break
            assert MARKER.fullmatch(marker)
        assert seen == expected
        assert pages == 3

    paginator = iot.get_paginator("list_certificates")
    ids = [c["certificateId"] for p in paginator.paginate(PaginationConfig={"PageSize": 2}) for c in p["certificates"]]
    assert ids == created


def test_list_certificates_rejects_bad_markers_and_sizes(iot):
    with pytest.raises(ClientError) as info:
        iot.list_certificates(marker="not+valid+base64")
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        iot.list_certificates(pageSize=251)
    assert error_of(info) == ("InvalidRequestException", 400)


# status transitions -----------------------------------------------------------------------------
def test_update_certificate_transitions(iot, localiot_server, ec_key):
    cert_id = new_cert(iot, ec_key)["certificateId"]

    def describe():
        return iot.describe_certificate(certificateId=cert_id)["certificateDescription"]

    created = describe()
    localiot_server.clock.advance(5)
    iot.update_certificate(certificateId=cert_id, newStatus="ACTIVE")
    after = describe()
    assert after["status"] == "ACTIVE"
    assert after["customerVersion"] == 2
    assert after["generationId"] != created["generationId"]
    assert after["lastModifiedDate"] > created["lastModifiedDate"]
    assert after["creationDate"] == created["creationDate"]

    iot.update_certificate(certificateId=cert_id, newStatus="ACTIVE")  # idempotent
    assert describe()["customerVersion"] == 2
    iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
    assert describe()["status"] == "INACTIVE"

    for internal in ("PENDING_TRANSFER", "PENDING_ACTIVATION"):
        with pytest.raises(ClientError) as info:
            iot.update_certificate(certificateId=cert_id, newStatus=internal)
        assert error_of(info) == ("InvalidRequestException", 400)
    assert describe()["status"] == "INACTIVE"

    iot.update_certificate(certificateId=cert_id, newStatus="REVOKED")
    assert describe()["status"] == "REVOKED"
    iot.update_certificate(certificateId=cert_id, newStatus="REVOKED")  # idempotent
    for target in ("ACTIVE", "INACTIVE"):
        with pytest.raises(ClientError) as info:
            iot.update_certificate(certificateId=cert_id, newStatus=target)
        assert error_of(info) == ("CertificateStateException", 406)
    assert describe()["status"] == "REVOKED"

    with pytest.raises(ClientError) as info:
        iot.update_certificate(certificateId="b" * 64, newStatus="ACTIVE")
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.update_certificate(certificateId=cert_id, newStatus="BROKEN")
    assert error_of(info) == ("InvalidRequestException", 400)


def test_pending_activation_can_be_activated(iot, localiot_server, ec_key):
    cert_id = new_cert(iot, ec_key)["certificateId"]

    def set_pending(tx):  # what just-in-time registration does
        doc = certificates.by_id(tx, cert_id)
        doc["status"] = "PENDING_ACTIVATION"
        certificates.save(tx, doc)

    store_call(localiot_server, set_pending)
    iot.update_certificate(certificateId=cert_id, newStatus="ACTIVE")
    assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == "ACTIVE"


# deletion ------------------------------------------------------------------------------------------
def test_delete_certificate_rules(iot, localiot_server, ec_key):
    out = new_cert(iot, ec_key, active=True)
    cert_id, cert_arn = out["certificateId"], out["certificateArn"]
    with pytest.raises(ClientError) as info:
        iot.delete_certificate(certificateId=cert_id)
    assert error_of(info) == ("CertificateStateException", 406)
    assert "deactivated" in info.value.response["Error"]["Message"]

    iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
    iot.create_thing(thingName="sensor")
    attach(localiot_server, "thing-principal", "sensor", cert_arn)
    attach(localiot_server, "policy-target", "pol-a", cert_arn)
    attach(localiot_server, "policy-target", "pol-b", cert_arn)
    for force in (False, True):
        with pytest.raises(ClientError) as info:
            iot.delete_certificate(certificateId=cert_id, forceDelete=force)
        assert error_of(info) == ("DeleteConflictException", 409)
        assert "Things must be detached" in info.value.response["Error"]["Message"]

    store_call(localiot_server, lambda tx: tx.unlink("thing-principal", "sensor", cert_arn))
    with pytest.raises(ClientError) as info:
        iot.delete_certificate(certificateId=cert_id)
    assert error_of(info) == ("DeleteConflictException", 409)
    assert "policies" in info.value.response["Error"]["Message"]
    assert store_call(localiot_server, lambda tx: tx.linked_to("policy-target", cert_arn)) == ["pol-a", "pol-b"]

    iot.delete_certificate(certificateId=cert_id, forceDelete=True)
    assert store_call(localiot_server, lambda tx: tx.linked_to("policy-target", cert_arn)) == []
    with pytest.raises(ClientError) as info:
        iot.describe_certificate(certificateId=cert_id)
    assert error_of(info) == ("ResourceNotFoundException", 404)
    assert iot.list_certificates()["certificates"] == []
    with pytest.raises(ClientError) as info:
        iot.delete_certificate(certificateId=cert_id)
    assert error_of(info) == ("ResourceNotFoundException", 404)


def test_revoked_and_inactive_certificates_delete(iot, ec_key):
    revoked = new_cert(iot, ec_key)["certificateId"]
    inactive = new_cert(iot, ec_key)["certificateId"]
    kept = new_cert(iot, ec_key)["certificateId"]
    iot.update_certificate(certificateId=revoked, newStatus="REVOKED")
    iot.delete_certificate(certificateId=revoked)
    iot.delete_certificate(certificateId=inactive)
    assert [c["certificateId"] for c in iot.list_certificates()["certificates"]] == [kept]


# without a CA -----------------------------------------------------------------------------------------
def self_signed_pem(key, cn="self"):
    now = dt.datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365)).sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), cert


def test_register_certificate_without_ca(iot, other, localiot_server):
    pem, cert = self_signed_pem(ec.generate_private_key(ec.SECP256R1()))
    out = iot.register_certificate_without_ca(certificatePem=pem)
    assert out["certificateId"] == der_sha256(cert)
    assert out["certificateArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{out['certificateId']}"
    desc = iot.describe_certificate(certificateId=out["certificateId"])["certificateDescription"]
    assert desc["status"] == "INACTIVE"
    assert desc["certificateMode"] == "SNI_ONLY"
    assert "caCertificateId" not in desc
    assert desc["certificatePem"] == pem
    assert desc["validity"]["notAfter"] == cert.not_valid_after_utc

    with pytest.raises(ClientError) as info:
        iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)
    assert info.value.response["resourceId"] == out["certificateId"]
    assert info.value.response["resourceArn"] == out["certificateArn"]

    # SNI_ONLY certificates can live in several accounts
    again = other.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    assert again["certificateId"] == out["certificateId"]
    assert other.describe_certificate(certificateId=out["certificateId"])["certificateDescription"]["status"] == "ACTIVE"
    homes = store_call(localiot_server, lambda tx: sorted(certificates.locate(tx, out["certificateId"])))
    assert homes == sorted([(ACCOUNT, REGION), (OTHER, REGION)])


@pytest.mark.parametrize("status", ["ACTIVE", "INACTIVE", "REVOKED"])
def test_register_without_ca_statuses(iot, status):
    pem, _ = self_signed_pem(ec.generate_private_key(ec.SECP256R1()))
    cert_id = iot.register_certificate_without_ca(certificatePem=pem, status=status)["certificateId"]
    assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == status


def test_register_without_ca_rejects_bad_input(iot):
    with pytest.raises(ClientError) as info:
        iot.register_certificate_without_ca(certificatePem="garbage")
    assert error_of(info) == ("CertificateValidationException", 400)
    weak, _ = self_signed_pem(rsa.generate_private_key(65537, 1024))
    with pytest.raises(ClientError) as info:
        iot.register_certificate_without_ca(certificatePem=weak)
    assert error_of(info) == ("CertificateValidationException", 400)
    good, _ = self_signed_pem(ec.generate_private_key(ec.SECP256R1()))
    for status in ("PENDING_TRANSFER", "PENDING_ACTIVATION"):
        with pytest.raises(ClientError) as info:
            iot.register_certificate_without_ca(certificatePem=good, status=status)
        assert error_of(info) == ("InvalidRequestException", 400)
    assert iot.list_certificates()["certificates"] == []


def test_register_without_ca_rejects_expired(iot, localiot_server):
    pem, cert = self_signed_pem(ec.generate_private_key(ec.SECP256R1()))
    localiot_server.clock.advance(400 * 86400)
    with pytest.raises(ClientError) as info:
        iot.register_certificate_without_ca(certificatePem=pem)
    assert error_of(info) == ("CertificateValidationException", 400)
    assert "expired" in info.value.response["Error"]["Message"]


# lookups other families use ---------------------------------------------------------------------------
def test_lookup_helpers(iot, localiot_server):
    out = iot.create_keys_and_certificate(setAsActive=True)
    doc = store_call(localiot_server, lambda tx: certificates.find_certificate_by_pem(tx, out["certificatePem"]))
    assert doc["certificateId"] == out["certificateId"]
    assert doc["certificateArn"] == out["certificateArn"]
    assert doc["caCertificateId"] is None
    assert doc["ownedBy"] == ACCOUNT
    assert certificates.is_usable(doc, localiot_server.clock.now())
    assert not certificates.is_usable(doc, dt.datetime(2050, 1, 1, tzinfo=UTC).timestamp())
    assert store_call(localiot_server, lambda tx: certificates.by_id(tx, out["certificateId"].upper()))["status"] == "ACTIVE"
    assert store_call(localiot_server, lambda tx: certificates.by_id(tx, out["certificateId"]), OTHER) is None
    assert store_call(localiot_server, lambda tx: certificates.find_certificate_by_pem(tx, "junk")) is None
    assert store_call(localiot_server, lambda tx: certificates.locate(tx, out["certificateId"])) == [(ACCOUNT, REGION)]
    index = store_call(localiot_server, lambda tx: [n for n, _ in tx.find("cert", "status", "ACTIVE")])
    assert index == [out["certificateId"]]


# provisioning claims ------------------------------------------------------------------------------------
def test_provisioning_claim(iot, localiot_server):
    with pytest.raises(ClientError) as info:
        iot.create_provisioning_claim(templateName="fleet")
    assert error_of(info) == ("ResourceNotFoundException", 404)

    store_call(localiot_server, lambda tx: tx.put("provisioningtemplate", "fleet", {
        "templateName": "fleet", "type": "FLEET_PROVISIONING", "enabled": True}))
    now = localiot_server.clock.now()
    claim = iot.create_provisioning_claim(templateName="fleet")
    cert = x509.load_pem_x509_certificate(claim["certificatePem"].encode())
    assert issued_by_the_device_ca(cert, localiot_server)
    assert claim["certificateId"] == der_sha256(cert)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(seconds=299) <= lifetime <= dt.timedelta(seconds=301)
    assert claim["expiration"] == cert.not_valid_after_utc
    assert abs(claim["expiration"].timestamp() - (now + 300)) < 3
    private = serialization.load_pem_private_key(claim["keyPair"]["PrivateKey"].encode(), None)
    assert public_der(private.public_key()) == public_der(cert.public_key())

    doc = store_call(localiot_server, lambda tx: certificates.by_id(tx, claim["certificateId"]))
    assert doc["provisioningClaim"]["templateName"] == "fleet"
    assert doc["status"] == "ACTIVE"
    assert certificates.is_usable(doc, localiot_server.clock.now())
    assert not certificates.is_usable(doc, localiot_server.clock.now() + 301)

    store_call(localiot_server, lambda tx: tx.put("provisioningtemplate", "jitp", {"templateName": "jitp", "type": "JITP"}))
    with pytest.raises(ClientError) as info:
        iot.create_provisioning_claim(templateName="jitp")
    assert error_of(info) == ("InvalidRequestException", 400)
