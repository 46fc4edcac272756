"""The installation CA of nodes sharing a PostgreSQL store (issue 21 item 4):
kept in the store, one for every node even when they start at once, and an
installation moving from SQLite to PostgreSQL keeps the CA of its data
directory (what it issued still verifies). On a real throwaway PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from localiot.cluster.ca import load_or_create
from localiot.pki import InstallationCA


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
