"""The Device Advisor test cases AWS documents: their ids, display names and
configuration keys, and the check of a suite's rootGroup against them.

Source: the AWS IoT developer guide, "Device Advisor test cases" (TLS, MQTT,
Permissions and policies, Shadow, Job Execution). Spellings are AWS's.
Where AWS's own pages disagree, both spellings are accepted and the newer
page's is canonical:

- the cipher suites case is `TLS_Support_AWS_IoT_Cipher_Suites` in every
  version of the page (not "TLS_Device_Support_For_AWS_IoT_Cipher_Suites");
- the PUBACK case is `MQTT_Client_Puback_QoS1` on the current page and
  `MQTT_Client_Puback_Qos1` on older ones;
- the subscribe cases validate topics with `TOPIC_LIST_FOR_SUBSCRIPTION_VALIDATION_ID`
  (a list); the publish cases with `TOPIC_FOR_PUBLISH_VALIDATION` and
  `PAYLOAD_FOR_PUBLISH_VALIDATION` (there is no MESSAGE_FOR_PUBLISH_VALIDATION
  nor a QoS key);
- the server-disconnect backoff case is
  `MQTT_Reconnect_Backoff_Retries_On_Server_Disconnect` with
  `RECONNECTION_ATTEMPTS` (5 to 10, default 5); "Subscribe Retry - No SUBACK"
  is `MQTT_Subscribe_Retry_No_Suback`; keep-alive is `MQTT_No_Ack_PingResp`.

The MQTT long duration test case is `MQTT_Long_Duration` (suites with
isLongDurationTest) with AWS's keys: OPERATIONS (PUBLISH, SUBSCRIBE; CONNECT is
always tested), SCENARIOS, LONG_SERVER_DISCONNECT_TIME and
ADDITIONAL_EXECUTION_TIME (minutes; AWS accepts 30-120 and 0-120, localiot any
number of minutes from 0, fractions too, so that a CI run is short), and
BACKOFF_CONNECTION_ATTEMPTS (5 to 10, default 5) for RECONNECT_BACK_OFF
(localiot.advisor.cases.longrun). Of AWS's advanced SCENARIOS, localiot serves
RECONNECT_BACK_OFF, LONG_SERVER_DISCONNECT and INTERMITTENT_CONNECTIVITY;
PUBACK_QOS_1, RECEIVE_LARGE_PAYLOAD, PERSISTENT_SESSION and KEEP_ALIVE are
refused by the SCENARIOS check (not served yet). BASIC_TESTS_EXECUTION_TIMEOUT
and LONG_PAYLOAD_FORMAT are kept and not used.
Not confirmed from AWS's pages, so not listed: the ids of the MQTT 5
specific cases. The allowed range of
EXECUTION_TIMEOUT is not documented either; any positive number of seconds
is accepted (AWS documents the defaults: 300 s, 60 s for Security_Device_Policies).

`validate_root_group` is what CreateSuiteDefinition / UpdateSuiteDefinition
use; `plan` turns a validated rootGroup into the ordered test cases a run
executes, with each case's configuration merged suite -> group -> test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

STRING, SECONDS, INTEGER, OBJECT, TOPIC_LIST, JSON_TEXT = "string", "seconds", "integer", "object", "list", "json"
CHOICES, MINUTES = "choices", "minutes"  # a list of some of Key.choices; a number of minutes, 0 or more


@dataclass(frozen=True)
class Key:
    name: str
    kind: str = STRING
    required: bool = False
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestCase:
    id: str
    title: str  # AWS's display name of the case
    category: str  # TLS, MQTT, Shadow, Job Execution, Permissions and policies
    keys: tuple[Key, ...] = ()
    default_timeout: int = 300
    needs_thing: bool = False  # shadow and jobs cases need a thing as the device under test
    aliases: tuple[str, ...] = ()

    @property
    def over_websocket(self) -> bool:
        """Whether the case runs in a suite over WebSocket: AWS offers the MQTT, shadow and job cases
        there; the TLS cases test a TLS client with its certificate, and the policy case the policies of
        the certificate, which a device signing with SigV4 has neither of."""
        return self.category in WEBSOCKET_CATEGORIES

    def key(self, name: str) -> Key | None:
        for k in self.keys:
            if k.name == name:
                return k
        return None


WEBSOCKET_CATEGORIES = ("MQTT", "Shadow", "Job Execution")
TIMEOUT = Key("EXECUTION_TIMEOUT", SECONDS)
_PUBLISH_KEYS = (TIMEOUT, Key("TOPIC_FOR_PUBLISH_VALIDATION"), Key("PAYLOAD_FOR_PUBLISH_VALIDATION"))
_SUBSCRIBE_KEYS = (TIMEOUT, Key("TOPIC_LIST_FOR_SUBSCRIPTION_VALIDATION_ID", TOPIC_LIST))

CASES: tuple[TestCase, ...] = (
    # TLS
    TestCase("TLS_Connect", "TLS Connect", "TLS", (TIMEOUT,)),
    TestCase("TLS_Receive_Maximum_Size_Fragments", "TLS Receive Maximum Size Fragments", "TLS",
             (TIMEOUT, Key("PAYLOAD_FORMAT"), Key("TRIGGER_TOPIC"))),
    TestCase("TLS_Support_AWS_IoT_Cipher_Suites", "TLS Device Support for AWS IoT recommended Cipher Suites", "TLS",
             (TIMEOUT,), aliases=("TLS_Device_Support_For_AWS_IoT_Cipher_Suites",)),
    TestCase("TLS_Large_Size_Server_Cert", "TLS large Size Server Certificate", "TLS", (TIMEOUT,)),
    TestCase("TLS_Unsecure_Server_Cert", "Not Signed By Recognized CA", "TLS", (TIMEOUT,)),
    TestCase("TLS_Incorrect_Subject_Name_Server_Cert",
             "Incorrect Subject Common Name (CN) / Subject Alternative Name (SAN)", "TLS", (TIMEOUT,)),
    TestCase("TLS_Expired_Server_Cert", "Expired server certificate", "TLS", (TIMEOUT,)),
    # Permissions and policies
    TestCase("Security_Device_Policies", "Device certificate attached policies don't contain wildcards",
             "Permissions and policies", (TIMEOUT,), default_timeout=60),
    # MQTT: CONNECT, DISCONNECT and RECONNECT
    TestCase("MQTT_Connect", "Device send CONNECT to AWS IoT Core (Happy case)", "MQTT", (TIMEOUT,)),
    TestCase("MQTT_Client_Puback_QoS1", "Device can return PUBACK to an arbitrary topic for QoS1", "MQTT",
             (TIMEOUT, Key("TRIGGER_TOPIC"), Key("PAYLOAD_FOR_PUBLISH_VALIDATION"),
              Key("PAYLOAD_SIZE", INTEGER, low=0, high=128)), aliases=("MQTT_Client_Puback_Qos1",)),
    TestCase("MQTT_Connect_Jitter_Backoff_Retries", "Device connect retries with jitter backoff - No CONNACK response",
             "MQTT", (TIMEOUT,)),
    TestCase("MQTT_Connect_Exponential_Backoff_Retries",
             "Device connect retries with exponential backoff - No CONNACK response", "MQTT", (TIMEOUT,)),
    TestCase("MQTT_ReconnectionAfterSuccessfulConnection",
             "Device re-connect with at least one second delay - After server disconnect", "MQTT", (TIMEOUT,)),
    TestCase("MQTT_Reconnect_Backoff_Retries_On_Server_Disconnect",
             "Device re-connect with jitter backoff - After server disconnect", "MQTT",
             (TIMEOUT, Key("RECONNECTION_ATTEMPTS", INTEGER, low=5, high=10))),
    # MQTT: publish, subscribe
    TestCase("MQTT_Publish", "QoS0 (Happy Case)", "MQTT", _PUBLISH_KEYS),
    TestCase("MQTT_Publish_Retry_No_Puback", "QoS1 publish retry - No PUBACK", "MQTT", _PUBLISH_KEYS),
    TestCase("MQTT_Subscribe", "Can Subscribe (Happy Case)", "MQTT", _SUBSCRIBE_KEYS),
    TestCase("MQTT_Subscribe_Retry_No_Suback", "Subscribe Retry - No SUBACK", "MQTT", _SUBSCRIBE_KEYS),
    # MQTT: keep-alive, persistent sessions
    TestCase("MQTT_No_Ack_PingResp", "Mqtt No Ack PingResp", "MQTT", (TIMEOUT,)),
    TestCase("MQTT_Persistent_Session_Happy_Case", "Persistent Session (Happy Case)", "MQTT",
             (TIMEOUT, Key("TRIGGER_TOPIC", required=True), Key("PAYLOAD"))),
    TestCase("MQTT_Expired_Persistent_Session", "Persistent Session - Session Expiry", "MQTT",
             (TIMEOUT, Key("TRIGGER_TOPIC", required=True))),
    # MQTT long duration (suites with isLongDurationTest)
    TestCase("MQTT_Long_Duration", "MQTT Long Duration", "MQTT",
             (TIMEOUT, Key("OPERATIONS", CHOICES, choices=("CONNECT", "PUBLISH", "SUBSCRIBE")),
              Key("SCENARIOS", CHOICES, choices=("LONG_SERVER_DISCONNECT", "RECONNECT_BACK_OFF",
                                                 "INTERMITTENT_CONNECTIVITY")),
              Key("LONG_SERVER_DISCONNECT_TIME", MINUTES), Key("ADDITIONAL_EXECUTION_TIME", MINUTES),
              Key("BACKOFF_CONNECTION_ATTEMPTS", INTEGER, low=5, high=10)), default_timeout=4 * 3600),
    # Shadow
    TestCase("Shadow_Publish_Reported_State", "Device publishes state after it connects (Happy case)", "Shadow",
             (TIMEOUT, Key("SHADOW_NAME"), Key("REPORTED_STATE", OBJECT)), needs_thing=True),
    TestCase("Shadow_Update_Reported_State", "Device updates reported state to desired state (Happy case)", "Shadow",
             (TIMEOUT, Key("SHADOW_NAME"), Key("DESIRED_STATE", OBJECT, required=True)), needs_thing=True),
    # Job Execution
    TestCase("Job_Execution", "Device can complete a job execution", "Job Execution",
             (TIMEOUT, Key("JOB_DOCUMENT", JSON_TEXT), Key("JOB_DOCUMENT_SOURCE"), Key("JOB_JOBID"),
              Key("JOB_PRESIGN_ROLE_ARN"), Key("JOB_PRESIGN_EXPIRES_IN_SEC", INTEGER, low=60, high=3600)),
             needs_thing=True),
)

BY_ID: dict[str, TestCase] = {}
for _case in CASES:
    BY_ID[_case.id] = _case
    for _alias in _case.aliases:
        BY_ID[_alias] = _case


class CatalogError(ValueError):
    """A rootGroup that AWS would refuse; the message says what and where."""


@dataclass
class PlannedCase:
    """One test case of a suite, in run order, with its merged configuration."""
    group_index: int
    group_name: str
    name: str  # the test's name in the rootGroup (testCaseDefinitionName)
    case: TestCase
    version: str
    configuration: dict = field(default_factory=dict)

    @property
    def timeout(self) -> float:
        return execution_timeout(self.case, self.configuration)


def find(test_id: str) -> TestCase | None:
    return BY_ID.get(test_id)


def execution_timeout(case: TestCase, configuration: dict) -> float:
    raw = configuration.get("EXECUTION_TIMEOUT")
    return float(raw) if raw not in (None, "") else float(case.default_timeout)


def _load(root_group) -> dict:
    if isinstance(root_group, dict):
        return root_group
    try:
        value = json.loads(root_group)
    except (TypeError, ValueError) as e:
        raise CatalogError(f"rootGroup is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise CatalogError("rootGroup must be a JSON object with a \"tests\" list of groups.")
    return value


def _configuration(node: dict, where: str) -> dict:
    conf = node.get("configuration", {})
    if conf is None:
        return {}
    if not isinstance(conf, dict):
        raise CatalogError(f"The configuration of {where} must be a JSON object.")
    return conf


def plan(root_group) -> list[PlannedCase]:
    """The suite's test cases in run order; raises CatalogError for anything AWS would refuse."""
    root = _load(root_group)
    suite_conf = _configuration(root, "the suite")
    groups = root.get("tests")
    if not isinstance(groups, list) or not groups:
        raise CatalogError("A test suite must have at least one test group in \"tests\".")
    planned: list[PlannedCase] = []
    for gi, group in enumerate(groups):
        if not isinstance(group, dict):
            raise CatalogError(f"Test group {gi + 1} must be a JSON object.")
        group_name = group.get("name")
        if not isinstance(group_name, str) or not group_name:
            raise CatalogError(f"Test group {gi + 1} needs a \"name\".")
        group_conf = _configuration(group, f"test group {group_name!r}")
        tests = group.get("tests")
        if not isinstance(tests, list) or not tests:
            raise CatalogError(f"Test group {group_name!r} must have at least one test case in \"tests\".")
        for ti, test in enumerate(tests):
            if not isinstance(test, dict):
                raise CatalogError(f"Test case {ti + 1} of group {group_name!r} must be a JSON object.")
            name = test.get("name")
            if not isinstance(name, str) or not name:
                raise CatalogError(f"Test case {ti + 1} of group {group_name!r} needs a \"name\".")
            spec = test.get("test")
            if not isinstance(spec, dict) or not isinstance(spec.get("id"), str):
                raise CatalogError(f"Test case {name!r} needs a \"test\" object with an \"id\" and a \"version\".")
            case = find(spec["id"])
            if case is None:
                raise CatalogError(f"Test case {name!r}: unknown test id {spec['id']!r}.")
            version = spec.get("version", "0.0.0")
            if not isinstance(version, str):
                raise CatalogError(f"Test case {name!r}: \"version\" must be a string.")
            conf = {**suite_conf, **group_conf, **_configuration(test, f"test case {name!r}")}
            check_configuration(case, conf, name)
            planned.append(PlannedCase(gi, group_name, name, case, version, conf))
    return planned


