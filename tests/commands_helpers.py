"""What the commands tests share: a bus recorder, the jobs-data client, commands
and executions made through boto3, a device's answer run as the MQTT door runs it."""

from __future__ import annotations

import json
import threading

import pytest

from localiot.services.commands import executions
from localiot.services.commands.executions import cbor_dumps
from localiot.services.context import RequestContext
from localiot.testing import ACCOUNT, REGION, make_client

HOUR = 3600


class Recorder:
    """Messages on the server's bus, as (topic, payload bytes)."""

    def __init__(self, bus):
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.unsubscribe = bus.subscribe(self._on_message)

    def _on_message(self, account, region, topic, payload):
        with self._lock:
            self.messages.append((topic, payload))

    def take(self) -> list[tuple[str, bytes]]:
        with self._lock:
            taken, self.messages = self.messages, []
        return taken

    def topics(self) -> list[str]:
        return [topic for topic, _ in self.take()]


@pytest.fixture
def bus(localiot_server):
    recorder = Recorder(localiot_server.app.bus)
    yield recorder
    recorder.unsubscribe()


@pytest.fixture
def jobs(localiot_server):
    return make_client(localiot_server, "iot-jobs-data")


def as_device(server, fn, *args, account=ACCOUNT, region=REGION, **kwargs):
    """Run fn(ctx, ...) on the server thread in one transaction, as the MQTT door will."""
    app = server.app

    def run():
        with app.store.transaction(account, region) as tx:
            ctx = RequestContext(account, region, tx, app.runtime, "iot", "UpdateCommandExecution")
            out = fn(ctx, *args, **kwargs)
        for topic, payload in ctx.events:
            app.bus.publish(account, region, topic, payload)
        return out

    return server.call(run)


def respond(server, thing, execution_id, document, fmt="json", **kwargs):
    body = cbor_dumps(document) if fmt == "cbor" else json.dumps(document).encode()
    return as_device(server, executions.update_from_device, "things", thing, execution_id, body, fmt, **kwargs)


def tick(server, now=None):
    app = server.app
    return server.call(executions.tick, app.store, app.runtime, now)


def command_arn(command_id: str, region: str = REGION) -> str:
    return f"arn:aws:iot:{region}:{ACCOUNT}:command/{command_id}"


def thing_arn(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"


def static(iot, command_id="light", content=b'{"light":"on"}', content_type="application/json", **extra):
    payload = {"content": content}
    if content_type:
        payload["contentType"] = content_type
    return iot.create_command(commandId=command_id, payload=payload, **extra)


def dynamic(iot, command_id="setTemp", template=None, parameters=None, output="JSON"):
    template = template or json.dumps({"temperature": "${aws:iot:commandexecution::parameter:temperature}"})
    parameters = parameters if parameters is not None else [{
        "name": "temperature", "type": "INTEGER", "defaultValue": {"I": 72},
        "valueConditions": [{"comparisonOperator": "IN_RANGE", "operand": {"numberRange": {"min": "60", "max": "80"}}}],
    }]
    return iot.create_command(commandId=command_id, payloadTemplate=template, mandatoryParameters=parameters,
                              preprocessor={"awsJsonSubstitution": {"outputFormat": output}})


@pytest.fixture
def thing(iot):
    iot.create_thing(thingName="lamp")
    return "lamp"


def start(jobs, command_id="light", target=None, **extra):
    return jobs.start_command_execution(targetArn=target or thing_arn("lamp"), commandArn=command_arn(command_id),
                                        **extra)["executionId"]
