"""Starting `localiot serve` the ways a new user gets wrong: a port that is
taken, a data directory another server already uses. Each answers one line
that names the fix, and a non-zero exit."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from localiot.testing import local_server

BIN = Path(sys.executable).parent

pytestmark = pytest.mark.sqlite_only("ports and the data directory's lock, which the SQLite file needs")


def serve(data_dir, *extra, timeout=60):
    """Run `localiot serve` expecting it to refuse to start; (exit code, output)."""
    done = subprocess.run(
        [str(BIN / "localiot"), "serve", "--port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0",
         "--data-dir", str(data_dir), *extra],
        capture_output=True, text=True, timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def taken_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("flag, variable", [
    ("--port", "LOCALIOT_PORT"),
    ("--mqtt-tls-port", "LOCALIOT_MQTT_TLS_PORT"),
    ("--mqtt-alpn-port", "LOCALIOT_MQTT_ALPN_PORT"),
])
def test_a_port_in_use_is_one_line_naming_the_setting(tmp_path, taken_port, flag, variable):
    code, output = serve(tmp_path, flag, str(taken_port))
    assert code != 0
    lines = [line for line in output.splitlines() if line.strip() and " INFO " not in line]
    assert lines == [f"localiot: 127.0.0.1:{taken_port} is already in use; another server listens there. "
                     f"Choose another port with {flag} or {variable} (0 picks a free one)."]
    assert "Traceback" not in output


def test_a_second_server_on_one_data_directory_refuses_to_start(tmp_path):
    with local_server(data_dir=str(tmp_path)):
        code, output = serve(tmp_path)
    assert code != 0
    assert "Traceback" not in output
    assert output.strip() == (
        f"localiot: the data directory {tmp_path} is in use by localiot (pid {os.getpid()}); "
        "stop that server or start this one with another --data-dir (LOCALIOT_DATA_DIR)")


def test_the_lock_goes_with_the_process_even_after_sigkill(tmp_path):
    process = subprocess.Popen(
        [str(BIN / "localiot"), "serve", "--port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0",
         "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    for line in process.stdout:
        if line.startswith("localiot ready on "):
            break
    code, output = serve(tmp_path)
    assert code != 0 and f"(pid {process.pid})" in output
    process.send_signal(signal.SIGKILL)
    process.wait()
    with local_server(data_dir=str(tmp_path)) as server:  # starts: the kernel dropped the lock
        assert server.endpoint.startswith("http://")


def test_sigterm_stops_the_server_as_ctrl_c_does(tmp_path):
    """docker stop and systemd send SIGTERM: the server closes its store and exits 0, and what
    it acknowledged is there at the next start."""
    process = subprocess.Popen(
        [str(BIN / "localiot"), "serve", "--port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0",
         "--data-dir", str(tmp_path), "--log-level", "INFO"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    endpoint = None
    for line in process.stdout:
        if line.startswith("localiot ready on "):
            endpoint = line.split()[-1]
            break
    import boto3

    iot = boto3.client("iot", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    iot.create_thing(thingName="kept-through-sigterm")
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "localiot stopped (store" in output and "Traceback" not in output
    with local_server(data_dir=str(tmp_path)) as server:
        iot = boto3.client("iot", endpoint_url=server.endpoint, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        assert iot.describe_thing(thingName="kept-through-sigterm")["thingName"] == "kept-through-sigterm"
