"""The pytest side of the kit (`pytest_plugins = ["localiot.testing"]`).

localiot_server   a running server, its state wiped before each test; the
                  same server for the whole session unless a module asks for
                  other settings by overriding `localiot_settings`:

                      @pytest.fixture(scope="module")
                      def localiot_settings(moto_endpoint):
                          return {"aws_endpoint_url": moto_endpoint}

localiot_servers  the session's ServerPool: localiot_servers.get(**settings)
                  for a test that needs a second, differently set-up server
iot               a boto3 IoT client of localiot_server
devices           a DevicePool: devices.tls(...), devices.plain(...),
                  devices(port, client_id, ...); all closed after the test
moto_endpoint     moto's server URL, one per test module
"""

from __future__ import annotations

import pytest

from localiot.testing.aws import make_client, moto_server
from localiot.testing.mqtt import DevicePool
from localiot.testing.server import ServerPool

# What every test server has: no periodic background work (time-driven effects
# happen when a test moves the clock, never by chance mid-test) and the plain
# MQTT listener on a free port (for tests about topics rather than TLS).
SESSION_DEFAULTS = {"background_period": 0, "mqtt_plain": True}


@pytest.fixture(scope="session")
def localiot_servers():
    pool = ServerPool(**SESSION_DEFAULTS)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def localiot_settings() -> dict:
    """Config fields for localiot_server beyond SESSION_DEFAULTS; override it (module scope) to change them."""
    return {}


@pytest.fixture
def localiot_server(localiot_servers, localiot_settings):
    return localiot_servers.get(**localiot_settings)


@pytest.fixture
def iot(localiot_server):
    return make_client(localiot_server)


@pytest.fixture
def devices(localiot_server):
    pool = DevicePool(localiot_server)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as url:
        yield url
