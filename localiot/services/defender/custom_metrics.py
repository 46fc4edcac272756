"""Custom metrics (number, number-list, string-list, ip-address-list) that
devices report under `custom_metrics`, and dimensions (TOPIC_FILTER: message
metrics counted only for the topics the filters match).

Kinds "custom-metric" (name = metricName) and "detect-dimension" (name =
dimension name). A metric or dimension a security profile uses cannot be
deleted."""

from __future__ import annotations

from localiot.protocol.errors import invalid
from localiot.services import operation
from localiot.services.common import Resource, paginate, tags_to_dict
from localiot.topics import TopicError, validate_topic_filter

METRIC = Resource("custom-metric", "custommetric/{name}", not_found="Custom metric {name} does not exist.",
                  exists="Custom metric {name} already exists.", arn_field="metricArn", taggable=True)
DIMENSION = Resource("detect-dimension", "dimension/{name}", not_found="Dimension {name} does not exist.",
                     exists="Dimension {name} already exists.", arn_field="arn", taggable=True)
PROFILE_KIND = "security-profile"


def _in_use(ctx, key: str, name: str, what: str) -> None:
    users = ctx.tx.find(PROFILE_KIND, key, name)
    if users:
        raise invalid(f"The {what} {name} is used by security profile {users[0][0]}.")


@operation("iot")
def CreateCustomMetric(ctx, req):
    name = req["metricName"]
    if name.startswith("aws:"):
        raise invalid("Custom metric names cannot start with aws:.")
    METRIC.ensure_absent(ctx, name)
    now = ctx.now()
    doc = {"metricName": name, "metricArn": METRIC.arn(ctx, name), "metricType": req["metricType"],
           "creationDate": now, "lastModifiedDate": now}
    if req.get("displayName") is not None:
        doc["displayName"] = req["displayName"]
    METRIC.create(ctx, name, doc, tags_to_dict(req.get("tags")))
    return {"metricName": name, "metricArn": doc["metricArn"]}


@operation("iot")
def DescribeCustomMetric(ctx, req):
    return dict(METRIC.get(ctx, req["metricName"]))


@operation("iot")
def UpdateCustomMetric(ctx, req):
    doc = METRIC.get(ctx, req["metricName"])
    doc.update(displayName=req["displayName"], lastModifiedDate=ctx.now())
    METRIC.put(ctx, doc["metricName"], doc)
    return dict(doc)


@operation("iot")
def DeleteCustomMetric(ctx, req):
    if METRIC.find(ctx, req["metricName"]) is not None:
        _in_use(ctx, "metric", req["metricName"], "custom metric")
        METRIC.delete(ctx, req["metricName"])
    return {}


@operation("iot")
def ListCustomMetrics(ctx, req):
    found, extra = paginate(ctx, req, [n for n, _ in METRIC.list(ctx)])
    return {"metricNames": found, **extra}


def _filters(values: list[str]) -> list[str]:
    for value in values:
        try:
            validate_topic_filter(value, 256, 7)
        except TopicError as error:
            raise invalid(f"{value} is not a valid topic filter: {error}") from None
    return values


@operation("iot")
def CreateDimension(ctx, req):
    name = req["name"]
    existing = DIMENSION.find(ctx, name)
    if existing is not None:
        if (existing.get("clientRequestToken") == req["clientRequestToken"]
                and existing["stringValues"] == req["stringValues"]):
            return {"name": name, "arn": existing["arn"]}  # the same request again
        DIMENSION.ensure_absent(ctx, name)
    now = ctx.now()
    doc = {"name": name, "arn": DIMENSION.arn(ctx, name), "type": req["type"],
           "stringValues": _filters(req["stringValues"]), "creationDate": now, "lastModifiedDate": now,
           "clientRequestToken": req["clientRequestToken"]}
    DIMENSION.create(ctx, name, doc, tags_to_dict(req.get("tags")))
    return {"name": name, "arn": doc["arn"]}


def _public(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "clientRequestToken"}


@operation("iot")
def DescribeDimension(ctx, req):
    return _public(DIMENSION.get(ctx, req["name"]))


@operation("iot")
def UpdateDimension(ctx, req):
    doc = DIMENSION.get(ctx, req["name"])
    doc.update(stringValues=_filters(req["stringValues"]), lastModifiedDate=ctx.now())
    DIMENSION.put(ctx, doc["name"], doc)
    return _public(doc)


@operation("iot")
def DeleteDimension(ctx, req):
    if DIMENSION.find(ctx, req["name"]) is not None:
        _in_use(ctx, "dimension", req["name"], "dimension")
        DIMENSION.delete(ctx, req["name"])
    return {}


@operation("iot")
def ListDimensions(ctx, req):
    found, extra = paginate(ctx, req, [n for n, _ in DIMENSION.list(ctx)])
    return {"dimensionNames": found, **extra}
