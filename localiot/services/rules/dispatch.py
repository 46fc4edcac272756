"""One rule on one message: its actions, their failures, then the error action.

The engine prepares every action of a rule's results on the loop, runs the
inline jobs there and the others in its thread pool, and once all are done
sends one message with AWS's error document to the rule's errorAction if
any failed. A RuleRun is given its engine (for the pool and the pending-work
accounting), the compiled rule and the message.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging

from localiot import iotlogs
from localiot.services.rules.actions import ACTIONS, ActionError, Invocation

log = logging.getLogger("localiot.rules")

_RESOURCE_FIELDS = ("topic", "url", "queueUrl", "targetArn", "functionArn", "streamName", "deliveryStreamName",
                    "tableName", "bucketName", "logGroupName", "alarmName", "metricName", "stateMachineName",
                    "inputName", "channelName", "trackerName", "endpoint", "databaseName", "destinationArn")


def resource_of(config: dict) -> str:
    for name in _RESOURCE_FIELDS:
        value = config.get(name)
        if isinstance(value, str):
            return value
    put_item = config.get("putItem")
    return put_item.get("tableName", "") if isinstance(put_item, dict) else ""


class RuleRun:
    """One rule on one message: its jobs, their failures, then the error action."""

    def __init__(self, engine, rule, msg):
        self.engine = engine
        self.rule = rule
        self.msg = msg
        self.jobs: list = []
        self.failures: list[dict] = []
        self.outstanding = 0
        self.context_inv: Invocation | None = None

    def _failed(self, key: str, resource: str, message: str) -> None:
        self.engine.stats["failures"] += 1
        self.failures.append({"failedAction": ACTIONS[key].failed_action if key in ACTIONS else key,
                              "failedResource": resource, "errorMessage": message})
        log.warning("rule %s: %s action failed on %s: %s", self.rule.name, key, self.msg.topic, message)
        iotlogs.rule_failed(self.engine.runtime, self.rule.name, self.msg, self.failures[-1]["failedAction"],
                            resource, message)

    def prepare(self, key: str, config: dict, inv: Invocation) -> None:
        self.context_inv = self.context_inv or inv
        kind = ACTIONS.get(key)
        try:
            if kind is None:
                raise ActionError(f"Unsupported action {key}.")
            job = kind.prepare(config, inv)
        except ActionError as error:
            self._failed(key, error.resource or resource_of(config), error.message)
        except Exception as error:
            log.exception("rule %s: preparing the %s action failed", self.rule.name, key)
            self._failed(key, resource_of(config), f"Internal error: {error}")
        else:
            self.jobs.append((key, job))

    def start(self) -> None:
        engine = self.engine
        engine.hold()
        for key, job in self.jobs:
            engine.stats["actions"] += 1
            if job.inline:
                self._call(key, job)
        offloop = [(k, j) for k, j in self.jobs if not j.inline]
        self.outstanding = len(offloop)
        if not offloop:
            self._finish()
            return
        for key, job in offloop:
            future = engine.pool.submit(job.run)
            future.add_done_callback(lambda f, key=key, job=job: engine.on_loop(self._done, key, job, f))

    def _call(self, key, job) -> None:
        try:
            job.run()
        except ActionError as error:
            self._failed(key, error.resource or job.resource, error.message)
        except Exception as error:
            log.exception("rule %s: the %s action failed", self.rule.name, key)
            self._failed(key, job.resource, f"Internal error: {error}")

    def _done(self, key, job, future) -> None:
        error = future.exception() if not future.cancelled() else ActionError("cancelled at shutdown")
        if isinstance(error, ActionError):
            self._failed(key, error.resource or job.resource, error.message)
        elif error is not None:
            self._failed(key, job.resource, f"Internal error: {error}")
        self.outstanding -= 1
        if self.outstanding == 0:
            self._finish()

    def _finish(self) -> None:
        try:
            iotlogs.rule_finished(self, ACTIONS)
            if self.failures and self.rule.error_action:
                self._error_action()
        finally:
            self.engine.release()

    def _error_action(self) -> None:
        engine, msg = self.engine, self.msg
        engine.stats["error_actions"] += 1
        document = {
            "ruleName": self.rule.name,
            "topic": msg.topic,
            "cloudwatchTraceId": msg.trace_id,
            "clientId": msg.client_id or "",
            "base64OriginalPayload": base64.b64encode(msg.payload).decode(),
            "failures": self.failures,
        }
        payload = json.dumps(document, separators=(",", ":")).encode()
        base = self.context_inv
        inv = dataclasses.replace(base, value=document, payload=payload, _json=None)
        key, config = self.rule.error_action
        kind = ACTIONS.get(key)
        try:
            job = kind.prepare(config, inv)
        except Exception as error:
            log.warning("rule %s: the error action %s failed: %s", self.rule.name, key, error)
            return
        if job.inline:
            self._error_job(key, job)
            return
        engine.background(self._error_job, key, job)

    def _error_job(self, key, job) -> None:
        try:
            job.run()
        except Exception as error:  # an error action's own failure is only logged, as AWS does
            log.warning("rule %s: the error action %s failed: %s", self.rule.name, key,
                        getattr(error, "message", error))
