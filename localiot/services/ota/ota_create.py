"""The creation of an OTA update, after CreateOTAUpdate has answered CREATE_PENDING.

1. CREATE_IN_PROGRESS; the files are found (in the given stream, or the S3
   locations given).
2. Off the event loop: each file is signed when asked (the downstream AWS
   Signer: StartSigningJob with startSigningJobParameter, or the signing job
   awsSignerJobId names; the signed object is what devices get) and looked
   at in S3 (HeadObject: it must exist, its size goes in the job document).
3. One unit of work: the stream `AFR_OTA-<uuid>` holding the S3 files (when
   MQTT is a protocol and the files were not given as a stream), then the
   job `AFR_OTA-<otaUpdateId>` with the `afr_ota` document, created through
   the jobs family's own CreateJob, then CREATE_COMPLETE.

Any failure (a missing stream, file or S3 object, a refused signing job, a
job the jobs family refuses) leaves CREATE_FAILED with `errorInfo` {code,
message}, and nothing of step 3. Creation starts once the CreateOTAUpdate call
committed; the "ota-updates" periodic work resumes any update still pending
(after a restart) and waits for those under way, so a test that moves the
clock (POST /_localiot/clock) finds the creation finished.
"""

from __future__ import annotations

import asyncio
import base64
import logging

from localiot.background import periodic
from localiot.protocol.errors import ServiceError
from localiot.services.common import new_id
from localiot.services.in_process import call_within
from localiot.services.ota import afr_ota, streams
from localiot.services.ota.ota_model import (
    CREATE_COMPLETE, CREATE_FAILED, CREATE_IN_PROGRESS, OTA_UPDATE, PENDING, save,
)
from localiot.services.ota.stream_files import Location
from localiot.services.unit_of_work import in_unit, run_off_loop, unit_of_work

log = logging.getLogger("localiot.ota")
_running: dict[tuple, asyncio.Task] = {}


class Failed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def schedule(ctx, ota_id: str) -> None:
    """Start the creation once the calling unit of work has committed."""
    runtime, account, region = ctx.runtime, ctx.account, ctx.region

    def start():
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop here: the periodic work picks the update up
        _start(loop, runtime, account, region, ota_id)

    ctx.after_commit(start)


def _start(loop, runtime, account: str, region: str, ota_id: str) -> asyncio.Task:
    key = (account, region, ota_id)
    task = _running.get(key)
    if task is None or task.done():
        task = loop.create_task(run(runtime, account, region, ota_id), name=f"ota-{ota_id}")
        _running[key] = task
        task.add_done_callback(lambda done: _running.pop(key, None) if _running.get(key) is done else None)
    return task


@periodic("ota-updates")
async def resume(store, runtime) -> None:
    loop = asyncio.get_running_loop()
    tasks = []
    for account, region in await run_off_loop(runtime, store.scopes_indexing, OTA_UPDATE.kind, "pending", "1"):
        pending = await in_unit(runtime, account, region, "iot", "CreateOTAUpdate", _pending, write=False)
        tasks += [_start(loop, runtime, account, region, ota_id) for ota_id in pending]
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


def _pending(ctx) -> list[str]:
    return [name for name, _ in ctx.tx.find(OTA_UPDATE.kind, "pending", "1")]


async def run(runtime, account: str, region: str, ota_id: str) -> None:
    """The asyncio task creating one OTA update; its units of work run off the loop with PostgreSQL."""
    try:
        started = await in_unit(runtime, account, region, "iot", "CreateOTAUpdate", _begin, ota_id)
        if started is None:
            return
        doc, sources = started
        files = await asyncio.get_running_loop().run_in_executor(None, _inspect, runtime, region, doc, sources)
        await in_unit(runtime, account, region, "iot", "CreateOTAUpdate", _finish, ota_id, sources, files)
    except Failed as failure:
        await run_off_loop(runtime, _fail, runtime, account, region, ota_id, failure.code, failure.message)
    except ServiceError as error:
        await run_off_loop(runtime, _fail, runtime, account, region, ota_id, error.code, error.message)
    except Exception as error:  # an OTA update must not stay pending because of a bug: say what happened
        log.exception("creating OTA update %s failed", ota_id)
        await run_off_loop(runtime, _fail, runtime, account, region, ota_id, "InternalFailureException",
                           f"{type(error).__name__}: {error}")


