"""One Device Advisor run per device, also when StartSuiteRun calls race on
several worker threads of two nodes sharing one PostgreSQL store: the check
is a `find` of the device's index entry, which takes the store's lock on that
entry (localiot.store.postgresql), so the racing calls run one after the other
and all but one see the first's run."""

import threading

import pytest
from botocore.exceptions import ClientError

from localiot.testing import make_client
# (the module picks its store itself: it does not hold local_server by name)
from localiot.testing import server as kit
from test_deviceadvisor_api import create, make_device, start, stop_all

RACERS = 8


@pytest.fixture(scope="module")
def nodes():
    from localiot.testing.postgres import shared_server

    pg = shared_server()
    dsn = pg.create_database()
    try:
        with kit.local_server(store=dsn, background_period=0) as a, \
                kit.local_server(store=dsn, background_period=0) as b:
            yield a, b
    finally:
        pg.drop_database(dsn)


def test_racing_starts_for_one_device_leave_one_run(nodes):
    a, b = nodes
    device = make_device(make_client(a), "raced")
    clients = [make_client(node, "iotdeviceadvisor") for node in (a, b)]
    # a suite of its own per racer and the device named by its thing or its certificate:
    # nothing but the device's index entry is common to the racing calls
    suites = [create(clients[0], name=f"race-{i}")["suiteDefinitionId"] for i in range(RACERS)]
    names = [{"thingArn": device["thingArn"]}, {"certificateArn": device["certificateArn"]}]
    barrier = threading.Barrier(RACERS)
    outcomes: list = [None] * RACERS

    def racer(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = start(clients[i % 2], suites[i], names[i // 2 % 2])["suiteRunId"]
        except ClientError as error:
            outcomes[i] = error.response["Error"]["Code"]

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        runs = [o for o in outcomes if o != "ConflictException"]
        assert len(runs) == 1, outcomes
        listed = clients[1].list_suite_runs()["suiteRunsList"]
        assert [run["suiteRunId"] for run in listed] == runs
    finally:
        stop_all(clients[0])
