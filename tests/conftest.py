import os

import pytest

from localiot.testing import make_client

# The kit (localiot/testing/): localiot_server, localiot_settings, localiot_devices, localiot_moto ...
pytest_plugins = ["localiot.testing", "advisor_kit"]  # advisor_kit: Device Advisor's da / dut fixtures

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture(scope="session")
def localiot_defaults():
    """The kit's defaults, and plain MQTT on a free loopback port for the tests
    about topics rather than TLS (devices.plain(...))."""
    return {"background_period": 0, "mqtt_plain": True}


@pytest.fixture
def iot(localiot_server):
    return make_client(localiot_server)


@pytest.fixture
def devices(localiot_devices):
    """MQTT devices (localiot.testing.DevicePool), closed after the test."""
    return localiot_devices
