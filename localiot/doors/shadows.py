"""The Device Shadow MQTT door.

    $aws/things/{thing}/shadow[/name/{shadow}]/get|update|delete

call `localiot.shadows.service` (the functions behind GetThingShadow,
UpdateThingShadow and DeleteThingShadow) with the MQTT flags: GET answers on
`/get/accepted`, every failure on `<op>/rejected`. The service queues its
topics (`/accepted`, `/update/delta`, `/update/documents`, `/rejected`) on
the call's context; `serve` puts them on the bus once the transaction has
committed, and the broker hands them to the subscribers of those topics.

"""

from __future__ import annotations

import re

from localiot.doors import door, serve
from localiot.shadows import service
from localiot.shadows.document import ShadowError, client_token_from_payload

_TOPIC = re.compile(r"^\$aws/things/([^/]+)/shadow/(?:name/([^/]+)/)?(get|update|delete)$")
_OPERATIONS = {"get": "GetThingShadow", "update": "UpdateThingShadow", "delete": "DeleteThingShadow"}


@door("$aws/things/")
def shadow_request(app, identity, topic: str, payload: bytes, properties: dict | None = None) -> bool:
    """Serve a publish on a shadow request topic; False for any other shadow topic
    (the replies are the service's to publish, not the devices')."""
    match = _TOPIC.match(topic)
    if match is None:
        return False
    thing, shadow_name, op = match.groups()

    def call(ctx):
        if op == "update":
            service.update_shadow(ctx, thing, shadow_name, payload, publish_rejected=True)
            return
        try:
            token = client_token_from_payload(payload)
        except ShadowError as error:  # what the service would publish for a failure of its own
            ctx.publish(f"{service.topic_prefix(thing, shadow_name)}/{op}/rejected", error.document())
            return
        if op == "get":
            service.get_shadow(ctx, thing, shadow_name, token, publish_accepted=True, publish_rejected=True)
        else:
            service.delete_shadow(ctx, thing, shadow_name, token, publish_rejected=True)

    serve(app, identity, "iot-data", _OPERATIONS[op], call)
    return True
