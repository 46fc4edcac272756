"""Device Advisor's TagResource / UntagResource / ListTagsForResource: tags as
a map on suite definition ARNs (arn:aws:iotdeviceadvisor:{region}:{account}:
suitedefinition/{id}) and suite run ARNs (.../suiterun/{suiteDefinitionId}/{suiteRunId})
of the caller's account and region. A run's record keeps its tags too."""

from __future__ import annotations

from localiot.protocol.errors import ServiceError, not_found
from localiot.services import operation
from localiot.services.common import MAX_TAGS
from localiot.services.deviceadvisor.model import RUN, RUN_KIND, SERVICE, SUITE_KIND


def put_tags(ctx, arn: str, tags: dict[str, str]) -> None:
    """Add or change tags, AWS's way: at most 50 a resource, no "aws:" keys (ValidationException)."""
    for key in tags:
        if key.lower().startswith("aws:"):
            raise ServiceError("ValidationException", "Tag keys with the prefix 'aws:' are reserved for AWS use.")
    if len({**ctx.tx.get_tags(arn), **tags}) > MAX_TAGS:
        raise ServiceError("ValidationException", f"A resource can have at most {MAX_TAGS} tags.")
    ctx.tx.put_tags(arn, tags)


def _resource(ctx, arn: str) -> tuple[str, str | None]:
    """(arn, suite run id or None) of an existing taggable resource."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != SERVICE:
        raise ServiceError("ValidationException", f"Invalid resource ARN: {arn}")
    _, _, _, region, account, resource = parts
    kind, _, rest = resource.partition("/")
    ids = rest.split("/") if rest else []
    if kind == "suitedefinition" and len(ids) == 1:
        exists, run_id = (lambda: ctx.tx.get(SUITE_KIND, ids[0]) is not None), None
    elif kind == "suiterun" and len(ids) == 2:
        run_id = ids[1]
        exists = lambda: (ctx.tx.get(RUN_KIND, run_id) or {}).get("suiteDefinitionId") == ids[0]  # noqa: E731
    else:
        raise ServiceError("ValidationException", f"Invalid resource ARN: {arn}")
    if (region, account) != (ctx.region, ctx.account) or not exists():
        raise not_found(f"The resource {arn} does not exist.")
    return arn, run_id


def _keep_on_run(ctx, run_id: str | None, arn: str) -> None:
    if run_id is not None:
        doc = ctx.tx.get(RUN_KIND, run_id)
        doc["tags"] = ctx.tx.get_tags(arn)
        RUN.put(ctx, run_id, doc)


@operation(SERVICE)
def TagResource(ctx, req):
    arn, run_id = _resource(ctx, req["resourceArn"])
    put_tags(ctx, arn, req["tags"])
    _keep_on_run(ctx, run_id, arn)
    return {}


@operation(SERVICE)
def UntagResource(ctx, req):
    arn, run_id = _resource(ctx, req["resourceArn"])
    ctx.tx.remove_tags(arn, req["tagKeys"])
    _keep_on_run(ctx, run_id, arn)
    return {}


@operation(SERVICE)
def ListTagsForResource(ctx, req):
    arn, _ = _resource(ctx, req["resourceArn"])
    return {"tags": ctx.tx.get_tags(arn)}
