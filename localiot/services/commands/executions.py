"""Command executions: start, deliver, device responses, timeouts, get, list, delete.

What AWS documents and this follows:

- StartCommandExecution (iot-jobs-data) targets one thing
  (`arn:aws:iot:<region>:<account>:thing/<name>`, which must exist) or one MQTT
  client (`...:client/<clientId>`). The command must exist and be neither
  deprecated nor pending deletion (ConflictException). The timeout defaults to
  10 seconds, at most 12 hours. A retried `clientToken` with the same request
  returns the same execution; with a different request it is a 409.
- Parameters resolve in this order: the request's, the command parameter's
  `value`, its `defaultValue`; a missing one, a wrong type or a failed value
  condition refuses the execution (ValidationException).
- The execution starts CREATED and its payload is queued on
  `$aws/commands/{things|clients}/{id}/executions/{executionId}/request/json`
  or `/request/cbor` for application/json and application/cbor payloads (and
  for dynamic commands, per the preprocessor's outputFormat), and on
  `.../request` with no format segment for any other content type.
  Substitution of a template: a JSON string that is exactly one placeholder
  becomes the typed value (number, boolean, string; base64 for BINARY in
  JSON, a byte string in CBOR), placeholders inside longer strings are
  replaced by their text.
- The device answers on `.../executions/{executionId}/response/{json|cbor}`
  with `status` (IN_PROGRESS, SUCCEEDED, FAILED, REJECTED, TIMED_OUT),
  optional `statusReason` {reasonCode, reasonDescription} and `result`
  {name: {s|b|bin}}. The service replies on `.../response/accepted/{fmt}`
  ({"executionId"}) or `.../response/rejected/{fmt}` ({"error",
  "errorMessage", "executionId"}, error codes as the device SDKs' RejectedErrorCode).
- Transitions: CREATED and IN_PROGRESS go anywhere but CREATED; the cloud's
  timeout makes TIMED_OUT with reasonCode `$NO_RESPONSE_FROM_DEVICE`, which is
  not terminal: the device may still report SUCCEEDED, FAILED, REJECTED or
  TIMED_OUT. SUCCEEDED, FAILED, REJECTED and a TIMED_OUT reported by the
  device are terminal (TerminalStateReached afterwards).
- Every status change is published on
  `$aws/events/commandExecution/{commandId}/{status}`.
- Only terminal executions can be deleted (ConflictException otherwise).
  Executions are kept for six months (`timeToLive`).

The timer (`tick`) times executions out and finishes pending command
deletions; reads apply an overdue timeout themselves, so answers never
depend on when the timer last ran.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from datetime import UTC, datetime

from localiot import cbor
from localiot.background import periodic
from localiot.protocol.errors import not_found
from localiot.services import operation
from localiot.services.commands import commands as cmds
from localiot.services.commands.commands import conflict, validation
from localiot.services.common import new_id, page_list
from localiot.services.unit_of_work import unit_of_work

KIND = "command-execution"
TOKENS = "command-client-token"
TIMER = "command-timer"
DEFAULT_TIMEOUT_SECONDS = 10
TIME_TO_LIVE_SECONDS = 183 * 24 * 3600  # "six months"
DEFAULT_PAGE_SIZE = 25
NO_RESPONSE = "$NO_RESPONSE_FROM_DEVICE"

OPEN = ("CREATED", "IN_PROGRESS")  # waiting for the cloud's timer
DEVICE_STATUSES = ("IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT")
FINAL = ("SUCCEEDED", "FAILED", "REJECTED")
REASON_CODE = re.compile(r"^[A-Z0-9_-]{1,64}$")
RESULT_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,32}$")
TARGET = re.compile(r"^arn:aws:iot:([^:]+):([^:]+):(thing|client)/(.+)$")
COMMAND = re.compile(r"^arn:aws:iot:([^:]+):([^:]+):command/(.+)$")


cbor_dumps = cbor.dumps
cbor_loads = cbor.loads


def encode(document, fmt: str) -> bytes:
    if fmt == "cbor":
        return cbor_dumps(document)
    return json.dumps(document, separators=(",", ":")).encode()


# targets and topics -----------------------------------------------------------
def parse_target(ctx, target_arn: str) -> tuple[str, str]:
    """(device type "things" or "clients", thing name or client id) of a target ARN."""
    match = TARGET.match(target_arn or "")
    if match is None:
        raise validation(f"Invalid targetArn {target_arn}: it must be a thing or a client ARN.")
    region, account, kind, name = match.groups()
    if kind == "thing":
        if (account, region) != (ctx.account, ctx.region) or ctx.tx.get("thing", name) is None:
            raise not_found(f"Thing {name} does not exist.")
        return "things", name
    if (account, region) != (ctx.account, ctx.region):
        raise validation(f"Invalid targetArn {target_arn}: it belongs to another account or region.")
    return "clients", name


def target_arn(ctx, device_type: str, device_id: str) -> str:
    return ctx.arn(f"{'thing' if device_type == 'things' else 'client'}/{device_id}")


def topic_base(execution: dict) -> str:
    return f"$aws/commands/{execution['deviceType']}/{execution['deviceId']}/executions/{execution['executionId']}"


def _format_of(content_type: str) -> str | None:
    media = content_type.split(";", 1)[0].strip().lower()
    return {"application/json": "json", "application/cbor": "cbor"}.get(media)


# parameters and payloads ---------------------------------------------------------
def _clean(value: dict) -> dict:
    return {k: v for k, v in (value or {}).items() if v is not None}


def resolve_parameters(command: dict, given: dict) -> dict:
    """The parameter values an execution uses, checked against the command's parameters."""
    given = {name: _clean(value) for name, value in (given or {}).items()}
    declared = command.get("mandatoryParameters") or []
    resolved = {}
    if declared:
        names = {p["name"] for p in declared}
        unknown = sorted(set(given) - names)
        if unknown:
            raise validation(f"Parameters {', '.join(unknown)} are not defined by command {command['commandId']}.")
    for parameter in declared:
        name = parameter["name"]
        value = given.get(name) or _clean(parameter.get("value")) or _clean(parameter.get("defaultValue"))
        if not value:
            raise validation(f"Parameter {name} of command {command['commandId']} has no value.")
        kind = cmds.check_value(name, parameter.get("type"), value)
        raw = value[cmds.TYPE_KEYS[kind]]
        for condition in parameter.get("valueConditions") or []:
            if not cmds.satisfies(kind, raw, condition):
                raise validation(f"The value of parameter {name} does not satisfy the condition "
                                 f"{condition['comparisonOperator']} of command {command['commandId']}.")
        resolved[name] = value
    for name, value in given.items():
        if name not in resolved:
            cmds.check_value(name, None, value)
            resolved[name] = value
    return resolved


