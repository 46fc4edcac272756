"""IoT policies enforced by the broker over mutual TLS: a denied connect, publish,
subscribe, receive and retain for each policy case, policy variables bound from
the connection (client id, the attached thing, its attributes and groups), and
changes made through the API taking effect on connected clients."""

from __future__ import annotations

import json

import pytest

from localiot.testing import ACCOUNT, NOT_AUTHORIZED, REGION, V3, V5, address, ca_file, new_certificate

TOPIC = f"arn:aws:iot:{REGION}:{ACCOUNT}:topic"
FILTER = f"arn:aws:iot:{REGION}:{ACCOUNT}:topicfilter"
CLIENT = f"arn:aws:iot:{REGION}:{ACCOUNT}:client"
V3_SUBACK_FAILURE = 0x80


def policy(*statements) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(action, resource) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


CONNECT_ANY = allow("iot:Connect", "*")


@pytest.fixture
def connect(localiot_server, iot, tmp_path, devices):
    """connect(cert, client_id, version=V5) -> (Device, CONNACK reason code)."""
    _, port = address(iot)
    ca = ca_file(localiot_server, tmp_path)

    def make(cert, client_id, version=V5):
        device = devices(port, client_id, ca=ca, cert=cert, version=version)
        return device, device.connect()

    return make


@pytest.mark.parametrize("version", [V3, V5])
def test_connect_denied_for_a_client_id_the_policy_does_not_name(iot, tmp_path, connect, version):
    cert = new_certificate(iot, tmp_path, policy=policy(allow("iot:Connect", f"{CLIENT}/sensor-*")))
    assert connect(cert, "sensor-1", version)[1] == 0
    assert connect(cert, "pump-1", version)[1] == NOT_AUTHORIZED
    nothing = new_certificate(iot, tmp_path, "no-policy")
    assert connect(nothing, "sensor-2", version)[1] == NOT_AUTHORIZED


@pytest.mark.parametrize("version", [V3, V5])
def test_publish_denied(iot, tmp_path, connect, version):
    cert = new_certificate(iot, tmp_path, policy=policy(CONNECT_ANY, allow("iot:Publish", f"{TOPIC}/allowed/*")))
    device, _ = connect(cert, "publisher", version)
    assert device.publish("allowed/1", b"x") == 0
    if version == V5:
        assert device.publish("denied/1", b"x") == NOT_AUTHORIZED  # PUBACK with the reason code
        assert device.publish("allowed/2", b"x") == 0
    else:
        device.publish("denied/1", b"x", qos=0)  # AWS disconnects a 3.1.1 client
        assert device.wait_closed()


@pytest.mark.parametrize("version", [V3, V5])
def test_subscribe_denied(iot, tmp_path, connect, version):
    cert = new_certificate(iot, tmp_path, policy=policy(CONNECT_ANY, allow("iot:Subscribe", f"{FILTER}/ok/#")))
    device, _ = connect(cert, "subscriber", version)
    assert device.subscribe("ok/#") == [1]
    # The filter is matched literally: "ok/+" is not "ok/#", and other filters are denied.
    assert device.subscribe("other/#") == [NOT_AUTHORIZED if version == V5 else V3_SUBACK_FAILURE]
    assert device.subscribe("ok/+") == [NOT_AUTHORIZED if version == V5 else V3_SUBACK_FAILURE]


def test_receive_denied(iot, tmp_path, connect):
    cert = new_certificate(iot, tmp_path, policy=policy(
        CONNECT_ANY, allow("iot:Publish", "*"), allow("iot:Subscribe", "*"),
        allow("iot:Receive", f"{TOPIC}/data/public/*"),
    ))
    device, _ = connect(cert, "receiver")
    assert device.subscribe("data/#") == [1]
    device.publish("data/secret/1", b"hidden")
    device.publish("data/public/1", b"shown")
    assert device.expect().topic == "data/public/1"
    device.expect_none()


def test_retain_needs_retain_publish(iot, tmp_path, connect):
    plain = new_certificate(iot, tmp_path, "plain", policy=policy(CONNECT_ANY, allow("iot:Publish", "*")))
    device, _ = connect(plain, "no-retain")
    assert device.publish("state/a", b"x", retain=True) == NOT_AUTHORIZED
    assert device.publish("state/a", b"x") == 0
    retaining = new_certificate(iot, tmp_path, "retaining", policy=policy(
        CONNECT_ANY, allow(["iot:Publish", "iot:RetainPublish"], f"{TOPIC}/state/*")))
    device, _ = connect(retaining, "retainer")
    assert device.publish("state/a", b"kept", retain=True) == 0


def test_explicit_deny_beats_allow(iot, tmp_path, connect):
    cert = new_certificate(iot, tmp_path, policy=policy(
        allow("iot:*", "*"), deny("iot:Publish", f"{TOPIC}/alarms/*"), deny("iot:Connect", f"{CLIENT}/banned")))
    device, _ = connect(cert, "mixed")
    assert device.publish("telemetry/1", b"x") == 0
    assert device.publish("alarms/1", b"x") == NOT_AUTHORIZED
    assert connect(cert, "banned")[1] == NOT_AUTHORIZED


