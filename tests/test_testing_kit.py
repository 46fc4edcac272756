"""The test kit itself (localiot/testing): what users of localiot rely on when
they take it for their own tests."""

import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from localiot.testing import (ACCOUNT, ALLOW_ALL, REGION, advance, client_error, error_code, error_message, error_of,
                              make_client, move_clock, tls_device)


def test_the_kit_imports_without_paho_moto_or_pytest():
    blocked = "import sys\nfor name in ('paho', 'moto', 'pytest'):\n    sys.modules[name] = None\n"
    code = blocked + "import localiot.testing as kit\nprint(kit.ACCOUNT, kit.V5, callable(kit.tls_device))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["123456789012", "5", "True"]


def test_errors_from_a_call_an_exception_info_or_the_error(iot):
    assert error_of(iot.describe_thing, thingName="nope") == ("ResourceNotFoundException", 404)
    assert error_code(iot.describe_thing, thingName="nope") == "ResourceNotFoundException"
    assert "nope" in error_message(iot.describe_thing, thingName="nope")
    with pytest.raises(ClientError) as info:
        iot.describe_thing(thingName="nope")
    assert error_of(info) == error_of(info.value) == ("ResourceNotFoundException", 404)
    assert client_error(info) is info.value
    iot.create_thing(thingName="there")
    with pytest.raises(AssertionError, match="no error"):
        client_error(iot.describe_thing, thingName="there")
    with pytest.raises(TypeError):
        error_code("not an error")


def test_the_account_and_region_are_the_servers_defaults(iot):
    assert iot.create_thing(thingName="t")["thingArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/t"


def test_advance_moves_the_servers_clock_and_reset_undoes_it(localiot_server):
    start = move_clock(localiot_server)["now"]
    moved = advance(localiot_server, 3600)
    assert start + 3600 <= moved < start + 3600 + 60
    assert move_clock(localiot_server, reset=True)["offset"] == 0
    assert localiot_server.reset() is localiot_server


def test_the_pool_keeps_the_default_server_and_one_other(localiot_servers, localiot_server):
    other = localiot_servers.get(strict_signatures=True, credentials="AKIDKIT:kit-secret")
    assert other is not localiot_server and other is localiot_servers.get(strict_signatures=True,
                                                                          credentials="AKIDKIT:kit-secret")
    assert localiot_servers.get() is localiot_server
    third = localiot_servers.get(default_region="eu-west-1")
    assert third is not other and other.loop.is_closed()  # only one non-default server runs
    assert make_client(localiot_server).list_things()["things"] == []


def test_a_tls_device_with_a_fresh_certificate_and_policy(localiot_server, iot):
    device = tls_device(localiot_server, "kit-device")
    try:
        assert device.cert.id and device.cert.policy_name
        assert iot.describe_certificate(certificateId=device.cert.id)["certificateDescription"]["status"] == "ACTIVE"
        assert [p["policyName"] for p in iot.list_attached_policies(target=device.cert.arn)["policies"]] == [
            device.cert.policy_name]
        assert device.subscribe("kit/#", "other/#") == [1, 1]
        assert device.publish("kit/1", {"n": 1}) == 0
        assert device.expect_json("kit/1") == {"n": 1}
        device.expect_none()
    finally:
        device.close()
    assert device.wait_closed()
    assert not device.cert.key_file.exists()  # the key's folder went with the device


def test_the_devices_fixture_makes_tls_and_plain_devices(localiot_devices):
    tls = localiot_devices.tls(policy=ALLOW_ALL)
    plain = localiot_devices.plain()  # this project's localiot_defaults (conftest.py) add mqtt_plain
    assert tls.subscribe("both/+") == [1]
    plain.publish("both/plain", b"from plain MQTT")  # the plain listener's clients are the default account's
    assert tls.expect("both/plain").payload == b"from plain MQTT"
    with pytest.raises(TypeError):
        tls.subscribe("a", 1)  # qos is a keyword: 1 is not a topic
