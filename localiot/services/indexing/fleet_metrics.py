"""Fleet metrics: an aggregation query evaluated every `period` seconds on the
injectable clock, its result sent to CloudWatch (PutMetricData) at the
downstream endpoint (LOCALIOT_AWS_ENDPOINT_URL).

Data points go to the namespace IoTFleetMetrics under the metric's name:
Statistics as one statistic set (SampleCount, Sum, Minimum, Maximum, so
CloudWatch derives the average), Cardinality as one value, Percentiles as
one value per percent with the dimension Percentile=<percent>. A period
that passed while the server was down is emitted once, not replayed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from localiot.background import periodic
from localiot.indexing import aggregate
from localiot.protocol.errors import ServiceError, invalid
from localiot.services import operation
from localiot.services.common import Resource, check_version, paginate
from localiot.services.indexing import aggregations
from localiot.services.indexing.search import checked_query
from localiot.services.unit_of_work import in_unit, run_off_loop

log = logging.getLogger("localiot.fleet_metrics")

FLEET_METRIC = Resource("fleet-metric", "fleetmetric/{name}", not_found="The fleet metric {name} does not exist.",
                        exists="Fleet metric {name} already exists.", arn_field="metricArn", taggable=True)
NAMESPACE = "IoTFleetMetrics"
STATISTICS = ("count", "average", "sum", "minimum", "maximum", "sumOfSquares", "variance", "stdDeviation")


def _check(ctx, req) -> None:
    """The query, field and aggregation type are what GetStatistics & co accept."""
    if req["period"] % 60:
        raise invalid("The period must be a multiple of 60 seconds.")
    index, config, _, _ = checked_query(ctx, req)
    kind = req["aggregationType"]
    values = kind.get("values") or []
    name, field_type = aggregations._field(index, config, req.get("aggregationField"))
    if kind["name"] == "Statistics":
        bad = [v for v in values if v not in STATISTICS]
        if bad:
            raise ServiceError("InvalidAggregationException", f"Unknown statistics: {', '.join(bad)}.")
    elif kind["name"] == "Percentiles":
        if field_type != "Number":
            raise ServiceError("InvalidAggregationException", f"Percentiles need a Number field; {name} is {field_type}.")
        try:
            if any(not 0 <= float(v) <= 100 for v in values):
                raise ValueError
        except ValueError:
            raise ServiceError("InvalidAggregationException", "Percentile values must be numbers from 0 to 100.") from None


def _fields(req) -> dict:
    return {k: req[k] for k in ("queryString", "aggregationType", "period", "aggregationField", "description",
                                "queryVersion", "indexName", "unit") if req.get(k) is not None}


@operation("iot")
def CreateFleetMetric(ctx, req):
    name = req["metricName"]
    FLEET_METRIC.ensure_absent(ctx, name)
    _check(ctx, req)
    now = ctx.now()
    doc = {"metricName": name, "metricArn": FLEET_METRIC.arn(ctx, name), "version": 1, "creationDate": now,
           "lastModifiedDate": now, "indexName": "AWS_Things", **_fields(req), "nextEmission": now + req["period"]}
    FLEET_METRIC.create(ctx, name, doc, tags={t["Key"]: t.get("Value", "") for t in req.get("tags") or []})
    return {"metricName": name, "metricArn": doc["metricArn"]}


@operation("iot")
def DescribeFleetMetric(ctx, req):
    doc = FLEET_METRIC.get(ctx, req["metricName"])
    return {k: v for k, v in doc.items() if k != "nextEmission"}


@operation("iot")
def UpdateFleetMetric(ctx, req):
    name = req["metricName"]
    doc = FLEET_METRIC.get(ctx, name)
    check_version("fleet metric", name, doc["version"], req.get("expectedVersion"))
    merged = {**doc, **_fields(req)}
    _check(ctx, merged)
    if merged["period"] != doc["period"]:
        merged["nextEmission"] = ctx.now() + merged["period"]
    merged.update(version=doc["version"] + 1, lastModifiedDate=ctx.now())
    FLEET_METRIC.put(ctx, name, merged)
    return {}


@operation("iot")
def DeleteFleetMetric(ctx, req):
    name = req["metricName"]
    doc = FLEET_METRIC.find(ctx, name)
    if doc is None:
        return {}
    check_version("fleet metric", name, doc["version"], req.get("expectedVersion"))
    FLEET_METRIC.delete(ctx, name)
    return {}


@operation("iot")
def ListFleetMetrics(ctx, req):
    rows, extra = paginate(ctx, req, FLEET_METRIC.list(ctx), key=lambda row: row[0])
    return {"fleetMetrics": [{"metricName": d["metricName"], "metricArn": d["metricArn"]} for _, d in rows], **extra}


# emission ---------------------------------------------------------------------------
def evaluate(ctx, doc: dict) -> list[dict]:
    """The CloudWatch data points of one evaluation of `doc` at ctx.now()."""
    req = {"queryString": doc["queryString"], "indexName": doc.get("indexName"),
           "queryVersion": doc.get("queryVersion"), "aggregationField": doc.get("aggregationField")}
    kind = doc["aggregationType"]
    when = datetime.fromtimestamp(ctx.now(), timezone.utc)
    base = {"MetricName": doc["metricName"], "Timestamp": when, **({"Unit": doc["unit"]} if doc.get("unit") else {})}
    if kind["name"] == "Cardinality":
        index, config, node, predicate = checked_query(ctx, req)
        field, _ = aggregations._field(index, config, req["aggregationField"])
        _, values = aggregations.values_of(ctx, req, field, index, node, predicate)
        return [{**base, "Value": float(aggregate.cardinality(values))}]
    if kind["name"] == "Percentiles":
        index, config, node, predicate = checked_query(ctx, req)
        field, _ = aggregations._field(index, config, req["aggregationField"])
        _, values = aggregations.values_of(ctx, req, field, index, node, predicate)
        percents = [float(v) for v in kind.get("values") or []] or aggregate.DEFAULT_PERCENTS
        return [{**base, "Dimensions": [{"Name": "Percentile", "Value": f"{p['percent']:g}"}], "Value": p["value"]}
                for p in aggregate.percentiles(aggregate.numbers(values), percents) if "value" in p]
    stats = aggregations.statistics(ctx, req)
    if not stats.get("count"):
        return [{**base, "Value": 0.0}]
    if "sum" not in stats:
        return [{**base, "Value": float(stats["count"])}]
    return [{**base, "StatisticValues": {"SampleCount": float(stats["count"]), "Sum": stats["sum"],
                                         "Minimum": stats["minimum"], "Maximum": stats["maximum"]}}]


@periodic("fleet-metrics")
async def emit_due(store, runtime) -> None:
    now = runtime.clock.now()
    for account, region, name, doc in await run_off_loop(runtime, store.scan_all_scopes, FLEET_METRIC.kind):
        due = doc.get("nextEmission", 0)
        if now < due:
            continue
        try:
            points = await in_unit(runtime, account, region, "iot", "FleetMetric", evaluate, doc, write=False)
        except ServiceError as exc:  # the index went away or is rebuilding: try again next period
            log.warning("fleet metric %s not evaluated: %s", name, exc)
            points = []
        if points:
            client = runtime.aws_client("cloudwatch", region)
            try:
                await asyncio.to_thread(client.put_metric_data, Namespace=NAMESPACE, MetricData=points)
            except Exception as exc:
                log.warning("fleet metric %s: PutMetricData failed: %s", name, exc)
        periods = int((now - due) // doc["period"]) + 1
        await in_unit(runtime, account, region, "iot", "FleetMetric", _advance, name, due,
                      due + periods * doc["period"])


def _advance(ctx, name: str, due: float, following: float) -> None:
    current = ctx.tx.get(FLEET_METRIC.kind, name)
    if current is not None and current.get("nextEmission") == due:
        current["nextEmission"] = following
        ctx.tx.put(FLEET_METRIC.kind, name, current)
