import os

# The kit: localiot_server, iot, devices, moto_endpoint ... (localiot/testing/).
pytest_plugins = ["localiot.testing"]

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
