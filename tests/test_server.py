"""The process as users run it: `localiot serve`, admin routes, strict SigV4,
restart after SIGKILL, and the AWS CLI."""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from localiot.testing import local_server, make_client

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def start_cli(data_dir, *extra, env=None):
    process = subprocess.Popen(
        [str(BIN / "localiot"), "serve", "--port", "0", "--mqtt-tls-port", "0", "--mqtt-alpn-port", "0",
         "--mqtt-plain-port", "0", "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})},
    )
    for line in process.stdout:
        if line.startswith("localiot ready on "):
            return process, line.split()[-1]
    raise AssertionError(f"server did not start: {process.wait()}")


def get_json(url, method="GET", body=None):
    request = urllib.request.Request(url, method=method, data=body)
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def test_health_and_reset(localiot_server, iot):
    health = get_json(localiot_server.endpoint + "/_localiot/health")
    assert health["status"] == "running"
    assert set(health["services"]) >= {"iot", "iot-data", "iot-jobs-data", "iotfleethub", "iotsecuretunneling"}
    assert health["listeners"]["api"] == localiot_server.endpoint.removeprefix("http://")
    iot.create_thing(thingName="t")
    assert get_json(localiot_server.endpoint + "/_localiot/reset", "POST", b"") == {"reset": True}
    assert iot.list_things()["things"] == []


def test_clock_moves(localiot_server):
    before = get_json(localiot_server.endpoint + "/_localiot/clock")["now"]
    after = get_json(localiot_server.endpoint + "/_localiot/clock", "POST", json.dumps({"advance": 3600}).encode())
    assert after["now"] - before >= 3600


def test_strict_signatures():
    with local_server(strict_signatures=True, credentials="AKIAGOOD:goodsecret,111122223333:other") as server:
        good = make_client(server.endpoint, access_key="AKIAGOOD", secret_key="goodsecret")
        good.create_thing(thingName="signed")
        assert good.describe_thing(thingName="signed")["thingArn"].endswith(":123456789012:thing/signed")
        account = make_client(server.endpoint, access_key="111122223333", secret_key="other")
        assert account.create_thing(thingName="x")["thingArn"] == "arn:aws:iot:us-east-1:111122223333:thing/x"
        with pytest.raises(ClientError) as info:
            make_client(server.endpoint, access_key="AKIAGOOD", secret_key="wrong").list_things()
        assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(ClientError) as info:
            make_client(server.endpoint, access_key="AKIAUNKNOWN", secret_key="x").list_things()
        assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
        with pytest.raises(urllib.error.HTTPError) as raw:
            urllib.request.urlopen(server.endpoint + "/things")
        assert raw.value.code == 403
        assert raw.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_any_signature_accepted_by_default(localiot_server):
    anyone = make_client(localiot_server.endpoint, access_key="whatever", secret_key="nothing")
    assert anyone.list_things()["things"] == []


@pytest.mark.sqlite_only("the SQLite file in the data directory survives SIGKILL")
def test_sigkill_loses_nothing_acknowledged(tmp_path):
    process, endpoint = start_cli(tmp_path)
    try:
        iot = make_client(endpoint)
        iot.create_thing_type(thingTypeName="sensor")
        for i in range(50):
            iot.create_thing(thingName=f"t{i}", thingTypeName="sensor",
                             attributePayload={"attributes": {"n": str(i)}})
        iot.update_thing(thingName="t7", attributePayload={"attributes": {"n": "seven"}})
        iot.update_event_configurations(eventConfigurations={"THING": {"Enabled": True}})
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    process, endpoint = start_cli(tmp_path)
    try:
        iot = make_client(endpoint)
        names = [t["thingName"] for p in iot.get_paginator("list_things").paginate() for t in p["things"]]
        assert sorted(names) == sorted(f"t{i}" for i in range(50))
        seven = iot.describe_thing(thingName="t7")
        assert seven["attributes"] == {"n": "seven"} and seven["version"] == 2
        assert iot.describe_thing_type(thingTypeName="sensor")["thingTypeName"] == "sensor"
        assert iot.describe_event_configurations()["eventConfigurations"]["THING"]["Enabled"] is True
    finally:
        process.terminate()
        process.wait()


@pytest.mark.sqlite_only("--in-memory is SQLite's :memory:")
def test_in_memory_mode_keeps_nothing(tmp_path):
    process, endpoint = start_cli(tmp_path, "--in-memory")
    try:
        make_client(endpoint).create_thing(thingName="t")
    finally:
        process.terminate()
        process.wait()
    assert not (tmp_path / "localiot.db").exists()


@pytest.mark.sqlite_only("the CLI's own data directory; the store is not what it tests")
def test_environment_variables_configure_the_server(tmp_path):
    process, endpoint = start_cli(tmp_path, env={"LOCALIOT_DEFAULT_ACCOUNT": "444455556666"})
    try:
        assert make_client(endpoint).create_thing(thingName="t")["thingArn"] == \
            "arn:aws:iot:us-east-1:444455556666:thing/t"
    finally:
        process.terminate()
        process.wait()


def aws_cli(endpoint, *args):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_DATA_PATH": str(REPO / "localiot" / "models")}
    return subprocess.run([str(BIN / "aws"), "--endpoint-url", endpoint, "--output", "json", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_aws_cli_drives_the_registry(localiot_server):
    endpoint = localiot_server.endpoint
    made = aws_cli(endpoint, "iot", "create-thing", "--thing-name", "cli-thing",
                   "--attribute-payload", '{"attributes": {"k": "v"}}')
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["thingName"] == "cli-thing"
    described = json.loads(aws_cli(endpoint, "iot", "describe-thing", "--thing-name", "cli-thing").stdout)
    assert described["attributes"] == {"k": "v"}
    missing = aws_cli(endpoint, "iot", "describe-thing", "--thing-name", "ghost")
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
    listed = json.loads(aws_cli(endpoint, "iot", "list-things").stdout)
    assert [t["thingName"] for t in listed["things"]] == ["cli-thing"]


def test_aws_cli_loads_the_fleethub_model(localiot_server):
    answer = aws_cli(localiot_server.endpoint, "iotfleethub", "list-applications")
    # the model loads (the CLI knows the command) and the server answers the operation
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout) == {"applicationSummaries": []}
