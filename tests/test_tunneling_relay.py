"""The Secure Tunneling relay on the API port (ws://.../tunnel) with a local
proxy written from AWS's protocol guides (tunneling_localproxy.py): a TCP echo
server behind the destination, a local port on the source side, byte-exact
round trips, several services and connections (protocol 3), one service
(protocol 2), STREAM_RESET when the destination's port refuses, and the
connection states DescribeTunnel reports."""

from __future__ import annotations

import asyncio
import os

import pytest

from localiot.testing import make_client
from tunneling_localproxy import LocalProxy, echo_server, round_trip


@pytest.fixture
def tunnels(localiot_server):
    return make_client(localiot_server, "iotsecuretunneling")


def open_tunnel(tunnels, services=("SSH",), thing="pump"):
    return tunnels.open_tunnel(destinationConfig={"thingName": thing, "services": list(services)})


async def wait_for(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def proxies(server, opened, dest_ports: dict, source_services=None, version=3):
    destination = await LocalProxy(server.endpoint, opened["destinationAccessToken"], "destination", dest_ports,
                                   version).start()
    source = await LocalProxy(server.endpoint, opened["sourceAccessToken"], "source",
                              {s: 0 for s in (source_services or dest_ports)}, version).start()
    return source, destination


def test_one_kilobyte_and_ten_megabytes_round_trip_byte_exact(localiot_server, tunnels):
    opened = open_tunnel(tunnels)

    async def scenario():
        echo, port = await echo_server()
        source, destination = await proxies(localiot_server, opened, {"SSH": port})
        try:
            await wait_for(lambda: source.service_ids == ["SSH"] and destination.service_ids == ["SSH"])
            small = os.urandom(1024)
            assert await round_trip(source.ports["SSH"], small) == small
            big = os.urandom(10 * 1024 * 1024)
            assert await round_trip(source.ports["SSH"], big) == big
        finally:
            await source.stop()
            await destination.stop()
            echo.close()

    asyncio.run(scenario())


def test_v3_two_services_several_connections_at_once(localiot_server, tunnels):
    opened = open_tunnel(tunnels, ("SSH", "HTTP"))

    async def scenario():
        echo_a, port_a = await echo_server()
        echo_b, port_b = await echo_server()
        source, destination = await proxies(localiot_server, opened, {"SSH": port_a, "HTTP": port_b})
        try:
            await wait_for(lambda: destination.service_ids == ["SSH", "HTTP"])
            # the first connection of a service starts its stream, the others are CONNECTION_STARTs on it
            first = os.urandom(4096)
            assert await round_trip(source.ports["SSH"], first) == first
            payloads = [(service, os.urandom(200_000 + i)) for i in range(4) for service in ("SSH", "HTTP")]
            results = await asyncio.gather(*(round_trip(source.ports[s], p) for s, p in payloads))
            assert results == [p for _, p in payloads]
        finally:
            await source.stop()
            await destination.stop()
            echo_a.close()
            echo_b.close()

    asyncio.run(scenario())


def test_v2_single_service(localiot_server, tunnels):
    opened = open_tunnel(tunnels, ("SSH",))

    async def scenario():
        echo, port = await echo_server()
        source, destination = await proxies(localiot_server, opened, {"SSH": port}, version=2)
        try:
            await wait_for(lambda: source.service_ids == ["SSH"])
            for size in (1, 1024, 300_000):  # each connection is a new stream in protocol 2
                data = os.urandom(size)
                assert await round_trip(source.ports["SSH"], data) == data
        finally:
            await source.stop()
            await destination.stop()
            echo.close()

    asyncio.run(scenario())


def test_stream_reset_when_the_destination_port_refuses(localiot_server, tunnels):
    opened = open_tunnel(tunnels)

    async def scenario():
        echo, closed_port = await echo_server()
        echo.close()
        await echo.wait_closed()  # nothing listens there any more
        source, destination = await proxies(localiot_server, opened, {"SSH": closed_port})
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", source.ports["SSH"])
            writer.write(b"hello")
            await writer.drain()
            # the destination's STREAM_RESET crosses the relay and the source closes the application's socket
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert [m.type for m in source.resets] == [3] and source.resets[0].serviceId == "SSH"
            writer.close()
        finally:
            await source.stop()
            await destination.stop()

    asyncio.run(scenario())


def test_connection_states_follow_attach_and_detach(localiot_server, tunnels):
    opened = open_tunnel(tunnels)
    tunnel_id = opened["tunnelId"]

    def states():
        t = tunnels.describe_tunnel(tunnelId=tunnel_id)["tunnel"]
        return t["sourceConnectionState"], t["destinationConnectionState"]

    async def scenario():
        destination = await LocalProxy(localiot_server.endpoint, opened["destinationAccessToken"], "destination",
                                       {"SSH": 1}).start()
        src, dst = await asyncio.to_thread(states)
        assert (src["status"], dst["status"]) == ("DISCONNECTED", "CONNECTED")
        assert dst["lastUpdatedAt"] >= src["lastUpdatedAt"]
        source = await LocalProxy(localiot_server.endpoint, opened["sourceAccessToken"], "source",
                                  {"SSH": 0}).start()
        src, dst = await asyncio.to_thread(states)
        assert (src["status"], dst["status"]) == ("CONNECTED", "CONNECTED")
        await destination.stop()
        await wait_for(lambda: states()[1]["status"] == "DISCONNECTED")
        assert states()[0]["status"] == "CONNECTED"
        await source.stop()
        await wait_for(lambda: states()[0]["status"] == "DISCONNECTED")

    asyncio.run(scenario())


def test_the_relay_on_the_alpn_tls_port(localiot_server, tunnels, tmp_path):
    """localproxy against wss://localhost:<ALPN port>/tunnel, verifying the server with the installation CA."""
    import ssl
    import urllib.request

    ca = tmp_path / "ca.pem"
    ca.write_bytes(urllib.request.urlopen(localiot_server.endpoint + "/_localiot/ca.pem").read())
    context = ssl.create_default_context(cafile=str(ca))
    endpoint = "https://localhost:" + localiot_server.app.runtime.listeners["mqtt-alpn"].rsplit(":", 1)[1]
    opened = open_tunnel(tunnels)

    async def scenario():
        echo, port = await echo_server()
        destination = await LocalProxy(endpoint, opened["destinationAccessToken"], "destination", {"SSH": port},
                                       ssl=context).start()
        source = await LocalProxy(endpoint, opened["sourceAccessToken"], "source", {"SSH": 0}, ssl=context).start()
        try:
            await wait_for(lambda: source.service_ids == ["SSH"] and destination.service_ids == ["SSH"])
            payload = os.urandom(100_000)
            assert await round_trip(source.ports["SSH"], payload) == payload
        finally:
            await source.stop()
            await destination.stop()
            echo.close()

    asyncio.run(scenario())