def _typed(value: dict, fmt: str):
    kind = cmds.value_type(value)
    raw = value[cmds.TYPE_KEYS[kind]]
    if kind in ("INTEGER", "LONG", "UNSIGNEDLONG"):
        return int(raw)
    if kind == "DOUBLE":
        return float(raw)
    if kind == "BINARY":
        return bytes(raw) if fmt == "cbor" else base64.b64encode(raw).decode()
    return raw


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def render_template(template: str, fmt: str, parameters: dict, timeout: int) -> bytes:
    """The payload a dynamic command sends: its template with every placeholder substituted."""

    def value_of(inner: str):
        if inner == cmds.TIMEOUT_PLACEHOLDER:
            return timeout
        return _typed(parameters[inner[len(cmds.PARAMETER_PREFIX):]], fmt)

    def walk(node):
        if isinstance(node, str):
            whole = cmds.PLACEHOLDER.fullmatch(node)
            if whole:
                return value_of(whole.group(1))
            return cmds.PLACEHOLDER.sub(lambda m: _text(value_of(m.group(1))), node)
        if isinstance(node, dict):
            return {walk(k) if isinstance(k, str) else k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return encode(walk(json.loads(template)), fmt)


def _deliver(ctx, command: dict, execution: dict, parameters: dict) -> None:
    if command["namespace"] != "AWS-IoT":
        return  # FleetWise payloads are built by FleetWise (protobuf): not emulated
    if command.get("payloadTemplate") is not None:
        fmt = command["preprocessor"]["awsJsonSubstitution"]["outputFormat"].lower()
        body = render_template(command["payloadTemplate"], fmt, parameters, execution["executionTimeoutSeconds"])
    else:
        payload = command["payload"]
        fmt = _format_of(payload["contentType"])
        body = payload["content"]
    topic = f"{topic_base(execution)}/request" + (f"/{fmt}" if fmt else "")
    ctx.events.append((topic, bytes(body)))


# executions in the store ----------------------------------------------------------
def _index(execution: dict) -> dict:
    return {
        "target": execution["targetArn"],
        "command": execution["commandArn"],
        "open": "1" if execution["status"] in OPEN else None,
    }


def save(tx, execution: dict) -> None:
    tx.put(KIND, execution["executionId"], execution, _index(execution))


def remove(tx, execution: dict) -> None:
    tx.delete(KIND, execution["executionId"])
    if execution.get("clientToken"):
        tx.delete(TOKENS, execution["clientToken"])


def _emit(ctx, execution: dict, now: float) -> None:
    body = {"executionId": execution["executionId"], "status": execution["status"]}
    if execution.get("statusReason"):
        body["statusReason"] = execution["statusReason"]
    body.update(eventType="COMMAND_EXECUTION", commandArn=execution["commandArn"],
                targetArn=execution["targetArn"], timestamp=int(now * 1000))
    ctx.publish(f"$aws/events/commandExecution/{execution['commandId']}/{execution['status']}", body)


def time_out(ctx, execution: dict, now: float) -> None:
    """The cloud's timer ran out: TIMED_OUT, not terminal (the device may still answer)."""
    at = execution["deadline"]
    execution.update(status="TIMED_OUT", statusReason={"reasonCode": NO_RESPONSE},
                     lastUpdatedAt=at, completedAt=at)
    save(ctx.tx, execution)
    _emit(ctx, execution, now)


def load(ctx, execution_id: str, now: float | None = None) -> dict | None:
    """The live execution (an overdue timeout applied), or None."""
    execution = ctx.tx.get(KIND, execution_id)
    if execution is None:
        return None
    now = ctx.now() if now is None else now
    if now >= execution["timeToLive"]:
        remove(ctx.tx, execution)
        return None
    if execution["status"] in OPEN and now >= execution["deadline"]:
        time_out(ctx, execution, now)
    return execution


def _for_target(ctx, execution_id: str, target: str) -> dict:
    execution = load(ctx, execution_id)
    if execution is None or execution["targetArn"] != target:
        raise not_found(f"Command execution {execution_id} does not exist for target {target}.")
    return execution


def is_terminal(execution: dict) -> bool:
    return execution["status"] in FINAL or (execution["status"] == "TIMED_OUT" and execution.get("timedOutBy") == "device")


# handlers ------------------------------------------------------------------------
def _command_for(ctx, command_arn: str) -> dict:
    match = COMMAND.match(command_arn or "")
    if match is None:
        raise validation(f"Invalid commandArn {command_arn}.")
    region, account, command_id = match.groups()
    command = cmds.load(ctx, command_id) if (account, region) == (ctx.account, ctx.region) else None
    if command is None:
        raise not_found(f"Command {command_arn} does not exist.")
    return command


@operation("iot-jobs-data")
def StartCommandExecution(ctx, req):
    command = _command_for(ctx, req["commandArn"])
    device_type, device_id = parse_target(ctx, req["targetArn"])
    timeout = req.get("executionTimeoutSeconds")
    if timeout is not None and timeout > cmds.MAX_TIMEOUT_SECONDS:
        raise validation(f"executionTimeoutSeconds must be between 1 and {cmds.MAX_TIMEOUT_SECONDS}.")
    token = req.get("clientToken")
    fingerprint = json.dumps(cmds.to_store({
        "targetArn": req["targetArn"], "commandArn": req["commandArn"],
        "parameters": {k: _clean(v) for k, v in (req.get("parameters") or {}).items()},
        "executionTimeoutSeconds": timeout,
    }), sort_keys=True)
    if token:
        seen = ctx.tx.get(TOKENS, token)
        if seen is not None and load(ctx, seen["executionId"]) is not None:
            if seen["fingerprint"] != fingerprint:
                raise conflict(f"clientToken {token} was used with a different request.", seen["executionId"])
            return {"executionId": seen["executionId"]}
    if command.get("pendingDeletion"):
        raise conflict(f"Command {command['commandId']} is pending deletion.", command["commandId"])
    if command["deprecated"]:
        raise conflict(f"Command {command['commandId']} is deprecated and can't start executions.",
                       command["commandId"])
    live = cmds.from_store(command)
    parameters = resolve_parameters(live, req.get("parameters"))
    timeout = timeout or DEFAULT_TIMEOUT_SECONDS
    now = ctx.now()
    execution = {
        "executionId": new_id(),
        "commandArn": command["commandArn"],
        "commandId": command["commandId"],
        "namespace": command["namespace"],
        "targetArn": req["targetArn"],
        "deviceType": device_type,
        "deviceId": device_id,
        "status": "CREATED",
        "statusReason": None,
        "result": None,
        "parameters": cmds.to_store(parameters) or None,
        "executionTimeoutSeconds": timeout,
        "createdAt": now,
        "lastUpdatedAt": now,
        "startedAt": now,
        "completedAt": None,
        "deadline": now + timeout,
        "timeToLive": now + TIME_TO_LIVE_SECONDS,
        "timedOutBy": None,
        "clientToken": token,
    }
    save(ctx.tx, execution)
    if token:
        ctx.tx.put(TOKENS, token, {"executionId": execution["executionId"], "fingerprint": fingerprint})
    cmds.register_scope(ctx.tx)
    _deliver(ctx, live, execution, parameters)
    _emit(ctx, execution, now)
    return {"executionId": execution["executionId"]}


@operation("iot")
def GetCommandExecution(ctx, req):
    execution = cmds.from_store(_for_target(ctx, req["executionId"], req["targetArn"]))
    keys = ("executionId", "commandArn", "targetArn", "status", "statusReason", "parameters",
            "executionTimeoutSeconds", "createdAt", "lastUpdatedAt", "startedAt", "completedAt", "timeToLive")
    out = {k: execution.get(k) for k in keys}
    if req.get("includeResult") and execution["namespace"] == "AWS-IoT":
        out["result"] = execution.get("result")
    return out


def parse_time(text: str, name: str) -> float:
    try:
        if text.strip().lstrip("-").replace(".", "", 1).isdigit():
            return float(text)
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise validation(f"Invalid {name} {text!r}: use the format yyyy-MM-dd'T'HH:mm.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _time_window(spec: dict | None, name: str):
    if not spec:
        return None
    after = parse_time(spec["after"], f"{name}.after") if spec.get("after") else None
    before = parse_time(spec["before"], f"{name}.before") if spec.get("before") else None
    return after, before


def _inside(moment: float | None, window) -> bool:
    if window is None:
        return True
    if moment is None:
        return False
    after, before = window
    return (after is None or moment >= after) and (before is None or moment <= before)


@operation("iot")
def ListCommandExecutions(ctx, req):
    if req.get("startedTimeFilter") and req.get("completedTimeFilter"):
        raise validation("Specify only one of startedTimeFilter and completedTimeFilter.")
    if req.get("targetArn") and req.get("commandArn"):
        raise validation("Specify only one of targetArn and commandArn.")
    started = _time_window(req.get("startedTimeFilter"), "startedTimeFilter")
    completed = _time_window(req.get("completedTimeFilter"), "completedTimeFilter")
    if req.get("commandArn"):
        rows = ctx.tx.find(KIND, "command", req["commandArn"])
        if not rows:  # executions outlive their command; a command with neither is unknown
            _command_for(ctx, req["commandArn"])
    elif req.get("targetArn"):
        rows = ctx.tx.find(KIND, "target", req["targetArn"])
    else:
        rows = ctx.tx.scan(KIND)
    now = ctx.now()
    executions = []
    for name, _ in rows:
        execution = load(ctx, name, now)
        if execution is None:
            continue
        if req.get("namespace") and execution["namespace"] != req["namespace"]:
            continue
        if req.get("status") and execution["status"] != req["status"]:
            continue
        if not _inside(execution["startedAt"], started) or not _inside(execution.get("completedAt"), completed):
            continue
        executions.append(execution)
    field = "completedAt" if completed is not None else "startedAt"

    def key(execution):
        return (execution[field], execution["executionId"])

    descending = req.get("sortOrder", "DESCENDING") == "DESCENDING"
    executions.sort(key=key, reverse=descending)
    items, token = page_list(executions, req, key, descending=descending, default_size=DEFAULT_PAGE_SIZE)
    keys = ("commandArn", "executionId", "targetArn", "status", "createdAt", "startedAt", "completedAt")
    return {"commandExecutions": [{k: e.get(k) for k in keys} for e in items], "nextToken": token}


@operation("iot")
def DeleteCommandExecution(ctx, req):
    execution = load(ctx, req["executionId"])
    if execution is None or execution["targetArn"] != req["targetArn"]:
        return {}
    if not is_terminal(execution):
        raise conflict(f"Command execution {execution['executionId']} is not in a terminal state "
                       f"({execution['status']}) and can't be deleted.", execution["executionId"])
    remove(ctx.tx, execution)
    return {}


# the device's response topic --------------------------------------------------------
class Rejected(Exception):
    def __init__(self, error: str, message: str):
        super().__init__(message)
        self.error = error
        self.message = message


def _parse_result(result) -> dict:
    if not isinstance(result, dict):
        raise Rejected("InvalidRequest", "The result must be an object of named results.")
    if not result:
        raise Rejected("InvalidRequest", "At least 1 command execution result is required.")
    parsed = {}
    for name, value in result.items():
        if not isinstance(name, str) or not RESULT_NAME.match(name):
            raise Rejected("InvalidRequest", f"Invalid result name {name!r}.")
        if not isinstance(value, dict):
            kind = type(value).__name__.upper().replace("STR", "STRING")
            raise Rejected("InvalidRequest", f"Value cannot be a {kind}: give it as {{\"s\": ...}}, "
                                             "{\"b\": ...} or {\"bin\": ...}.")
        members = {str(k).lower(): v for k, v in value.items() if v is not None}
        if len(members) != 1 or next(iter(members)) not in ("s", "b", "bin"):
            raise Rejected("InvalidRequest", f"Result {name} must have exactly one of s, b or bin.")
        key, raw = next(iter(members.items()))
        if key == "s":
            if not isinstance(raw, str) or not raw:
                raise Rejected("InvalidRequest", f"Result {name}: s must be a non-empty string.")
            parsed[name] = {"S": raw}
        elif key == "b":
            if not isinstance(raw, bool):
                raise Rejected("InvalidRequest", f"Result {name}: b must be a boolean.")
            parsed[name] = {"B": raw}
        else:
            if isinstance(raw, str):
                try:
                    raw = base64.b64decode(raw, validate=True)
                except (binascii.Error, ValueError):
                    raise Rejected("InvalidRequest", f"Result {name}: bin must be base64.") from None
            if not isinstance(raw, bytes):
                raise Rejected("InvalidRequest", f"Result {name}: bin must be binary.")
            parsed[name] = {"BIN": raw}
    return parsed


def _parse_update(payload: bytes, fmt: str) -> dict:
    try:
        request = cbor_loads(payload) if fmt == "cbor" else json.loads(payload)
    except (ValueError, IndexError, TypeError, struct.error, RecursionError):  # the device's bytes
        raise Rejected("InvalidJson" if fmt == "json" else "InvalidRequest",
                       f"The request payload is not valid {fmt.upper()}.") from None
    if not isinstance(request, dict):
        raise Rejected("InvalidRequest", "The request payload must be an object.")
    status = request.get("status")
    if status not in DEVICE_STATUSES:
        raise Rejected("InvalidRequest", f"Invalid status {status!r}: use one of {', '.join(DEVICE_STATUSES)}.")
    update = {"status": status, "statusReason": None, "result": None}
    reason = request.get("statusReason")
    if reason is not None:
        if not isinstance(reason, dict) or not isinstance(reason.get("reasonCode"), str):
            raise Rejected("InvalidRequest", "statusReason needs a reasonCode.")
        if not REASON_CODE.match(reason["reasonCode"]):
            raise Rejected("InvalidRequest", "reasonCode must match [A-Z0-9_-]+ (at most 64 characters).")
        description = reason.get("reasonDescription")
        if description is not None and (not isinstance(description, str) or len(description) > 1024):
            raise Rejected("InvalidRequest", "reasonDescription must be a string of at most 1024 characters.")
        update["statusReason"] = {"reasonCode": reason["reasonCode"], "reasonDescription": description}
        if description is None:
            del update["statusReason"]["reasonDescription"]
    if request.get("result") is not None:
        update["result"] = _parse_result(request["result"])
    return update


def _apply(ctx, execution: dict, update: dict, now: float) -> None:
    status = update["status"]
    if is_terminal(execution):
        raise Rejected("TerminalStateReached",
                       f"Command Execution status cannot be updated to {status} since execution has "
                       f"already completed with status {execution['status']}.")
    if execution["status"] == "TIMED_OUT" and status == "IN_PROGRESS":
        raise Rejected("InvalidStateTransition",
                       "Command Execution status cannot be updated from TIMED_OUT to IN_PROGRESS.")
    changed = status != execution["status"]
    execution["status"] = status
    execution["statusReason"] = update["statusReason"]
    if update["result"] is not None:
        execution["result"] = cmds.to_store(update["result"])
    execution["lastUpdatedAt"] = now
    if status in FINAL or status == "TIMED_OUT":
        execution["completedAt"] = now
    if status == "TIMED_OUT":
        execution["timedOutBy"] = "device"
    save(ctx.tx, execution)
    if changed or status == "TIMED_OUT":
        _emit(ctx, execution, now)


def update_from_device(ctx, device_type: str, device_id: str, execution_id: str, payload_bytes: bytes, fmt: str,
                       *, publish: bool = True) -> tuple[str, dict]:
    """A device's UpdateCommandExecution on `$aws/commands/{device_type: things|clients}/
    {device_id}/executions/{execution_id}/response/{fmt}` (topic parsed by localiot.doors.commands).

    Returns (reply topic, reply document): `.../response/accepted/{fmt}` with
    {"executionId"} or `.../response/rejected/{fmt}` with {"error",
    "errorMessage", "executionId"}. With `publish` the reply is also queued on
    ctx.events (in `fmt`), to go out when the caller's transaction commits; a
    rejected update has changed nothing."""
    base = f"$aws/commands/{device_type}/{device_id}/executions/{execution_id}"
    reply_fmt = fmt if fmt in ("json", "cbor") else "json"
    try:
        if fmt not in ("json", "cbor") or device_type not in ("things", "clients"):
            raise Rejected("InvalidTopic", "The topic does not map to a commands API: "
                                           "respond on .../response/json or .../response/cbor.")
        update = _parse_update(payload_bytes, fmt)
        now = ctx.now()
        execution = load(ctx, execution_id, now)
        if execution is None or execution["targetArn"] != target_arn(ctx, device_type, device_id):
            raise Rejected("ResourceNotFound", f"Command execution {execution_id} does not exist.")
        _apply(ctx, execution, update, now)
        topic, reply = f"{base}/response/accepted/{reply_fmt}", {"executionId": execution_id}
    except Rejected as rejection:
        topic = f"{base}/response/rejected/{reply_fmt}"
        reply = {"error": rejection.error, "errorMessage": rejection.message, "executionId": execution_id}
    if publish:
        ctx.events.append((topic, encode(reply, reply_fmt)))
    return topic, reply


# the timer ---------------------------------------------------------------------------
def _sweep_due(tx, now: float) -> bool:
    """True once an hour: time to drop executions past their time to live."""
    hour = int(now // 3600)
    state = tx.get(TIMER, "sweep")
    if state is not None and state["hour"] == hour:
        return False
    tx.put(TIMER, "sweep", {"hour": hour})
    return True


@periodic("command-timeouts")
def tick(store, runtime, now: float | None = None) -> int:
    """Time out overdue executions and finish due command deletions in every account
    and region; run it every second. Each scope is one unit of work, so its events
    go to the bus after its commit. Returns how many executions and commands changed."""
    now = runtime.clock.now() if now is None else now
    changed = 0
    with unit_of_work(runtime, *cmds.GLOBAL, "iot", "CommandsTimer") as global_ctx:
        sweep = _sweep_due(global_ctx.tx, now)
        scopes = global_ctx.tx.linked(cmds.SCOPES, "all")
    for scope in scopes:
        account, region = scope.split("/", 1)
        with unit_of_work(runtime, account, region, "iot", "CommandsTimer") as ctx:
            tx = ctx.tx
            for _, execution in tx.find(KIND, "open", "1"):
                if now >= execution["deadline"]:
                    time_out(ctx, execution, now)
                    changed += 1
            changed += cmds.finish_deletions(tx, now)
            if sweep:
                for _, execution in tx.scan(KIND):
                    if now >= execution["timeToLive"]:
                        remove(tx, execution)
                        changed += 1
    return changed
