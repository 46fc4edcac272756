"""OTA updates: CreateOTAUpdate, GetOTAUpdate, ListOTAUpdates, DeleteOTAUpdate.

CreateOTAUpdate checks the request, stores the update as CREATE_PENDING and
answers; the creation itself (ota_create.py) then runs on its own:
CREATE_IN_PROGRESS while the files are looked at in S3 (and signed, when
asked), then CREATE_COMPLETE with the stream and the AWS IoT job
`AFR_OTA-<otaUpdateId>` made, or CREATE_FAILED with `errorInfo` saying why.

Store: see ota_model.py.
"""

from __future__ import annotations

import base64

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services import operation
from localiot.services.common import paginate, tags_to_dict
from localiot.services.iam import is_role_arn
from localiot.services.in_process import call_within
from localiot.services.ota import ota_create, streams
from localiot.services.ota.ota_model import (
    CREATE_COMPLETE, CREATE_PENDING, JOB_PREFIX, MAX_JOB_ID, OTA_UPDATE, PENDING, save,
)


def _check_file(index: int, file: dict) -> dict:
    file = dict(file)
    location = file.get("fileLocation") or {}
    if bool(location.get("stream")) == bool(location.get("s3Location")):
        raise invalid(f"File {index} needs a fileLocation with either a stream or an s3Location.")
    if location.get("stream"):
        stream = location["stream"]
        if not stream.get("streamId") or stream.get("fileId") is None:
            raise invalid(f"File {index}: a stream fileLocation needs a streamId and a fileId.")
    else:
        s3 = location["s3Location"]
        if not s3.get("bucket") or not s3.get("key"):
            raise invalid(f"File {index}: an s3Location needs a bucket and a key.")
    signing = file.get("codeSigning") or {}
    ways = [k for k in ("awsSignerJobId", "startSigningJobParameter", "customCodeSigning") if signing.get(k)]
    if len(ways) > 1:
        raise invalid(f"File {index}: codeSigning takes one of awsSignerJobId, startSigningJobParameter and "
                      "customCodeSigning.")
    custom = signing.get("customCodeSigning")
    if custom:
        if not (custom.get("signature") or {}).get("inlineDocument"):
            raise invalid(f"File {index}: customCodeSigning needs a signature with an inlineDocument.")
        if not custom.get("hashAlgorithm") or not custom.get("signatureAlgorithm"):
            raise invalid(f"File {index}: customCodeSigning needs a hashAlgorithm and a signatureAlgorithm.")
        custom = dict(custom, signature={"inlineDocument": base64.b64encode(custom["signature"]["inlineDocument"])
                                         .decode("ascii")})
        file["codeSigning"] = dict(signing, customCodeSigning=custom)
    start = signing.get("startSigningJobParameter")
    if start and (not start.get("signingProfileName") or not (start.get("destination") or {}).get("s3Destination")):
        raise invalid(f"File {index}: startSigningJobParameter needs a signingProfileName and an s3Destination.")
    return file


def _check_targets(ctx, targets: list[str]) -> None:
    for arn in targets:
        parts = arn.split(":", 5)
        kind, _, name = parts[5].partition("/") if len(parts) == 6 else ("", "", "")
        if parts[0] != "arn" or len(parts) != 6 or kind not in ("thing", "thinggroup") or not name:
            raise invalid(f"Invalid target {arn}: an OTA update targets thing and thing group ARNs.")
        if (parts[3], parts[4]) != (ctx.region, ctx.account):
            raise invalid(f"Invalid target {arn}: targets must be in account {ctx.account} and region {ctx.region}.")
        if ctx.tx.get(kind, name) is None:
            raise not_found(f"{'Thing' if kind == 'thing' else 'Thing Group'} {name} cannot be found.")


