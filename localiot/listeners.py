"""The device-facing listeners of one localiot: the MQTT broker on its ports.

- plain MQTT over TCP (`mqtt_plain`, off by default): every client gets the
  default account and region and is allowed everything — for local
  development only, and said so in the log.
"""

from __future__ import annotations

import logging

from localiot.broker import Broker
from localiot.doors import make_handler

log = logging.getLogger("localiot.listeners")


async def start_listeners(app) -> Broker:
    config = app.config
    broker = Broker(app.runtime, app.store, reserved_topic_handler=make_handler(app))
    app.runtime.broker = broker
    broker.start()
    # Rules republish through the broker, keeping QoS and MQTT 5 properties.
    app.rules.publisher = lambda account, region, topic, payload, qos, props: broker.publish(
        account, region, topic, payload, qos, properties=props, source="rules")
    if config.mqtt_plain:
        port = await broker.start_tcp(config.host, config.mqtt_plain_port, "tcp")
        app.runtime.listeners["mqtt-plain"] = f"{config.host}:{port}"
        log.warning("plain MQTT on %s:%s: no authentication, every client may do everything", config.host, port)
    return broker


async def stop_listeners(app) -> None:
    broker = getattr(app.runtime, "broker", None)
    if broker is not None:
        await broker.stop()
        app.runtime.broker = None
