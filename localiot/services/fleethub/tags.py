"""Fleet Hub's TagResource / UntagResource / ListTagsForResource: tags as a
map, on application ARNs of the caller's account and region."""

from __future__ import annotations

from localiot.protocol.errors import invalid, not_found
from localiot.services import operation
from localiot.services.common import apply_tags
from localiot.services.fleethub.model import APPLICATION, SERVICE


def _application_arn(ctx, arn: str) -> str:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != SERVICE or not parts[5].startswith("application/"):
        raise invalid(f"Invalid resource ARN: {arn}")
    _, _, _, region, account, resource = parts
    app_id = resource.split("/", 1)[1]
    if region != ctx.region or account != ctx.account or APPLICATION.find(ctx, app_id) is None:
        raise not_found(f"The specified resource does not exist: {arn}.")
    return arn


@operation(SERVICE)
def TagResource(ctx, req):
    apply_tags(ctx, _application_arn(ctx, req["resourceArn"]), req["tags"])
    return {}


@operation(SERVICE)
def UntagResource(ctx, req):
    ctx.tx.remove_tags(_application_arn(ctx, req["resourceArn"]), req["tagKeys"])
    return {}


@operation(SERVICE)
def ListTagsForResource(ctx, req):
    return {"tags": ctx.tx.get_tags(_application_arn(ctx, req["resourceArn"]))}
