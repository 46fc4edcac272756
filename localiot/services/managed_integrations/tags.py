"""TagResource / UntagResource / ListTagsForResource of managed integrations."""

from __future__ import annotations

from localiot.protocol.errors import invalid
from localiot.services import operation
from localiot.services.common import MAX_TAGS
from localiot.services.managed_integrations.model import ARN_SERVICE, SERVICE
from localiot.services.tagging import list_tags, tag, taggable, untag

# The other taggable resource types the service's ARN pattern names. localiot
# implements none of them (their Create operations answer NotImplemented), so
# an ARN of one of them names a resource that does not exist.
for _resource_type in ("provisioning-profile", "ota-task", "credential-locker", "account-association"):
    taggable(_resource_type, lambda tx, name: False, service=ARN_SERVICE)


@operation(SERVICE)
def TagResource(ctx, req):
    arn = req["ResourceArn"]
    if len({**list_tags(ctx, arn), **req["Tags"]}) > MAX_TAGS:
        raise invalid(f"A resource can have at most {MAX_TAGS} tags.")
    tag(ctx, arn, req["Tags"])
    return {}


@operation(SERVICE)
def UntagResource(ctx, req):
    untag(ctx, req["ResourceArn"], req["TagKeys"])
    return {}


@operation(SERVICE)
def ListTagsForResource(ctx, req):
    tags = list_tags(ctx, req["ResourceArn"])
    return {"tags": tags} if tags else {}
