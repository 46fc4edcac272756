"""The pytest side of the kit: installing localiot registers it (entry point
pytest11), or `pytest_plugins = ["localiot.testing"]`. Every fixture's name
starts with localiot_, so none shadows a project's own.

localiot_server   a running server, its state wiped before each test; the
                  same server for the whole session unless a module asks for
                  other settings by overriding `localiot_settings`:

                      @pytest.fixture(scope="module")
                      def localiot_settings(localiot_moto):
                          return {"aws_endpoint_url": localiot_moto}

localiot_defaults the Config fields every server of the session has
                  (background_period=0); override it in conftest.py
localiot_servers  the session's ServerPool: localiot_servers.get(**settings)
                  for a test that needs a second, differently set-up server
localiot_devices  a DevicePool on localiot_server: .tls(...), .plain(...),
                  (port, client_id, ...); all closed after the test
localiot_moto     the URL of moto's server, one per test module
localiot_nats     the nats:// URL of a real nats-server, one per test session
                  (the message fabric between several nodes: --fabric)
"""

from __future__ import annotations

import pytest

from localiot.testing.aws import moto_server
from localiot.testing.mqtt import DevicePool
from localiot.testing.server import ServerPool


@pytest.fixture(scope="session")
def localiot_defaults() -> dict:
    """Config fields of every server the session starts. No periodic background
    work: time-driven effects happen when a test moves the clock, never by chance
    mid-test. Override it in conftest.py (session scope) to add to it."""
    return {"background_period": 0}


@pytest.fixture(scope="session")
def localiot_servers(localiot_defaults):
    pool = ServerPool(**localiot_defaults)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def localiot_settings() -> dict:
    """Config fields of localiot_server beyond localiot_defaults; override it (module scope) to change them."""
    return {}


@pytest.fixture
def localiot_server(localiot_servers, localiot_settings):
    return localiot_servers.get(**localiot_settings)


@pytest.fixture
def localiot_devices(localiot_server):
    pool = DevicePool(localiot_server)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def localiot_moto():
    with moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def localiot_nats():
    from localiot.testing.nats import nats_server

    with nats_server() as url:
        yield url
