"""Run a real localiot server inside a test process.

    from localiot.testing import local_server

    with local_server() as server:
        iot = boto3.client("iot", endpoint_url=server.endpoint, region_name="us-east-1")

or, in pytest, `pytest_plugins = ["localiot.testing"]` and use the
`localiot_server` fixture (one server per test session, state wiped before
each test, time-driven work run only when the test moves the clock). The server runs on its own event loop thread, on a free port.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import urllib.request
from contextlib import contextmanager

from localiot.config import Config


class ServerThread:
    def __init__(self, config: Config):
        from localiot.server import LocalIoT

        self.loop = asyncio.new_event_loop()
        self.app = LocalIoT(config)
        self._thread = threading.Thread(target=self.loop.run_forever, name="localiot", daemon=True)

    def start(self) -> "ServerThread":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.app.start(), self.loop).result(30)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.app.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    @property
    def endpoint(self) -> str:
        return self.app.endpoint

    @property
    def clock(self):
        return self.app.clock

    def call(self, fn, *args):
        """Run `fn(*args)` on the server's loop thread (where the store lives)."""

        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def reset(self) -> None:
        request = urllib.request.Request(self.endpoint + "/_localiot/reset", method="POST", data=b"")
        with urllib.request.urlopen(request) as response:
            json.load(response)


@contextmanager
def local_server(**overrides):
    """A server on a free loopback port with its own data directory (or in memory)."""
    with tempfile.TemporaryDirectory(prefix="localiot-") as data_dir:
        settings = {"host": "127.0.0.1", "port": 0, "data_dir": data_dir, "log_level": "WARNING",
                    "mqtt_tls_port": 0, "mqtt_alpn_port": 0, "mqtt_plain_port": 0}
        settings.update(overrides)
        server = ServerThread(Config.from_env(environ={}, **settings)).start()
        try:
            yield server
        finally:
            server.stop()


try:
    import pytest
except ImportError:  # the helper works without pytest too
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def _localiot_session_server():
        # No periodic background work: time-driven effects happen when a test
        # moves the clock (POST /_localiot/clock), never by chance mid-test.
        with local_server(background_period=0) as server:
            yield server

    @pytest.fixture
    def localiot_server(_localiot_session_server):
        _localiot_session_server.reset()
        return _localiot_session_server
