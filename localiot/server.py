"""The localiot process: store, clock, bus, protocol engine and HTTP listener."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from localiot import __version__, cluster, health, iotlogs, tunneling
from localiot.background import Background, registered
from localiot.bus import Bus
from localiot.cluster import workers as unit_workers
from localiot.clock import Clock
from localiot.config import Config
from localiot.datadir_lock import DataDirectoryLock
from localiot.protocol.engine import Engine
from localiot.protocol.http import ApiServer, too_large
from localiot.protocol.models import load_services
from localiot.protocol.wire import respond
from localiot.runtime import Runtime
from localiot.services import load_all
from localiot.services.in_process import handler_for
from localiot.services.unit_of_work import run as run_unit
from localiot.store import open_store

log = logging.getLogger("localiot")

_NO_QUERY = MultiDictProxy(MultiDict())
# Paths served beside the API (see LocalIoT._special).
_SPECIAL = ("/_localiot/", "/fleethub/", "/deviceadvisor/reports/")


def _plain_query(query_string: str) -> MultiDict:
    """The parameters of a query string holding no %-escape, as yarl's URL.query has them
    (yarl.query_to_pairs without escapes: '+' is a space, empty fields are skipped, a
    name without '=' has the value "")."""
    pairs = []
    for field in query_string.replace("+", " ").split("&"):
        if field:
            name, _, value = field.partition("=")
            pairs.append((name, value))
    return MultiDict(pairs)


class LocalIoT:
    def __init__(self, config: Config | None = None):
        self.config = config or Config.from_env()
        self.clock = Clock()
        self.bus = Bus()
        self.runtime = Runtime(self.config, self.clock, self.bus)
        self._closing_tunnels: set[asyncio.Task] = set()
        self._lock = None if self.config.in_memory else DataDirectoryLock(self.config.data_dir).acquire()
        db_path = ":memory:" if self.config.in_memory else os.path.join(self.config.data_dir, "localiot.db")
        self.store = open_store(self.config.store or db_path)
        self.runtime.store = self.store
        load_all()  # every family registers its handlers (localiot.services.HANDLERS) by being imported
        self.services = load_services()
        self._units: dict = {}  # id(route) -> (service, operation, handler), read once per route
        self.engine = Engine(
            self.services,
            self._invoke,
            default_account=self.config.default_account,
            default_region=self.config.default_region,
            secrets=self.config.credential_map(),
            strict=self.config.strict_signatures,
        )
        jobs = registered()
        self.background = Background(self.store, self.runtime, jobs, self.config.background_period,
                                     cluster.coordinator(self.config, self.clock, [job.name for job in jobs]))
        self._runner: web.ServerRunner | None = None
        self.port: int | None = None

    # the one place where an API call meets the store ---------------------
    def _invoke(self, route, params: dict, account: str, region: str) -> dict:
        unit = self._units.get(id(route))  # (the engine's routes live as long as this app)
        if unit is None:
            # handler_for: the handler, or the 501 NotImplementedException in-process calls answer too
            unit = (route.service_name, route.name, handler_for(route.service_name, route.name))
            self._units[id(route)] = unit  # (HANDLERS is complete once load_all ran, above)
        # On the loop (SQLite) the call's commit may be shared with the iteration's other calls:
        # _http awaits it before replying (localiot.store.commit_group).
        service, operation, handler = unit  # (a plain call: no argument tuple and keyword dict built per call)
        runtime = self.runtime
        return run_unit(runtime, account, region, service, operation, handler, params, grouped=runtime.workers is None)

    # HTTP ----------------------------------------------------------------
    async def _http(self, request: web.BaseRequest) -> web.StreamResponse:
        try:  # ApiServer(guards_itself=True): the 413 answered here, no wrapping coroutine per request
            target = request.raw_path
            if target.startswith("/") and "#" not in target:
                # origin-form: the path as sent is the URL's raw path (aiohttp builds rel_url
                # from it unchanged), and a query without escapes reads as yarl reads it
                path, _, query_string = target.partition("?")
                if not query_string:
                    query = _NO_QUERY
                elif "%" not in query_string:
                    query = _plain_query(query_string)
                else:
                    query = request.rel_url.query
            else:
                path, query = request.rel_url.raw_path, request.rel_url.query
            if path.startswith(_SPECIAL):
                return await self._special(request, path)
            method = request.method
            if method == "GET" and (path == "/tunnel" or ("%" in path and request.rel_url.path == "/tunnel")):
                from localiot.tunneling import relay_for  # the Secure Tunneling relay (ws://)

                return await relay_for(self.runtime).handle(request)
            if method == "POST" and path.startswith("/topics/"):
                # iot-data Publish with literal slashes in the topic, as devices send it (the
                # model's {topic} label is one path segment); the signature still covers the raw path.
                path = "/topics/" + path[8:].replace("/", "%2F")
            if not request.can_read_body:
                body = b""
            elif request.content.is_eof():  # the whole body is in (an API request's usually is): no read awaited
                body = request.content.read_nowait()
                limit = request.client_max_size
                if limit and len(body) > limit:  # as request.read() refuses it
                    raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
            else:
                body = await request.read()
            engine, pool, headers = self.engine, self.runtime.workers, request.headers
            host = request.host if engine.strict else ""
            # SQLite: here on the loop. PostgreSQL: on a worker thread, so the loop never
            # waits on the database (localiot.cluster.workers).
            if pool is None:
                reply = engine.handle(method, host, path, target, query, headers, body)
                pending = self.store.pending_commit
                if pending is not None:  # the call's work is in a group not yet committed: no reply before it is
                    try:
                        await pending
                    except Exception:  # the shared COMMIT failed (logged there): nothing of the call is stored
                        reply = engine.refusal(500, "InternalFailureException", "An internal error occurred.", headers)
            else:
                reply = await pool.call(engine.handle, method, host, path, target, query, headers, body)
            return respond(request, reply)
        except web.HTTPRequestEntityTooLarge:
            return too_large(request, self.engine.refusal)

    async def _special(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        """The pages served beside the API: admin routes, Device Advisor logs and reports, Fleet Hub."""
        if path.startswith("/_localiot/deviceadvisor/"):  # Device Advisor test case logs (logUrl)
            from localiot.advisor.logs import serve as advisor_log

            return await advisor_log(self, request, path)
        if path.startswith("/_localiot/"):
            return await self._admin(request, path)
        if path.startswith("/fleethub/"):  # the Fleet Hub application pages (applicationUrl)
            from localiot.fleethub_web import handle as fleethub_page

            return await fleethub_page(self, request)
        # GetSuiteRunReport's download URLs
        from localiot.services.deviceadvisor.web import handle as advisor_report

        return await advisor_report(self, request)

    async def _admin(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        if path == "/_localiot/health" and request.method == "GET":
            status, document = await health.report(self)
            return _json(document, status=status)
        if path == "/_localiot/reset" and request.method == "POST":
            if self.runtime.broker is not None:  # PostgreSQL: its store work running on workers ends first
                await self.runtime.broker.persistence.drain()
            self.store.reset()
            self.clock.reset()
            await self.background.coordinator.clock_moved(self.clock.offset)
            await self._forget_memory()  # live tunnel WebSockets end with their tunnels
            await self.background.coordinator.reset()  # the other nodes sharing the store forget theirs
            return _json({"reset": True})
        if path == "/_localiot/ca.pem" and request.method == "GET":
            # The installation's root CA, so devices can trust the broker (AmazonRootCA1.pem's place).
            return web.Response(body=self.runtime.ca.pem, content_type="application/x-pem-file")
        if path == "/_localiot/device-ca.pem" and request.method == "GET":
            # The issuer of device certificates, for a verifier of them outside localiot (another broker).
            return web.Response(body=self.runtime.device_ca.pem, content_type="application/x-pem-file")
        if path == "/_localiot/clock":
            if request.method == "POST":
                body = await request.json() if request.can_read_body else {}
                if "advance" in body:
                    self.clock.advance(float(body["advance"]))
                if "set" in body:
                    self.clock.set(float(body["set"]))
                if body.get("reset"):
                    self.clock.reset()
                # Every node sharing the store adopts the moved clock; time-driven work
                # (timeouts, rollouts ...) catches up on this node before this answers.
                await self.background.clock_moved()
            return _json({"now": self.clock.now(), "offset": self.clock.offset})
        return _json({"message": f"unknown admin route {request.method} {path}"}, status=404)

    def _forget_memory(self) -> asyncio.Task:
        """What this node keeps besides the store, forgotten on a reset (here or on another node);
        the task closing the relay's tunnel WebSockets, which the reset on this node awaits."""
        if self.runtime.broker is not None:
            self.runtime.broker.reset()
        if getattr(self, "advisor_endpoint", None) is not None:  # Device Advisor runs in progress end
            self.advisor_endpoint.reset()
        if getattr(self, "rules", None) is not None:
            self.rules.forget()
        iotlogs.forget(self.runtime)
        closing = asyncio.get_running_loop().create_task(tunneling.reset(self.runtime))
        self._closing_tunnels.add(closing)  # held until done (the loop keeps only weak references)
        closing.add_done_callback(self._closing_tunnels.discard)
        return closing

    async def start(self) -> int:
        server = ApiServer(self._http, self.engine.refusal, guards_itself=True, access_log=None)
        self._runner = web.ServerRunner(server, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.runtime.listeners["api"] = f"{self.config.host}:{self.port}"
        from localiot.services.rules.engine import start_rules_engine

        self.rules = start_rules_engine(self)
        from localiot.listeners import start_listeners
        from localiot.services.defender import history

        history.install(self.runtime)  # the audit's connection history hears the broker from its first client
        unit_workers.start(self.runtime)  # PostgreSQL: units of work off the loop
        if self.config.fabric:  # several nodes: messages and events over NATS (localiot.fabric)
            from localiot.fabric import start_fabric

            self.runtime.fabric = await start_fabric(self.runtime, self.config.fabric)
        self.broker = await start_listeners(self)
        self.background.coordinator.on_reset = self._forget_memory
        await self.background.start()
        log.info("localiot %s API on http://%s:%s (store %s)", __version__, self.config.host, self.port, self.store.path)
        return self.port

    async def stop(self) -> None:
        unit_workers.stop_soon(self.runtime)  # what may be dropped stops after a grace (presence records)
        await self.background.stop()
        from localiot.listeners import stop_listeners

        await stop_listeners(self)
        if getattr(self.runtime, "fabric", None) is not None:
            await self.runtime.fabric.stop()
            self.runtime.fabric = None
        from localiot.services.rules.engine import stop_rules_engine

        stop_rules_engine(self)
        unit_workers.stop(self.runtime)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.store.close()
        if self._lock is not None:
            self._lock.release()

    @property
    def endpoint(self) -> str:
        return f"http://{self.config.host}:{self.port}"


def _json(document, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(document).encode(), content_type="application/json")


async def serve_forever(config: Config) -> None:
    app = LocalIoT(config)
    await app.start()
    stopping = asyncio.Event()
    try:  # SIGTERM (docker stop, systemd, kill) stops as Ctrl-C does: pending work written, store closed
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    except (NotImplementedError, RuntimeError):  # (no signal handlers on Windows' loop)
        pass
    print(f"localiot ready on {app.endpoint}", flush=True)
    try:
        await stopping.wait()
    finally:
        await app.stop()
        log.info("localiot stopped (store %s closed)", app.store.path)
