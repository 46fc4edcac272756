"""The rules engine: every message on the bus, through every matching rule.

    engine = start_rules_engine(app)      # idempotent; the server calls it at start

For each message the engine finds the enabled rules of the message's account
and region whose FROM topic filter matches (a filter trie per scope, with a
topic -> rules cache), evaluates their SQL on the loop and hands each result
to the rule's actions (`dispatch.RuleRun`). Actions prepare on the loop
(templates may read shadows from the store) and do their I/O in a thread
pool, so a slow Lambda or HTTP endpoint never stalls the loop. When actions
fail, the rule's errorAction gets one message with AWS's error document for
the rule and message.

`$aws/rules/{ruleName}/...` (Basic Ingest) goes to that rule only, whatever
its FROM clause says, and the SQL sees the topic without the prefix.

Compiled rules are cached per scope and trusted, so a message costs no store
read, until the scope is marked stale: `stale(account, region)`, which the
rule and destination APIs call (through `runtime.rules`) once a change has
committed (`documents.changed`), or `forget()` after a reset.
`stats["compilations"]` counts the scopes compiled.

Tests wait for quiet with `engine.wait_idle(timeout)` from their own thread,
or `await engine.drain()` on the loop.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import dataclasses
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localiot import iotlogs
from localiot.services.rules.action_types import load_all
from localiot.services.rules.actions import Invocation, action_kind, region_of_arn
from localiot.services.rules.dispatch import RuleRun
from localiot.services.rules.documents import RULE_KIND, enabled_urls
from localiot.topics import TopicTrie

log = logging.getLogger("localiot.rules")

BASIC_INGEST = "$aws/rules/"
_TOPIC_CACHE_MAX = 10_000
_NO_RULES: list = []  # (never changed)
def start_rules_engine(app) -> RulesEngine:
    """Start (once) the rules engine of a LocalIoT app; call it on the app's loop.
    The runtime holds it (`runtime.rules`) while it runs."""
    engine = app.runtime.rules
    if engine is None:
        engine = RulesEngine(app.runtime, app.store)
        engine.attach()
    return engine


def stop_rules_engine(app) -> None:
    engine = app.runtime.rules
    if engine is not None:
        engine.close()


# compiled rules -----------------------------------------------------------------
@dataclass(eq=False)
class CompiledRule:
    name: str
    arn: str
    query: Any
    actions: list  # [(key, config)]
    error_action: tuple | None
    disabled: bool
    calls_out: bool  # the SQL calls a downstream service: evaluate it off the loop


class _Scope:
    __slots__ = ("rules", "trie", "enabled_urls", "cache", "firsts", "wild_first")

    def __init__(self, rules: dict, trie: TopicTrie, enabled_urls: tuple):
        self.rules = rules  # name -> CompiledRule (enabled and disabled)
        self.trie = trie  # FROM filter -> [CompiledRule] (enabled ones)
        self.enabled_urls = enabled_urls
        self.cache: dict = {}
        # the first levels of the filters: a topic whose first level is none of them (and, for a
        # `$` topic or with no filter starting with a wildcard, nothing else) matches no rule
        self.firsts = frozenset(trie.root.children)
        self.wild_first = "+" in self.firsts or "#" in self.firsts

    def misses(self, topic: str) -> bool:
        """True when no rule can match: no trie walk, nothing cached (unique topics would churn it)."""
        firsts = self.firsts
        return not firsts or (topic.partition("/")[0] not in firsts and (not self.wild_first or topic[:1] == "$"))

    def match(self, topic: str) -> list:
        hit = self.cache.get(topic)
        if hit is None:
            if self.misses(topic):
                return _NO_RULES
            hit = sorted((r for rules in self.trie.match(topic) for r in rules), key=lambda r: r.name)
            if len(self.cache) >= _TOPIC_CACHE_MAX:
                self.cache.clear()
            self.cache[topic] = hit
        return hit


# SQL functions that call a downstream service: such rules are evaluated in the pool
CALLING_OUT = frozenset({"aws_lambda", "get_secret", "get_dynamodb"})


def compile_rule(doc: dict) -> CompiledRule:
    from localiot.iotsql import parse

    error_action = doc.get("errorAction")
    query = parse(doc["sql"], doc["awsIotSqlVersion"])
    return CompiledRule(
        name=doc["ruleName"],
        arn=doc["ruleArn"],
        query=query,
        actions=[action_kind(a) for a in doc["actions"]],
        error_action=action_kind(error_action) if error_action else None,
        disabled=doc["ruleDisabled"],
        calls_out=bool(CALLING_OUT & query.functions),
    )


@dataclass
class Message:
    account: str
    region: str
    topic: str
    payload: bytes
    client_id: str | None = None
    principal: str | None = None
    qos: int = 0
    properties: dict | None = None
    timestamp: float = 0.0
    trace_id: str = ""
    over_mqtt: bool = False  # traceid() is the trace id only for messages sent over MQTT


# the engine ---------------------------------------------------------------------
class RulesEngine:
    def __init__(self, runtime, store, *, max_workers: int = 16):
        self.runtime = runtime
        self.store = store
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="localiot-rules")
        self._scopes: dict[tuple[str, str], _Scope] = {}
        self._pending = 0
        self._idle = threading.Condition()
        self._unsubscribe: Callable | None = None
        # (account, region, topic, payload, qos, properties): the broker's publish once wired;
        # until then republished messages go to the bus (MQTT 5 properties and QoS are dropped).
        self.publisher: Callable | None = None
        self.stats = {"messages": 0, "evaluations": 0, "matched": 0, "actions": 0, "failures": 0,
                      "sql_errors": 0, "error_actions": 0, "compilations": 0}
        load_all()

    # lifecycle --------------------------------------------------------------------
    def attach(self) -> RulesEngine:
        self.loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._unsubscribe = self.runtime.bus.subscribe(self._on_bus, publisher=True,  # who published it
                                                       wants=self.wants)
        self.runtime.rules = self
        return self

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.runtime.rules is self:
            self.runtime.rules = None
        self.pool.shutdown(wait=False, cancel_futures=True)

    # work accounting ----------------------------------------------------------------
    def hold(self) -> None:
        with self._idle:
            self._pending += 1

    def release(self) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending <= 0:
                self._pending = 0
                self._idle.notify_all()

    @property
    def pending(self) -> int:
        return self._pending

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block (not on the loop thread) until every message and action is done."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    async def drain(self, timeout: float = 10.0) -> bool:
        """On the loop: wait until every message and action is done."""
        deadline = self.loop.time() + timeout
        while self._pending:
            if self.loop.time() >= deadline:
                return False
            await asyncio.sleep(0.002)
        return True

    def _on_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread

    def on_loop(self, fn: Callable, *args) -> None:
        """Run `fn(*args)` on the loop, from any thread, counted as pending work."""
        self.hold()

        def run():
            try:
                fn(*args)
            except Exception:
                log.exception("rules engine callback failed")
            finally:
                self.release()

        if self._on_loop_thread():
            self.loop.call_soon(run)
        else:
            self.loop.call_soon_threadsafe(run)

    def background(self, fn: Callable, *args) -> None:
        """Run blocking `fn(*args)` in the pool, counted as pending work."""
        self.hold()

        def run():
            try:
                fn(*args)
            except Exception:
                log.exception("rules engine background task failed")
            finally:
                self.release()

        self.pool.submit(run)

    def call_on_loop_sync(self, fn: Callable, *args, timeout: float = 10.0):
        """`fn(*args)` on the loop from a worker thread, waiting for its value."""
        if self._on_loop_thread():
            return fn(*args)
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            try:
                future.set_result(fn(*args))
            except BaseException as error:
                future.set_exception(error)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout)

    # intake -------------------------------------------------------------------------
    def wants(self, account: str, region: str, topic: str) -> bool:
        """The bus's question: could a rule take a message on `topic`? (A scope not
        compiled yet, after a change to its rules, says yes: its next message compiles it.)"""
        scope = self._scopes.get((account, region))
        if scope is None:
            return True
        if scope.misses(topic):  # (no rule's filter starts where the topic does: no trie walk)
            return topic.startswith(BASIC_INGEST)
        return bool(scope.match(topic)) or topic.startswith(BASIC_INGEST)

    def _on_bus(self, account: str, region: str, topic: str, payload: bytes, publisher=None) -> None:
        scope = self._scopes.get((account, region))
        if scope is not None and scope.misses(topic) and not topic.startswith(BASIC_INGEST):
            return  # the hot path of a message no rule wants: two lookups
        if publisher is None:  # not a device's MQTT publish
            self.submit(account, region, topic, payload)
        else:
            self.submit(account, region, topic, payload, client_id=publisher[0], principal=publisher[1],
                        over_mqtt=True)

    def submit(self, account: str, region: str, topic: str, payload: bytes, *, client_id: str | None = None,
               principal: str | None = None, qos: int = 0, properties: dict | None = None,
               over_mqtt: bool = False) -> None:
        """One message for the rules (from the bus, the broker or Basic Ingest); never blocks.
        A message no enabled rule's FROM filter matches costs a cached lookup and nothing else."""
        if not topic.startswith(BASIC_INGEST):
            scope = self._scopes.get((account, region))
            if scope is None and self._on_loop_thread():
                scope = self.scope(account, region)
            if scope is not None and not scope.match(topic):
                return
        msg = Message(account, region, topic, bytes(payload), client_id, principal, qos, properties,
                      self.runtime.clock.now(), str(uuid.uuid4()), over_mqtt)
        self.hold()
        if self._on_loop_thread():
            self.loop.call_soon(self._process, msg)
        else:
            self.loop.call_soon_threadsafe(self._process, msg)

    def basic_ingest_handler(self, identity, topic: str, payload: bytes, props: dict, *,
                             client_id: str | None = None, over_mqtt: bool = False) -> bool:
        """The broker's reserved-topic hook for `$aws/rules/...`: accepted, and given to the rule."""
        if not topic.startswith(BASIC_INGEST):
            return False
        self.submit(identity.account, identity.region, topic, payload,
                    client_id=client_id or getattr(identity, "client_id", None), principal=identity.principal,
                    properties=props, over_mqtt=over_mqtt)
        return True

    # rules of a scope ---------------------------------------------------------------
    def forget(self) -> None:
        """Drop every compiled scope (the store was wiped under us)."""
        self._scopes.clear()
        self.runtime.bus.wants_changed()  # (the bus keeps the answers of `wants`)

    def stale(self, account: str, region: str) -> None:
        """A committed change to the scope's rules or destinations: recompile on its next message."""
        self._scopes.pop((account, region), None)
        self.runtime.bus.wants_changed()

    def scope(self, account: str, region: str) -> _Scope:
        cached = self._scopes.get((account, region))
        if cached is not None:
            return cached  # the hot path: no store read per message
        self.stats["compilations"] += 1
        with self.store.transaction(account, region, write=False) as tx:
            docs = tx.scan(RULE_KIND)
            urls = enabled_urls(tx)
        rules: dict[str, CompiledRule] = {}
        trie: TopicTrie[list[CompiledRule]] = TopicTrie()
        for _, doc in docs:
            try:
                rule = compile_rule(doc)
            except Exception as error:
                log.error("rule %s can't be compiled and will not run: %s", doc.get("ruleName"), error)
                continue
            rules[rule.name] = rule
            if not rule.disabled and rule.query.topic_filter:
                trie.setdefault(rule.query.topic_filter, list).append(rule)
        scope = _Scope(rules, trie, urls)
        self._scopes[(account, region)] = scope
        self.runtime.bus.wants_changed()
        return scope

    # one message ----------------------------------------------------------------------
    def _process(self, msg: Message) -> None:
        try:
            self.stats["messages"] += 1
            scope = self.scope(msg.account, msg.region)
            if msg.topic.startswith(BASIC_INGEST):
                name, _, rest = msg.topic[len(BASIC_INGEST):].partition("/")
                rule = scope.rules.get(name)
                if rule is None or rule.disabled:
                    log.debug("Basic Ingest message for missing or disabled rule %s dropped", name)
                    return
                self._run(rule, msg, rest, scope, {})
                return
            contexts: dict = {}  # one EvalContext per message, shared by its rules
            for rule in scope.match(msg.topic):
                self._run(rule, msg, msg.topic, scope, contexts)
        except Exception:
            log.exception("rules engine failed on a message for %s", msg.topic)
        finally:
            self.release()

    def _run(self, rule: CompiledRule, msg: Message, topic: str, scope: _Scope, contexts: dict) -> None:
        self.stats["matched"] += 1
        iotlogs.rule_matched(self.runtime, rule.name, msg)
        context = contexts.get(rule.calls_out)
        if context is None:
            context = contexts[rule.calls_out] = self._context(msg, topic, offloop=rule.calls_out)
        if not rule.calls_out:
            self._evaluated(rule, msg, topic, scope, context, self._evaluate(rule, msg, context))
            return
        self.hold()  # the SQL calls out: evaluate in the pool, then dispatch on the loop

        def evaluate():
            try:
                results = self._evaluate(rule, msg, context)
                self.on_loop(self._evaluated, rule, msg, topic, scope, context, results)
            finally:
                self.release()

        self.pool.submit(evaluate)

    def _evaluate(self, rule: CompiledRule, msg: Message, context) -> list:
        self.stats["evaluations"] += 1
        try:
            return rule.query.evaluate(msg.payload, context)
        except Exception as error:  # AWS logs SQL failures; the error action is for actions
            self.stats["sql_errors"] += 1
            log.warning("rule %s: evaluating the SQL failed on %s: %s", rule.name, msg.topic, error)
            return []

    def _evaluated(self, rule, msg, topic, scope, context, results) -> None:
        if not results:
            return
        run = RuleRun(self, rule, msg)
        payload_value = msg.payload  # templates see the original message, parsed by the SQL engine
        for result in results:
            for key, config in rule.actions:
                inv = self._invocation(rule, msg, topic, scope, context, payload_value,
                                       result.value, result.to_payload())
                run.prepare(key, config, inv)
        run.start()

    def _invocation(self, rule, msg, topic, scope, context, payload_value, value, payload) -> Invocation:
        from localiot.iotsql.templates import substitute

        version = rule.query.version
        return Invocation(
            runtime=self.runtime, account=msg.account, region=msg.region, rule_name=rule.name, topic=topic,
            client_id=msg.client_id, original=msg.payload, value=value, payload=payload, context=context,
            payload_value=payload_value, enabled_urls=scope.enabled_urls, publish=self.publish,
            substitute=lambda template, ctx, value: substitute(template, ctx, value, version),
        )

    def publish(self, account: str, region: str, topic: str, payload: bytes, qos: int = 0,
                properties: dict | None = None) -> None:
        if self.publisher is not None:
            self.publisher(account, region, topic, payload, qos, properties)
        else:
            self.runtime.bus.publish(account, region, topic, payload)

    # the SQL's view of the world ----------------------------------------------------------
    def _context(self, msg: Message, topic: str, *, offloop: bool = False):
        from localiot.iotsql import EvalContext

        on_loop = self._loop_bound(offloop)
        values = {
            "topic": topic,
            "client_id": msg.client_id,
            "principal": msg.principal,
            "timestamp_ms": int(msg.timestamp * 1000),
            "account": msg.account,
            "region": msg.region,
            "trace_id": msg.trace_id if msg.over_mqtt else None,
            "qos": msg.qos,
            "mqtt_properties": msg.properties,
            "thing_shadow_lookup": on_loop(self._shadow, msg.account, msg.region),
            "get_registry_data": on_loop(self._registry, msg.account, msg.region),
            "lambda_invoke": self._hook(self._lambda, msg.region),
            "get_secret": self._hook(self._secret, msg.region),
            "get_dynamodb": self._hook(self._dynamodb, msg.region),
        }
        names = _context_fields(EvalContext)
        return EvalContext(**{k: v for k, v in values.items() if k in names})

    def _loop_bound(self, offloop: bool):
        """Hooks that read the store run on the loop, even when the SQL runs in the pool."""
        def bind(fn, *bound):
            if offloop:
                return lambda *args: self.call_on_loop_sync(fn, *bound, *args)
            return lambda *args: fn(*bound, *args)

        return bind

    @staticmethod
    def _hook(fn, *bound):
        return lambda *args: fn(*bound, *args)

    def _read_ctx(self, tx, account, region):
        from localiot.services.context import RequestContext

        return RequestContext(account, region, tx, self.runtime)

    def _shadow(self, account, region, thing_name, shadow_name=None, role_arn=None):
        from localiot.shadows import service
        from localiot.shadows.document import ShadowError

        with self.store.transaction(account, region, write=False) as tx:
            try:
                return service.get_shadow(self._read_ctx(tx, account, region), thing_name, shadow_name or None)
            except ShadowError:
                return None

    def _registry(self, account, region, api, thing_name, role_arn=None):
        from localiot.protocol.errors import ServiceError
        from localiot.services import HANDLERS

        handler = HANDLERS.get(("iot", api))
        with self.store.transaction(account, region, write=False) as tx:
            try:
                out = handler(self._read_ctx(tx, account, region), {"thingName": thing_name})
            except ServiceError as error:
                if error.code == "ResourceNotFoundException":
                    return None
                raise
        return {k: v for k, v in out.items() if v is not None}

    def _lambda(self, region, function_arn: str, payload) -> Any:
        body = payload if isinstance(payload, (bytes, bytearray)) else json.dumps(payload).encode()
        client = self.runtime.aws_client("lambda", region_of_arn(function_arn, region))
        response = client.invoke(FunctionName=function_arn, InvocationType="RequestResponse", Payload=body)
        data = response["Payload"].read()
        if response.get("FunctionError"):
            raise RuntimeError(f"Lambda function {function_arn} failed: {data.decode(errors='replace')}")
        return json.loads(data) if data else None

    def _secret(self, region, secret_id: str, secret_type: str, role_arn=None):
        client = self.runtime.aws_client("secretsmanager", region_of_arn(secret_id, region))
        return client.get_secret_value(SecretId=secret_id).get(secret_type)

    def _dynamodb(self, region, table: str, key: dict, role_arn=None):
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        serializer, deserializer = TypeSerializer(), TypeDeserializer()
        wire_key = {k: serializer.serialize(_decimals(v)) for k, v in key.items()}
        item = self.runtime.aws_client("dynamodb", region).get_item(TableName=table, Key=wire_key).get("Item")
        if item is None:
            return None
        return json.loads(json.dumps({k: deserializer.deserialize(v) for k, v in item.items()}, default=_plain))


def _decimals(value):
    from decimal import Decimal

    return json.loads(json.dumps(value), parse_float=Decimal, parse_int=Decimal)


def _plain(value):
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


_FIELDS_CACHE: dict = {}


def _context_fields(cls) -> frozenset:
    names = _FIELDS_CACHE.get(cls)
    if names is None:
        names = _FIELDS_CACHE[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return names
