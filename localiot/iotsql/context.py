"""What a rule evaluation may know about the message and call out to.

Everything is injected: the rules engine fills the message facts and wires
the hooks to the emulated services. A function whose hook is None raises
`SqlEvaluationError`, which the engine reports through the errorAction.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def _uuid4() -> str:
    return str(uuid.uuid4())


@dataclass
class EvalContext:
    # -- the message ---------------------------------------------------------
    topic: str = ""                       # topic(); for Basic Ingest, without the $aws/rules/<rule>/ prefix
    client_id: str | None = None          # clientid(); None -> "n/a" (not sent over MQTT)
    principal: str | None = None          # principal(): certificate id, access key id, Cognito id...
    timestamp_ms: int | Callable[[], int] | None = None   # timestamp(); None -> the wall clock
    trace_id: str | None = None           # traceid(); None -> Undefined
    source_ip: str | None = None          # sourceip()
    account: str | None = None            # accountid(): the account that owns the rule
    region: str | None = None
    # MQTT 5 properties (get_mqtt_property, get_user_properties)
    content_type: str | None = None
    payload_format_indicator: int | None = None      # 0 UNSPECIFIED_BYTES, 1 UTF8_DATA
    response_topic: str | None = None
    correlation_data: bytes | None = None
    user_properties: list[tuple[str, str]] = field(default_factory=list)
    # Or the broker's property dict, read when the fields above are unset: payload_format_indicator,
    # content_type, response_topic, correlation_data (bytes), user_property (list of pairs).
    mqtt_properties: dict[str, Any] | None = None
    qos: int | None = None
    # -- hooks -----------------------------------------------------------------
    # get_thing_shadow(thingName[, shadowName], roleArn) -> the shadow document, None if absent
    thing_shadow_lookup: Callable[[str, str | None, str], dict | None] | None = None
    # aws_lambda(functionArn, inputJson) -> what the function returned
    lambda_invoke: Callable[[str, Any], Any] | None = None
    # get_secret(secretId, secretType, [key,] roleArn) -> SecretString (str) or SecretBinary (bytes)
    get_secret: Callable[[str, str, str], str | bytes | None] | None = None
    # get_dynamodb(...) -> the item as a plain dict (attribute name -> value), None if absent
    get_dynamodb: Callable[[str, dict[str, Any], str], dict | None] | None = None
    # get_registry_data(registryAPI, thingName, roleArn) -> the API's response as a dict
    get_registry_data: Callable[[str, str, str], Any] | None = None
    uuid_factory: Callable[[], str] = _uuid4          # newuuid()
    random: Callable[[], float] = random.random       # rand()
    extra: dict[str, Any] = field(default_factory=dict)

    def mqtt_property(self, name: str) -> Any:
        """An MQTT 5 property: the explicit field, else the broker's property dict."""
        value = getattr(self, name, None)
        if value is None and self.mqtt_properties:
            value = self.mqtt_properties.get(name)
        return value

    def user_property_pairs(self) -> list[tuple[str, str]]:
        pairs = self.user_properties
        if not pairs and self.mqtt_properties:
            pairs = self.mqtt_properties.get("user_property") or []
        return list(pairs.items()) if isinstance(pairs, dict) else list(pairs)
