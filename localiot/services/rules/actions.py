"""Rule actions: a registry of action types, each with its create-time checks
and its runtime `prepare`.

`prepare(config, invocation)` runs on the event loop (substitution templates
may read the store through the SQL context) and returns a Job whose `run()`
does the I/O: the engine runs it in its thread pool, or on the loop when the
job is `inline` (republish). Either step raises ActionError, which becomes
one entry of the error action's `failures`.

The actions themselves live in `actions_messaging` and `actions_storage`,
which register into `ACTIONS` with `@action`; `action_types.load_all()`
gives the full set (this module never imports them).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

from localiot.protocol.errors import invalid
from localiot.services.iam import is_role_arn

ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:.+$")


class ActionError(Exception):
    """An action that could not be performed; `message` goes to the error action."""

    def __init__(self, message: str, resource: str | None = None):
        super().__init__(message)
        self.message = message
        self.resource = resource


@dataclass
class Job:
    resource: str
    run: Callable[[], Any]
    inline: bool = False


@dataclass
class Invocation:
    """One rule result on its way to one action."""

    runtime: Any
    account: str
    region: str
    rule_name: str
    topic: str  # as the rule's SQL sees it (Basic Ingest prefix removed)
    client_id: str | None
    original: bytes  # the incoming message payload
    value: Any  # Result.value: dict, list or bytes
    payload: bytes  # Result.to_payload()
    context: Any  # the EvalContext the SQL ran with
    payload_value: Any  # the incoming payload as templates see it
    enabled_urls: tuple = ()  # confirmation URLs of ENABLED HTTP destinations
    publish: Callable | None = None  # (account, region, topic, payload, qos, properties)
    substitute: Callable | None = None  # (template, context, payload_value) -> str
    _json: Any = field(default=None, repr=False)

    def sub(self, template):
        """Expand `${...}` templates against the incoming message."""
        if template is None or "${" not in template:
            return template
        try:
            return self.substitute(template, self.context, self.payload_value)
        except ActionError:
            raise
        except Exception as error:  # the template's SQL failed at runtime
            raise ActionError(f"Failed to evaluate the substitution template {template!r}: {error}") from None

    def client(self, service: str, region: str | None = None):
        return self.runtime.aws_client(service, region or self.region)

    def json(self, *, decimals: bool = False):
        """The result as a JSON value (None when the result is not JSON)."""
        if decimals:
            try:
                return json.loads(self.payload, parse_float=Decimal, parse_int=Decimal)
            except ValueError:
                return None
        if self._json is None:  # from the payload: plain floats, not the SQL engine's Decimals
            try:
                self._json = json.loads(self.payload)
            except ValueError:
                self._json = _NOT_JSON
        return None if self._json is _NOT_JSON else self._json

    def text(self) -> str:
        try:
            return self.payload.decode("utf-8")
        except UnicodeDecodeError:
            raise ActionError("The message payload is not valid UTF-8 text.") from None

    def fail(self, what: str, error, action: str, **details) -> ActionError:
        """An ActionError worded like AWS's: what failed, why, where the message came from."""
        parts = [f"Message arrived on: {self.topic}", f"Action: {action}"]
        parts += [f"{k}: {v}" for k, v in details.items() if v is not None]
        return ActionError(f"{what}. The error received was {describe(error)}. {', '.join(parts)}")


_NOT_JSON = object()


def describe(error) -> str:
    """A downstream error as text: botocore's message carries the code and operation."""
    if isinstance(error, str):
        return error
    text = str(error) or type(error).__name__
    return text


@dataclass
class ActionType:
    key: str  # the Action member: "sqs"
    failed_action: str  # AWS's name in error messages: "SqsAction"
    required: tuple
    prepare: Callable
    check: Callable | None = None  # (config, where) -> None, raises InvalidRequestException


ACTIONS: dict[str, ActionType] = {}


def action(key: str, failed_action: str, required: tuple = (), check: Callable | None = None):
    def register(prepare: Callable) -> Callable:
        ACTIONS[key] = ActionType(key, failed_action, required, prepare, check)
        return prepare

    return register


