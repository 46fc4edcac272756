import os

import boto3
import pytest

pytest_plugins = ["localiot.testing"]

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


def make_client(server, service="iot", region="us-east-1", access_key="testing"):
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key="testing",
    )


@pytest.fixture
def iot(localiot_server):
    return make_client(localiot_server)
