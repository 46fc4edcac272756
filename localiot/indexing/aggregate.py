"""Aggregations over the values of one field of the matching documents:
statistics, cardinality, percentiles and terms buckets (pure)."""

from __future__ import annotations

import math
from collections import Counter

from localiot.indexing.evaluate import text

DEFAULT_PERCENTS = [1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0]


def numbers(values) -> list[float]:
    out = []
    for value in values:
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out.append(float(value))
        else:
            try:
                out.append(float(value))
            except (TypeError, ValueError):
                continue
    return out


def statistics(values: list[float]) -> dict:
    """count, average, sum, minimum, maximum, sumOfSquares, variance (population), stdDeviation."""
    count = len(values)
    if not count:
        return {"count": 0}
    total = math.fsum(values)
    squares = math.fsum(v * v for v in values)
    average = total / count
    variance = max(squares / count - average * average, 0.0)
    return {"count": count, "average": average, "sum": total, "minimum": min(values), "maximum": max(values),
            "sumOfSquares": squares, "variance": variance, "stdDeviation": math.sqrt(variance)}


def percentiles(values: list[float], percents: list[float] | None) -> list[dict]:
    """Each percent's value by linear interpolation between the closest ranks."""
    wanted = DEFAULT_PERCENTS if not percents else percents
    ordered = sorted(values)
    out = []
    for percent in wanted:
        if not ordered:
            out.append({"percent": percent})
            continue
        rank = percent / 100 * (len(ordered) - 1)
        low = math.floor(rank)
        high = min(low + 1, len(ordered) - 1)
        value = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
        out.append({"percent": percent, "value": value})
    return out


def cardinality(values) -> int:
    return len({text(v) for v in values})


def buckets(values, max_buckets: int) -> list[dict]:
    """Terms buckets, most frequent first (ties by key), at most `max_buckets`."""
    counts = Counter(text(v) for v in values)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_buckets]
    return [{"keyValue": key, "count": count} for key, count in ranked]
