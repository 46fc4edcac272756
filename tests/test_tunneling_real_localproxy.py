"""AWS's real localproxy binary through localiot's relay, over TLS on the ALPN
port as a user would run it (`--proxy-endpoint localhost:<port> --capath <dir
with ca.pem>`): a destination in front of a TCP echo server and a real sshd, a
source whose local ports take a bulk transfer, concurrent echoes and real
`ssh` sessions; protocol 3 with two services, protocol 2 with one, protocol 1
(localproxy's source in its V1 compatibility mode, the destination a
protocol 1 local proxy written from the guides, since localproxy cannot be
one); the
connection states DescribeTunnel reports while it is attached and after it
leaves; CloseTunnel and token rotation cutting it off.

Skipped (with the reason) when the binary is not found: $LOCALIOT_LOCALPROXY,
`localproxy` on PATH, or ~/.cache/localiot/localproxy/bin/localproxy, where
bench/build_localproxy.sh builds it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import threading
import time

import pytest

from localiot.testing import make_client
from tunneling_localproxy import LocalProxy
from tunneling_binary import (ROOMY, EchoServer, LocalProxyProcess, Sshd, ca_directory, echo_round_trip,
                              free_port, localproxy_binary, staggered_connections)

BINARY, WHY = localproxy_binary()
pytestmark = pytest.mark.skipif(BINARY is None, reason=WHY)


@pytest.fixture
def tunnels(localiot_server):
    return make_client(localiot_server, "iotsecuretunneling")


@pytest.fixture
def relay(localiot_server, tmp_path):
    """What localproxy is given: (--proxy-endpoint, --capath)."""
    _, port = localiot_server.listener("mqtt-alpn")
    return f"localhost:{port}", ca_directory(localiot_server.endpoint, str(tmp_path / "ca"))


@pytest.fixture
def sshd():
    why = Sshd.unavailable()
    if why:
        pytest.skip(why)
    server = Sshd()
    yield server
    server.stop()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxies(relay, tmp_path):
    started = []

    def start(token, mode, mapping, services=1, **options):
        workdir = tmp_path / f"{mode}-{len(started)}"
        workdir.mkdir()
        options.setdefault("settings", ROOMY)  # see tunneling_binary.ROOMY (localproxy issue #160)
        proxy = LocalProxyProcess(BINARY, *relay, token, mode, mapping, workdir=str(workdir), **options)
        started.append(proxy)
        return proxy.ready(services)

    yield start
    for proxy in started:
        proxy.stop()


def states(tunnels, tunnel_id):
    tunnel = tunnels.describe_tunnel(tunnelId=tunnel_id)["tunnel"]
    return tunnel["sourceConnectionState"]["status"], tunnel["destinationConnectionState"]["status"]


def wait_states(tunnels, tunnel_id, expected, timeout=15.0):
    deadline = time.monotonic() + timeout
    while (found := states(tunnels, tunnel_id)) != expected:
        assert time.monotonic() < deadline, f"connection states {found}, expected {expected}"
        time.sleep(0.05)


def test_v3_two_services_bulk_echo_concurrent_connections_and_ssh(tunnels, proxies, sshd, echo):
    opened = tunnels.open_tunnel(destinationConfig={"thingName": "pump", "services": ["SSH1", "ECHO"]})
    tunnel_id = opened["tunnelId"]
    assert states(tunnels, tunnel_id) == ("DISCONNECTED", "DISCONNECTED")
    ssh_port, echo_port = free_port(), free_port()
    destination = proxies(opened["destinationAccessToken"], "destination",
                          f"SSH1=127.0.0.1:{sshd.port},ECHO=127.0.0.1:{echo.port}")
    source = proxies(opened["sourceAccessToken"], "source", f"SSH1={ssh_port},ECHO={echo_port}", services=2)
    wait_states(tunnels, tunnel_id, ("CONNECTED", "CONNECTED"))

    small = os.urandom(1024)
    assert echo_round_trip(echo_port, small) == small
    bulk = os.urandom(10 * 1024 * 1024)
    assert hashlib.sha256(echo_round_trip(echo_port, bulk)).digest() == hashlib.sha256(bulk).digest()

    # simultaneous TCP connections on both services (CONNECTION_START on each service's stream)
    payloads = [os.urandom(300_000 + i) for i in range(6)]
    results, errors = [None] * 6, []
    conns = staggered_connections(echo_port, 6)

    def one_echo(i):
        try:
            results[i] = echo_round_trip(conns[i], payloads[i])
        except Exception as error:  # reported below
            errors.append(error)

    workers = [threading.Thread(target=one_echo, args=(i,)) for i in range(6)]
    for worker in workers:
        worker.start()
    ssh_runs = [sshd.ssh(ssh_port, "echo", "ok") for _ in range(2)]
    for worker in workers:
        worker.join(120)
    assert not errors and results == payloads
    for run in ssh_runs:
        assert run.returncode == 0, run.stderr
        assert run.stdout == b"ok\n"
    shipped = os.urandom(2 * 1024 * 1024)
    run = sshd.ssh(ssh_port, "cat", input=shipped)  # 2 MB through ssh and back
    assert run.returncode == 0, run.stderr
    assert run.stdout == shipped
    assert "connection id: 2" in source.log()  # the later connections were CONNECTION_STARTs

    source.stop()
    wait_states(tunnels, tunnel_id, ("DISCONNECTED", "CONNECTED"))
    destination.stop()
    wait_states(tunnels, tunnel_id, ("DISCONNECTED", "DISCONNECTED"))


def test_v2_single_service_echo_and_ssh(tunnels, proxies, sshd, echo):
    for target, check in ((echo.port, "echo"), (sshd.port, "ssh")):
        opened = tunnels.open_tunnel(destinationConfig={"thingName": "pump", "services": ["SSH"]})
        port = free_port()
        destination = proxies(opened["destinationAccessToken"], "destination", f"127.0.0.1:{target}", version=2,
                              verbosity=5)
        source = proxies(opened["sourceAccessToken"], "source", str(port), version=2, verbosity=5)
        wait_states(tunnels, opened["tunnelId"], ("CONNECTED", "CONNECTED"))
        if check == "echo":
            assert echo_round_trip(port, b"x") == b"x"
            bulk = os.urandom(10 * 1024 * 1024)
            assert echo_round_trip(port, bulk) == bulk
        else:
            run = sshd.ssh(port, "echo", "ok")
            assert run.returncode == 0, run.stderr
            assert run.stdout == b"ok\n"
        for proxy in (source, destination):
            assert "Web socket subprotocol selected: aws.iot.securetunneling-2.0" in proxy.log()
        source.stop()
        destination.stop()
        wait_states(tunnels, opened["tunnelId"], ("DISCONNECTED", "DISCONNECTED"))



class GuideProxyThread:
    """The guide-written local proxy (tests/tunneling_localproxy.py) on a loop of its own."""

    def __init__(self, relay, token: str, mode: str, services: dict, version: int):
        endpoint, capath = relay
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy = LocalProxy("https://" + endpoint, token, mode, services, version=version,
                                ssl=ssl.create_default_context(capath=capath))
        self.run(self.proxy.start())

    def run(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        try:
            self.run(self.proxy.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


def test_v1_destination_behind_a_source_in_v1_compatibility_mode(tunnels, proxies, relay, echo):
    """AWS's localproxy as source with -y V1 (messages without service ids) and a protocol 1
    destination (subprotocol aws.iot.securetunneling-1.0): echo, 1 byte and 10 MB."""
    opened = tunnels.open_tunnel(destinationConfig={"thingName": "pump", "services": ["SSH"]})
    destination = GuideProxyThread(relay, opened["destinationAccessToken"], "destination", {"": echo.port}, 1)
    try:
        port = free_port()
        source = proxies(opened["sourceAccessToken"], "source", str(port), verbosity=5, destination_client_type="V1")
        wait_states(tunnels, opened["tunnelId"], ("CONNECTED", "CONNECTED"))
        assert echo_round_trip(port, b"x") == b"x"
        bulk = os.urandom(10 * 1024 * 1024)
        assert echo_round_trip(port, bulk) == bulk
        assert "setting source protocol to V1" in source.log()
        assert destination.proxy.ws.protocol == "aws.iot.securetunneling-1.0"
        assert destination.proxy.service_ids is None  # protocol 1 has no SERVICE_IDS message
        source.stop()
        wait_states(tunnels, opened["tunnelId"], ("DISCONNECTED", "CONNECTED"))
    finally:
        destination.stop()
    wait_states(tunnels, opened["tunnelId"], ("DISCONNECTED", "DISCONNECTED"))


def echo_tunnel(tunnels, proxies, echo):
    """A tunnel to the echo server with a localproxy at each end, carrying bytes:
    (the tunnel, the source's local port, destination, source)."""
    opened = tunnels.open_tunnel(destinationConfig={"thingName": "pump", "services": ["ECHO"]})
    port = free_port()
    destination = proxies(opened["destinationAccessToken"], "destination", f"ECHO=127.0.0.1:{echo.port}")
    source = proxies(opened["sourceAccessToken"], "source", f"ECHO={port}")
    assert echo_round_trip(port, b"before") == b"before"
    return opened, port, destination, source


def test_close_tunnel_ends_both_real_proxies(tunnels, proxies, echo):
    opened, _, destination, source = echo_tunnel(tunnels, proxies, echo)
    tunnels.close_tunnel(tunnelId=opened["tunnelId"])
    for proxy in (source, destination):  # the relay's close (1000, "Tunnel closed") stops localproxy
        assert proxy.wait_exit() == 0
    tunnel = tunnels.describe_tunnel(tunnelId=opened["tunnelId"])["tunnel"]
    assert tunnel["status"] == "CLOSED"
    assert states(tunnels, opened["tunnelId"]) == ("DISCONNECTED", "DISCONNECTED")


def test_rotated_destination_token_cuts_off_the_old_proxy_and_admits_a_new_one(tunnels, proxies, echo):
    opened, port, old, source = echo_tunnel(tunnels, proxies, echo)
    rotated = tunnels.rotate_tunnel_access_token(tunnelId=opened["tunnelId"], clientMode="DESTINATION")
    assert old.wait_exit() == 0
    wait_states(tunnels, opened["tunnelId"], ("CONNECTED", "DISCONNECTED"))
    proxies(rotated["destinationAccessToken"], "destination", f"ECHO=127.0.0.1:{echo.port}")
    wait_states(tunnels, opened["tunnelId"], ("CONNECTED", "CONNECTED"))
    data = os.urandom(1 << 20)
    assert echo_round_trip(port, data) == data
    assert source.process.poll() is None
