"""Basic Ingest: `$aws/rules/{ruleName}/...` goes to that rule only, never to subscribers."""

from __future__ import annotations

from localiot.doors import ReservedPublish, door


@door("$aws/rules/{rule}/{topic+}", forward=False)
def basic_ingest(app, publish: ReservedPublish) -> bool:
    return app.rules.basic_ingest_handler(publish.identity, publish.topic, publish.payload, publish.properties)
