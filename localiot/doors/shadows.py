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

from localiot import iotlogs
from localiot.doors import ReservedPublish, door, serve
from localiot.shadows import service
from localiot.shadows.document import ShadowError, client_token_from_payload

_OPERATIONS = {"get": "GetThingShadow", "update": "UpdateThingShadow", "delete": "DeleteThingShadow"}


@door("$aws/things/{thing}/shadow/{operation:get|update|delete}")
@door("$aws/things/{thing}/shadow/name/{shadow}/{operation:get|update|delete}")
def shadow_request(app, publish: ReservedPublish) -> bool:
    """Serve a publish on a shadow request topic (the replies are the service's
    to publish, not the devices': no door serves them)."""
    thing, shadow_name, op = publish.parts["thing"], publish.parts.get("shadow"), publish.parts["operation"]
    payload = publish.payload

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

    serve(app, publish, "iot-data", _OPERATIONS[op], iotlogs.logged(call, publish, _OPERATIONS[op]))
    return True
