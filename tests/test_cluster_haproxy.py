"""deploy/haproxy.cfg for real: Debian's haproxy in front of two localiot nodes
on one PostgreSQL, the configuration taken from deploy/ with only the
addresses changed (test nodes listen on free loopback ports). The AWS API
and MQTT over TLS go through it; a device trusting the installation CA
connects through it whichever node it lands on; SIGKILL of a node takes it
out of rotation and the API keeps answering through the other.
Skipped when haproxy is not installed and cannot be (apt-get as root)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from cluster_nodes import Node, wait_for
from localiot.testing import ALLOW_ALL, Device, ca_file, make_client, new_certificate

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "haproxy.cfg"
PORTS = {"4566": "api", "8883": "iot:Data-ATS", "8443": "mqtt-alpn"}


def haproxy_binary() -> str | None:
    found = shutil.which("haproxy") or (os.path.exists("/usr/sbin/haproxy") and "/usr/sbin/haproxy")
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-q", "haproxy"], env=env, capture_output=True, timeout=300)
        found = shutil.which("haproxy") or (os.path.exists("/usr/sbin/haproxy") and "/usr/sbin/haproxy")
    return found or None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_config(nodes: list[Node]) -> tuple[str, dict[str, int]]:
    """deploy/haproxy.cfg with its frontends on free loopback ports and its servers
    at the test nodes' ports (health checks on each node's own API port)."""
    text = DEPLOY.read_text()
    text = re.sub(r"(?ms)^resolvers docker\n.*?\n\n", "", text)
    text = text.replace(" resolvers docker init-addr last,libc,none", "").replace(" check port 4566", " check")
    text = text.replace("log stdout format raw local0 info", "")
    text = re.sub(r"maxconn \d+", "maxconn 2000", text)  # within this machine's open-files limit
    fronts: dict[str, int] = {}

    def bind(match) -> str:
        fronts[match.group(1)] = free_port()
        return f"bind 127.0.0.1:{fronts[match.group(1)]}"

    text = re.sub(r"bind :(\d+)", bind, text)
    ports = {node.name: {p: node.listener(name) for p, name in PORTS.items()} for node in nodes}

    def server(match) -> str:
        name, port = match.group(1), match.group(3)
        if name not in ports:
            return ""
        return f"server {name} 127.0.0.1:{ports[name][port]} port {ports[name]['4566']}"

    text = re.sub(r"server (node\d) (node\d):(\d+)", server, text)
    return text, fronts


@pytest.fixture
def haproxy_path():
    path = haproxy_binary()
    if path is None:
        pytest.skip("haproxy is not installed and cannot be installed here")
    return path


def test_haproxy_in_front_of_two_nodes(haproxy_path, localiot_postgres, tmp_path):
    dsn = localiot_postgres.create_database()
    nodes = []
    proxy = None
    try:
        for name in ("node1", "node2"):
            nodes.append(Node(name, tmp_path, store=dsn, period=0.5).start())
        text, fronts = local_config(nodes)
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(text)
        check = subprocess.run([haproxy_path, "-c", "-f", str(cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        proxy = subprocess.Popen([haproxy_path, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        lb = f"http://127.0.0.1:{fronts['4566']}"
        iot = make_client(lb)
        assert wait_for(lambda: _answers(iot))
        iot.create_thing(thingName="through-haproxy")
        assert make_client(nodes[1]).describe_thing(thingName="through-haproxy")["thingName"] == "through-haproxy"

        # MQTT over TLS through HAProxy (TCP pass-through): the device's certificate
        # reaches the node, which checks it; the server certificate chains to the one CA.
        cert = new_certificate(iot, tmp_path, policy=ALLOW_ALL)
        ca = ca_file(nodes[0], tmp_path)
        devices = [Device(fronts["8883"], f"lb-device-{i}", ca=ca, cert=cert) for i in range(4)]
        for device in devices:  # leastconn: two connections land on each node
            device.connect_ok()

        nodes[0].kill()
        # node1's devices lose their connection, node2's keep theirs ...
        assert wait_for(lambda: sum(d.closed.is_set() for d in devices) == 2)
        # ... and the API keeps answering: refused connections are redispatched.
        for _ in range(20):
            assert iot.describe_thing(thingName="through-haproxy")["thingName"] == "through-haproxy"
        for i, device in enumerate(devices):  # the dropped devices reconnect through HAProxy
            if device.closed.is_set():
                device.close()
                devices[i] = Device(fronts["8883"], f"lb-device-{i}", ca=ca, cert=cert).connect_ok()
        assert not any(d.closed.is_set() for d in devices)
        for device in devices:
            device.close()
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(10)
        for node in nodes:
            node.stop()
        localiot_postgres.drop_database(dsn)


def _answers(iot) -> bool:
    try:
        iot.list_things()
        return True
    except Exception:
        time.sleep(0.2)
        return False
