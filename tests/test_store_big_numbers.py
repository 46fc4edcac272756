"""Stored documents read back exactly as written: an integer beyond 64 bits in a
shadow or an attribute-free document is not turned into a float by the fast
JSON reader (orjson reads such integers as floats)."""

from __future__ import annotations

import json

from localiot.testing import make_client

BIG = 18446744073709551616  # 2**64
NEGATIVE = -9223372036854775809  # one below the smallest 64-bit integer


def test_a_shadow_keeps_integers_beyond_64_bits(localiot_server, iot):
    data = make_client(localiot_server, "iot-data")
    iot.create_thing(thingName="big")
    data.update_thing_shadow(thingName="big", payload=json.dumps(
        {"state": {"reported": {"big": BIG, "negative": NEGATIVE, "small": 7}}}).encode())
    reported = json.loads(data.get_thing_shadow(thingName="big")["payload"].read())["state"]["reported"]
    assert reported == {"big": BIG, "negative": NEGATIVE, "small": 7}
    assert isinstance(reported["big"], int) and isinstance(reported["negative"], int)


def test_a_page_of_documents_keeps_them_too(localiot_server):
    """The store's page reader (one pass for a page) falls back per page, not per document."""
    store = localiot_server.app.runtime.store

    def round_trip():
        with store.transaction("123456789012", "us-east-1") as tx:
            tx.put("bignum-test", "a", {"n": 1})
            tx.put("bignum-test", "b", {"n": BIG})
        with store.transaction("123456789012", "us-east-1", write=False) as tx:
            return tx.scan("bignum-test"), tx.get("bignum-test", "b")

    page, one = localiot_server.call(round_trip)
    assert page == [("a", {"n": 1}), ("b", {"n": BIG})] and one == {"n": BIG}
    assert isinstance(page[1][1]["n"], int)