def validate_root_group(root_group) -> list[PlannedCase]:
    """CreateSuiteDefinition's check: the plan, or CatalogError with AWS-style text."""
    return plan(root_group)


def check_configuration(case: TestCase, conf: dict, name: str) -> None:
    """The keys a case reads must have the documented shape; unknown keys are kept (AWS ignores them)."""
    for key in case.keys:
        if key.name not in conf or conf[key.name] in (None, ""):
            if key.required:
                raise CatalogError(f"Test case {name!r} ({case.id}) needs the configuration {key.name}.")
            continue
        _check_value(case, key, conf[key.name], name)
    if case.id == "Job_Execution" and not any(conf.get(k) for k in ("JOB_DOCUMENT", "JOB_DOCUMENT_SOURCE", "JOB_JOBID")):
        raise CatalogError(f"Test case {name!r} (Job_Execution) needs JOB_DOCUMENT, JOB_DOCUMENT_SOURCE or JOB_JOBID.")


def _check_value(case: TestCase, key: Key, value, name: str) -> None:
    where = f"Test case {name!r} ({case.id}): {key.name}"
    if key.kind in (SECONDS, INTEGER):
        try:
            number = float(value) if key.kind == SECONDS else int(str(value))
        except (TypeError, ValueError):
            raise CatalogError(f"{where} must be a number, not {value!r}.") from None
        if isinstance(value, bool) or number <= 0 and key.kind == SECONDS:
            raise CatalogError(f"{where} must be a positive number of seconds.")
        if key.low is not None and not key.low <= number <= key.high:
            raise CatalogError(f"{where} must be between {key.low} and {key.high}.")
    elif key.kind == MINUTES:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = -1
        if isinstance(value, bool) or not number >= 0:
            raise CatalogError(f"{where} must be a number of minutes (0 or more), not {value!r}.")
    elif key.kind == CHOICES:
        allowed = ", ".join(key.choices)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise CatalogError(f"{where} must be a list of some of {allowed}.")
        wrong = [v for v in value if v not in key.choices]
        if wrong:
            raise CatalogError(f"{where}: {', '.join(map(repr, wrong))} is not one of {allowed}.")
    elif key.kind == OBJECT:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        if not isinstance(value, dict) or (key.required and not value):
            raise CatalogError(f"{where} must be a JSON object with at least one attribute.")
    elif key.kind == TOPIC_LIST:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
            raise CatalogError(f"{where} must be a list of topic names.")
    elif key.kind == JSON_TEXT:
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError:
                raise CatalogError(f"{where} must be a JSON document.") from None
        elif not isinstance(value, dict):
            raise CatalogError(f"{where} must be a JSON document.")
    elif not isinstance(value, (str, int, float)):
        raise CatalogError(f"{where} must be a string.")


def object_value(conf: dict, name: str) -> dict | None:
    """An OBJECT key's value as a dict (AWS accepts it as JSON or as a JSON string)."""
    value = conf.get(name)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def topic_list(conf: dict, name: str) -> list[str]:
    value = conf.get(name)
    if isinstance(value, str):
        return [value] if value else []
    return [t for t in value or [] if isinstance(t, str)]
