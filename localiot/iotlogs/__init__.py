"""AWS IoT log entries, for real: what the broker, the rules engine, the shadow
and jobs doors and fleet provisioning did, written as AWS IoT writes them.

The fields are those of AWS IoT's developer guide page "CloudWatch AWS IoT
log entries" (cwl-format). Every entry has its common attributes:

    "timestamp": "2017-08-10 15:37:23.476", "logLevel": "INFO",
    "traceId": "20b23f3f-d7f1-feae-169f-82263394fbdb", "accountId": "123456789012",
    "status": "Success", "eventType": "Connect"

then its event's own. Used here: message broker `Connect`, `Disconnect`
(`disconnectReason`), `Publish-In`, `Publish-Out`, `Subscribe` with
"protocol": "MQTT", "topicName", "clientId", "principalId", "sourceIp",
"sourcePort"; a refused request has "status": "Failure", "logLevel": "ERROR",
"reason": "AUTHORIZATION_FAILURE" (or AUTHENTICATION_FAILURE, CLIENT_ERROR,
SERVER_ERROR) and "details". Rules engine `RuleMatch` ("ruleName",
"topicName", "clientId", "principalId") and `RuleExecution` ("ruleAction",
"resources"; a failed action is a `RuleExecution` with "status": "Failure" —
the page documents no other event type for it). Device Shadow
`GetThingShadow` / `UpdateThingShadow` / `DeleteThingShadow`
("deviceShadowName", "topicName"). Jobs `DescribeJobExecution`,
`GetPendingJobExecution`, `StartNextPendingJobExecution`,
`UpdateJobExecution` ("clientId", "jobId", "topicName", "clientToken",
"details": "The request status is SUCCESS."). Device provisioning
`GetDeviceCredentials` and `ProvisionDevice` ("provisioningTemplateName",
"deviceCertificateId").

Which entries are written: the level `levels.level_for` gives the client
(most specific target first; cached, see `sink`). A success is written at
INFO (jobs requests at DEBUG, as AWS's examples show), a refusal at ERROR;
DISABLED writes nothing. An account that never configured logging still gets
every refusal on the server log (logger `localiot.iotlogs`, at INFO), so a
user can always see why a device was refused; successes are not logged then.

Where they go: one JSON line per entry on the server log (the message of a
`localiot.iotlogs` record, so `grep localiot.iotlogs | sed 's/^[^{]*//' | jq`
works), and, when the options carry a roleArn and a downstream endpoint is
configured, CloudWatch Logs group `AWSIotLogsV2` (`cloudwatch`).

Each place that logs makes one call here: `connecting` / `connect_refused` /
`connected` / `disconnected`, `publish_refused` / `published`,
`subscribe_refused` / `subscribed`, `receive_checked`, `rule_matched` /
`rule_failed` / `rule_finished`, `logged` (a door's unit of work) and
`provisioning_replied`. With logging off the hot path (`published`) is one
attribute read and one comparison.
"""

from __future__ import annotations

import hashlib
import json

from localiot.iotlogs.entries import (AUTHENTICATION_FAILURE, AUTHORIZATION_FAILURE, CLIENT_ERROR, DEBUG, ERROR,
                                      FAILURE, INFO, SERVER_ERROR, SUCCESS)
from localiot.iotlogs.sink import UNCONFIGURED, IoTLogs

__all__ = ["AUTHORIZATION_FAILURE", "CLIENT_ERROR", "IoTLogs", "UNCONFIGURED", "connect_refused", "connected",
           "connecting", "disconnected", "existing", "forget", "logged", "of", "provisioning_replied",
           "publish_refused", "published", "receive_checked", "rule_failed", "rule_finished", "rule_matched",
           "subscribe_refused", "subscribed"]

_PAIRS: dict = {}  # (generation, level) tuples cached on connections, shared
_SERVER_CODES = (0x88, 0x89)  # MQTT 5 Server unavailable / Server busy
_DENIED, _RESERVED, _INVALID = 2, 1, 3  # localiot.broker.admission's statuses