# create-time validation ---------------------------------------------------------
def action_kind(action_doc: dict) -> tuple[str, dict]:
    members = [(k, v) for k, v in (action_doc or {}).items() if v is not None]
    if len(members) != 1:
        raise invalid("Each action must specify exactly one action type.")
    return members[0]


def validate_action(action_doc: dict, where: str, sql_version: str | None = None) -> tuple[str, dict]:
    key, config = action_kind(action_doc)
    kind = ACTIONS.get(key)
    if kind is None:
        raise invalid(f"{where}: unsupported action type {key}.")
    if not isinstance(config, dict):
        raise invalid(f"{where}.{key} must be an object.")
    for name in kind.required:
        value = config.get(name)
        if value is None or (isinstance(value, (str, list, dict)) and not value):
            raise invalid(f"{where}.{key}.{name} is required.")
    if config.get("roleArn") is not None:
        check_role_arn(config["roleArn"], f"{where}.{key}.roleArn")
    if kind.check is not None:
        kind.check(config, f"{where}.{key}")
    check_templates(config, f"{where}.{key}", sql_version)
    return key, config


def check_templates(value, where: str, sql_version: str | None) -> None:
    """Every `${...}` in an action must be a valid expression, as AWS checks at create time."""
    if isinstance(value, str):
        if "${" in value:
            from localiot.iotsql import SqlParseError, parse_template

            try:
                parse_template(value, sql_version) if sql_version else parse_template(value)
            except SqlParseError as error:
                raise invalid(f"{where}: invalid substitution template {value!r}: {error}") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            check_templates(v, f"{where}.{k}", sql_version)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_templates(v, f"{where}[{i}]", sql_version)


def check_role_arn(value: str, where: str) -> None:
    if not is_role_arn(value):
        raise invalid(f"{where}: {value} is not a valid IAM role ARN.")


def check_arn(value: str, where: str, service: str | None = None) -> None:
    if not ARN.match(value or "") and "${" not in (value or ""):
        raise invalid(f"{where}: {value} is not a valid ARN.")
    if service and "${" not in value and value.split(":")[2] != service:
        raise invalid(f"{where}: {value} is not an ARN of {service}.")


def check_url(value: str, where: str) -> None:
    if "${" in value:
        return
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise invalid(f"{where}: {value} is not a valid URL.")


def check_enum(value, allowed, where: str) -> None:
    if value is not None and "${" not in str(value) and value not in allowed:
        raise invalid(f"{where}: {value} is not one of {', '.join(allowed)}.")


def has_template(value: str | None) -> bool:
    return value is not None and "${" in value


# runtime helpers ------------------------------------------------------------------
def region_of_arn(arn: str, default: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 4 and parts[3] else default


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# HTTP ---------------------------------------------------------------------------
HTTP_TIMEOUT = 5.0


def credentials(runtime):
    """Credentials for signing downstream requests (sigv4 HTTP auth, OpenSearch)."""
    import boto3

    config = runtime.config
    session = boto3.Session(aws_access_key_id=config.downstream_access_key or None,
                            aws_secret_access_key=config.downstream_secret_key or None)
    return session.get_credentials()


def http_send(method: str, url: str, body: bytes, headers: dict, *, sign: tuple | None = None,
              runtime=None, timeout: float = HTTP_TIMEOUT) -> int:
    """One real HTTP request; returns the status, raises ActionError when it is not 2xx.

    `sign` is (service, region): the request is signed with SigV4 using the
    downstream credentials, as AWS signs with the role it assumes."""
    import urllib.error
    import urllib.request

    headers = dict(headers)
    if sign is not None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        creds = credentials(runtime)
        if creds is None:
            raise ActionError("No credentials are available to sign the request with SigV4.")
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(creds, sign[0], sign[1]).add_auth(request)
        headers = dict(request.headers.items())
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        raise ActionError(f"HTTP status code {error.code} ({error.reason}) from {url}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise ActionError(f"Could not reach {url}: {reason}") from None
