"""Metrics export (a security profile's `metricsExportConfig`): the datapoints
of the metrics marked `exportMetric` (in behaviors or in
additionalMetricsToRetainV2) are published to the configured MQTT topic as
Device Defender closes a window (cloud-side) or accepts a report (device-side
and custom metrics), in AWS's export format:

    {"header": {"version": "1.0"},
     "metrics": [{"name": "aws:num-messages-sent", "thing": "t1", "value": {"count": 3},
                  "dimension": {"name": "TopicFilter", "operator": "IN"}, "timestamp": 1636507233000}, ...]}

at most MAX_PER_MESSAGE metrics per message. The messages go through the bus
after the commit, so MQTT subscribers and the rules engine receive them like
any publish in the profile's account and region. AWS publishes them by
assuming `roleArn`; localiot checks that it names an IAM role and publishes
itself (no IAM at the downstream endpoint is consulted).
"""

from __future__ import annotations

from localiot.protocol.errors import invalid
from localiot.services.defender.configuration import ROLE_ARN

MAX_PER_MESSAGE = 100
_PENDING = "\0metrics-export"  # the key of the pending exports in an evaluation's cache


def check(doc: dict) -> None:
    """A profile's metricsExportConfig is valid, and present when a metric is exported."""
    config = doc.get("metricsExportConfig")
    exported = [b.get("name") for b in doc.get("behaviors") or [] if b.get("exportMetric")]
    exported += [m["metric"] for m in doc.get("additionalMetricsToRetainV2") or [] if m.get("exportMetric")]
    if config is None:
        if exported:
            raise invalid(f"exportMetric is set for {exported[0]} but the security profile has no "
                          "metricsExportConfig.")
        return
    topic = config["mqttTopic"]
    if "+" in topic or "#" in topic or "\0" in topic or topic.startswith("$") and not topic.startswith("$aws/rules/"):
        raise invalid(f"mqttTopic {topic} is not a valid topic to publish to.")
    if not ROLE_ARN.match(config["roleArn"]):
        raise invalid(f"roleArn {config['roleArn']} is not a valid IAM role ARN.")


def _dimension(profile: dict, metric: str, dim: str) -> dict:
    for item in (profile.get("behaviors") or []) + (profile.get("additionalMetricsToRetainV2") or []):
        given = item.get("metricDimension") or {}
        if item.get("metric") == metric and given.get("dimensionName") == dim:
            return {"name": dim, "operator": given.get("operator") or "IN"}
    return {"name": dim, "operator": "IN"}


def queue(ctx, profile: dict, thing: str, exported: list[tuple[str, str | None, dict]], cache: dict) -> None:
    """Keep `thing`'s exported datapoints for `send` (one evaluation may cover many things)."""
    config = profile.get("metricsExportConfig")
    if not config:
        return
    stamp = int(ctx.now() * 1000)
    metrics = cache.setdefault(_PENDING, {}).setdefault(config["mqttTopic"], [])
    for metric, dim, value in exported:
        entry = {"name": metric, "thing": thing, "value": value, "timestamp": stamp}
        if dim:
            entry["dimension"] = _dimension(profile, metric, dim)
        metrics.append(entry)


def send(ctx, cache: dict) -> None:
    """Publish what `queue` kept, after the commit."""
    for topic, metrics in (cache.pop(_PENDING, None) or {}).items():
        for start in range(0, len(metrics), MAX_PER_MESSAGE):
            ctx.publish(topic, {"header": {"version": "1.0"}, "metrics": metrics[start:start + MAX_PER_MESSAGE]})
