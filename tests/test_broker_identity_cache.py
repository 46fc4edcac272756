"""A reconnecting device's certificate identity is remembered (no store read,
no certificate parse), and forgotten as soon as a committed call changes
device rights: paho devices over mutual TLS against the real server."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import urllib.error
import urllib.request

import pytest

from localiot.testing import (NOT_AUTHORIZED, V5, WAIT, Device, address, alpn_port, ca_file, new_certificate,
                              wait_until)


def _policy(topic: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/${iot:ClientId}/" + topic},
    ]})


def test_reconnects_see_rights_changed_since_the_last_connection(localiot_server, iot, tmp_path):
    cert = new_certificate(iot, tmp_path, "cached")
    iot.create_policy(policyName="cached-policy", policyDocument=_policy("a"))
    iot.attach_policy(policyName="cached-policy", target=cert.arn)
    ca, (_, port) = ca_file(localiot_server, tmp_path), address(iot)

    def session(client_id="sensor-1"):
        return Device(port, client_id, ca=ca, cert=cert, version=V5)

    first = session().connect_ok()
    assert first.publish("sensor-1/a", b"1") == 0
    assert first.publish("sensor-1/b", b"1") == NOT_AUTHORIZED
    first.close()
    known = localiot_server.app.runtime.broker.authenticate.__self__._known  # device_auth's Authentication
    assert [key for key in known if key[0] == cert.id] == [(cert.id, None)]  # by certificate and server name
    again = session().connect_ok()  # the same certificate and client id: remembered
    assert again.publish("sensor-1/a", b"2") == 0
    again.close()
    other = session("sensor-2").connect_ok()  # remembered too, but policy variables are the connection's own
    assert other.publish("sensor-2/a", b"1") == 0 and other.publish("sensor-1/a", b"1") == NOT_AUTHORIZED
    other.close()

    iot.create_policy_version(policyName="cached-policy", policyDocument=_policy("b"), setAsDefault=True)
    changed = session().connect_ok()
    assert changed.publish("sensor-1/b", b"3") == 0
    assert changed.publish("sensor-1/a", b"3") == NOT_AUTHORIZED
    changed.close()

    iot.update_certificate(certificateId=cert.id, newStatus="INACTIVE")
    refused = session()
    assert refused.connect() == NOT_AUTHORIZED
    refused.close()


def test_one_certificate_for_several_client_ids_keeps_each_ones_thing(localiot_server, iot, tmp_path):
    """The certificate is remembered once; the connection's thing (the client id names a thing
    attached to it, or none) and its policy variables are still each connection's."""
    cert = new_certificate(iot, tmp_path, "shared")
    iot.create_thing(thingName="lamp-1")
    iot.attach_thing_principal(thingName="lamp-1", principal=cert.arn)
    iot.create_policy(policyName="thing-policy", policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": "iot:Publish",
         "Resource": "arn:aws:iot:*:*:topic/${iot:Connection.Thing.ThingName}/${iot:ClientId}"},
    ]}))
    iot.attach_policy(policyName="thing-policy", target=cert.arn)
    ca, (_, port) = ca_file(localiot_server, tmp_path), address(iot)

    def publish(client_id: str, topic: str) -> int:
        device = Device(port, client_id, ca=ca, cert=cert, version=V5).connect_ok()
        try:
            return device.publish(topic, b"1")
        finally:
            device.close()

    assert publish("lamp-1", "lamp-1/lamp-1") == 0
    assert publish("visitor", "lamp-1/visitor") == NOT_AUTHORIZED  # no thing for this client id
    assert publish("visitor-2", "lamp-1/visitor-2") == NOT_AUTHORIZED
    assert publish("lamp-1", "lamp-1/lamp-1") == 0  # the thing's grant, remembered
    known = localiot_server.app.runtime.broker.authenticate.__self__._known
    assert set(known[(cert.id, None)].grants) == {"lamp-1", None}


def test_a_remembered_grant_carries_no_earlier_client_id(localiot_server, iot, tmp_path):
    """The remembered grant's variables were an MQTT connection's; an HTTPS publish with the
    same certificate has no client id, so `${iot:ClientId}` matches nothing for it (as for a
    certificate not remembered), not the earlier connection's client id."""
    cert = new_certificate(iot, tmp_path, "no-client-id")
    iot.create_policy(policyName="client-id-policy", policyDocument=_policy("a"))
    iot.attach_policy(policyName="client-id-policy", target=cert.arn)
    ca, (_, port) = ca_file(localiot_server, tmp_path), address(iot)
    device = Device(port, "sensor-1", ca=ca, cert=cert, version=V5).connect_ok()
    assert device.publish("sensor-1/a", b"1") == 0
    device.close()
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    request = urllib.request.Request(f"https://127.0.0.1:{alpn_port(localiot_server)}/topics/sensor-1/a?qos=1",
                                     data=b"1", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=context, timeout=WAIT)
    assert refused.value.code == 403


def test_a_remembered_certificate_connects_without_a_store_worker(localiot_server, iot, tmp_path):
    """PostgreSQL: a certificate's first CONNECT reads the store on a worker thread; once it is
    remembered, CONNECT needs no worker, so it connects while every worker is busy."""
    workers = localiot_server.app.runtime.workers
    if workers is None:
        pytest.skip("SQLite: the store is read on the loop, there are no workers")
    cert = new_certificate(iot, tmp_path, "busy-workers")
    iot.create_policy(policyName="busy-policy", policyDocument=_policy("a"))
    iot.attach_policy(policyName="busy-policy", target=cert.arn)
    ca, (_, port) = ca_file(localiot_server, tmp_path), address(iot)
    Device(port, "sensor-1", ca=ca, cert=cert, version=V5).connect_ok().close()
    release = threading.Event()

    async def occupy():
        return [workers.call(release.wait, 30) for _ in range(workers.threads)]

    asyncio.run_coroutine_threadsafe(occupy(), workers.loop).result(WAIT)
    try:
        wait_until(lambda: workers.running == workers.threads)
        again = Device(port, "sensor-2", ca=ca, cert=cert, version=V5)
        assert again.connect() == 0  # (before: the CONNACK waited for a worker)
    finally:
        release.set()
    assert again.publish("sensor-2/a", b"1") == 0  # the grant is this client id's
    assert again.publish("sensor-1/a", b"1") == NOT_AUTHORIZED
    again.close()
