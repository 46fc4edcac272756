"""DescribeEndpoint answers a host name only, like AWS, so tutorials and SDK
samples that pass it on as the host (`mosquitto_pub -h "$(aws iot
describe-endpoint ...)" -p 8883`, the Device SDKs' `endpoint`) work."""

import ssl
from contextlib import contextmanager
import socket
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography import x509

from localiot.config import Config
from localiot.services.security import endpoints
from localiot.testing import local_server
from localiot.testing import ALLOW_ALL, DevicePool, address, ca_file, new_certificate


@contextmanager
def device_pool():
    pool = DevicePool()
    try:
        yield pool
    finally:
        pool.close()

TYPES = ["iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs"]


def error_of(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_every_type_answers_a_host_name_only(iot):
    for endpoint_type in TYPES:
        assert iot.describe_endpoint(endpointType=endpoint_type)["endpointAddress"] == "localhost"
    assert iot.describe_endpoint()["endpointAddress"] == "localhost"


def test_type_is_case_insensitive(iot):
    assert iot.describe_endpoint(endpointType="IOT:data-ats")["endpointAddress"] == "localhost"


def test_a_device_connects_to_the_answered_host_with_hostname_checks(localiot_server, iot, tmp_path):
    """paho verifies the server certificate for DescribeEndpoint's host, as an SDK does."""
    cert = new_certificate(iot, tmp_path, policy=ALLOW_ALL)
    host, port = address(iot)
    with device_pool() as make:
        device = make(port, "by-endpoint", ca=ca_file(localiot_server, tmp_path), cert=cert, host=host).connect_ok()
        assert device.publish("t/1", b"x") == 0


def test_endpoint_host_setting_is_answered_and_in_the_server_certificate(tmp_path):
    with local_server(endpoint_host="iot.devices.test") as server:
        iot = boto3.client("iot", endpoint_url=server.endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        for endpoint_type in TYPES:
            assert iot.describe_endpoint(endpointType=endpoint_type)["endpointAddress"] == "iot.devices.test"
        port = int(server.app.runtime.listeners["iot:Data-ATS"].rsplit(":", 1)[1])
        context = ssl.create_default_context(cafile=ca_file(server, tmp_path))
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with context.wrap_socket(raw, server_hostname="iot.devices.test") as tls:
                der = tls.getpeercert(binary_form=True)
        names = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        assert "iot.devices.test" in names


@pytest.mark.parametrize("endpoint_type", ["iot:Data-Legacy", "data", "", "iot:Jobsx"])
def test_invalid_type(iot, endpoint_type):
    with pytest.raises(ClientError) as info:
        iot.describe_endpoint(endpointType=endpoint_type)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "iot:Data-ATS" in info.value.response["Error"]["Message"]


def test_type_length_is_validated(iot):
    with pytest.raises(ClientError) as info:
        iot.describe_endpoint(endpointType="x" * 129)
    assert error_of(info) == ("InvalidRequestException", 400)


@pytest.mark.parametrize("host,endpoint_host,expected", [
    ("127.0.0.1", "", "localhost"),
    ("127.0.0.2", "", "localhost"),
    ("::1", "", "localhost"),
    ("[::1]", "", "localhost"),
    ("localhost", "", "localhost"),
    ("0.0.0.0", "", "localhost"),
    ("::", "", "localhost"),
    ("10.0.0.5", "", "10.0.0.5"),
    ("iot.lan", "", "iot.lan"),
    ("0.0.0.0", "broker.lan", "broker.lan"),
    ("127.0.0.1", " devices.example ", "devices.example"),
])
def test_endpoint_host(host, endpoint_host, expected):
    config = Config(host=host, endpoint_host=endpoint_host)
    assert endpoints.endpoint_host(config) == expected
    assert endpoints.endpoint_address(SimpleNamespace(config=config), "iot:Jobs") == expected


def test_endpoint_host_variable():
    assert Config.from_env({"LOCALIOT_ENDPOINT_HOST": "iot.example"}).endpoint_host == "iot.example"
