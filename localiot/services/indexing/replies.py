"""SearchIndex's reply entries stored beside each indexed document
(localiot.store.summaries): the document's `result` (a ThingDocument or a
ThingGroupDocument) as the reply writes it, converted by the protocol
engine's own converter for that shape and written as json writes it. An
exact query (localiot.indexing.plan.exact) splices these texts into its
reply instead of parsing every document and serializing it again
(tests/test_indexing_plans.py compares the bytes with the other way)."""

from __future__ import annotations

from functools import cache

from localiot.protocol import jsontext
from localiot.protocol.models import service_model
from localiot.protocol.serializer import to_json
from localiot.services.indexing import settings
from localiot.store import summaries


@cache
def _shape(name: str):
    return service_model("iot").shape_for(name)


def _text(shape_name: str):
    def text(doc: dict) -> str | None:
        result = doc.get("result")
        return None if result is None else jsontext.dumps(to_json(_shape(shape_name), result)).decode()

    return text


summaries.register(settings.THING_INDEX, _text("ThingDocument"))
summaries.register(settings.GROUP_INDEX, _text("ThingGroupDocument"))
summaries.keep(settings.THING_INDEX)
summaries.keep(settings.GROUP_INDEX)
