"""Suite runs as records: what the engine does with them around the cases
(a server restart mid-run, no endpoint, a device connected before its run,
logs), through boto3."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from advisor_kit import DONE, ROLE, explain, paho_device, results, run_suite

from localiot.testing import ACCOUNT, REGION, local_server, make_client

CONNECT_ONLY = json.dumps({"tests": [{"name": "g", "tests": [
    {"name": "connect", "configuration": {"EXECUTION_TIMEOUT": "60"}, "test": {"id": "MQTT_Connect", "version": "0.0.0"}}]}]})


def start(da, thing_arn):
    suite = da.create_suite_definition(suiteDefinitionConfiguration={
        "suiteDefinitionName": "runs", "rootGroup": CONNECT_ONLY, "devicePermissionRoleArn": ROLE})
    run = da.start_suite_run(suiteDefinitionId=suite["suiteDefinitionId"],
                             suiteRunConfiguration={"primaryDevice": {"thingArn": thing_arn}})
    return suite["suiteDefinitionId"], run["suiteRunId"]


def wait_status(da, suite_id, run_id, statuses, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        got = da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run_id)
        if got["status"] in statuses or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_a_run_in_progress_when_the_server_stops_ends_stopped_and_frees_its_device(tmp_path):
    with local_server(data_dir=str(tmp_path)) as server:
        iot, da = make_client(server), make_client(server, "iotdeviceadvisor")
        thing_arn = iot.create_thing(thingName="restarted")["thingArn"]
        suite_id, run_id = start(da, thing_arn)
        assert wait_status(da, suite_id, run_id, ("RUNNING",))["status"] == "RUNNING"
    with local_server(data_dir=str(tmp_path)) as server:
        da = make_client(server, "iotdeviceadvisor")
        got = da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run_id)
        assert got["status"] == "STOPPED" and got["endTime"] >= got["startTime"]
        assert got["errorReason"] == "The server stopped while the suite run was in progress."
        again = da.start_suite_run(suiteDefinitionId=suite_id,
                                   suiteRunConfiguration={"primaryDevice": {"thingArn": thing_arn}})
        assert wait_status(da, suite_id, again["suiteRunId"], ("RUNNING",))["status"] == "RUNNING"


def test_without_a_test_endpoint_a_run_ends_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with local_server(device_advisor_port=taken.getsockname()[1]) as server:
            assert "device-advisor" not in server.app.runtime.listeners
            iot, da = make_client(server), make_client(server, "iotdeviceadvisor")
            suite_id, run_id = start(da, iot.create_thing(thingName="nowhere")["thingArn"])
            got = wait_status(da, suite_id, run_id, DONE)
            assert (got["status"], got["errorReason"]) == (
                "ERROR", "The Device Advisor test endpoint is not running on this server.")


def test_a_device_connected_before_its_run_is_brought_into_it(da, dut):
    device = paho_device(dut).start()
    try:
        for _ in range(100):
            if device.client.is_connected():
                break
            time.sleep(0.05)
        assert device.client.is_connected()
        run = run_suite(da, dut, CONNECT_ONLY, lambda d: _Already())
    finally:
        device.close()
    assert results(run) == {"connect": "PASS"}, explain(run)


class _Already:
    """The device application is already running (started before the suite run)."""

    def start(self):
        return self

    def close(self):
        pass


def test_an_unknown_log_is_404(localiot_server):
    url = f"{localiot_server.endpoint}/_localiot/deviceadvisor/{ACCOUNT}/{REGION}/logs/00000000-0000-0000-0000-000000000000"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url)
    assert e.value.code == 404


def _serve(data_dir):
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "localiot"), "serve", "--port", "0", "--mqtt-tls-port", "0",
         "--mqtt-alpn-port", "0", "--device-advisor-port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith("localiot ready on "):
            return process, line.split()[3]
    raise AssertionError("localiot serve did not start")


def test_a_run_left_running_by_a_killed_server_ends_error_at_the_next_start(tmp_path):
    def clients(url):
        kw = dict(endpoint_url=url, region_name=REGION, aws_access_key_id=ACCOUNT, aws_secret_access_key="x")
        return boto3.client("iot", **kw), boto3.client("iotdeviceadvisor", **kw)

    server, url = _serve(tmp_path)
    try:
        iot, da = clients(url)
        thing_arn = iot.create_thing(thingName="killed")["thingArn"]
        suite_id, run_id = start(da, thing_arn)
        assert wait_status(da, suite_id, run_id, ("RUNNING",))["status"] == "RUNNING"
        server.send_signal(signal.SIGKILL)
        server.wait()
        server, url = _serve(tmp_path)
        iot, da = clients(url)
        got = da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run_id)
        assert (got["status"], got["errorReason"]) == (
            "ERROR", "The server stopped while the suite run was in progress."), got
        again = da.start_suite_run(suiteDefinitionId=suite_id,
                                   suiteRunConfiguration={"primaryDevice": {"thingArn": thing_arn}})
        assert wait_status(da, suite_id, again["suiteRunId"], ("RUNNING",))["status"] == "RUNNING"
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
