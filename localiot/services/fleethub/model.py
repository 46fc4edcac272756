"""The Fleet Hub application resource: its store kind, ARN, states and URL."""

from __future__ import annotations

from localiot.services.common import Resource

SERVICE = "iotfleethub"
APPLICATION = Resource(
    "fleethub-application",
    "application/{name}",
    not_found="The specified resource does not exist: application {name}.",
    arn_service=SERVICE,  # tagged by Fleet Hub's own TagResource (tags.py), not iot's
)
KIND = APPLICATION.kind
URL_PREFIX = "/fleethub/"  # the application pages, served by localiot.fleethub_web

CREATING, ACTIVE, DELETING = "CREATING", "ACTIVE", "DELETING"
CREATE_FAILED, DELETE_FAILED = "CREATE_FAILED", "DELETE_FAILED"
ROLE_PREFIX = "AWSIotFleetHub_"


def application_url(runtime, application_id: str) -> str:
    """Where localiot serves the application: its API listener, /fleethub/<id>/.

    AWS's URLs are https://<id>.app.iotfleethub.<region>.amazonaws.com; the API
    listener of localiot is plain HTTP, so this one is http://."""
    address = runtime.listeners.get("api") or f"{runtime.config.host}:{runtime.config.port}"
    return f"http://{address}{URL_PREFIX}{application_id}/"


def find_active(tx, application_id: str) -> dict | None:
    """The application document when it is ACTIVE (what the dashboard serves)."""
    doc = tx.get(KIND, application_id)
    return doc if doc is not None and doc["applicationState"] == ACTIVE else None
