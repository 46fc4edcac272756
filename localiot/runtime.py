"""Shared parts of one running localiot that handlers and listeners reach:
config, clock, bus, the installation's certificate authorities, and clients
for the downstream AWS services (Lambda, SQS, S3 ...)."""

from __future__ import annotations

import threading
from functools import cached_property

from localiot.bus import Bus
from localiot.clock import Clock
from localiot.config import Config


class Runtime:
    def __init__(self, config: Config, clock: Clock, bus: Bus):
        self.config = config
        self.clock = clock
        self.bus = bus
        self.store = None  # the store port (localiot.store), set by the process that opens it
        # listener -> "host:port" it is bound to, filled as listeners start ("api",
        # "iot:Data-ATS", "mqtt-alpn" ...); /_localiot/health lists it (DescribeEndpoint
        # answers a host name only: localiot.services.security.endpoints).
        self.listeners: dict[str, str] = {}
        self.broker = None  # the MQTT broker, once the listeners started
        self.rules = None  # the rules engine (localiot.services.rules.engine) while it runs
        self.workers = None  # PostgreSQL: the threads units of work run on (localiot.cluster.workers)
        # fn(ctx) after every committed unit of work (localiot.services.unit_of_work):
        # the broker drops cached authorizations when device rights changed.
        self.commit_listeners: list = []
        self._clients: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    @cached_property
    def ca(self):
        """The installation's root CA, what devices trust for the server (ca.pem, GET
        /_localiot/ca.pem); it issues server certificates. Created on first use, kept in the
        data directory (SQLite) or in the shared PostgreSQL store, for every node (localiot.cluster)."""
        from localiot.pki import InstallationCA

        return self._kept_ca(InstallationCA)

    @cached_property
    def device_ca(self):
        """The issuer of device certificates (CreateKeysAndCertificate, CreateCertificateFromCsr,
        provisioning claims), apart from the root (localiot.pki), kept like it."""
        from localiot.pki import DeviceCA

        return self._kept_ca(DeviceCA)

    def _kept_ca(self, kind):
        from localiot.cluster import shared_ca

        return shared_ca(self.config, kind) or kind.load_or_create(
            None if self.config.in_memory else self.config.data_dir)

    @cached_property
    def device_issuers_pem(self) -> bytes:
        """What the device listeners trust for device certificates besides registered CAs: the
        device CA, and the root, which issued device certificates before the device CA existed."""
        return self.device_ca.pem + self.ca.pem

    def aws_client(self, service: str, region: str):
        """A boto3 client for a downstream AWS service at LOCALIOT_AWS_ENDPOINT_URL."""
        import boto3

        key = (service, region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = boto3.client(
                    service,
                    region_name=region,
                    endpoint_url=self.config.aws_endpoint_url or None,
                    aws_access_key_id=self.config.downstream_access_key or None,
                    aws_secret_access_key=self.config.downstream_secret_key or None,
                )
                self._clients[key] = client
            return client
