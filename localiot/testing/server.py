"""A real localiot server inside a test process: on its own event loop thread,
on free loopback ports, with its own data directory."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import urllib.request
from contextlib import ExitStack, contextmanager

from localiot.config import Config

# What a test server differs from `localiot serve` in: free ports, quiet logs.
TEST_SETTINGS = {"host": "127.0.0.1", "port": 0, "log_level": "WARNING",
                 "mqtt_tls_port": 0, "mqtt_alpn_port": 0, "mqtt_plain_port": 0,
                 "device_advisor_port": 0}


# The store of servers started without store=: "" (SQLite); the pytest plugin's
# localiot_store sets it for the test session ("postgresql" in the PostgreSQL pass).
DEFAULT_STORE = ""


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
        """The API's URL, for boto3's endpoint_url."""
        return self.app.endpoint

    @property
    def clock(self):
        return self.app.clock

    def listener(self, name: str) -> tuple[str, int]:
        """(host, port) of a listener: "iot:Data-ATS" (MQTT over TLS), "mqtt-alpn", "mqtt-plain", "api"."""
        host, port = self.app.runtime.listeners[name].rsplit(":", 1)
        return host, int(port)

    def call(self, fn, *args):
        """Run `fn(*args)` on the server's loop thread (where the store lives)."""

        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def reset(self) -> "ServerThread":
        """Wipe every account's state, the broker's sessions and the clock's offset."""
        request = urllib.request.Request(self.endpoint + "/_localiot/reset", method="POST", data=b"")
        with urllib.request.urlopen(request) as response:
            json.load(response)
        return self


@contextmanager
def local_server(**overrides):
    """A server on free loopback ports with its own data directory (or in memory).

    `overrides` are localiot.config.Config fields (mqtt_plain=True,
    aws_endpoint_url=..., strict_signatures=True, background_period=0 ...);
    store="postgresql" runs it on a fresh PostgreSQL database."""
    with tempfile.TemporaryDirectory(prefix="localiot-") as data_dir, ExitStack() as stack:
        settings = dict(TEST_SETTINGS, data_dir=data_dir)
        settings.update(overrides)
        settings["store"] = _store(settings.get("store", DEFAULT_STORE), stack, overrides.get("data_dir"))
        server = ServerThread(Config.from_env(environ={}, **settings)).start()
        try:
            yield server
        finally:
            server.stop()


def _store(store: str, stack: ExitStack, data_dir: str | None = None) -> str:
    """Config.store for a test server: "sqlite" (or "") is the file in its data
    directory, "postgresql" a fresh database on the process's throwaway
    PostgreSQL (dropped with the server), anything else is used as given. A
    server given its data_dir keeps its database, as it keeps its SQLite file:
    the next server on that directory finds the state again (restart tests)."""
    if store == "sqlite":
        return ""
    if store == "postgresql":
        from localiot.testing.postgres import shared_server

        pg = shared_server()
        if data_dir is not None:
            return pg.database_for(data_dir)
        dsn = pg.create_database()
        stack.callback(pg.drop_database, dsn)
        return dsn
    return store


class ServerPool:
    """Servers by settings for a test session. The server with the default
    settings lives as long as the pool; of the others only the one asked for
    last runs (modules that need their own settings run one after another).
    `get` wipes the server's state before handing it out."""

    def __init__(self, **defaults):
        self.defaults = defaults
        self._running: dict[tuple, tuple[ServerThread, ExitStack]] = {}

    @staticmethod
    def _key(settings: dict) -> tuple:
        return tuple(sorted(settings.items()))

    def get(self, **settings) -> ServerThread:
        wanted = dict(self.defaults, **settings)
        key, default_key = self._key(wanted), self._key(self.defaults)
        if key not in self._running:
            if key != default_key:
                for other in [k for k in self._running if k != default_key]:
                    self._stop(other)
            stack = ExitStack()
            self._running[key] = (stack.enter_context(local_server(**wanted)), stack)
        return self._running[key][0].reset()

    def _stop(self, key) -> None:
        _, stack = self._running.pop(key)
        stack.close()

    def close(self) -> None:
        for key in list(self._running):
            self._stop(key)
