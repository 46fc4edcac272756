"""Shared by the Fleet Hub tests: a boto3 iotfleethub client on the shipped
model (AWS_DATA_PATH, as the README says) and fleet indexing turned on."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import boto3

MODELS_DIR = str(Path(__file__).resolve().parents[1] / "localiot" / "models")
ROLE_ARN = "arn:aws:iam::123456789012:role/AWSIotFleetHub_abc123"


def fleethub_client(server, region="us-east-1", access_key="testing", secret_key="testing"):
    old = os.environ.get("AWS_DATA_PATH")
    os.environ["AWS_DATA_PATH"] = os.pathsep.join([MODELS_DIR] + ([old] if old else []))
    try:
        session = boto3.session.Session()
        return session.client("iotfleethub", endpoint_url=server.endpoint, region_name=region,
                              aws_access_key_id=access_key, aws_secret_access_key=secret_key)
    finally:
        if old is None:
            os.environ.pop("AWS_DATA_PATH", None)
        else:
            os.environ["AWS_DATA_PATH"] = old


def advance(server, seconds: float = 0) -> None:
    """Move the injectable clock; the server's time-driven work runs before this returns."""
    request = urllib.request.Request(server.endpoint + "/_localiot/clock", method="POST",
                                     data=json.dumps({"advance": seconds}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        json.load(response)


def enable_indexing(iot, server, mode="REGISTRY_AND_SHADOW", connectivity="STATUS") -> None:
    iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": mode, "thingConnectivityIndexingMode": connectivity})
    for _ in range(50):
        if iot.describe_index(indexName="AWS_Things")["indexStatus"] == "ACTIVE":
            return
        advance(server, 1)
    raise AssertionError("the fleet index never became ACTIVE")


def active_application(hub, server, name="fleet") -> dict:
    app = hub.create_application(applicationName=name, roleArn=ROLE_ARN)
    advance(server)
    described = hub.describe_application(applicationId=app["applicationId"])
    assert described["applicationState"] == "ACTIVE"
    return described
