"""Helpers every family shares: the resource descriptor, ids, pagination,
versions, names from ARNs, tags."""

from __future__ import annotations

import base64
import binascii
import json
import os
import random
from dataclasses import dataclass
from functools import lru_cache

import orjson

from localiot.protocol.errors import ServiceError, invalid, not_found


_bits = random.Random(os.urandom(32)).getrandbits
# The variant digit of a version 4 UUID (10xx) for each hex digit drawn there.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_id() -> str:
    """A random (version 4) UUID as text, as str(uuid.uuid4()) writes it. A resource id
    only has to be unique (none is a secret), so its 122 random bits come from a
    generator seeded once from the system, not a system call per id (uuid4 was ~7% of
    a CreateThing's time in process)."""
    h = "%032x" % _bits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


# pagination ----------------------------------------------------------------
# Tokens are standard base64 of {"after": last key}: the standard alphabet fits
# every modelled token pattern (markers are [A-Za-z0-9+/]+={0,2}).
def encode_token(after, urlsafe: bool = False) -> str:
    """`urlsafe` for services whose token pattern excludes + and / ([a-zA-Z0-9=_-]+).
    Written by orjson (a tuple as a list; json.dumps cost a tenth of a SearchIndex page's
    instructions); decode_token also reads the tokens json.dumps wrote before."""
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(orjson.dumps({"after": after})).decode()


def decode_token(token: str | None, name: str = "nextToken"):
    if not token:
        return None
    try:
        after = json.loads(base64.b64decode(token.encode(), altchars=b"-_" if "-" in token or "_" in token else None,
                                            validate=True))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise invalid(f"The specified {name} is not valid.") from None
    return tuple(after) if isinstance(after, list) else after


def page(fetch, req: dict, *, default_size: int = 50, size_key: str = "maxResults", token_key: str = "nextToken"):
    """Keyset pagination: `fetch(after, limit)` returns rows ordered by their key.

    Returns (rows, next_token). Rows are (key, value) pairs, or plain keys.
    """
    after = decode_token(req.get(token_key), token_key)
    limit = req.get(size_key) or default_size
    rows = fetch(after, limit + 1)
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1][0] if isinstance(rows[-1], tuple) else rows[-1]
    return rows, encode_token(last)


@lru_cache(maxsize=None)
def pagination_keys(service: str, operation: str) -> tuple[str, str, str | None] | None:
    """(input token, output token, limit key) of `operation` from botocore's
    paginators-1.json (or the model localiot ships), or None when the operation
    is not paginated there."""
    config = _paginators(service).get(operation)
    if config is None:
        return None
    return config["input_token"], config["output_token"], config.get("limit_key")


@lru_cache(maxsize=None)
def _paginators(service: str) -> dict:
    from localiot.protocol.models import load_paginators

    return load_paginators(service)


def paginate(ctx, req: dict, items: list, key=lambda item: item, *, descending: bool = False,
             default_size: int = 50, urlsafe: bool = False) -> tuple[list, dict]:
    """One page of `items` (sorted by `key`) for the operation `ctx` runs, with the
    token and size keys its botocore paginator declares. Returns (page, extra
    output: {output token: value} when there is a next page)."""
    keys = pagination_keys(ctx.service, ctx.operation)
    token_in, token_out, size_key = keys if keys is not None else ("nextToken", "nextToken", "maxResults")
    found, token = page_list(items, req, key, descending=descending, default_size=default_size,
                             size_key=size_key or "maxResults", token_key=token_in, urlsafe=urlsafe)
    return found, ({token_out: token} if token else {})


def page_list(items: list, req: dict, key=lambda item: item, *, descending: bool = False, default_size: int = 50,
              size_key: str = "maxResults", token_key: str = "nextToken", urlsafe: bool = False):
    """Pagination over a list already sorted by `key` (descending when asked).

    For the small collections whose order is not a store key (creation order,
    descending listings). Returns (items, next_token)."""
    after = decode_token(req.get(token_key), token_key)
    if after is not None:
        items = [i for i in items if (key(i) < after if descending else key(i) > after)]
    size = req.get(size_key) or default_size
    if len(items) <= size:
        return items, None
    items = items[:size]
    return items, encode_token(key(items[-1]), urlsafe)


def marker_page(tx, kind: str, req: dict, *, keep=None, default_size: int = 100):
    """One page of `kind` by name for the pageSize / marker / ascendingOrder lists:
    ascending unless the caller sends ascendingOrder=false. Returns (rows, nextMarker)."""
    descending = req.get("ascendingOrder") is False
    rows = [(name, doc) for name, doc in tx.scan(kind) if keep is None or keep(doc)]
    if descending:
        rows.reverse()
    return page_list(rows, req, lambda row: row[0], descending=descending, default_size=default_size,
                     size_key="pageSize", token_key="marker")


# tags ----------------------------------------------------------------------
def tags_to_dict(tags: list[dict] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags or []}


def tags_to_list(tags: dict[str, str]) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


MAX_TAGS = 50

# (arn service, resource type) -> exists(tx, resource id): what TagResource & co. accept
TAGGABLE: dict[tuple[str, str], object] = {}


def taggable(resource_type: str, exists, service: str = "iot") -> None:
    """Make `resource_type` ARNs of `service` taggable; `exists(tx, resource id)` says whether one is there."""
    TAGGABLE[(service, resource_type)] = exists


