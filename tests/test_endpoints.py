"""DescribeEndpoint answers with this localiot's own listeners."""

import socket
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError

from localiot.config import Config
from localiot.services.security import endpoints
from localiot.testing import error_of, make_client

TYPES = ["iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def fixed_port() -> int:
    return free_port()


@pytest.fixture
def fixed(localiot_servers, fixed_port):
    """A server on a port asked for (not a free one found by the server)."""
    server = localiot_servers.get(port=fixed_port)
    server.app.runtime.__dict__.pop("listeners", None)
    yield server, make_client(server)
    server.app.runtime.__dict__.pop("listeners", None)


def test_every_type_falls_back_to_the_api_listener(fixed, fixed_port):
    server, iot = fixed
    expected = f"127.0.0.1:{fixed_port}"
    assert server.endpoint == f"http://{expected}"
    for endpoint_type in TYPES:
        assert iot.describe_endpoint(endpointType=endpoint_type)["endpointAddress"] == expected
    assert iot.describe_endpoint()["endpointAddress"] == expected


def test_listeners_registered_by_other_parts(fixed, fixed_port):
    server, iot = fixed
    server.app.runtime.listeners = {"iot:Data-ATS": "127.0.0.1:8883", "iot:CredentialProvider": "127.0.0.1:8443"}
    assert iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"] == "127.0.0.1:8883"
    # The legacy iot:Data endpoint (and no endpointType) use the ATS listener.
    assert iot.describe_endpoint(endpointType="iot:Data")["endpointAddress"] == "127.0.0.1:8883"
    assert iot.describe_endpoint()["endpointAddress"] == "127.0.0.1:8883"
    assert iot.describe_endpoint(endpointType="iot:CredentialProvider")["endpointAddress"] == "127.0.0.1:8443"
    assert iot.describe_endpoint(endpointType="iot:Jobs")["endpointAddress"] == f"127.0.0.1:{fixed_port}"
    server.app.runtime.listeners["api"] = "127.0.0.1:1234"
    server.app.runtime.listeners["iot:Data"] = "127.0.0.1:9999"
    assert iot.describe_endpoint(endpointType="iot:Jobs")["endpointAddress"] == "127.0.0.1:1234"
    assert iot.describe_endpoint(endpointType="iot:Data")["endpointAddress"] == "127.0.0.1:9999"


def test_type_is_case_insensitive(fixed):
    server, iot = fixed
    server.app.runtime.listeners = {"iot:Data-ATS": "127.0.0.1:8883"}
    assert iot.describe_endpoint(endpointType="IOT:data-ats")["endpointAddress"] == "127.0.0.1:8883"


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


def _runtime(host, port, listeners=None):
    runtime = SimpleNamespace(config=Config(host=host, port=port))
    if listeners is not None:
        runtime.listeners = listeners
    return runtime


@pytest.mark.parametrize("host,port,listeners,endpoint_type,expected", [
    ("127.0.0.1", 4566, None, None, "127.0.0.1:4566"),
    ("0.0.0.0", 4566, None, "iot:Jobs", "localhost:4566"),
    ("::", 4566, None, "iot:Data-ATS", "localhost:4566"),
    ("::1", 4566, None, "iot:Data-ATS", "[::1]:4566"),
    ("localhost", 1, {"iot:Data-ATS": "0.0.0.0:8883"}, "iot:Data-ATS", "localhost:8883"),
    ("localhost", 1, {"iot:Data-ATS": "[::]:8883"}, "iot:Data", "localhost:8883"),
    ("localhost", 1, {"iot:Data-ATS": "[::1]:8883"}, "iot:Data-ATS", "[::1]:8883"),
    ("localhost", 1, {"api": "10.0.0.5:4566"}, "iot:CredentialProvider", "10.0.0.5:4566"),
    ("localhost", 1, {}, "iot:CredentialProvider", "localhost:1"),
])
def test_endpoint_address(host, port, listeners, endpoint_type, expected):
    assert endpoints.endpoint_address(_runtime(host, port, listeners), endpoint_type) == expected
