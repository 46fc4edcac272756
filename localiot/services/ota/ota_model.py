"""How OTA updates live in the store.

Kind "otaupdate", one document per id, indexed by "status", by "pending"
("1" until the creation finished) and by "stream" (every stream the update
uses, so DeleteStream refuses them while the update exists).
"""

from __future__ import annotations

from localiot.services.common import Resource

OTA_UPDATE = Resource(
    "otaupdate", "otaupdate/{name}",
    not_found="OTA update {name} cannot be found.",
    exists="OTA update {name} already exists.",
    id_field="otaUpdateId", arn_field="otaUpdateArn", taggable=True,
)
CREATE_PENDING, CREATE_IN_PROGRESS = "CREATE_PENDING", "CREATE_IN_PROGRESS"
CREATE_COMPLETE, CREATE_FAILED = "CREATE_COMPLETE", "CREATE_FAILED"
PENDING = (CREATE_PENDING, CREATE_IN_PROGRESS)
JOB_PREFIX = "AFR_OTA-"
MAX_JOB_ID = 64


def save(ctx, doc: dict) -> None:
    doc["lastModifiedDate"] = ctx.now()
    used = [f["fileLocation"]["stream"]["streamId"] for f in doc["otaUpdateFiles"]
            if (f.get("fileLocation") or {}).get("stream")]
    used += doc.get("createdStreams") or []
    OTA_UPDATE.put(ctx, doc["otaUpdateId"], doc, {
        "status": doc["otaUpdateStatus"],
        "pending": "1" if doc["otaUpdateStatus"] in PENDING else None,
        "stream": sorted(set(used)),
    })
