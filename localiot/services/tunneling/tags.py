"""Tags on tunnels: Secure Tunneling's own TagResource / UntagResource /
ListTagsForResource (lower-case `key` / `value`, up to 200 per tunnel).
Only tunnel ARNs of the caller's account and region are taggable here."""

from __future__ import annotations

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import operation
from localiot.services.tunneling.model import KIND, MAX_TAGS

SERVICE = "iotsecuretunneling"


def tags_in(tags: list[dict]) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in tags}


def tags_out(tags: dict[str, str]) -> list[dict]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _tunnel_arn(ctx, arn: str) -> str:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[5].startswith("tunnel/"):
        raise not_found(f"Resource {arn} not found")
    _, _, service, region, account, resource = parts
    tunnel_id = resource.split("/", 1)[1]
    if (service != "iot" or region != ctx.region or account != ctx.account
            or ctx.tx.get(KIND, tunnel_id) is None):
        raise not_found(f"Resource {arn} not found")
    return arn


def tag_tunnel(ctx, arn: str, tags: dict[str, str]) -> None:
    for key in tags:
        if key.lower().startswith("aws:"):
            raise invalid("Tag keys with the prefix 'aws:' are reserved for AWS use.")
    if len({**ctx.tx.get_tags(arn), **tags}) > MAX_TAGS:
        raise ServiceError("LimitExceededException", f"A tunnel can have at most {MAX_TAGS} tags.")
    ctx.tx.put_tags(arn, tags)


@operation(SERVICE)
def TagResource(ctx, req):
    tag_tunnel(ctx, _tunnel_arn(ctx, req["resourceArn"]), tags_in(req["tags"]))
    return {}


@operation(SERVICE)
def UntagResource(ctx, req):
    ctx.tx.remove_tags(_tunnel_arn(ctx, req["resourceArn"]), req["tagKeys"])
    return {}


@operation(SERVICE)
def ListTagsForResource(ctx, req):
    return {"tags": tags_out(ctx.tx.get_tags(_tunnel_arn(ctx, req["resourceArn"])))}
