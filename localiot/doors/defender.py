"""The Device Defender detect door: a device's metrics report on
`$aws/things/{thing}/defender/metrics/{json|cbor}` goes to
`localiot.services.defender.reports`, which evaluates it against the security
profiles that apply to the thing and queues the reply
(`.../accepted` or `.../rejected` with AWS's error code, in the report's format)."""

from __future__ import annotations

from localiot.doors import ReservedPublish, door, serve
from localiot.services.defender import reports


@door("$aws/things/{thing}/defender/metrics/{format:json|cbor}")
def metrics_report(app, publish: ReservedPublish) -> bool:
    parts = publish.parts
    serve(app, publish, "iot", "DeviceDefenderMetricsReport",
          lambda ctx: reports.receive(ctx, parts["thing"], publish.payload, parts["format"]))
    return True
