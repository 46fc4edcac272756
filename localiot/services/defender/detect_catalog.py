"""The Device Defender detect metrics (AWS IoT Device Defender guide,
"Cloud-side metrics", "Device-side metrics", "Custom metrics"): their value
type, the operators each accepts and where they come from; the validation of
behaviors every security profile call shares (ValidateSecurityProfileBehaviors
answers its messages), and whether a datapoint satisfies a behavior's criteria.

A behavior's criteria state the *normal* behavior: a datapoint that does not
satisfy them is a violating datapoint.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from localiot.services.defender import detect_ml

NUMBER_OPS = ("less-than", "less-than-equals", "greater-than", "greater-than-equals")
PORT_OPS = ("in-port-set", "not-in-port-set")
CIDR_OPS = ("in-cidr-set", "not-in-cidr-set")
SET_OPS = ("in-set", "not-in-set")
STATISTICS = ("Average", "p0", "p0.1", "p0.01", "p1", "p10", "p50", "p90", "p99", "p99.9", "p99.99", "p100")
WINDOW = 300  # seconds: the cloud-side metric period, and the shortest report period of devices
DURATIONS = (300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400, 172800)


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # count | number | ports | cidrs | numbers | strings
    source: str  # cloud | device | custom
    duration: bool = True  # the criteria take durationSeconds (counts over a window)


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("aws:message-byte-size", "count", "cloud", duration=False),
    Metric("aws:num-messages-received", "count", "cloud"),
    Metric("aws:num-messages-sent", "count", "cloud"),
    Metric("aws:num-authorization-failures", "count", "cloud"),
    Metric("aws:num-connection-attempts", "count", "cloud"),
    Metric("aws:num-disconnects", "count", "cloud"),
    Metric("aws:disconnect-duration", "count", "cloud", duration=False),
    Metric("aws:source-ip-address", "cidrs", "cloud", duration=False),
    Metric("aws:all-bytes-out", "count", "device"),
    Metric("aws:all-bytes-in", "count", "device"),
    Metric("aws:all-packets-out", "count", "device"),
    Metric("aws:all-packets-in", "count", "device"),
    Metric("aws:destination-ip-addresses", "cidrs", "device", duration=False),
    Metric("aws:listening-tcp-ports", "ports", "device", duration=False),
    Metric("aws:listening-udp-ports", "ports", "device", duration=False),
    Metric("aws:num-established-tcp-connections", "count", "device", duration=False),
    Metric("aws:num-listening-tcp-ports", "count", "device", duration=False),
    Metric("aws:num-listening-udp-ports", "count", "device", duration=False),
)}
MESSAGE_METRICS = ("aws:num-messages-sent", "aws:num-messages-received", "aws:message-byte-size")
CUSTOM_KINDS = {"number": "number", "number-list": "numbers", "string-list": "strings", "ip-address-list": "cidrs"}
OPERATORS = {"count": NUMBER_OPS, "number": NUMBER_OPS, "ports": PORT_OPS, "cidrs": CIDR_OPS,
             "numbers": SET_OPS, "strings": SET_OPS}
VALUE_FIELD = {"count": "count", "number": "number", "ports": "ports", "cidrs": "cidrs", "numbers": "numbers",
               "strings": "strings"}


def metric_of(tx, name: str) -> Metric | None:
    """The metric called `name`: AWS's, or a custom metric of the account."""
    found = METRICS.get(name)
    if found is not None:
        return found
    doc = tx.get("custom-metric", name)
    if doc is None:
        return None
    return Metric(name, CUSTOM_KINDS[doc["metricType"]], "custom", duration=False)


def validate_behaviors(tx, behaviors: list[dict]) -> list[str]:
    """AWS's validation messages for `behaviors` (empty when they are valid)."""
    errors, names = [], set()
    for b in behaviors:
        name = b.get("name")
        if name in names:
            errors.append(f"Behavior name {name} is not unique.")
        names.add(name)
        errors += _behavior_errors(tx, b)
    return errors


