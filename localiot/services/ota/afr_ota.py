"""The job document AWS generates for an OTA update (the `afr_ota` document),
as a pure function.

Its keys are the ones the FreeRTOS OTA agent reads from the job document
(ota_private.h: "afr_ota", "protocols", "streamname", "files", "filepath",
"filesize", "fileid", "certfile", "update_data_url", "auth_scheme",
"fileType"), with the file's signature under "sig-<hash>-<algorithm>"
(lower case, e.g. "sig-sha256-ecdsa", the key the agent is configured
with), base64 encoded:

    {"afr_ota": {"protocols": ["MQTT"], "streamname": "AFR_OTA-...",
                 "files": [{"filepath": "/ota/image.bin", "filesize": 1048576,
                            "fileid": 0, "certfile": "ecdsa-signer.crt",
                            "sig-sha256-ecdsa": "MEUCIQ..."}]}}

With HTTP among the protocols each file also carries `update_data_url`, a
`${aws:iot:s3-presigned-url:...}` placeholder that the jobs family replaces
with a fresh presigned URL in every document a device receives, and
`auth_scheme` "aws.s3.presigned". File attributes and additionalParameters
are not sent to devices (API reference, OTAUpdateFile.attributes).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import quote


@dataclass
class File:
    """One file of the update, as the job document describes it."""

    path: str | None
    size: int
    file_id: int
    bucket: str
    key: str
    file_type: int | None = None
    certfile: str | None = None
    signature_key: str | None = None  # "sig-sha256-ecdsa"
    signature: bytes | None = None


def signature_key(hash_algorithm: str | None, signature_algorithm: str | None) -> str | None:
    if not hash_algorithm or not signature_algorithm:
        return None
    return f"sig-{hash_algorithm.lower()}-{signature_algorithm.lower()}"


def presigned_placeholder(bucket: str, key: str) -> str:
    return f"${{aws:iot:s3-presigned-url:https://s3.amazonaws.com/{bucket}/{quote(key)}}}"


def document(protocols: list[str], stream_id: str | None, files: list[File]) -> str:
    body: dict = {"protocols": list(protocols)}
    if stream_id is not None:
        body["streamname"] = stream_id
    entries = []
    for file in files:
        entry: dict = {}
        if file.path:
            entry["filepath"] = file.path
        entry["filesize"] = file.size
        entry["fileid"] = file.file_id
        if file.certfile:
            entry["certfile"] = file.certfile
        if file.file_type is not None:
            entry["fileType"] = file.file_type
        if "HTTP" in protocols:
            entry["update_data_url"] = presigned_placeholder(file.bucket, file.key)
            entry["auth_scheme"] = "aws.s3.presigned"
        if file.signature_key and file.signature is not None:
            entry[file.signature_key] = base64.b64encode(file.signature).decode("ascii")
        entries.append(entry)
    body["files"] = entries
    return json.dumps({"afr_ota": body}, separators=(",", ":"))
