"""A test kit for code that talks to AWS IoT: a real localiot server in the
test process, boto3 clients for it, MQTT devices over real TLS, the server's
clock, and botocore errors in a form tests can compare.

    from localiot.testing import advance, error_code, local_server, make_client, tls_device

    with local_server() as server:
        iot = make_client(server)               # boto3, endpoint_url=server.endpoint
        assert error_code(iot.describe_thing, thingName="nope") == "ResourceNotFoundException"
        device = tls_device(server, "sensor-1") # fresh certificate + policy, MQTT/TLS
        device.subscribe("sensors/#"); device.publish("sensors/1", {"t": 21})
        assert device.expect_json("sensors/1") == {"t": 21}
        advance(server, 3600)                   # an hour later, timers have run
        device.close()

In pytest (the kit registers itself as a plugin when localiot is installed)
the fixtures are `localiot_server`, `localiot_settings`, `localiot_defaults`,
`localiot_servers`, `localiot_devices`, `localiot_moto`, `localiot_store`,
`localiot_postgres` and `localiot_nats` (see localiot.testing.plugin;
--localiot-store=sqlite,postgresql runs the server tests on both stores).

paho-mqtt (devices), moto (moto_server) and pytest (the fixtures) are imported
only when used.
"""

from localiot.testing.aws import (ACCOUNT, REGION, advance, client_error, error_code, error_message, error_of,
                                  make_client, moto_server, move_clock)
from localiot.testing.mqtt import (ALLOW_ALL, NOT_AUTHORIZED, V3, V5, WAIT, Cert, Device, DevicePool, address,
                                   alpn_port, ca_file, new_certificate, plain_device, tls_device)
from localiot.testing.raw import RawClient, wait_until
from localiot.testing.server import ServerPool, ServerThread, local_server

__all__ = [
    "ACCOUNT", "REGION", "advance", "client_error", "error_code", "error_message", "error_of", "make_client",
    "moto_server", "move_clock", "ALLOW_ALL", "NOT_AUTHORIZED", "V3", "V5", "WAIT", "Cert", "Device",
    "DevicePool", "address", "alpn_port", "ca_file", "new_certificate", "plain_device", "tls_device",
    "RawClient", "wait_until", "ServerPool", "ServerThread", "local_server",
]

try:
    import pytest  # noqa: F401
except ImportError:  # the kit works without pytest too
    pass
else:
    from localiot.testing.plugin import (localiot_defaults, localiot_devices, localiot_moto,  # noqa: F401
                                         localiot_nats, localiot_postgres, localiot_server, localiot_servers,
                                         localiot_settings, localiot_store, pytest_addoption,
                                         pytest_configure, pytest_generate_tests)
