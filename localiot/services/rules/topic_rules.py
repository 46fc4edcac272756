"""Topic rules: create, get, replace, enable, disable, delete, list.

A rule's SQL is parsed when it is stored, so a bad statement is refused with
SqlParseException and the parser's message; every action (and the error
action) is checked for its required fields, role ARN and value formats. An
HTTP action whose destination URL is new creates that destination, which
then waits for confirmation, as AWS does.

Asking for a rule that does not exist answers UnauthorizedException
("Access to topic rule '...' was denied"), which is what AWS IoT answers.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from localiot.protocol.errors import ServiceError, invalid
from localiot.services import operation
from localiot.services.common import apply_tags, page
from localiot.services.rules import destinations
from localiot.services.rules.action_types import load_all as load_actions
from localiot.services.rules.actions import validate_action
from localiot.services.rules.actions_messaging import confirmation_url
from localiot.services.rules.documents import (
    DESTINATION_KIND,
    RULE_DISABLED_INDEX,
    RULE_KIND,
    RULE_TOPIC_INDEX,
    RULE_VPC_DESTINATION_INDEX,
    changed,
)
from localiot.services.tagging import taggable

KIND = RULE_KIND
SQL_VERSIONS = ("2015-10-08", "2016-03-23", "beta")
DEFAULT_SQL_VERSION = "2015-10-08"
MAX_DESCRIPTION = 10_000  # characters; AWS's limit on a rule's description


def arn(ctx, name: str) -> str:
    return ctx.arn(f"rule/{name}")


def _denied(name: str) -> ServiceError:
    return ServiceError("UnauthorizedException", f"Access to topic rule '{name}' was denied")


def get(ctx, name: str) -> dict:
    rule = ctx.tx.get(KIND, name)
    if rule is None:
        raise _denied(name)
    return rule


def save(ctx, rule: dict) -> None:
    ctx.tx.put(KIND, rule["ruleName"], rule, {
        RULE_TOPIC_INDEX: rule["topicPattern"],
        RULE_DISABLED_INDEX: "true" if rule["ruleDisabled"] else "false",
        RULE_VPC_DESTINATION_INDEX: list(_kafka_destinations(rule)),
    })
    changed(ctx)


def _kafka_destinations(rule: dict):
    for action_doc in [*rule["actions"], rule.get("errorAction")]:
        kafka = (action_doc or {}).get("kafka")
        if kafka:
            yield kafka["destinationArn"]


def _exists(tx, name: str) -> bool:
    return tx.get(KIND, name) is not None


taggable("rule", _exists)


# validation -----------------------------------------------------------------------
def parse_sql(sql: str, version: str):
    """The compiled query, or SqlParseException with the parser's own message."""
    from localiot.iotsql import SqlParseError, parse

    try:
        return parse(sql, version)
    except SqlParseError as error:
        raise ServiceError("SqlParseException", str(error)) from None


def _validate(ctx, payload: dict) -> tuple[dict, list[str]]:
    """The rule's stored fields, and the HTTP destination URLs its actions need."""
    load_actions()
    sql = payload.get("sql")
    if not sql or not sql.strip():
        raise invalid("The rule's sql is required.")
    version = payload.get("awsIotSqlVersion") or DEFAULT_SQL_VERSION
    if version not in SQL_VERSIONS:
        raise invalid(f"awsIotSqlVersion {version} is not supported: use one of {', '.join(SQL_VERSIONS)}.")
    description = payload.get("description")
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise invalid(f"The description is longer than {MAX_DESCRIPTION} characters.")
    actions = payload.get("actions")
    if actions is None:
        raise invalid("The rule's actions are required.")
    if len(actions) > 10:
        raise invalid("A rule can have at most 10 actions.")
    query = parse_sql(sql, version)
    urls: list[str] = []
    for i, action_doc in enumerate(actions):
        _validate_one(ctx, action_doc, f"actions[{i}]", urls, version)
    error_action = payload.get("errorAction")
    if error_action is not None:
        _validate_one(ctx, error_action, "errorAction", urls, version)
    fields = {
        "sql": sql,
        "description": description,
        "actions": actions,
        "errorAction": error_action,
        "ruleDisabled": bool(payload.get("ruleDisabled", False)),
        "awsIotSqlVersion": version,
        "topicPattern": query.topic_filter,
    }
    return fields, urls


def _validate_one(ctx, action_doc: dict, where: str, urls: list[str], version: str) -> None:
    key, config = validate_action(action_doc, where, version)
    if key == "http":
        url = confirmation_url(config)
        if url:
            urls.append(url)
    elif key == "kafka":
        dest = ctx.tx.get(DESTINATION_KIND, config["destinationArn"])
        if dest is None or dest["type"] != "vpc":
            raise invalid(f"{where}.kafka.destinationArn: the VPC destination {config['destinationArn']} "
                          "does not exist.")


