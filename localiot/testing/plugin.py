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
localiot_store    the store the session's servers run on: "sqlite" or
                  "postgresql" (a fresh database per server); the option
                  --localiot-store=sqlite,postgresql (or LOCALIOT_TEST_STORE)
                  runs every test that uses a server once per store. Mark a
                  test that is about the SQLite file itself
                  @pytest.mark.sqlite_only("why") to run it on SQLite only.
localiot_postgres the session's throwaway PostgreSQL server
                  (localiot.testing.postgres.PostgresServer: .dsn,
                  .create_database())
localiot_nats     the nats:// URL of a real nats-server, one per test session
                  (the message fabric between several nodes: --fabric)
"""

from __future__ import annotations

import os
import urllib.request

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


STORES = ("sqlite", "postgresql")


def pytest_addoption(parser):
    parser.getgroup("localiot").addoption(
        "--localiot-store", default=os.environ.get("LOCALIOT_TEST_STORE", "sqlite"),
        help="comma-separated stores the localiot_server tests run on: sqlite, postgresql "
             "(LOCALIOT_TEST_STORE, default sqlite)")


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only(reason): the test is about the SQLite store itself")


def _stores(config) -> list[str]:
    stores = [s.strip() for s in config.getoption("localiot_store").split(",") if s.strip()]
    unknown = set(stores) - set(STORES)
    if unknown or not stores:
        raise pytest.UsageError(f"--localiot-store: choose from {', '.join(STORES)}, not {', '.join(unknown)}")
    return stores


# A test module holding one of these starts servers of its own (local_server(...)):
# its tests run once per store too, their local_server() on the test's store.
_SERVER_STARTERS = ("local_server", "ServerThread", "ServerPool", "LocalIoT")


def pytest_generate_tests(metafunc):
    if "localiot_store" not in metafunc.fixturenames:
        module = vars(metafunc.module) if metafunc.module else {}
        if not any(name in module for name in _SERVER_STARTERS):
            return
        metafunc.fixturenames.append("localiot_store")  # set up like a requested fixture
    stores = _stores(metafunc.config)
    only_sqlite = metafunc.definition.get_closest_marker("sqlite_only") is not None
    if only_sqlite:
        stores = ["sqlite"]
    if len(stores) > 1 or only_sqlite:  # session scope: pytest runs one store's tests, then the other's
        metafunc.parametrize("localiot_store", stores, indirect=True, scope="session")


@pytest.fixture(scope="session")
def localiot_store(request):
    """The store of the session's servers: "sqlite" or "postgresql"; local_server()
    without store= uses it while it is set up."""
    from localiot.testing import server

    store = getattr(request, "param", None) or _stores(request.config)[0]
    before, server.DEFAULT_STORE = server.DEFAULT_STORE, store
    yield store
    server.DEFAULT_STORE = before


@pytest.fixture(scope="session")
def localiot_postgres():
    from localiot.testing.postgres import shared_server

    return shared_server()


@pytest.fixture(scope="session")
def localiot_servers(localiot_defaults, localiot_store):
    pool = ServerPool(**dict(localiot_defaults, store=localiot_store))
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
def localiot_moto(localiot_store):
    # moto keeps its state in process-wide backends, whichever server object
    # serves them: each module (and each store's run of it: the store is a
    # session parameter) starts from a reset moto, so a test's PostgreSQL run
    # does not find the queues and tables its SQLite run created.
    with moto_server() as url:
        urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST", data=b"")).read()
        yield url


@pytest.fixture(scope="session")
def localiot_nats():
    from localiot.testing.nats import nats_server

    with nats_server() as url:
        yield url
