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
def encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


def decode_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise invalid("The specified nextToken is not valid.")


def page(fetch, req: dict, *, default_size: int = 50, size_key: str = "maxResults", token_key: str = "nextToken"):
    """Keyset pagination: `fetch(after, limit)` returns rows ordered by their key.

    Returns (rows, next_token). Rows are (key, value) pairs, or plain keys.
    """
    after = decode_token(req.get(token_key))
    limit = req.get(size_key) or default_size
    rows = fetch(after, limit + 1)
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1][0] if isinstance(rows[-1], tuple) else rows[-1]
    return rows, encode_token(last)


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
