"""The installation CA of nodes sharing a PostgreSQL store (issue 21 item 4):
kept in the store, one for every node even when they start at once, and an
installation moving from SQLite to PostgreSQL keeps the CA of its data
directory (what it issued still verifies). On a real throwaway PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from localiot.cluster.ca import load_or_create
from localiot.pki import DeviceCA, InstallationCA


@pytest.fixture
def dsn(localiot_postgres):
    url = localiot_postgres.create_database()
    yield url
    localiot_postgres.drop_database(url)


def test_nodes_creating_the_ca_at_once_end_with_one(dsn):
    made: list[InstallationCA] = []
    gate = threading.Barrier(4)

    def node():
        gate.wait()
        made.append(load_or_create(dsn))

    threads = [threading.Thread(target=node) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 4 and len({ca.pem for ca in made}) == 1
    assert len({ca.key_pem for ca in made}) == 1
    # Later nodes read it; a device certificate one node issues verifies on another.
    later = load_or_create(dsn)
    cert, _ = made[0].create_keys_and_certificate()
    assert later.pem == made[0].pem and later.signed(cert)


def test_an_installation_moving_to_postgresql_keeps_its_ca(dsn, tmp_path):
    own = InstallationCA.load_or_create(tmp_path)  # the single node's CA, in its data directory
    issued, _ = own.create_keys_and_certificate()
    shared = load_or_create(dsn, seed_directory=str(tmp_path))
    assert shared.pem == own.pem and shared.signed(issued)
    # Another node, with an empty data directory, gets that CA from the store.
    other = load_or_create(dsn, seed_directory=str(tmp_path / "elsewhere"))
    assert other.pem == own.pem
    assert not (tmp_path / "elsewhere" / "ca.key").exists()  # nothing written to its directory


def test_nodes_share_one_device_ca_apart_from_the_root(dsn, tmp_path):
    made: list[DeviceCA] = []
    gate = threading.Barrier(3)

    def node():
        gate.wait()
        made.append(load_or_create(dsn, kind=DeviceCA))

    threads = [threading.Thread(target=node) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 3 and len({ca.pem for ca in made}) == 1 and isinstance(made[0], DeviceCA)
    root = load_or_create(dsn)
    assert root.pem != made[0].pem
    issued, _ = made[1].create_keys_and_certificate()
    assert made[0].signed(issued) and not root.signed(issued)
    # A store that has one keeps it over a joining node's own.
    own = DeviceCA.load_or_create(tmp_path)
    assert load_or_create(dsn, seed_directory=str(tmp_path), kind=DeviceCA).pem == made[0].pem != own.pem


def test_an_installation_moving_to_postgresql_keeps_its_device_ca(dsn, tmp_path):
    own = DeviceCA.load_or_create(tmp_path)
    issued, _ = own.create_keys_and_certificate()
    shared = load_or_create(dsn, seed_directory=str(tmp_path), kind=DeviceCA)
    assert shared.pem == own.pem and shared.signed(issued)
    assert load_or_create(dsn, seed_directory=str(tmp_path / "elsewhere"), kind=DeviceCA).pem == own.pem
    assert not (tmp_path / "elsewhere" / "device-ca.key").exists()
