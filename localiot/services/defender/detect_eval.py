"""Evaluation: the datapoints of a thing's metrics against the behaviors of
every security profile that applies to it, and the recorded datapoints
ListMetricValues answers.

Cloud-side metrics are measured by the broker (localiot.metering) and closed
every WINDOW (300 s) of the injectable clock by the `@periodic("defender-detect")`
job: one datapoint per metric and metered thing, however far the clock jumped.
Device-side and custom metrics arrive in reports (localiot.doors.defender) and
are evaluated as each report arrives. A count behavior with durationSeconds
longer than a window sums the thing's datapoints of that duration. Statistical
thresholds (pNN, Average) rank the window's values over the things the profile
applies to (cloud-side metrics). A metric is recorded (kind "detect-datum")
only when a profile that applies to the thing uses or retains it.
"""

from __future__ import annotations

import uuid

from localiot import metering
from localiot.background import periodic
from localiot.protocol.errors import invalid
from localiot.services import operation
from localiot.services.common import paginate
from localiot.services.defender import detect_catalog as catalog, detect_ml, device_stats, metrics_export, violations
from localiot.services.defender.profiles import PROFILE, profiles_for_thing
from localiot.services.unit_of_work import unit_of_work
from localiot.topics import matches

DATUM, WINDOW_KIND = "detect-datum", "detect-window"


def _series(thing: str, metric: str, dimension: str | None) -> str:
    return f"{thing}|{metric}|{dimension or ''}"


def record(ctx, thing: str, metric: str, dimension: str | None, value: dict) -> None:
    now = ctx.now()
    series = _series(thing, metric, dimension)
    ctx.tx.put(DATUM, f"{series}|{now:020.6f}|{uuid.uuid4().hex[:8]}", {"timestamp": now, "value": value},
               {"series": series})


def _sum_since(ctx, thing: str, metric: str, dimension: str | None, since: float) -> int:
    rows = ctx.tx.find(DATUM, "series", _series(thing, metric, dimension))
    return sum(d["value"].get("count", 0) for _, d in rows if d["timestamp"] > since)


def _dimension_filters(ctx, behavior: dict) -> tuple[list[str], bool] | None:
    dim = behavior.get("metricDimension")
    if not dim:
        return None
    doc = ctx.tx.get("detect-dimension", dim["dimensionName"])
    return (doc["stringValues"] if doc else []), dim.get("operator", "IN") != "NOT_IN"


def cloud_value(metric: str, snap: dict, filters: tuple[list[str], bool] | None):
    """The window's observed value of a cloud-side metric, narrowed by a TOPIC_FILTER dimension."""
    if filters is None or metric not in catalog.MESSAGE_METRICS:
        value = snap.get(metric)
        return value
    patterns, inside = filters
    keep = lambda topic: any(matches(p, topic) for p in patterns) == inside  # noqa: E731
    if metric == "aws:num-messages-received":
        return sum(n for t, n in snap["topics_received"].items() if keep(t))
    picked = [v for t, v in snap["topics_sent"].items() if keep(t)]
    if metric == "aws:num-messages-sent":
        return sum(v[0] for v in picked)
    return (max(v[1] for v in picked), min(v[2] for v in picked)) if picked else None


def _observed(metric: catalog.Metric, op: str, raw):
    """The comparable value: message-byte-size compares its largest message against
    an upper bound and its smallest against a lower bound."""
    if metric.name == "aws:message-byte-size":
        return raw[0] if op.startswith("less") else raw[1]
    return raw


def _profiles(ctx, thing: str, cache: dict) -> list[dict]:
    names = profiles_for_thing(ctx.tx, ctx, thing)
    out = []
    for name in sorted(names):
        if name not in cache:
            cache[name] = PROFILE.find(ctx, name)
        if cache[name] is not None:
            out.append(cache[name])
    return out


def _retained(profile: dict) -> list[tuple[str, str | None, bool]]:
    """(metric, dimension, exported) of every metric `profile` records."""
    out = [(b["metric"], (b.get("metricDimension") or {}).get("dimensionName"), bool(b.get("exportMetric")))
           for b in profile.get("behaviors") or [] if b.get("metric")]
    out += [(m["metric"], (m.get("metricDimension") or {}).get("dimensionName"), bool(m.get("exportMetric")))
            for m in profile.get("additionalMetricsToRetainV2") or []]
    return out