def of(runtime, store=None) -> IoTLogs:
    """This server's IoTLogs, made on first use (`store`: the broker's, when the runtime has none)."""
    logs = getattr(runtime, "iotlogs", None)
    if logs is None:
        logs = runtime.iotlogs = IoTLogs(runtime, store)
    return logs


def existing(runtime) -> IoTLogs | None:
    return getattr(runtime, "iotlogs", None)


def forget(runtime) -> None:
    """The server's state was reset: every cached level and queued entry goes."""
    logs = existing(runtime)
    if logs is not None:
        logs.forget()


# the message broker: one connection --------------------------------------------------------
def connecting(conn, client_id: str | None, result=None) -> None:
    """Remember who is connecting (CONNECT read; then the authentication's result)."""
    t = conn.transport
    peer = t.get_extra_info("peername") if t is not None else None
    port = peer[1] if isinstance(peer, tuple) and len(peer) > 1 else None
    conn._iotlogs_who = (client_id, result, port)


def _who_of(conn) -> tuple:
    """(client id, authentication result, source port): once connected only the port is kept
    (the transport's own int object: an idle connection holds no tuple for its log entries)."""
    who = getattr(conn, "_iotlogs_who", None)
    if who.__class__ is tuple:
        return who
    return None, None, who


def _who(conn):
    """(logs, account, region, level inputs, fields) of a connection's entries."""
    logs = of(conn.broker.runtime, conn.broker.store)
    client_id, result, port = _who_of(conn)
    identity = conn.identity or (result if hasattr(result, "principal") else None)
    client_id = conn.client_id or client_id
    if identity is not None:
        account, region, principal, thing = identity.account, identity.region, identity.principal, identity.thing_name
    else:
        config = logs.runtime.config
        account, region, principal, thing = config.default_account, config.default_region, _certificate_id(conn), None
    fields = {"protocol": "MQTT", "clientId": client_id, "principalId": principal, "sourceIp": conn.remote,
              "sourcePort": port}
    return logs, account, region, (client_id, thing, conn.remote, principal), fields


def _certificate_id(conn) -> str | None:
    ssl_object = conn.transport.get_extra_info("ssl_object") if conn.transport is not None else None
    try:
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    except ValueError:  # (no handshake done)
        der = None
    return hashlib.sha256(der).hexdigest() if der else None


def _verbosity(conn):
    """The connection's level, cached on it until the options change; (logs, level or None)."""
    logs = of(conn.broker.runtime, conn.broker.store)
    cached = getattr(conn, "_iotlogs", None)
    if cached is not None and cached[0] == logs.generation:
        return logs, cached[1]
    generation = logs.generation
    identity = conn.identity
    level = logs.scope_level(identity.account, identity.region) if identity is not None else None
    if level is None:  # (a level per client: who it is decides)
        _, account, region, who, _ = _who(conn)
        level = logs.verbosity(account, region, *who)
    if level is not None and conn.identity is not None:
        pair = (generation, level)
        if len(_PAIRS) > 64:
            _PAIRS.clear()
        conn._iotlogs = _PAIRS.setdefault(pair, pair)  # one tuple shared by the connections at this level
    return logs, level


def _conn_entry(conn, level: int, status: str, event_type: str, extra: dict) -> None:
    logs, account, region, who, fields = _who(conn)
    fields.update(extra)
    cached = getattr(conn, "_iotlogs", None)
    if cached is not None and cached[0] == logs.generation:
        logs.write(account, region, cached[1], level, status, event_type, fields)
    else:
        logs.emit(account, region, who, level, status, event_type, fields)


def connect_refused(conn, reason_code: int, message: str | None) -> None:
    """A refused CONNECT (the CONNACK's reason code and message)."""
    result = _who_of(conn)[1]
    if reason_code in _SERVER_CODES:
        reason = SERVER_ERROR
    elif hasattr(result, "principal"):
        reason = AUTHORIZATION_FAILURE  # authenticated, but its policies refuse iot:Connect
    elif result is not None:
        reason = AUTHENTICATION_FAILURE
    else:
        reason = CLIENT_ERROR
    _conn_entry(conn, ERROR, FAILURE, "Connect",
                {"reason": reason, "details": message or f"CONNECT refused with reason code {reason_code}."})


