"""Basic Ingest: `$aws/rules/{ruleName}` and `$aws/rules/{ruleName}/...` go to
that rule only, never to subscribers (AWS triggers the rule for both)."""

from __future__ import annotations

from localiot.doors import ReservedPublish, door


@door("$aws/rules/{rule}", forward=False)
@door("$aws/rules/{rule}/{topic+}", forward=False)
def basic_ingest(app, publish: ReservedPublish) -> bool:
    connection = publish.connection  # None for an HTTPS publish: no client id, traceid() Undefined
    return app.rules.basic_ingest_handler(publish.identity, publish.topic, publish.payload, publish.properties,
                                          client_id=getattr(connection, "client_id", None),
                                          over_mqtt=connection is not None)
