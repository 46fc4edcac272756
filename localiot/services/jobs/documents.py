"""Job documents: fetched from S3, filled from template parameters, and given
to devices with their presigned-URL placeholders resolved.

- `documentSource` is an S3 object URL (`https://s3.amazonaws.com/bucket/key`,
  the regional and virtual-hosted forms, or `s3://bucket/key`); the document
  is read once, when the job or template is created, through the downstream
  S3 client (LOCALIOT_AWS_ENDPOINT_URL).
- `${aws:iot:parameter:name}` placeholders of AWS managed templates are
  replaced by the job's documentParameters at creation.
- `${aws:iot:s3-presigned-url:https://s3.amazonaws.com/bucket/key}` stays in
  the stored document (GetJobDocument shows it) and is replaced by a fresh
  presigned GET URL, valid presignedUrlConfig.expiresInSec seconds, in every
  document a device receives.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import unquote, urlparse

from localiot.protocol.errors import invalid
from localiot.services.jobs.limits import Limits

PARAMETER = re.compile(r"\$\{aws:iot:parameter:([A-Za-z0-9_-]+)\}")
PRESIGNED = re.compile(r"\$\{aws:iot:s3-presigned-url:([^}]+)\}")
DEFAULT_EXPIRY = 3600

_REGIONAL = re.compile(r"^s3[.-](?P<region>[a-z0-9-]+)\.amazonaws\.com$")
_VIRTUAL = re.compile(r"^(?P<bucket>.+)\.s3(?:[.-](?P<region>[a-z0-9-]+))?\.amazonaws\.com$")


def parse_s3_url(url: str) -> tuple[str, str, str | None]:
    """(bucket, key, region or None) of an S3 object URL."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        bucket, key = parsed.netloc, parsed.path.lstrip("/")
        region = None
    elif parsed.scheme in ("https", "http"):
        host = (parsed.hostname or "").lower()
        path = unquote(parsed.path)
        virtual = _VIRTUAL.match(host)
        if host == "s3.amazonaws.com" or _REGIONAL.match(host):
            region = _REGIONAL.match(host).group("region") if host != "s3.amazonaws.com" else None
            bucket, _, key = path.lstrip("/").partition("/")
        elif virtual:
            bucket, region, key = virtual.group("bucket"), virtual.group("region"), path.lstrip("/")
        else:
            raise invalid(f"{url} is not a valid S3 object URL.")
    else:
        raise invalid(f"{url} is not a valid S3 object URL.")
    if not bucket or not key:
        raise invalid(f"{url} is not a valid S3 object URL.")
    if region in ("external-1",):
        region = None
    return bucket, key, region


def fetch(ctx, source: str) -> str:
    """Read a job document from S3 (downstream AWS); failures are reported, not hidden."""
    bucket, key, region = parse_s3_url(source)
    try:
        client = ctx.runtime.aws_client("s3", region or ctx.region)
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as error:  # botocore ClientError, connection errors ...
        code = getattr(error, "response", {}).get("Error", {}).get("Code") if hasattr(error, "response") else None
        reason = code or type(error).__name__
        raise invalid(f"Unable to download the job document from {source}: {reason}.") from None
    if len(body) > Limits.DOCUMENT_SIZE:
        raise invalid(f"The job document at {source} is larger than {Limits.DOCUMENT_SIZE} bytes.")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid(f"The job document at {source} is not UTF-8 text.") from None


def substitute(document: str, values: dict[str, str]) -> str:
    return PARAMETER.sub(lambda m: values.get(m.group(1), ""), document)


_signers: dict[tuple, object] = {}
_lock = threading.Lock()


def _signer(ctx, region: str):
    """An S3 client that presigns with SigV4, as AWS IoT does (X-Amz-Expires = expiresInSec);
    same endpoint and credentials as the runtime's downstream clients."""
    config = ctx.runtime.config
    key = (region, config.aws_endpoint_url, config.downstream_access_key, config.downstream_secret_key)
    with _lock:
        client = _signers.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3", region_name=region, endpoint_url=config.aws_endpoint_url or None,
                aws_access_key_id=config.downstream_access_key or None,
                aws_secret_access_key=config.downstream_secret_key or None,
                config=Config(signature_version="s3v4",
                              s3={"addressing_style": "path"} if config.aws_endpoint_url else None),
            )
            _signers[key] = client
        return client


def presign(ctx, job: dict, document: str) -> str:
    if "${aws:iot:s3-presigned-url:" not in document:
        return document
    expiry = (job.get("presignedUrlConfig") or {}).get("expiresInSec") or DEFAULT_EXPIRY

    def sign(match):
        try:
            bucket, key, region = parse_s3_url(match.group(1).strip())
            return _signer(ctx, region or ctx.region).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                                 ExpiresIn=int(expiry))
        except Exception:
            return match.group(0)  # not an S3 URL we can sign: the device sees the placeholder

    return PRESIGNED.sub(sign, document)


def for_device(ctx, job: dict) -> str:
    return presign(ctx, job, job.get("document") or "")
