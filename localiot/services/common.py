"""Helpers every family shares: ids, pagination tokens, tags, events."""

from __future__ import annotations

import base64
import binascii
import json
import uuid

from localiot.protocol.errors import ServiceError, invalid


def new_id() -> str:
    return str(uuid.uuid4())


# pagination ----------------------------------------------------------------
# Tokens are standard base64 of {"after": last key}: the standard alphabet fits
# every modelled token pattern (markers are [A-Za-z0-9+/]+={0,2}).
def encode_token(after) -> str:
    if isinstance(after, tuple):
        after = list(after)
    return base64.b64encode(json.dumps({"after": after}).encode()).decode()


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


def page_list(items: list, req: dict, key=lambda item: item, *, descending: bool = False, default_size: int = 50,
              size_key: str = "maxResults", token_key: str = "nextToken"):
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
    return items, encode_token(key(items[-1]))


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


def apply_tags(ctx, arn: str, tags: dict[str, str]) -> None:
    existing = ctx.tx.get_tags(arn)
    if len({**existing, **tags}) > MAX_TAGS:
        raise ServiceError("LimitExceededException", f"A resource can have at most {MAX_TAGS} tags.")
    for key in tags:
        if key.lower().startswith("aws:"):
            raise invalid("Tag keys with the prefix 'aws:' are reserved for AWS use.")
    ctx.tx.put_tags(arn, tags)