@operation("iot")
def CreateOTAUpdate(ctx, req):
    ota_id = req["otaUpdateId"]
    OTA_UPDATE.ensure_absent(ctx, ota_id)
    if len(JOB_PREFIX + ota_id) > MAX_JOB_ID:
        raise invalid(f"The otaUpdateId {ota_id} is too long: its AWS IoT job {JOB_PREFIX}{ota_id} would be longer "
                      f"than {MAX_JOB_ID} characters.")
    if not is_role_arn(req["roleArn"]):
        raise invalid(f"roleArn {req['roleArn']} is not a valid IAM role ARN.")
    protocols = req.get("protocols") or ["MQTT"]
    if len(set(protocols)) != len(protocols):
        raise invalid("protocols lists a protocol twice.")
    _check_targets(ctx, req["targets"])
    files = [_check_file(i, f) for i, f in enumerate(req["files"])]
    in_streams = {f["fileLocation"]["stream"]["streamId"] for f in files if f["fileLocation"].get("stream")}
    in_s3 = [f for f in files if f["fileLocation"].get("s3Location")]
    if len(in_streams) > 1 or (in_streams and in_s3):
        raise invalid("The files of an OTA update are either all in one stream or all given as S3 locations.")
    at = ctx.now()
    doc = {
        "otaUpdateId": ota_id,
        "otaUpdateArn": OTA_UPDATE.arn(ctx, ota_id),
        "description": req.get("description"),
        "targets": list(req["targets"]),
        "targetSelection": req.get("targetSelection") or "SNAPSHOT",
        "protocols": protocols,
        "otaUpdateFiles": files,
        "roleArn": req["roleArn"],
        "additionalParameters": req.get("additionalParameters"),
        "awsJobExecutionsRolloutConfig": req.get("awsJobExecutionsRolloutConfig"),
        "awsJobPresignedUrlConfig": req.get("awsJobPresignedUrlConfig"),
        "awsJobAbortConfig": req.get("awsJobAbortConfig"),
        "awsJobTimeoutConfig": req.get("awsJobTimeoutConfig"),
        "otaUpdateStatus": CREATE_PENDING,
        "creationDate": at,
        "awsIotJobId": JOB_PREFIX + ota_id,
        "awsIotJobArn": ctx.arn(f"job/{JOB_PREFIX}{ota_id}"),
        "createdStreams": [],
    }
    OTA_UPDATE.create(ctx, ota_id, doc, tags_to_dict(req.get("tags")))
    save(ctx, doc)
    ota_create.schedule(ctx, ota_id)
    return {"otaUpdateId": ota_id, "otaUpdateArn": doc["otaUpdateArn"], "otaUpdateStatus": CREATE_PENDING,
            "awsIotJobId": doc["awsIotJobId"], "awsIotJobArn": doc["awsIotJobArn"]}


def _files_out(files: list[dict]) -> list[dict]:
    out = []
    for file in files:
        custom = (file.get("codeSigning") or {}).get("customCodeSigning")
        if custom:
            signature = base64.b64decode(custom["signature"]["inlineDocument"])
            file = dict(file, codeSigning=dict(file["codeSigning"], customCodeSigning=dict(
                custom, signature={"inlineDocument": signature})))
        out.append(file)
    return out


@operation("iot")
def GetOTAUpdate(ctx, req):
    doc = OTA_UPDATE.get(ctx, req["otaUpdateId"])
    info = {k: doc.get(k) for k in (
        "otaUpdateId", "otaUpdateArn", "creationDate", "lastModifiedDate", "description", "targets", "protocols",
        "awsJobExecutionsRolloutConfig", "awsJobPresignedUrlConfig", "targetSelection", "otaUpdateStatus",
        "additionalParameters", "errorInfo")}
    info["otaUpdateFiles"] = _files_out(doc["otaUpdateFiles"])
    if doc["otaUpdateStatus"] == CREATE_COMPLETE:
        info.update(awsIotJobId=doc["awsIotJobId"], awsIotJobArn=doc["awsIotJobArn"])
    return {"otaUpdateInfo": info}


@operation("iot")
def ListOTAUpdates(ctx, req):
    if req.get("otaUpdateStatus"):
        rows = ctx.tx.find(OTA_UPDATE.kind, "status", req["otaUpdateStatus"])
    else:
        rows = OTA_UPDATE.list(ctx)
    docs = sorted((doc for _, doc in rows), key=lambda d: (d["creationDate"], d["otaUpdateId"]))
    found, extra = paginate(ctx, req, docs, key=lambda d: (d["creationDate"], d["otaUpdateId"]))
    return {"otaUpdates": [{"otaUpdateId": d["otaUpdateId"], "otaUpdateArn": d["otaUpdateArn"],
                            "creationDate": d["creationDate"]} for d in found], **extra}


@operation("iot")
def DeleteOTAUpdate(ctx, req):
    ota_id = req["otaUpdateId"]
    doc = OTA_UPDATE.get(ctx, ota_id)
    if doc["otaUpdateStatus"] in PENDING:
        raise invalid(f"OTA update {ota_id} is {doc['otaUpdateStatus']} and cannot be deleted until its creation "
                      "has finished.")
    if doc["otaUpdateStatus"] == CREATE_COMPLETE:
        _delete_job(ctx, doc["awsIotJobId"], bool(req.get("forceDeleteAWSJob")))
    OTA_UPDATE.delete(ctx, ota_id)
    if req.get("deleteStream"):  # only the streams the update created; a stream you gave it stays
        for stream_id in doc.get("createdStreams") or []:
            streams.delete(ctx, stream_id)
    return {}


def _delete_job(ctx, job_id: str, force: bool) -> None:
    """The update's job, through the jobs family's own DeleteJob (found by name:
    families do not import each other)."""
    try:
        call_within(ctx, "iot", "DescribeJob", {"jobId": job_id})
    except ServiceError as error:
        if error.code == "ResourceNotFoundException":
            return  # already deleted
        raise
    try:
        call_within(ctx, "iot", "DeleteJob", {"jobId": job_id, "force": force})
    except ServiceError as error:
        if error.code in ("InvalidStateTransitionException", "LimitExceededException"):
            raise invalid(f"The AWS IoT job {job_id} of the OTA update cannot be deleted: {error.message} "
                          "Set forceDeleteAWSJob to delete it while it is in progress.") from None
        raise
