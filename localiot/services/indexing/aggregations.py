"""GetStatistics, GetCardinality, GetPercentiles, GetBucketsAggregation.

The aggregation field must be indexed with a type: a managed field or a
declared custom field (InvalidAggregationException otherwise). Statistics
of a String or Boolean field give only the count, as AWS documents;
percentiles need a Number field."""

from __future__ import annotations

from localiot.indexing import aggregate, fields
from localiot.protocol.errors import ServiceError
from localiot.services import operation
from localiot.services.indexing import settings
from localiot.services.indexing.search import checked_query, matching

DEFAULT_BUCKETS = 10


def _field(index: str, config: dict, name: str | None, *, default: str | None = None) -> tuple[str, str]:
    if not name:
        if default is None:
            raise ServiceError("InvalidAggregationException", "An aggregation field is required.")
        name = default
    kind = fields.field_type(index, name, settings.custom_types(config, index))
    if kind is None:
        raise ServiceError("InvalidAggregationException",
                           f"Aggregation field {name} is not a managed field or a custom field of index {index}.")
    return name, kind


def values_of(ctx, req, field: str | None, index: str, node, predicate, config=None) -> tuple[int, list]:
    """(number of matching documents, every value of `field` in them)."""
    matched, values = 0, []
    for _, doc in matching(ctx.tx, index, node, predicate, config=config):
        matched += 1
        if field is not None:
            values.extend(doc["fields"].get(field, ()))
    return matched, values


def statistics(ctx, req) -> dict:
    index, config, node, predicate = checked_query(ctx, req)
    name = req.get("aggregationField")
    if not name:
        matched, _ = values_of(ctx, req, None, index, node, predicate, config)
        return {"count": matched}
    name, kind = _field(index, config, name)
    _, values = values_of(ctx, req, name, index, node, predicate, config)
    if kind != "Number":
        return {"count": len(values)}
    return aggregate.statistics(aggregate.numbers(values))


@operation("iot")
def GetStatistics(ctx, req):
    return {"statistics": statistics(ctx, req)}


@operation("iot")
def GetCardinality(ctx, req):
    index, config, node, predicate = checked_query(ctx, req)
    name, _ = _field(index, config, req.get("aggregationField"), default=fields.DEFAULT_FIELD[index])
    _, values = values_of(ctx, req, name, index, node, predicate, config)
    return {"cardinality": aggregate.cardinality(values)}


@operation("iot")
def GetPercentiles(ctx, req):
    index, config, node, predicate = checked_query(ctx, req)
    name, kind = _field(index, config, req.get("aggregationField"))
    if kind != "Number":
        raise ServiceError("InvalidAggregationException", f"Percentiles need a Number field; {name} is {kind}.")
    _, values = values_of(ctx, req, name, index, node, predicate, config)
    return {"percentiles": aggregate.percentiles(aggregate.numbers(values), req.get("percents"))}


@operation("iot")
def GetBucketsAggregation(ctx, req):
    index, config, node, predicate = checked_query(ctx, req)
    name, _ = _field(index, config, req.get("aggregationField"))
    terms = (req.get("bucketsAggregationType") or {}).get("termsAggregation") or {}
    matched, values = values_of(ctx, req, name, index, node, predicate, config)
    return {"totalCount": matched, "buckets": aggregate.buckets(values, terms.get("maxBuckets") or DEFAULT_BUCKETS)}
