"""The commands MQTT door: a device's answer on
`$aws/commands/{things|clients}/{id}/executions/{executionId}/response/{json|cbor}`
updates the execution through `localiot.services.commands.executions`, which
queues the reply (`.../response/accepted|rejected/{fmt}`) and the execution
events; they go out after the transaction committed."""

from __future__ import annotations

from localiot.doors import door, serve
from localiot.services.commands import executions


@door("$aws/commands/")
def command_response(app, identity, topic: str, payload: bytes, properties: dict) -> bool:
    if executions.RESPONSE_TOPIC.match(topic) is None:
        return False  # requests and replies are the service's to publish
    serve(app, identity, "iot-jobs-data", "UpdateCommandExecution",
          lambda ctx: executions.handle_device_publish(ctx, topic, payload))
    return True
