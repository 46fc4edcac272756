"""`localiot serve`: start every listener on loopback with embedded defaults."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import re
import sys

from localiot.config import Config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="localiot", description="AWS IoT on one machine.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the server (flags override LOCALIOT_* variables)")
    serve.add_argument("--host", help="listen address (LOCALIOT_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="API port, 0 for any free port (LOCALIOT_PORT, default 4566)")
    serve.add_argument("--data-dir", help="where state lives (LOCALIOT_DATA_DIR, default ./.localiot)")
    serve.add_argument("--in-memory", action="store_true", default=None,
                       help="keep state in memory only (LOCALIOT_IN_MEMORY)")
    serve.add_argument("--store", help="postgresql://user@host:5432/db to keep state in PostgreSQL "
                       "(LOCALIOT_STORE, default the SQLite file in the data directory)")
    serve.add_argument("--fabric", help="nats://host:4222 to carry MQTT messages and events between nodes "
                       "(LOCALIOT_FABRIC, default none: one process)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING ... (LOCALIOT_LOG_LEVEL)")
    serve.add_argument("--default-account", help="account for access keys that are not 12 digits (LOCALIOT_DEFAULT_ACCOUNT)")
    serve.add_argument("--strict-signatures", action="store_true", default=None,
                       help="verify SigV4 signatures against --credentials (LOCALIOT_STRICT_SIGNATURES)")
    serve.add_argument("--credentials", help="AKID:SECRET[,AKID:SECRET] for strict mode (LOCALIOT_CREDENTIALS)")
    serve.add_argument("--mqtt-tls-port", type=int, help="MQTT over TLS with client certificates (LOCALIOT_MQTT_TLS_PORT, default 8883)")
    serve.add_argument("--mqtt-alpn-port", type=int,
                       help="TLS port for ALPN x-amzn-mqtt-ca, WebSocket /mqtt and HTTPS publish (LOCALIOT_MQTT_ALPN_PORT, default 8443)")
    serve.add_argument("--mqtt-plain", action="store_true", default=None,
                       help="also serve plain MQTT without authentication, for development (LOCALIOT_MQTT_PLAIN)")
    serve.add_argument("--mqtt-plain-port", type=int, help="plain MQTT port (LOCALIOT_MQTT_PLAIN_PORT, default 1883)")
    serve.add_argument("--device-advisor-port", type=int,
                       help="Device Advisor test endpoint, MQTT over TLS (LOCALIOT_DEVICE_ADVISOR_PORT, default 8890)")
    serve.add_argument("--server-names", help="extra host names/IPs for the broker certificate (LOCALIOT_SERVER_NAMES)")
    serve.add_argument("--endpoint-host",
                       help="host name DescribeEndpoint answers, added to the broker certificate "
                            "(LOCALIOT_ENDPOINT_HOST, default the listen host, localhost on loopback)")
    serve.add_argument("--aws-endpoint-url", help="downstream AWS endpoint for Lambda, SQS ... (LOCALIOT_AWS_ENDPOINT_URL)")
    sub.add_parser("models-path", help="print the folder to put in AWS_DATA_PATH (Fleet Hub model for boto3/CLI)")
    signin = sub.add_parser("fleethub-signin-url",
                            help="print a presigned sign-in URL of a Fleet Hub application (strict signatures), "
                                 "signed with the usual AWS credentials (AWS_ACCESS_KEY_ID ..., profiles)")
    signin.add_argument("application_id")
    signin.add_argument("--endpoint", default="http://127.0.0.1:4566", help="the localiot API (default %(default)s)")
    signin.add_argument("--region", help="the application's region (default: the AWS configuration's)")
    signin.add_argument("--expires", type=int, default=300, help="seconds the URL stays valid (at most 3600)")
    args = parser.parse_args(argv)
    if args.command == "fleethub-signin-url":
        from localiot.fleethub_web.signin import signin_url_from_session

        print(signin_url_from_session(args.endpoint, args.application_id, args.region, args.expires))
        return
    if args.command == "models-path":
        from localiot.protocol.models import MODELS_DIR

        print(MODELS_DIR)
        return

    overrides = {k: v for k, v in vars(args).items() if k != "command"}
    config = Config.from_env(**overrides)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from localiot.server import serve_forever

    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # uvloop is optional (Windows)
        run = asyncio.run
    from localiot.datadir_lock import DataDirectoryInUse

    try:
        run(serve_forever(config))
    except KeyboardInterrupt:
        pass
    except DataDirectoryInUse as error:
        sys.exit(f"localiot: {error}")
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        sys.exit(f"localiot: {address_in_use(error, config)}")


# port -> (flag, variable) of the listener that binds it, for the one-line answer
_PORT_SETTINGS = (
    ("port", "--port", "LOCALIOT_PORT"),
    ("mqtt_tls_port", "--mqtt-tls-port", "LOCALIOT_MQTT_TLS_PORT"),
    ("mqtt_alpn_port", "--mqtt-alpn-port", "LOCALIOT_MQTT_ALPN_PORT"),
    ("mqtt_plain_port", "--mqtt-plain-port", "LOCALIOT_MQTT_PLAIN_PORT"),
    ("device_advisor_port", "--device-advisor-port", "LOCALIOT_DEVICE_ADVISOR_PORT"),
)


def address_in_use(error: OSError, config: Config) -> str:
    """One line naming the address that is taken and the setting that moves it."""
    found = re.search(r"\('([^']*)', (\d+)", str(error))
    host, port = (found.group(1), int(found.group(2))) if found else (config.host, None)
    for field, flag, variable in _PORT_SETTINGS:
        if port is not None and getattr(config, field) == port:
            return (f"{host}:{port} is already in use; another server listens there. "
                    f"Choose another port with {flag} or {variable} (0 picks a free one).")
    where = f"{host}:{port}" if port is not None else "a listen address"
    return f"{where} is already in use ({error.strerror}); see `localiot serve --help` for the port settings."
