"""Basic Ingest: `$aws/rules/{ruleName}/...` goes to that rule only."""

from __future__ import annotations

from localiot.doors import door


@door("$aws/rules/")
def basic_ingest(app, identity, topic: str, payload: bytes, properties: dict) -> bool:
    return app.rules.basic_ingest_handler(identity, topic, payload, properties)
