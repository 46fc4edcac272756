"""The AWS side of a test: boto3 clients for a server, botocore errors as
(code, status), the server's clock, and moto's server as the downstream AWS."""

from __future__ import annotations

import json
import urllib.request
from contextlib import contextmanager

import boto3
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"  # the server's default account (Config.default_account)
REGION = "us-east-1"  # and region (Config.default_region)


def make_client(server, service: str = "iot", region: str = REGION, access_key: str = "testing",
                secret_key: str = "testing", config=None):
    """A boto3 client of `service` talking to `server` (a ServerThread or any object with
    an `endpoint` URL). Without strict signatures any key works; with them, the access key
    selects the account."""
    endpoint = server if isinstance(server, str) else server.endpoint
    return boto3.client(service, endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key, config=config)


# errors -----------------------------------------------------------------------------
def client_error(source, *args, **kwargs) -> ClientError:
    """The botocore ClientError of `source`: a ClientError, pytest's ExceptionInfo of one
    (`with pytest.raises(ClientError) as info`), or a call, made here with `args` and
    `kwargs`, that must raise one: client_error(iot.describe_thing, thingName="nope")."""
    if isinstance(source, ClientError):
        return source
    if isinstance(getattr(source, "value", None), ClientError):  # pytest's ExceptionInfo
        return source.value
    if callable(source):
        try:
            answer = source(*args, **kwargs)
        except ClientError as error:
            return error
        raise AssertionError(f"no error: {source.__name__ if hasattr(source, '__name__') else source} "
                             f"answered {answer!r}")
    raise TypeError(f"not a ClientError, an ExceptionInfo or a call: {source!r}")


def error_of(source, *args, **kwargs) -> tuple[str, int]:
    """(error code, HTTP status) of a ClientError; `source` as for client_error."""
    response = client_error(source, *args, **kwargs).response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def error_code(source, *args, **kwargs) -> str:
    """The error code of a ClientError ("ResourceNotFoundException" ...); `source` as for client_error."""
    return client_error(source, *args, **kwargs).response["Error"]["Code"]


def error_message(source, *args, **kwargs) -> str:
    """The error message of a ClientError ("" when there is none); `source` as for client_error."""
    return client_error(source, *args, **kwargs).response["Error"].get("Message", "")


# the clock ----------------------------------------------------------------------------
def move_clock(server, **body) -> dict:
    """POST /_localiot/clock with `body` (advance=seconds, set=epoch seconds, reset=True);
    the server runs its time-driven work (timeouts, rollouts, schedules ...) before it
    answers {"now": epoch seconds, "offset": seconds}."""
    request = urllib.request.Request(server.endpoint + "/_localiot/clock", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def advance(server, seconds: float) -> float:
    """Move the server's clock `seconds` ahead, as a user of localiot would (the
    time-driven work runs before this returns); the server's new time, epoch seconds."""
    return move_clock(server, advance=seconds)["now"]


# moto as the downstream AWS -----------------------------------------------------------
@contextmanager
def moto_server():
    """moto's server (`moto[server]`) on a free loopback port; yields its URL. Give it to
    localiot as aws_endpoint_url and IoT's calls to S3, SNS, SQS, Lambda ... reach it."""
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        moto.stop()
