"""With PostgreSQL the event loop never uses the store itself: the broker's group commit
before PUBACKs, a persistent session's saves, parking and re-reading its queued messages
and its delete, retained messages read for a new subscription, units of work of asyncio
tasks (an audit), async periodic jobs (fleet metrics, OTA resumption) and the
fleet-provisioning door all run on the node's worker threads (localiot.cluster.workers).

The PostgreSQL store counts every use of its connections from a thread that runs an event
loop, with the first caller outside the store (`workers.storeOnLoop` in /_localiot/health);
each test drives one site through real clients and asserts the count did not move. Put any
of that work back on the loop and its test fails, naming the site."""

from __future__ import annotations

import json
import urllib.request

import pytest

from localiot.testing import make_client, plain_device, wait_until
from cluster_nodes import devices, postgres_node  # noqa: F401,E402 (devices: a fixture)

ROLE = "arn:aws:iam::123456789012:role/Audit"


@pytest.fixture(scope="module")
def node():
    with postgres_node() as (server, dsn):
        yield server


def on_loop(server) -> tuple[int, dict]:
    with urllib.request.urlopen(server.endpoint + "/_localiot/health", timeout=5) as answer:
        state = json.load(answer)["workers"]["storeOnLoop"]
    return state["count"], state["sites"]


# Still on the loop, outside this work: cached reads a scope's first message makes (the AWS IoT
# logging level, the rules engine's compiled rules), again only after their documents change.
CACHED_READS = ("iotlogs/sink.py:verbosity", "services/rules/engine.py:scope")


class NoStoreOnLoop:
    """Asserts, on leaving, that the loop did not use the store meanwhile (naming the sites)."""

    def __init__(self, server):
        self.server = server

    def __enter__(self):
        self.count, self.sites = on_loop(self.server)
        return self

    def __exit__(self, kind, *_):
        if kind is None:
            count, sites = on_loop(self.server)
            grown = {site: n - self.sites.get(site, 0) for site, n in sites.items()
                     if n != self.sites.get(site, 0) and site not in CACHED_READS}
            assert not grown, f"the loop used the store: {grown}"
        return False


def test_the_counter_sees_store_use_on_the_loop(node):
    """The technique itself: the broker's session restore at start-up runs on the loop, and is counted."""
    count, sites = on_loop(node)
    assert count >= 1 and any("broker/persistence.py" in site for site in sites), sites


def test_persistent_sessions_qos1_traffic_and_reconnects_stay_off_the_loop(node, devices):
    server = node
    away = devices.add(plain_device(server, "away", clean=False))
    away.subscribe("plant/#", qos=1)
    away.close()
    here = devices.add(plain_device(server, "here", clean=False))
    here.subscribe("plant/#", qos=1)
    sender = devices.add(plain_device(server, "sender"))
    with NoStoreOnLoop(server):
        for n in range(30):  # queued for the away session, held for the connected one, each PUBACKed
            assert sender.publish("plant/line", f"m{n}".encode(), qos=1) == 0
        assert [here.expect("plant/line").payload for _ in range(30)] == [f"m{n}".encode() for n in range(30)]
        here.close()  # parked
        back = devices.add(plain_device(server, "away", clean=False))  # its queue read as it comes back
        assert sorted(back.expect("plant/line").payload for _ in range(30)) == sorted(
            f"m{n}".encode() for n in range(30))
        back.subscribe("plant/other", qos=1)  # the session saved again
        back.close()
        devices.add(plain_device(server, "away", clean=True)).close()  # the stored session deleted
    again = devices.add(plain_device(server, "away", clean=False))
    again.expect_none()  # nothing left of the deleted session


def test_retained_messages_for_a_new_subscription_are_read_off_the_loop(node, devices):
    server = node
    make_client(server, "iot-data").publish(topic="status/pump", qos=1, retain=True, payload=b"on")
    device = devices.add(plain_device(server, "reader", clean=False))
    with NoStoreOnLoop(server):
        device.subscribe("status/#", qos=1)
        assert device.expect("status/pump").payload == b"on"


def test_a_devices_retained_publish_is_stored_off_the_loop_and_keeps_its_order(node, devices):
    server = node
    live = devices.add(plain_device(server, "live-reader"))
    live.subscribe("lamp/#", qos=1)
    publisher = devices.add(plain_device(server, "lamp-publisher"))
    with NoStoreOnLoop(server):
        for n in range(5):  # retained and not, sent at once: they arrive in that order
            publisher.client.publish("lamp/state", f"r{n}".encode(), 1, True)
            publisher.client.publish("lamp/state", f"p{n}".encode(), 1, False)
        assert [live.expect("lamp/state").payload for _ in range(10)] == [
            f"{kind}{n}".encode() for n in range(5) for kind in "rp"]
        late = devices.add(plain_device(server, "late-reader"))
        late.subscribe("lamp/#", qos=1)
        got = late.expect("lamp/state")
        assert (got.payload, got.retain) == (b"r4", True)