def apply_tags(ctx, arn: str, tags: dict[str, str]) -> None:
    existing = ctx.tx.get_tags(arn)
    if len({**existing, **tags}) > MAX_TAGS:
        raise ServiceError("LimitExceededException", f"A resource can have at most {MAX_TAGS} tags.")
    for key in tags:
        if key.lower().startswith("aws:"):
            raise invalid("Tag keys with the prefix 'aws:' are reserved for AWS use.")
    ctx.tx.put_tags(arn, tags)


# versions and names ----------------------------------------------------------
def check_version(kind_label: str, name: str, current: int, expected: int | None) -> None:
    """expectedVersion semantics: a mismatch is AWS's VersionConflictException."""
    if expected is not None and expected != current:
        raise ServiceError(
            "VersionConflictException",
            f"The version for {kind_label} {name} does not match the expected version.",
        )


def resource_name(ctx, name: str | None, arn_value: str | None, resource_type: str, label: str) -> str:
    """The resource name from a name or an ARN parameter (AWS accepts either)."""
    if name:
        if arn_value and arn_value != ctx.arn(f"{resource_type}/{name}"):
            raise invalid(f"The {label} name {name} and ARN {arn_value} do not refer to the same {label}.")
        return name
    if not arn_value:
        raise invalid(f"Either the {label} name or the {label} ARN must be specified.")
    parts = arn_value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iot":
        raise invalid(f"Invalid {label} ARN: {arn_value}")
    _, _, _, region, account, resource = parts
    kind, sep, resource_id = resource.partition("/")
    if kind != resource_type or not sep or not resource_id:
        raise invalid(f"Invalid {label} ARN: {arn_value}")
    if region != ctx.region or account != ctx.account:
        raise not_found(f"{label[0].upper()}{label[1:]} {arn_value} cannot be found.")
    return resource_id


# the resource descriptor ---------------------------------------------------------
@dataclass(frozen=True)
class Resource:
    """What a family declares about one resource type, instead of copying
    get / ARN / already-exists / delete-with-tags code from a neighbour.

        STREAM = Resource("stream", "stream/{name}", not_found="Stream {name} cannot be found.",
                          exists="Stream {name} already exists.", id_field="streamId",
                          arn_field="streamArn", taggable=True)

    `kind` is the store kind; `arn_path` the resource part of its ARN
    (`{name}` is the store name); messages are AWS's, formatted with `name`.
    A taggable resource answers the family's TagResource / ListTagsForResource
    by ARN (localiot.services.tagging) as soon as it is declared.
    """

    kind: str
    arn_path: str
    not_found: str
    exists: str = "{name} already exists."
    id_field: str | None = None  # the document field AWS returns as resourceId
    arn_field: str | None = None  # the document field holding the ARN
    taggable: bool = False
    arn_service: str = "iot"  # the ARN's service part (iotfleethub, iotdeviceadvisor ...)
    resource_type: str | None = None  # the ARN's resource type, when it differs from arn_path's first part

    def __post_init__(self):
        if self.taggable:
            resource_type = self.resource_type or self.arn_path.split("/", 1)[0]
            taggable(resource_type, lambda tx, name: tx.get(self.kind, name) is not None, service=self.arn_service)

    def arn(self, ctx, name: str) -> str:
        return ctx.arn(self.arn_path.format(name=name), service=self.arn_service)

    def find(self, ctx, name: str) -> dict | None:
        return ctx.tx.get(self.kind, name)

    def get(self, ctx, name: str, error: str = "ResourceNotFoundException") -> dict:
        """The document, or AWS's not-found error (`error` for families that model another type)."""
        doc = ctx.tx.get(self.kind, name)
        if doc is None:
            raise ServiceError(error, self.not_found.format(name=name))
        return doc

    def ensure_absent(self, ctx, name: str, error: str = "ResourceAlreadyExistsException") -> None:
        """AWS's already-exists error, with resourceId / resourceArn when the model has them."""
        doc = ctx.tx.get(self.kind, name)
        if doc is None:
            return
        fields = {}
        if self.id_field and doc.get(self.id_field) is not None:
            fields["resourceId"] = doc[self.id_field]
        if self.arn_field and doc.get(self.arn_field) is not None:
            fields["resourceArn"] = doc[self.arn_field]
        raise ServiceError(error, self.exists.format(name=name), **fields)

    def put(self, ctx, name: str, doc: dict, index: dict | None = None) -> None:
        ctx.tx.put(self.kind, name, doc, index)

    def create(self, ctx, name: str, doc: dict, tags: dict[str, str] | None = None, index: dict | None = None) -> None:
        """Store a new resource with its tags (the caller checked ensure_absent)."""
        ctx.tx.put(self.kind, name, doc, index)
        if tags:
            apply_tags(ctx, self.arn(ctx, name), tags)

    def delete(self, ctx, name: str) -> bool:
        """Delete the resource and its tags; False when it was not there."""
        if not ctx.tx.delete(self.kind, name):
            return False
        ctx.tx.drop_tags(self.arn(ctx, name))
        return True

    def list(self, ctx) -> list[tuple[str, dict]]:
        """(name, document) of every resource of this type in the caller's scope, by name."""
        return ctx.tx.scan(self.kind)