def _begin(ctx, ota_id: str):
    doc = OTA_UPDATE.find(ctx, ota_id)
    if doc is None or doc["otaUpdateStatus"] not in PENDING:
        return None
    doc["otaUpdateStatus"] = CREATE_IN_PROGRESS
    save(ctx, doc)
    return doc, _sources(ctx, doc)


def _finish(ctx, ota_id: str, sources, files) -> None:
    doc = OTA_UPDATE.find(ctx, ota_id)
    if doc is None or doc["otaUpdateStatus"] != CREATE_IN_PROGRESS:
        return
    _complete(ctx, doc, sources, files)


def _fail(runtime, account: str, region: str, ota_id: str, code: str, message: str) -> None:
    with unit_of_work(runtime, account, region, "iot", "CreateOTAUpdate") as ctx:
        doc = OTA_UPDATE.find(ctx, ota_id)
        if doc is None or doc["otaUpdateStatus"] not in PENDING:
            return
        doc["otaUpdateStatus"] = CREATE_FAILED
        doc["errorInfo"] = {"code": code, "message": message}
        save(ctx, doc)


# step 1: where the files are ------------------------------------------------------
def _sources(ctx, doc: dict) -> list[dict]:
    """Per file: its S3 location, its id in the stream, and the stream it is in (None: to create)."""
    out = []
    for index, file in enumerate(doc["otaUpdateFiles"]):
        location = file["fileLocation"]
        if location.get("stream"):
            stream_id, file_id = location["stream"]["streamId"], location["stream"]["fileId"]
            stream = streams.STREAM.find(ctx, stream_id)
            if stream is None:
                raise Failed("ResourceNotFoundException", f"Stream {stream_id} cannot be found.")
            found = streams.file_of(stream, file_id)
            if found is None:
                raise Failed("ResourceNotFoundException", f"File {file_id} cannot be found in stream {stream_id}.")
            s3 = found["s3Location"]
        else:
            stream_id, file_id, s3 = None, index, location["s3Location"]
        out.append({"fileId": file_id, "streamId": stream_id, "s3Location": s3})
    return out


# step 2: signing and S3 (blocking, off the loop) -------------------------------------
def _inspect(runtime, region: str, doc: dict, sources: list[dict]) -> list[afr_ota.File]:
    files = []
    for file, source in zip(doc["otaUpdateFiles"], sources):
        location = Location.of(source["s3Location"])
        signing = file.get("codeSigning") or {}
        signature_key, signature = None, None
        if signing.get("startSigningJobParameter") or signing.get("awsSignerJobId"):
            location, source["awsSignerJobId"] = _signed(runtime, region, signing, location)
            source["s3Location"] = {"bucket": location.bucket, "key": location.key}
        custom = signing.get("customCodeSigning")
        certfile = None
        if custom:
            signature_key = afr_ota.signature_key(custom.get("hashAlgorithm"), custom.get("signatureAlgorithm"))
            signature = base64.b64decode(custom["signature"]["inlineDocument"])
            certfile = (custom.get("certificateChain") or {}).get("certificateName")
        elif signing.get("startSigningJobParameter"):
            certfile = (signing["startSigningJobParameter"].get("signingProfileParameter") or {}).get(
                "certificatePathOnDevice")
        files.append(afr_ota.File(
            path=file.get("fileName"), size=_size(runtime, region, location), file_id=source["fileId"],
            bucket=location.bucket, key=location.key, file_type=file.get("fileType"), certfile=certfile,
            signature_key=signature_key, signature=signature,
        ))
    return files