def test_an_audit_tasks_units_of_work_run_off_the_loop(node):
    iot = make_client(node)
    iot.update_account_audit_configuration(
        roleArn=ROLE, auditCheckConfigurations={"LOGGING_DISABLED_CHECK": {"enabled": True}})
    with NoStoreOnLoop(node):
        task_id = iot.start_on_demand_audit_task(targetCheckNames=["LOGGING_DISABLED_CHECK"])["taskId"]
        wait_until(lambda: iot.describe_audit_task(taskId=task_id)["taskStatus"] != "IN_PROGRESS")
    assert iot.describe_audit_task(taskId=task_id)["taskStatus"] == "COMPLETED"


def test_the_certificates_door_runs_off_the_loop(node, devices):
    device = devices.add(plain_device(node, "claimant"))
    device.subscribe("$aws/certificates/create/json/accepted", "$aws/certificates/create/json/rejected")
    with NoStoreOnLoop(node):
        assert device.publish("$aws/certificates/create/json", b"{}", qos=1) == 0
        created = device.expect_json("$aws/certificates/create/json/accepted")
    described = make_client(node).describe_certificate(certificateId=created["certificateId"])
    assert described["certificateDescription"]["status"] == "PENDING_ACTIVATION"


def test_async_periodic_jobs_use_the_store_off_the_loop(node):
    """Every time-driven job once (the clock moved), the async ones (fleet metrics, OTA) included."""
    with NoStoreOnLoop(node):
        request = urllib.request.Request(node.endpoint + "/_localiot/clock", data=json.dumps({"advance": 1}).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200


def test_presence_records_are_written_off_the_loop_and_read_back(node, devices):
    iot = make_client(node)
    iot.create_thing(thingName="lamp")
    with NoStoreOnLoop(node):
        lamp = devices.add(plain_device(node, "lamp"))
        assert wait_until(lambda: iot.get_thing_connectivity_data(thingName="lamp")["connected"])
        lamp.close()
        assert wait_until(lambda: not iot.get_thing_connectivity_data(thingName="lamp")["connected"])


def test_an_http_publish_reads_the_default_authorizer_off_the_loop(node, devices):
    listener = devices.add(plain_device(node, "http-listener"))
    listener.subscribe("via/http", qos=1)
    with NoStoreOnLoop(node):
        make_client(node, "iot-data").publish(topic="via/http", qos=1, payload=b"hi")
        assert listener.expect("via/http").payload == b"hi"


@pytest.fixture(scope="module")
def pair(localiot_nats):
    from cluster_nodes import two_nodes

    with two_nodes(localiot_nats, shared_postgres=True) as nodes:
        yield nodes


def test_a_session_moving_between_nodes_is_read_and_parked_off_the_loop(pair, devices):
    """The fabric's session moves: the new node reads the stored session and its home, the old
    one parks it and answers once it is stored; then the new node hands over its queue."""
    a, b = pair
    first = devices.add(plain_device(a, "mover", clean=False))
    first.subscribe("move/#", qos=1)
    with NoStoreOnLoop(a), NoStoreOnLoop(b):
        first.close()
        sender = devices.add(plain_device(a, "move-sender"))
        for n in range(5):
            assert sender.publish(f"move/{n}", str(n).encode(), qos=1) == 0
        moved = devices.add(plain_device(b, "mover", clean=False))
        assert moved.session_present is True
        assert sorted(moved.expect().payload for _ in range(5)) == [b"0", b"1", b"2", b"3", b"4"]
        again = devices.add(plain_device(a, "mover", clean=False))  # takeover: b lets it go
        assert again.session_present is True
        assert sender.publish("move/after", b"after", qos=1) == 0
        assert again.expect("move/after").payload == b"after"


def test_fleet_hub_pages_read_the_fleet_off_the_loop(node):
    from fleethub_kit import active_application, enable_indexing, fleethub_client

    iot = make_client(node, "iot")
    iot.create_thing(thingName="hub-off-loop", attributePayload={"attributes": {"site": "b5"}})
    enable_indexing(iot, node)
    app = active_application(fleethub_client(node), node, name="off-loop")
    base = f"{node.endpoint}/fleethub/{app['applicationId']}/api/"
    with NoStoreOnLoop(node):
        for page in ("application", "search?q=thingName:hub-off-loop", "things/hub-off-loop", "jobs", "alarms"):
            with urllib.request.urlopen(base + page, timeout=10) as answer:
                assert answer.status == 200, page
        with urllib.request.urlopen(base + "search?q=thingName:hub-off-loop", timeout=10) as answer:
            assert [t["thingName"] for t in json.load(answer)["things"]] == ["hub-off-loop"]