def _behavior_errors(tx, b: dict) -> list[str]:
    name, criteria = b["name"], b.get("criteria")
    if not b.get("metric"):
        return [f"Behavior {name}: metric is required."]
    metric = metric_of(tx, b["metric"])
    if metric is None:
        return [f"Behavior {name}: metric {b['metric']} is not supported."]
    out = []
    if b.get("metricDimension"):
        dim = tx.get("detect-dimension", b["metricDimension"]["dimensionName"])
        if dim is None:
            out.append(f"Behavior {name}: dimension {b['metricDimension']['dimensionName']} does not exist.")
        elif metric.name not in MESSAGE_METRICS:
            out.append(f"Behavior {name}: metric {metric.name} does not support dimension type {dim['type']}.")
    if criteria is None:
        if not b.get("suppressAlerts") and b.get("exportMetric") is None:
            out.append(f"Behavior {name}: criteria is required.")
        return out
    if criteria.get("mlDetectionConfig"):
        return out + detect_ml.errors_of(name, metric, criteria)
    op = criteria.get("comparisonOperator")
    if op is None:
        return out + [f"Behavior {name}: comparisonOperator is required."]
    if op not in OPERATORS[metric.kind]:
        out.append(f"Behavior {name}: comparisonOperator {op} is not supported for metric {metric.name}.")
    value, stat = criteria.get("value"), criteria.get("statisticalThreshold")
    if (value is None) == (stat is None):
        out.append(f"Behavior {name}: specify exactly one of value and statisticalThreshold.")
    if value is not None:
        given = [k for k, v in value.items() if v is not None]
        want = VALUE_FIELD[metric.kind]
        if given != [want] and not (metric.kind == "count" and given == ["number"]):
            out.append(f"Behavior {name}: value for metric {metric.name} must be of type {want}.")
        elif want == "cidrs":
            for cidr in value["cidrs"]:
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    out.append(f"Behavior {name}: {cidr} is not a valid CIDR.")
    if stat is not None:
        if metric.kind != "count" or metric.source != "cloud" and metric.name not in (
                "aws:all-bytes-out", "aws:all-bytes-in", "aws:all-packets-out", "aws:all-packets-in"):
            out.append(f"Behavior {name}: statisticalThreshold is not supported for metric {metric.name}.")
        elif stat.get("statistic") not in STATISTICS:
            out.append(f"Behavior {name}: statistic {stat.get('statistic')} is not supported.")
    duration = criteria.get("durationSeconds")
    if duration is not None:
        if not metric.duration:
            out.append(f"Behavior {name}: durationSeconds is not supported for metric {metric.name}.")
        elif duration not in DURATIONS:
            out.append(f"Behavior {name}: durationSeconds must be one of {', '.join(map(str, DURATIONS))}.")
    elif stat is not None and metric.duration:
        out.append(f"Behavior {name}: durationSeconds is required with statisticalThreshold.")
    for key in ("consecutiveDatapointsToAlarm", "consecutiveDatapointsToClear"):
        if criteria.get(key) is not None and not 1 <= criteria[key] <= 10:
            out.append(f"Behavior {name}: {key} must be between 1 and 10.")
    return out


# evaluation ---------------------------------------------------------------------------
def _in_cidrs(address: str, nets) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in nets)


def normal(op: str, observed, expected) -> bool:
    """Whether `observed` (a number, or a list) satisfies `op` against `expected`."""
    if op in NUMBER_OPS:
        return {"less-than": observed < expected, "less-than-equals": observed <= expected,
                "greater-than": observed > expected, "greater-than-equals": observed >= expected}[op]
    if op in CIDR_OPS:
        nets = [ipaddress.ip_network(c, strict=False) for c in expected]
        inside = [_in_cidrs(a, nets) for a in observed]
        return all(inside) if op == "in-cidr-set" else not any(inside)
    wanted = set(expected)
    if op in ("in-port-set", "in-set"):
        return all(v in wanted for v in observed)
    return not any(v in wanted for v in observed)


def expected_value(criteria: dict):
    value = criteria["value"]
    return next(v for v in value.values() if v is not None)


def percentile(values: list[float], statistic: str) -> float:
    """The fleet statistic (`Average` or `pNN`) of `values` (nearest-rank)."""
    if statistic == "Average":
        return sum(values) / len(values)
    q = float(statistic[1:])
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100)) if q > 0 else 1
    return ordered[int(min(rank, len(ordered))) - 1]


def as_metric_value(metric: Metric, observed) -> dict:
    """The MetricValue shape of a datapoint."""
    if metric.kind in ("count", "number"):
        return {"count": int(observed)} if metric.kind == "count" else {"number": float(observed)}
    return {VALUE_FIELD[metric.kind]: list(observed)}
