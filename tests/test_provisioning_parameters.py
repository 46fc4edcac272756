"""localiot.provisioning.parameters: the AWS::IoT::Certificate::* values a
certificate gives to JITP and fleet provisioning templates."""

import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from localiot.provisioning.parameters import certificate_parameters

UTC = dt.timezone.utc


def _certificate(attributes, san=None):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    now = dt.datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + dt.timedelta(days=1)))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(key, hashes.SHA256())


def test_every_subject_field_the_id_and_the_first_alternative_name():
    cert = _certificate([
        (NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "Acme"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Bulbs"), (NameOID.DN_QUALIFIER, "dnq"),
        (NameOID.STATE_OR_PROVINCE_NAME, "WA"), (NameOID.LOCALITY_NAME, "Seattle"),
        (NameOID.COMMON_NAME, "bulb-7"), (NameOID.SERIAL_NUMBER, "0007"), (NameOID.TITLE, "lamp"),
    ], san=[x509.DNSName("bulb-7.example.com"), x509.RFC822Name("ops@example.com")])
    assert certificate_parameters(cert, "ab" * 32) == {
        "AWS::IoT::Certificate::Id": "ab" * 32,
        "AWS::IoT::Certificate::Country": "US",
        "AWS::IoT::Certificate::Organization": "Acme",
        "AWS::IoT::Certificate::OrganizationalUnit": "Bulbs",
        "AWS::IoT::Certificate::DistinguishedNameQualifier": "dnq",
        "AWS::IoT::Certificate::StateName": "WA",
        "AWS::IoT::Certificate::Locality": "Seattle",
        "AWS::IoT::Certificate::CommonName": "bulb-7",
        "AWS::IoT::Certificate::SerialNumber": "0007",
        "AWS::IoT::Certificate::Title": "lamp",
        "AWS::IoT::Certificate::SubjectAlternativeName": "bulb-7.example.com",
    }


def test_absent_fields_give_no_parameter_and_pem_is_accepted():
    cert = _certificate([(NameOID.COMMON_NAME, "only-cn")])
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    expected = {"AWS::IoT::Certificate::Id": "cd" * 32, "AWS::IoT::Certificate::CommonName": "only-cn"}
    assert certificate_parameters(cert, "cd" * 32) == expected
    assert certificate_parameters(pem, "cd" * 32) == expected


def test_an_ip_address_alternative_name_is_given_as_text():
    cert = _certificate([(NameOID.COMMON_NAME, "gw")], san=[x509.IPAddress(ipaddress.ip_address("10.0.0.7"))])
    assert certificate_parameters(cert, "ef" * 32)["AWS::IoT::Certificate::SubjectAlternativeName"] == "10.0.0.7"