def connected(conn) -> None:
    logs, level = _verbosity(conn)
    if level is not None and level >= INFO:
        _conn_entry(conn, INFO, SUCCESS, "Connect", {})
    conn._iotlogs_who = _who_of(conn)[2]


def disconnected(conn) -> None:
    logs, level = _verbosity(conn)
    if level is not None and level >= INFO:
        _conn_entry(conn, INFO, SUCCESS, "Disconnect", {"disconnectReason": conn.disconnect_reason})


# publish, subscribe, receive -------------------------------------------------------------------
def published(conn, topic: str) -> None:
    """An accepted PUBLISH (the hot path: nothing is built unless INFO is on for the client)."""
    cached = getattr(conn, "_iotlogs", None)
    if cached is not None and cached[1] < INFO and cached[0] == conn.broker.runtime.iotlogs.generation:
        return
    logs, level = _verbosity(conn)
    if level is not None and level >= INFO:
        _conn_entry(conn, INFO, SUCCESS, "Publish-In", {"topicName": topic})


def publish_refused(conn, decision, details: str | None = None) -> None:
    """A refused PUBLISH: an admission Decision (denied, invalid topic, refused by its door)
    or a topic (bytes or str) with the details of what was wrong."""
    if isinstance(decision, (str, bytes, type(None))):
        topic = decision.decode("utf-8", "replace") if isinstance(decision, bytes) else decision
        reason = CLIENT_ERROR
    else:
        topic, status = decision.topic, decision.status
        if status == _INVALID:
            reason, details = CLIENT_ERROR, decision.reason or "The topic name is not valid."
        elif status == _RESERVED:
            reason, details = CLIENT_ERROR, "No service accepted this request on the reserved topic."
        else:
            reason, details = AUTHORIZATION_FAILURE, decision.reason or "Authorization Failure"
    _conn_entry(conn, ERROR, FAILURE, "Publish-In", {"topicName": topic, "reason": reason, "details": details})


def subscribe_refused(conn, topic_filter: str, reason: str = AUTHORIZATION_FAILURE, details: str | None = None):
    if details is None:
        details = ("Not authorized to subscribe (iot:Subscribe) to this topic filter."
                   if reason == AUTHORIZATION_FAILURE else "The topic filter is not valid.")
    _conn_entry(conn, ERROR, FAILURE, "Subscribe", {"topicName": topic_filter, "reason": reason, "details": details})


def subscribed(conn, topic_filters: list) -> None:
    if not topic_filters:
        return
    logs, level = _verbosity(conn)
    if level is not None and level >= INFO:
        for topic_filter in topic_filters:
            _conn_entry(conn, INFO, SUCCESS, "Subscribe", {"topicName": topic_filter})


def receive_checked(session, topic: str, allowed: bool) -> None:
    """iot:Receive was asked for a session and topic (once per topic: the broker caches it)."""
    conn = session.conn
    if allowed or conn is None:
        return
    _conn_entry(conn, ERROR, FAILURE, "Publish-Out",
                {"topicName": topic, "reason": AUTHORIZATION_FAILURE,
                 "details": "Not authorized to receive (iot:Receive) messages on this topic."})


# the rules engine --------------------------------------------------------------------------------
def _rule_entry(runtime, msg, level: int, status: str, event_type: str, fields: dict) -> None:
    logs = of(runtime)
    who = (msg.client_id, None, None, msg.principal)
    base = {"clientId": msg.client_id or "N/A", "topicName": msg.topic, "principalId": msg.principal or "N/A"}
    base.update(fields)
    logs.emit(msg.account, msg.region, who, level, status, event_type, base, trace=msg.trace_id or None)


def rule_matched(runtime, rule_name: str, msg) -> None:
    logs = of(runtime)
    level = logs.verbosity(msg.account, msg.region, msg.client_id, None, None, msg.principal)
    if level is None or level >= INFO:
        _rule_entry(runtime, msg, INFO, SUCCESS, "RuleMatch", {"ruleName": rule_name})