def evaluate(ctx, thing: str, raw_values: dict, sources: tuple[str, ...], cache: dict | None = None,
             thresholds: dict | None = None) -> None:
    """Record the datapoints of `thing` the profiles use, then evaluate every behavior of those
    profiles whose metric comes from `sources` and has a value in `raw_values`
    (cloud-side: a metering snapshot; device-side: {metric: value}). Datapoints of
    metrics marked exportMetric go to each profile's metricsExportConfig topic."""
    cache = {} if cache is None else cache
    recorded = set()
    for profile in _profiles(ctx, thing, cache):
        exported = []
        for metric_name, dim, export in _retained(profile):
            metric = catalog.metric_of(ctx.tx, metric_name)
            if metric is None or metric.source not in sources:
                continue
            filters = _dimension_filters(ctx, {"metricDimension": {"dimensionName": dim}} if dim else {})
            raw = cloud_value(metric_name, raw_values, filters) if metric.source == "cloud" else raw_values.get(
                metric_name)
            if raw is None:
                continue
            shown = catalog.as_metric_value(metric, raw[0] if metric.name == "aws:message-byte-size" else raw)
            if (metric_name, dim) not in recorded:
                record(ctx, thing, metric_name, dim, shown)
                recorded.add((metric_name, dim))
            if export:
                exported.append((metric_name, dim, shown))
        if exported:
            metrics_export.queue(ctx, profile, thing, exported, cache)
        for behavior in profile.get("behaviors") or []:
            criteria = behavior.get("criteria")
            metric = catalog.metric_of(ctx.tx, behavior["metric"])
            if not criteria or metric is None or metric.source not in sources:
                continue
            raw = (cloud_value(metric.name, raw_values, _dimension_filters(ctx, behavior))
                   if metric.source == "cloud" else raw_values.get(metric.name))
            if raw is None:
                continue
            if criteria.get("mlDetectionConfig"):
                observed = raw[0] if metric.name == "aws:message-byte-size" else raw
                detect_ml.observe(ctx, profile, behavior, thing, observed, catalog.as_metric_value(metric, observed),
                                  cache)
                continue
            op = criteria["comparisonOperator"]
            observed = _observed(metric, op, raw)
            duration = criteria.get("durationSeconds")
            if duration and duration > catalog.WINDOW and metric.kind == "count":
                dim = (behavior.get("metricDimension") or {}).get("dimensionName")
                observed = _sum_since(ctx, thing, metric.name, dim, ctx.now() - duration)
            if criteria.get("statisticalThreshold"):
                if metric.source == "cloud":
                    expected = (thresholds or {}).get((profile["securityProfileName"], behavior["name"]))
                else:  # device-side: ranked against the fleet's reports of the same duration
                    expected = device_stats.threshold(ctx, profile, behavior, thing, observed)
                if expected is None:
                    continue  # no fleet statistic yet
            else:
                expected = catalog.expected_value(criteria)
            bad = not catalog.normal(op, observed, expected)
            violations.datapoint(ctx, profile, behavior, thing, bad, catalog.as_metric_value(metric, observed))


def _fleet_thresholds(ctx, snapshots: dict, cache: dict) -> dict:
    """(profile, behavior) -> the statistic of the window's values over the profile's metered things."""
    values: dict[tuple[str, str], list] = {}
    stats: dict[tuple[str, str], str] = {}
    for thing, snap in snapshots.items():
        for profile in _profiles(ctx, thing, cache):
            for b in profile.get("behaviors") or []:
                stat = (b.get("criteria") or {}).get("statisticalThreshold")
                if not stat:
                    continue
                raw = cloud_value(b["metric"], snap, _dimension_filters(ctx, b))
                if raw is None:
                    continue
                key = (profile["securityProfileName"], b["name"])
                stats[key] = stat["statistic"]
                values.setdefault(key, []).append(_observed(catalog.METRICS[b["metric"]],
                                                            b["criteria"]["comparisonOperator"], raw))
    return {key: catalog.percentile(v, stats[key]) for key, v in values.items()}


@periodic("defender-detect")
def close_windows(store, runtime) -> None:
    now = runtime.clock.now()
    for account, region in sorted({(a, r) for a, r, _, _ in store.scan_all_scopes(PROFILE.kind)}
                                  | set(metering.meters(runtime).scopes)):
        with unit_of_work(runtime, account, region, "iot", "DeviceDefenderDetect") as ctx:
            window = ctx.tx.get(WINDOW_KIND, "current")
            if window is not None and now < window["end"]:
                continue  # the first run closes what was counted since the start
            snapshots = metering.take(runtime, account, region, now)
            ctx.tx.put(WINDOW_KIND, "current", {"start": now, "end": now + catalog.WINDOW})
            if not ctx.tx.scan(PROFILE.kind, limit=1):
                continue
            cache: dict = {}
            thresholds = _fleet_thresholds(ctx, snapshots, cache)
            for thing, snap in sorted(snapshots.items()):
                evaluate(ctx, thing, snap, ("cloud",), cache, thresholds)
            detect_ml.flush(ctx, cache)
            metrics_export.send(ctx, cache)


@operation("iot")
def ListMetricValues(ctx, req):
    start, end = req["startTime"], req["endTime"]
    if start > end:
        raise invalid("startTime must not be after endTime.")
    if catalog.metric_of(ctx.tx, req["metricName"]) is None:
        raise invalid(f"Metric {req['metricName']} is not supported.")
    series = _series(req["thingName"], req["metricName"], req.get("dimensionName"))
    rows = [(n, d) for n, d in ctx.tx.find(DATUM, "series", series) if start <= d["timestamp"] <= end]
    rows.sort(key=lambda row: row[0])
    found, extra = paginate(ctx, req, rows, key=lambda row: row[0])
    return {"metricDatumList": [{"timestamp": d["timestamp"], "value": d["value"]} for _, d in found], **extra}
