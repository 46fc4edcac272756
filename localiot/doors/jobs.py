"""The jobs MQTT door: `$aws/things/{thing}/jobs/...` requests served by
`localiot.services.jobs.data_plane.handle_mqtt`, the same functions as the
iot-jobs-data HTTP API.

The reply (`<request topic>/accepted` or `/rejected`) goes out first, then
the notifications the request caused (`notify`, `notify-next`, job events),
all after the call's transaction committed.
"""

from __future__ import annotations

import json

from localiot.doors import door, serve
from localiot.services.jobs import data_plane

_OPERATIONS = {
    "get-pending": "GetPendingJobExecutions",
    "start-next": "StartNextPendingJobExecution",
    "describe": "DescribeJobExecution",
    "update": "UpdateJobExecution",
}


@door("$aws/things/")
def jobs_request(app, identity, topic: str, payload: bytes, properties: dict | None = None) -> bool:
    """Serve a jobs request topic; False for the topics devices do not publish to
    (notifications and replies)."""
    route = data_plane.parse_topic(topic)
    if route is None:
        return False

    def call(ctx):
        reply = data_plane.handle_mqtt(ctx, topic, payload)
        if reply is not None:
            reply_topic, body = reply
            ctx.events.insert(0, (reply_topic, json.dumps(body, separators=(",", ":")).encode()))
        return reply

    operation = _OPERATIONS.get(route["operation"], "JobsMqttRequest")
    return serve(app, identity, "iot-jobs-data", operation, call) is not None
