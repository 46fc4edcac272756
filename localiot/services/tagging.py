"""Tags by ARN, shared by every family.

A family makes a resource type taggable with `taggable("thinggroup", exists)`,
where `exists(tx, resource_id)` says whether the resource is there. The
iot TagResource / UntagResource / ListTagsForResource handlers live here;
other families call `tag`, `untag` and `list_tags` from their own handlers.
"""

from __future__ import annotations


from localiot.protocol.errors import invalid, not_found
from localiot.services import operation
from localiot.services.common import TAGGABLE as _TAGGABLE
from localiot.services.common import apply_tags, page, tags_to_dict, tags_to_list, taggable  # noqa: F401 (re-export)


def _resolve(ctx, arn: str) -> None:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise invalid(f"Invalid resource ARN: {arn}")
    _, _, service, region, account, resource = parts
    resource_type, sep, resource_id = resource.partition("/")
    exists = _TAGGABLE.get((service, resource_type))
    if exists is None or not sep:
        raise invalid(f"Resource type of {arn} does not support tagging.")
    if account != ctx.account or region != ctx.region or not exists(ctx.tx, resource_id):
        raise not_found(f"Resource {arn} not found.")


def tag(ctx, arn: str, tags: dict[str, str]) -> None:
    _resolve(ctx, arn)
    apply_tags(ctx, arn, tags)


def untag(ctx, arn: str, keys: list[str]) -> None:
    _resolve(ctx, arn)
    ctx.tx.remove_tags(arn, keys)


def list_tags(ctx, arn: str) -> dict[str, str]:
    _resolve(ctx, arn)
    return ctx.tx.get_tags(arn)


@operation("iot")
def TagResource(ctx, req):
    tag(ctx, req["resourceArn"], tags_to_dict(req["tags"]))
    return {}


@operation("iot")
def UntagResource(ctx, req):
    untag(ctx, req["resourceArn"], req["tagKeys"])
    return {}


@operation("iot")
def ListTagsForResource(ctx, req):
    tags = list(list_tags(ctx, req["resourceArn"]).items())

    def fetch(after, limit):
        return [kv for kv in tags if after is None or kv[0] > after][:limit]

    rows, token = page(fetch, req)
    return {"tags": tags_to_list(dict(rows)), "nextToken": token}
