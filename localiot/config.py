"""Configuration: command-line flags override LOCALIOT_* variables override defaults."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, fields


def _bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 4566
    data_dir: str = ".localiot"
    in_memory: bool = False
    # Where state lives: empty for the SQLite file in data_dir (":memory:" with
    # in_memory), or a PostgreSQL DSN (postgresql://user@host:5432/db) that
    # several nodes share.
    store: str = ""
    # The message fabric between nodes: empty for one process, or a NATS URL
    # (nats://host:4222) that every node of a cluster shares (localiot.fabric).
    fabric: str = ""
    log_level: str = "INFO"
    default_account: str = "123456789012"
    default_region: str = "us-east-1"
    # Strict mode verifies SigV4 signatures against `credentials`
    # ("AKID:SECRET,AKID2:SECRET2"); by default any signature is accepted.
    strict_signatures: bool = False
    credentials: str = ""
    # Where Lambda, SQS, S3 ... are reached (moto's server, LocalStack, AWS).
    aws_endpoint_url: str = ""
    # MQTT listeners (on loopback by default, like the API). 0 picks a free port.
    mqtt_tls_port: int = 8883  # MQTT over TLS with client certificates
    mqtt_alpn_port: int = 8443  # TLS: ALPN x-amzn-mqtt-ca, WebSocket /mqtt, HTTPS publish
    mqtt_plain_port: int = 1883  # plain MQTT, only with mqtt_plain
    mqtt_plain: bool = False
    device_advisor_port: int = 8890  # the Device Advisor test endpoint (MQTT over TLS)
    # Extra host names / IPs for the broker's server certificate (comma-separated).
    server_names: str = ""
    # The host name DescribeEndpoint answers; empty: the listen host, or
    # "localhost" on loopback or a wildcard address.
    endpoint_host: str = ""
    # Seconds between runs of time-driven work (timeouts, rollouts ...); 0 runs
    # it only when the clock is moved through /_localiot/clock (deterministic tests).
    background_period: float = 1.0
    # Credentials for the downstream endpoint; empty means boto3's usual chain.
    downstream_access_key: str = ""
    downstream_secret_key: str = ""

    env_names = {
        "host": "LOCALIOT_HOST",
        "port": "LOCALIOT_PORT",
        "data_dir": "LOCALIOT_DATA_DIR",
        "in_memory": "LOCALIOT_IN_MEMORY",
        "store": "LOCALIOT_STORE",
        "fabric": "LOCALIOT_FABRIC",
        "log_level": "LOCALIOT_LOG_LEVEL",
        "default_account": "LOCALIOT_DEFAULT_ACCOUNT",
        "default_region": "LOCALIOT_DEFAULT_REGION",
        "strict_signatures": "LOCALIOT_STRICT_SIGNATURES",
        "credentials": "LOCALIOT_CREDENTIALS",
        "aws_endpoint_url": "LOCALIOT_AWS_ENDPOINT_URL",
        "background_period": "LOCALIOT_BACKGROUND_PERIOD",
        "mqtt_tls_port": "LOCALIOT_MQTT_TLS_PORT",
        "mqtt_alpn_port": "LOCALIOT_MQTT_ALPN_PORT",
        "mqtt_plain_port": "LOCALIOT_MQTT_PLAIN_PORT",
        "mqtt_plain": "LOCALIOT_MQTT_PLAIN",
        "device_advisor_port": "LOCALIOT_DEVICE_ADVISOR_PORT",
        "server_names": "LOCALIOT_SERVER_NAMES",
        "endpoint_host": "LOCALIOT_ENDPOINT_HOST",
        "downstream_access_key": "LOCALIOT_AWS_ACCESS_KEY_ID",
        "downstream_secret_key": "LOCALIOT_AWS_SECRET_ACCESS_KEY",
    }

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Config":
        environ = os.environ if environ is None else environ
        cfg = cls()
        for f in fields(cls):
            env = cls.env_names.get(f.name)
            if env and env in environ:
                setattr(cfg, f.name, _coerce(f.type, environ[env]))
        for name, value in overrides.items():
            if value is not None:
                setattr(cfg, name, value)
        return cfg

    def credential_map(self) -> dict[str, str]:
        pairs = [p for p in self.credentials.split(",") if p.strip()]
        return dict(p.strip().split(":", 1) for p in pairs)


def _coerce(type_name, raw: str):
    if type_name in (bool, "bool"):
        return _bool(raw)
    if type_name in (int, "int"):
        return int(raw)
    if type_name in (float, "float"):
        return float(raw)
    return raw


_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def endpoint_host(config) -> str:
    """The host name devices are told to reach (DescribeEndpoint, Device Advisor's
    GetEndpoint; no port, like AWS): --endpoint-host when given, else "localhost"
    when the server listens on loopback or on every address, else the listen host."""
    configured = (getattr(config, "endpoint_host", "") or "").strip()
    if configured:
        return configured
    host = (config.host or "").strip()
    if host in _WILDCARDS or _loopback(host):
        return "localhost"
    return host.strip("[]")