def _downstream_error(error: Exception) -> tuple[str, str]:
    response = getattr(error, "response", None) or {}
    details = response.get("Error", {})
    return str(details.get("Code") or type(error).__name__), str(details.get("Message") or error)


def _size(runtime, region: str, location: Location) -> int:
    try:
        return int(runtime.aws_client("s3", region).head_object(**location.params())["ContentLength"])
    except Exception as error:
        code, _ = _downstream_error(error)
        if code in ("404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound"):
            raise Failed("ResourceNotFoundException", f"The file {location} does not exist in S3 ({code}).") from None
        raise Failed("InvalidRequestException", f"The file {location} cannot be read from S3 ({code}).") from None


def _signed(runtime, region: str, signing: dict, location: Location) -> tuple[Location, str]:
    """Sign through the downstream AWS Signer; the signed object and the signing job id."""
    client = runtime.aws_client("signer", region)
    try:
        start = signing.get("startSigningJobParameter")
        if start:
            destination = start["destination"]["s3Destination"]
            source = {"bucketName": location.bucket, "key": location.key, "version": location.version or "null"}
            job_id = client.start_signing_job(
                source={"s3": source}, profileName=start["signingProfileName"],
                destination={"s3": {"bucketName": destination["bucket"], "prefix": destination.get("prefix") or ""}},
            )["jobId"]
        else:
            job_id = signing["awsSignerJobId"]
        client.get_waiter("successful_signing_job").wait(jobId=job_id)
        signed = client.describe_signing_job(jobId=job_id)["signedObject"]["s3"]
    except Exception as error:
        code, message = _downstream_error(error)
        raise Failed(code, f"Code signing through AWS Signer failed: {message}") from None
    return Location(signed["bucketName"], signed["key"]), job_id


# step 3: the stream and the job ---------------------------------------------------------
def _complete(ctx, doc: dict, sources: list[dict], files: list[afr_ota.File]) -> None:
    protocols = doc["protocols"]
    stream_id = None
    if "MQTT" in protocols:
        given = {s["streamId"] for s in sources if s["streamId"]}
        if given and not any(s.get("awsSignerJobId") for s in sources):
            stream_id = given.pop()
        else:
            stream_id = f"AFR_OTA-{new_id()}"
            streams.create(ctx, stream_id, [{"fileId": s["fileId"], "s3Location": s["s3Location"]} for s in sources],
                           doc["roleArn"], description=f"Stream of OTA update {doc['otaUpdateId']}",
                           ota_update_id=doc["otaUpdateId"])
            doc["createdStreams"] = [stream_id]
    for file, source in zip(doc["otaUpdateFiles"], sources):
        if source.get("awsSignerJobId"):
            file["codeSigning"] = {**file["codeSigning"], "awsSignerJobId": source["awsSignerJobId"]}
    job = {
        "jobId": doc["awsIotJobId"],
        "targets": doc["targets"],
        "targetSelection": doc["targetSelection"],
        "document": afr_ota.document(protocols, stream_id, files),
    }
    if doc.get("awsJobExecutionsRolloutConfig"):
        job["jobExecutionsRolloutConfig"] = doc["awsJobExecutionsRolloutConfig"]
    if doc.get("awsJobAbortConfig"):
        job["abortConfig"] = {"criteriaList": doc["awsJobAbortConfig"]["abortCriteriaList"]}
    if doc.get("awsJobTimeoutConfig"):
        job["timeoutConfig"] = doc["awsJobTimeoutConfig"]
    if doc.get("awsJobPresignedUrlConfig"):
        job["presignedUrlConfig"] = {"roleArn": doc["roleArn"], **doc["awsJobPresignedUrlConfig"]}
    call_within(ctx, "iot", "CreateJob", job)
    doc["otaUpdateStatus"] = CREATE_COMPLETE
    save(ctx, doc)