def test_client_id_policy_variable(iot, tmp_path, connect):
    cert = new_certificate(iot, tmp_path, policy=policy(
        allow("iot:Connect", f"{CLIENT}/${{iot:ClientId}}"),
        allow("iot:Publish", f"{TOPIC}/devices/${{iot:ClientId}}/*"),
        allow("iot:Subscribe", f"{FILTER}/devices/${{iot:ClientId}}/*"),
    ))
    device, _ = connect(cert, "dev-42")
    assert device.publish("devices/dev-42/telemetry", b"x") == 0
    assert device.publish("devices/dev-43/telemetry", b"x") == NOT_AUTHORIZED
    assert device.subscribe("devices/dev-42/*") == [1]
    assert device.subscribe("devices/dev-43/*") == [NOT_AUTHORIZED]


def test_thing_name_policy_variable(iot, tmp_path, connect):
    cert = new_certificate(iot, tmp_path, policy=policy(
        allow("iot:Connect", f"{CLIENT}/${{iot:Connection.Thing.ThingName}}"),
        allow("iot:Publish", f"{TOPIC}/things/${{iot:Connection.Thing.ThingName}}/*"),
    ))
    iot.create_thing(thingName="thermo-1")
    # Not attached yet: the variable has no value, nothing matches.
    assert connect(cert, "thermo-1")[1] == NOT_AUTHORIZED
    iot.attach_thing_principal(thingName="thermo-1", principal=cert.arn)
    device, code = connect(cert, "thermo-1")
    assert code == 0
    assert device.publish("things/thermo-1/temp", b"20") == 0
    assert device.publish("things/thermo-2/temp", b"20") == NOT_AUTHORIZED
    # A client id that names no attached thing has no thing either.
    assert connect(cert, "not-a-thing")[1] == NOT_AUTHORIZED


def test_thing_attributes_follow_updates(iot, tmp_path, connect):
    cert = new_certificate(iot, tmp_path, policy=policy(
        CONNECT_ANY,
        allow("iot:Publish", f"{TOPIC}/floors/${{iot:Connection.Thing.Attributes[floor]}}/*"),
    ))
    iot.create_thing(thingName="lamp", attributePayload={"attributes": {"floor": "1"}})
    iot.attach_thing_principal(thingName="lamp", principal=cert.arn)
    device, _ = connect(cert, "lamp")
    assert device.publish("floors/1/light", b"on") == 0
    assert device.publish("floors/2/light", b"on") == NOT_AUTHORIZED
    iot.update_thing(thingName="lamp", attributePayload={"attributes": {"floor": "2"}})
    assert device.publish("floors/2/light", b"on") == 0
    assert device.publish("floors/1/light", b"on") == NOT_AUTHORIZED


@pytest.mark.parametrize("version", [V3, V5])
def test_detaching_a_policy_takes_effect_for_the_next_publish(iot, tmp_path, connect, version):
    cert = new_certificate(iot, tmp_path, policy=policy(allow("iot:*", "*")))
    device, _ = connect(cert, "detached", version)
    assert device.publish("t/1", b"x") == 0
    iot.detach_policy(policyName="device-policy", target=cert.arn)
    if version == V5:
        assert device.publish("t/1", b"x") == NOT_AUTHORIZED
    else:
        device.publish("t/1", b"x", qos=0)
        assert device.wait_closed()
    iot.attach_policy(policyName="device-policy", target=cert.arn)
    again, code = connect(cert, "detached-again", version)
    assert code == 0 and again.publish("t/1", b"x") == 0


def test_a_new_default_policy_version_takes_effect(iot, tmp_path, connect):
    cert = new_certificate(iot, tmp_path, policy=policy(allow("iot:*", "*")))
    device, _ = connect(cert, "versioned")
    assert device.subscribe("news/#") == [1]
    device.publish("news/1", b"first")
    assert device.expect("news/1").payload == b"first"
    narrowed = policy(CONNECT_ANY, allow("iot:Publish", "*"), allow("iot:Subscribe", "*"),
                      allow("iot:Receive", f"{TOPIC}/news/public"))
    iot.create_policy_version(policyName="device-policy", policyDocument=json.dumps(narrowed), setAsDefault=True)
    device.publish("news/1", b"second")  # no longer received
    device.publish("news/public", b"third")
    assert device.expect().payload == b"third"
    device.expect_none()


def test_thing_group_policies_apply_to_its_things(iot, tmp_path, connect):
    cert = new_certificate(iot, tmp_path, policy=policy(CONNECT_ANY))
    iot.create_thing(thingName="member")
    iot.attach_thing_principal(thingName="member", principal=cert.arn)
    group = iot.create_thing_group(thingGroupName="floor-3")
    iot.create_policy(policyName="group-policy", policyDocument=json.dumps(policy(allow("iot:Publish", "*"))))
    iot.attach_policy(policyName="group-policy", target=group["thingGroupArn"])
    device, _ = connect(cert, "member")
    assert device.publish("g/1", b"x") == NOT_AUTHORIZED
    iot.add_thing_to_thing_group(thingGroupName="floor-3", thingName="member")
    assert device.publish("g/1", b"x") == 0
    iot.remove_thing_from_thing_group(thingGroupName="floor-3", thingName="member")
    assert device.publish("g/1", b"x") == NOT_AUTHORIZED
