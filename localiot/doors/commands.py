"""The commands MQTT door: a device's answer on
`$aws/commands/{things|clients}/{id}/executions/{executionId}/response/{json|cbor}`
updates the execution through `localiot.services.commands.executions`, which
queues the reply (`.../response/accepted|rejected/{fmt}`) and the execution
events; they go out after the transaction committed. Another format level
is served too, and answered InvalidTopic on `.../response/rejected/json`."""

from __future__ import annotations

from localiot.doors import ReservedPublish, door, serve
from localiot.services.commands import executions


@door("$aws/commands/{device_type:things|clients}/{device_id}/executions/{execution_id}/response/{format}")
def command_response(app, publish: ReservedPublish) -> bool:
    parts = publish.parts
    serve(app, publish, "iot-jobs-data", "UpdateCommandExecution",
          lambda ctx: executions.update_from_device(ctx, parts["device_type"], parts["device_id"],
                                                    parts["execution_id"], publish.payload, parts["format"]))
    return True
