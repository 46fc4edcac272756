"""GetStatistics, GetCardinality, GetPercentiles and GetBucketsAggregation
through boto3 over the seeded fleet, compared with values computed here from
the seed."""

from __future__ import annotations

import math

import pytest
from botocore.exceptions import ClientError

from conftest import make_client
from indexing_fleet import SHADOWS, THINGS, disconnect, seed
from localiot.testing import local_server


@pytest.fixture(scope="module")
def fleet():
    with local_server(mqtt_plain=True, background_period=0) as server:
        iot = make_client(server)
        clients = seed(server, iot, make_client(server, "iot-data"))
        yield iot
        for client in clients.values():
            disconnect(client)


def reported(field):
    """The last reported value of `field` per thing (classic shadows), from the seed."""
    values = {}
    for thing, shadow, state in SHADOWS:
        if shadow is None and field in state.get("reported", {}):
            values[thing] = state["reported"][field]
    return values


def expected_stats(values):
    n = len(values)
    mean = sum(values) / n
    squares = sum(v * v for v in values)
    variance = squares / n - mean * mean
    return {"count": n, "average": mean, "sum": sum(values), "minimum": min(values), "maximum": max(values),
            "sumOfSquares": squares, "variance": variance, "stdDeviation": math.sqrt(variance)}


def close(got: dict, want: dict):
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value), key


def test_statistics_of_a_number_field(fleet):
    temps = list(reported("temp").values())
    got = fleet.get_statistics(queryString="thingName:*", aggregationField="shadow.reported.temp")["statistics"]
    close(got, expected_stats(temps))
    sensors = [int(a["floor"]) for t, a, _ in THINGS.values() if t == "sensor"]
    got = fleet.get_statistics(queryString="thingTypeName:sensor", aggregationField="attributes.floor")["statistics"]
    close(got, expected_stats(sensors))


def test_statistics_without_a_field_or_of_a_string_field_count(fleet):
    assert fleet.get_statistics(queryString="thingTypeName:gateway")["statistics"] == {"count": 2}
    models = [a["model"] for t, a, _ in THINGS.values() if "model" in a]
    got = fleet.get_statistics(queryString="thingName:*", aggregationField="attributes.model")["statistics"]
    assert got == {"count": len(models)}
    assert fleet.get_statistics(queryString="thingName:none",
                                aggregationField="shadow.reported.temp")["statistics"] == {"count": 0}


def test_cardinality(fleet):
    models = {a["model"] for a in (v[1] for v in THINGS.values()) if "model" in a}
    assert fleet.get_cardinality(queryString="thingName:*", aggregationField="attributes.model")["cardinality"] == len(models)
    assert fleet.get_cardinality(queryString="thingTypeName:sensor")["cardinality"] == 5
    modes = {v for v in reported("mode").values()}
    assert fleet.get_cardinality(queryString="shadow.reported.mode:*",
                                 aggregationField="shadow.reported.mode")["cardinality"] == len(modes)


def linear_percentile(values, percent):
    ordered = sorted(values)
    rank = percent / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def test_percentiles_default_and_chosen(fleet):
    batteries = list(reported("battery").values())
    got = fleet.get_percentiles(queryString="thingName:*", aggregationField="shadow.reported.battery")["percentiles"]
    assert [p["percent"] for p in got] == [1, 5, 25, 50, 75, 95, 99]
    for pair in got:
        assert pair["value"] == pytest.approx(linear_percentile(batteries, pair["percent"]))
    got = fleet.get_percentiles(queryString="thingName:*", aggregationField="shadow.reported.battery",
                                percents=[0, 50, 100])["percentiles"]
    assert [p["value"] for p in got] == [min(batteries), pytest.approx(linear_percentile(batteries, 50)),
                                         max(batteries)]


def test_buckets(fleet):
    got = fleet.get_buckets_aggregation(queryString="thingName:*", aggregationField="attributes.model",
                                        bucketsAggregationType={"termsAggregation": {"maxBuckets": 10}})
    assert got["totalCount"] == len(THINGS)
    counts = {}
    for _, attributes, _ in THINGS.values():
        if "model" in attributes:
            counts[attributes["model"]] = counts.get(attributes["model"], 0) + 1
    assert got["buckets"] == [{"keyValue": k, "count": c}
                              for k, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    top = fleet.get_buckets_aggregation(queryString="thingName:*", aggregationField="connectivity.connected",
                                        bucketsAggregationType={"termsAggregation": {"maxBuckets": 1}})
    assert top["buckets"] == [{"keyValue": "false", "count": len(THINGS) - 2}]


@pytest.mark.parametrize("call,kw", [
    ("get_statistics", {"aggregationField": "attributes.site"}),
    ("get_percentiles", {"aggregationField": "attributes.model"}),
    ("get_percentiles", {}),
    ("get_cardinality", {"aggregationField": "shadow.reported.undeclared"}),
    ("get_buckets_aggregation", {"aggregationField": "attributes.zone",
                                 "bucketsAggregationType": {"termsAggregation": {"maxBuckets": 5}}}),
])
def test_an_undeclared_or_mistyped_field_is_an_invalid_aggregation(fleet, call, kw):
    with pytest.raises(ClientError) as info:
        getattr(fleet, call)(queryString="thingName:*", **kw)
    assert info.value.response["Error"]["Code"] == "InvalidAggregationException"


def test_a_bad_query_in_an_aggregation_is_an_invalid_query(fleet):
    with pytest.raises(ClientError) as info:
        fleet.get_statistics(queryString="thingName:(x", aggregationField="shadow.reported.temp")
    assert info.value.response["Error"]["Code"] == "InvalidQueryException"