def rule_failed(runtime, rule_name: str, msg, action: str, resource: str, message: str) -> None:
    _rule_entry(runtime, msg, ERROR, FAILURE, "RuleExecution",
                {"ruleName": rule_name, "ruleAction": action, "resources": {"Resource": resource} if resource else None,
                 "reason": "RuleExecutionFailure", "details": message})


def rule_finished(run, actions: dict) -> None:
    """A rule's actions are done: a RuleExecution entry for each that did not fail
    (`actions`: the rules engine's action table, for AWS's action names)."""
    engine, msg = run.engine, run.msg
    logs = of(engine.runtime)
    level = logs.verbosity(msg.account, msg.region, msg.client_id, None, None, msg.principal)
    if level is not None and level < INFO:
        return
    failed: dict[str, int] = {}
    for failure in run.failures:
        failed[failure["failedAction"]] = failed.get(failure["failedAction"], 0) + 1
    for key, job in run.jobs:
        action = actions[key].failed_action if key in actions else key
        if failed.get(action):
            failed[action] -= 1
            continue
        resource = getattr(job, "resource", None)
        _rule_entry(engine.runtime, msg, INFO, SUCCESS, "RuleExecution",
                    {"ruleName": run.rule.name, "ruleAction": action,
                     "resources": {"Resource": resource} if resource else None})


# doors: shadows, jobs, provisioning ------------------------------------------------------------
_JOB_EVENTS = {"GetPendingJobExecutions": "GetPendingJobExecution"}


def logged(fn, publish, operation: str):
    """`fn(ctx)` for a door's unit of work, writing the request's entry once it has run:
    Failure when the request's reply went to `/rejected`."""

    def run(ctx):
        result = fn(ctx)
        _door_entry(ctx, publish, operation)
        return result

    return run


def _door_entry(ctx, publish, operation: str) -> None:
    logs = of(ctx.runtime)
    conn, identity, parts = publish.connection, publish.identity, publish.parts
    client_id = conn.client_id if conn is not None else None
    who = (client_id, identity.thing_name, conn.remote if conn is not None else None, identity.principal)
    rejected_body = next((body for topic, body in ctx.events if topic == publish.topic + "/rejected"), None)
    accepted_body = next((body for topic, body in ctx.events if topic == publish.topic + "/accepted"), None)
    rejected = rejected_body is not None
    body = _json(rejected_body if rejected else accepted_body)
    event = _JOB_EVENTS.get(operation, operation)
    fields = {"protocol": "MQTT", "topicName": publish.topic}
    if "shadow" in publish.topic.split("/")[3:4]:
        fields["deviceShadowName"] = parts.get("shadow") or parts.get("thing")
        level = INFO
    else:
        request = parts.get("request", "").split("/")
        job_id = request[0] if len(request) > 1 and request[0] not in ("get", "start-next") else None
        fields.update(clientId=client_id, jobId=job_id, clientToken=body.get("clientToken"),
                      details=None if rejected else "The request status is SUCCESS.")
        level = DEBUG
    if rejected:
        fields.update(reason=str(body.get("code", CLIENT_ERROR)), details=body.get("message"))
        level = ERROR
    logs.emit(ctx.account, ctx.region, who, level, FAILURE if rejected else SUCCESS, event, fields, tx=ctx.tx)


def provisioning_replied(conn, topic: str, body: dict) -> None:
    """Fleet provisioning answered `topic` (.../accepted or .../rejected) with `body`."""
    logs, account, region, who, _ = _who(conn)
    rejected = topic.endswith("/rejected")
    levels_ = topic.split("/")
    if levels_[1] == "certificates":
        event, fields = "GetDeviceCredentials", {"deviceCertificateId": body.get("certificateId")}
    else:
        event, fields = "ProvisionDevice", {"provisioningTemplateName": levels_[2],
                                            "deviceCertificateId": who[3]}
    if rejected:
        fields.update(reason=str(body.get("errorCode", CLIENT_ERROR)), details=body.get("errorMessage"))
    logs.emit(account, region, who, ERROR if rejected else INFO, FAILURE if rejected else SUCCESS, event, fields)


def _json(payload) -> dict:
    if isinstance(payload, dict):
        return payload
    try:
        value = json.loads(payload)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}

