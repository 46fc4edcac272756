"""The `$package` shadow over MQTT: a device running a job with
destinationPackageVersions over the jobs topics sees the shadow updated when
it reports SUCCEEDED, and an error on the shadow's update/rejected topic for a
package version deleted while the job ran."""

from __future__ import annotations

import json
import queue
import threading

import paho.mqtt.client as mqtt
import pytest

from conftest import make_client
from localiot.testing import local_server

ACCOUNT, REGION, WAIT = "123456789012", "us-east-1", 5
ROLE = f"arn:aws:iam::{ACCOUNT}:role/package-shadow"
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"


@pytest.fixture(scope="module")
def server():
    with local_server(mqtt_plain=True, background_period=0) as running:
        yield running


@pytest.fixture
def iot(server):
    server.reset()
    client = make_client(server)
    client.create_thing(thingName="dev")
    client.create_package(packageName="agent")
    client.create_package(packageName="os")
    for package, version in (("agent", "2.0"), ("os", "5")):
        client.create_package_version(packageName=package, versionName=version)
        client.update_package_version(packageName=package, versionName=version, action="PUBLISH")
    client.update_package_configuration(versionUpdateByJobsConfig={"enabled": True, "roleArn": ROLE})
    return client


@pytest.fixture
def device(server):
    host, port = server.app.runtime.listeners["mqtt-plain"].rsplit(":", 1)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev", protocol=mqtt.MQTTv5,
                         reconnect_on_failure=False)
    messages: queue.Queue = queue.Queue()
    subscribed = threading.Event()
    client.on_message = lambda c, u, m: messages.put(m)
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(host, int(port))
    client.loop_start()
    client.subscribe([("$aws/things/dev/jobs/#", 1), ("$aws/things/dev/shadow/name/$package/#", 1)])
    assert subscribed.wait(WAIT)

    seen: list = []

    def expect(topic):
        """The first message on `topic` (in arrival order), waiting for it if it has not come yet."""
        while True:
            for message in seen:
                if message.topic == topic:
                    seen.remove(message)
                    return json.loads(message.payload)
            seen.append(messages.get(timeout=WAIT))

    client.expect = expect
    yield client
    client.disconnect()
    client.loop_stop()


def run(device, job_id):
    device.publish("$aws/things/dev/jobs/start-next", json.dumps({}), 1)
    assert device.expect("$aws/things/dev/jobs/start-next/accepted")["execution"]["jobId"] == job_id


def finish(device, job_id):
    device.publish(f"$aws/things/dev/jobs/{job_id}/update", json.dumps({"status": "SUCCEEDED"}), 1)


def test_package_shadow_follows_the_job(iot, device):
    iot.create_job(jobId="install", targets=[f"{ARN}:thing/dev"], document="{}",
                   destinationPackageVersions=[f"{ARN}:package/agent/version/2.0"])
    run(device, "install")
    finish(device, "install")
    accepted = device.expect("$aws/things/dev/shadow/name/$package/update/accepted")
    assert accepted["state"]["reported"] == {"agent": {"version": "2.0"}}
    device.expect("$aws/things/dev/jobs/install/update/accepted")


def test_deleted_version_is_reported_on_the_rejected_topic(iot, device):
    iot.create_job(jobId="racing", targets=[f"{ARN}:thing/dev"], document="{}",
                   destinationPackageVersions=[f"{ARN}:package/agent/version/2.0", f"{ARN}:package/os/version/5"])
    run(device, "racing")
    iot.delete_package_version(packageName="agent", versionName="2.0")
    finish(device, "racing")
    rejected = device.expect("$aws/things/dev/shadow/name/$package/update/rejected")
    assert rejected["code"] == 404 and "agent/2.0" in rejected["message"]
    accepted = device.expect("$aws/things/dev/shadow/name/$package/update/accepted")
    assert accepted["state"]["reported"] == {"os": {"version": "5"}}
    device.expect("$aws/things/dev/jobs/racing/update/accepted")