def _ensure_destinations(ctx, urls: list[str]) -> None:
    """HTTP actions with a new URL create its destination, which then waits for confirmation.
    A destination whose confirmation URL is a prefix of the URL already covers it."""
    if not urls:
        return
    known = [doc["confirmationUrl"] for _, doc in ctx.tx.scan(DESTINATION_KIND) if doc["type"] == "http"]
    for url in sorted(set(urls), key=len):  # shorter first: a prefix covers the longer URLs
        if not any(url.startswith(prefix) for prefix in known):
            destinations.create_http(ctx, url)
            known.append(url)


def _tags(header: str | None) -> dict[str, str]:
    if not header:
        return {}
    tags = dict(parse_qsl(header, keep_blank_values=True))
    if not tags:
        raise invalid("The tags must have the form key1=value1&key2=value2.")
    return tags


# handlers -------------------------------------------------------------------------
@operation("iot")
def CreateTopicRule(ctx, req):
    name = req["ruleName"]
    if ctx.tx.get(KIND, name) is not None:
        raise ServiceError("ResourceAlreadyExistsException", f"Rule {name} already exists.",
                           resourceArn=arn(ctx, name))
    fields, urls = _validate(ctx, req["topicRulePayload"])
    tags = _tags(req.get("tags"))
    rule = {"ruleName": name, "ruleArn": arn(ctx, name), "createdAt": ctx.now(), **fields}
    save(ctx, rule)
    _ensure_destinations(ctx, urls)
    if tags:
        apply_tags(ctx, rule["ruleArn"], tags)
    return {}


@operation("iot")
def ReplaceTopicRule(ctx, req):
    rule = get(ctx, req["ruleName"])
    fields, urls = _validate(ctx, req["topicRulePayload"])
    rule.update(fields)
    save(ctx, rule)
    _ensure_destinations(ctx, urls)
    return {}


def view(rule: dict) -> dict:
    return {
        "ruleName": rule["ruleName"],
        "sql": rule["sql"],
        "description": rule.get("description"),
        "createdAt": rule["createdAt"],
        "actions": rule["actions"],
        "ruleDisabled": rule["ruleDisabled"],
        "awsIotSqlVersion": rule["awsIotSqlVersion"],
        "errorAction": rule.get("errorAction"),
    }


@operation("iot")
def GetTopicRule(ctx, req):
    rule = get(ctx, req["ruleName"])
    return {"ruleArn": rule["ruleArn"], "rule": view(rule)}


def _set_disabled(ctx, name: str, disabled: bool) -> dict:
    rule = get(ctx, name)
    if rule["ruleDisabled"] != disabled:
        rule["ruleDisabled"] = disabled
        save(ctx, rule)
    return {}


@operation("iot")
def EnableTopicRule(ctx, req):
    return _set_disabled(ctx, req["ruleName"], False)


@operation("iot")
def DisableTopicRule(ctx, req):
    return _set_disabled(ctx, req["ruleName"], True)


@operation("iot")
def DeleteTopicRule(ctx, req):
    rule = get(ctx, req["ruleName"])
    ctx.tx.delete(KIND, rule["ruleName"])
    ctx.tx.drop_tags(rule["ruleArn"])
    changed(ctx)
    return {}


def list_item(rule: dict) -> dict:
    return {
        "ruleArn": rule["ruleArn"],
        "ruleName": rule["ruleName"],
        "topicPattern": rule["topicPattern"],
        "createdAt": rule["createdAt"],
        "ruleDisabled": rule["ruleDisabled"],
    }


@operation("iot")
def ListTopicRules(ctx, req):
    tx = ctx.tx
    topic = req.get("topic")
    disabled = req.get("ruleDisabled")
    if topic is not None:
        def fetch(after, limit):
            rows = tx.find(KIND, RULE_TOPIC_INDEX, topic, after=after)
            if disabled is not None:
                rows = [r for r in rows if r[1]["ruleDisabled"] == disabled]
            return rows[:limit]
    elif disabled is not None:
        flag = "true" if disabled else "false"

        def fetch(after, limit):
            return tx.find(KIND, RULE_DISABLED_INDEX, flag, after=after, limit=limit)
    else:
        def fetch(after, limit):
            return tx.scan(KIND, after=after, limit=limit)

    rows, token = page(fetch, req, default_size=1000)
    return {"rules": [list_item(doc) for _, doc in rows], "nextToken": token}
