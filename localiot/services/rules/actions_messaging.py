"""Actions that pass the message on: republish, http, lambda, sqs, sns,
kinesis, firehose, kafka, salesforce."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from urllib.parse import urlparse

from localiot.protocol.errors import invalid
from localiot.services.rules.actions import (
    ActionError,
    Job,
    action,
    b64,
    check_arn,
    check_enum,
    check_role_arn,
    check_url,
    has_template,
    http_send,
    region_of_arn,
)

# republish ------------------------------------------------------------------------
FORMAT_INDICATORS = {"UNSPECIFIED_BYTES": 0, "UTF8_DATA": 1}


def _check_republish(config, where):
    topic = config["topic"]
    literal = re.sub(r"\$\{[^}]*\}", "", topic)
    if "+" in literal or "#" in literal:
        raise invalid(f"{where}.topic: {topic} must not contain wildcard characters.")
    if config.get("qos") not in (None, 0, 1):
        raise invalid(f"{where}.qos must be 0 or 1.")
    headers = config.get("headers") or {}
    check_enum(headers.get("payloadFormatIndicator"), tuple(FORMAT_INDICATORS),
               f"{where}.headers.payloadFormatIndicator")
    expiry = headers.get("messageExpiry")
    if expiry is not None and not has_template(expiry) and not expiry.isdigit():
        raise invalid(f"{where}.headers.messageExpiry must be a number of seconds.")
    correlation = headers.get("correlationData")
    if correlation is not None and not has_template(correlation):
        try:
            base64.b64decode(correlation, validate=True)
        except (binascii.Error, ValueError):
            raise invalid(f"{where}.headers.correlationData must be base64-encoded.") from None


def _mqtt5_properties(headers: dict, inv) -> dict | None:
    if not headers:
        return None
    props = {}
    indicator = inv.sub(headers.get("payloadFormatIndicator"))
    if indicator:
        if indicator not in FORMAT_INDICATORS:
            raise ActionError(f"Invalid payloadFormatIndicator {indicator!r}.")
        props["payload_format_indicator"] = FORMAT_INDICATORS[indicator]
    if headers.get("contentType"):
        props["content_type"] = inv.sub(headers["contentType"])
    if headers.get("responseTopic"):
        response_topic = inv.sub(headers["responseTopic"])
        if "+" in response_topic or "#" in response_topic:
            raise ActionError(f"Invalid responseTopic {response_topic!r}: wildcards are not allowed.")
        props["response_topic"] = response_topic
    if headers.get("correlationData"):
        try:
            props["correlation_data"] = base64.b64decode(inv.sub(headers["correlationData"]), validate=True)
        except (binascii.Error, ValueError):
            raise ActionError("correlationData is not valid base64.") from None
    if headers.get("messageExpiry"):
        expiry = inv.sub(headers["messageExpiry"])
        try:
            props["message_expiry_interval"] = int(expiry)
        except ValueError:
            raise ActionError(f"Invalid messageExpiry {expiry!r}.") from None
    if headers.get("userProperties"):
        props["user_property"] = [(inv.sub(p["key"]), inv.sub(p["value"])) for p in headers["userProperties"]]
    return props or None


@action("republish", "RepublishAction", ("topic", "roleArn"), _check_republish)
def republish(config, inv):
    topic = inv.sub(config["topic"])
    if not topic or "+" in topic or "#" in topic or len(topic.encode()) > 256:
        raise ActionError(f"Invalid republish topic {topic!r}.", topic)
    qos = config.get("qos") or 0
    props = _mqtt5_properties(config.get("headers") or {}, inv)
    payload = inv.payload

    def run():
        inv.publish(inv.account, inv.region, topic, payload, qos, props)

    return Job(topic, run, inline=True)


# http -----------------------------------------------------------------------------
def _check_http(config, where):
    url, confirmation = config["url"], config.get("confirmationUrl")
    check_url(url, f"{where}.url")
    if has_template(url) and not confirmation:
        raise invalid(f"{where}: a confirmationUrl is required when the url uses substitution templates.")
    if confirmation:
        check_url(confirmation, f"{where}.confirmationUrl")
        if not has_template(confirmation) and not url.startswith(confirmation):
            raise invalid(f"{where}: the url {url} must begin with the confirmationUrl {confirmation}.")
    sigv4 = (config.get("auth") or {}).get("sigv4")
    if sigv4 is not None:
        for name in ("roleArn", "serviceName", "signingRegion"):
            if not sigv4.get(name):
                raise invalid(f"{where}.auth.sigv4.{name} is required.")
        check_role_arn(sigv4["roleArn"], f"{where}.auth.sigv4.roleArn")
    for header in config.get("headers") or []:
        if not header.get("key"):
            raise invalid(f"{where}.headers: every header needs a key.")


def confirmation_url(config: dict) -> str | None:
    """The destination URL an http action needs, when it is known without a message."""
    url = config.get("confirmationUrl") or config.get("url")
    return None if has_template(url) else url


def _content_type(payload: bytes) -> str:
    try:
        json.loads(payload)
    except ValueError:
        return "application/octet-stream"
    return "application/json"


@action("http", "HttpAction", ("url",), _check_http)
def http(config, inv):
    url = inv.sub(config["url"])
    if not any(url.startswith(prefix) for prefix in inv.enabled_urls):
        raise inv.fail("Failed to send the HTTP request", "no ENABLED topic rule destination matches the URL",
                       "http", Url=url)
    headers = {h["key"]: inv.sub(h["value"]) for h in config.get("headers") or []}
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = _content_type(inv.payload)
    sigv4 = (config.get("auth") or {}).get("sigv4")
    sign = (sigv4["serviceName"], sigv4["signingRegion"]) if sigv4 else None
    payload, runtime = inv.payload, inv.runtime

    def run():
        try:
            http_send("POST", url, payload, headers, sign=sign, runtime=runtime)
        except ActionError as error:
            raise inv.fail("Failed to send the HTTP request", error.message, "http", Url=url) from None

    return Job(url, run)


# lambda ---------------------------------------------------------------------------
def _check_lambda(config, where):
    arn = config["functionArn"]
    check_arn(arn, f"{where}.functionArn", "lambda")


@action("lambda", "LambdaAction", ("functionArn",), _check_lambda)
def lambda_(config, inv):
    arn = inv.sub(config["functionArn"])
    payload = inv.payload

    def run():
        try:
            response = inv.client("lambda", region_of_arn(arn, inv.region)).invoke(
                FunctionName=arn, InvocationType="Event", Payload=payload)
        except Exception as error:
            raise inv.fail("Failed to invoke lambda function", error, "lambda", FunctionArn=arn) from None
        if response.get("FunctionError"):
            raise inv.fail("Failed to invoke lambda function", response["FunctionError"], "lambda", FunctionArn=arn)

    return Job(arn, run)


# sqs ------------------------------------------------------------------------------
def _check_sqs(config, where):
    check_url(config["queueUrl"], f"{where}.queueUrl")


def _sqs_region(url: str, default: str) -> str:
    host = urlparse(url).hostname or ""
    match = re.match(r"^(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.", host)
    return match.group(1) if match else default


@action("sqs", "SqsAction", ("queueUrl", "roleArn"), _check_sqs)
def sqs(config, inv):
    url = inv.sub(config["queueUrl"])
    body = b64(inv.payload) if config.get("useBase64") else inv.text()

    def run():
        try:
            inv.client("sqs", _sqs_region(url, inv.region)).send_message(QueueUrl=url, MessageBody=body)
        except Exception as error:
            raise inv.fail("Failed to send message to SQS queue", error, "sqs", QueueUrl=url) from None

    return Job(url, run)


# sns ------------------------------------------------------------------------------
def _check_sns(config, where):
    check_arn(config["targetArn"], f"{where}.targetArn", "sns")
    check_enum(config.get("messageFormat"), ("RAW", "JSON"), f"{where}.messageFormat")


@action("sns", "SnsAction", ("targetArn", "roleArn"), _check_sns)
def sns(config, inv):
    arn = inv.sub(config["targetArn"])
    message = inv.text()
    extra = {"MessageStructure": "json"} if config.get("messageFormat") == "JSON" else {}

    def run():
        try:
            inv.client("sns", region_of_arn(arn, inv.region)).publish(TargetArn=arn, Message=message, **extra)
        except Exception as error:
            raise inv.fail("Failed to publish to SNS", error, "sns", TargetArn=arn) from None

    return Job(arn, run)


# kinesis --------------------------------------------------------------------------
@action("kinesis", "KinesisAction", ("streamName", "roleArn"))
def kinesis(config, inv):
    stream = inv.sub(config["streamName"])
    key = inv.sub(config.get("partitionKey")) or str(uuid.uuid4())
    payload = inv.payload

    def run():
        try:
            inv.client("kinesis").put_record(StreamName=stream, Data=payload, PartitionKey=key)
        except Exception as error:
            raise inv.fail("Failed to put record to Kinesis", error, "kinesis", StreamName=stream,
                           PartitionKey=key) from None

    return Job(stream, run)


# firehose -------------------------------------------------------------------------
SEPARATORS = ("\n", "\t", "\r\n", ",")


def _check_firehose(config, where):
    separator = config.get("separator")
    if separator is not None and separator not in SEPARATORS:
        raise invalid(f"{where}.separator must be one of '\\n', '\\t', '\\r\\n' or ','.")


@action("firehose", "FirehoseAction", ("deliveryStreamName", "roleArn"), _check_firehose)
def firehose(config, inv):
    stream = inv.sub(config["deliveryStreamName"])
    separator = (config.get("separator") or "").encode()
    if config.get("batchMode"):
        items = inv.json()
        if not isinstance(items, list):
            raise inv.fail("Failed to put records to Firehose", "batchMode requires the SQL result to be an array",
                           "firehose", DeliveryStreamName=stream)
        if len(items) > 500:
            raise inv.fail("Failed to put records to Firehose", "a batch holds at most 500 records",
                           "firehose", DeliveryStreamName=stream)
        records = [{"Data": json.dumps(item, separators=(",", ":")).encode() + separator} for item in items]
    else:
        records = None

    def run():
        client = inv.client("firehose")
        try:
            if records is None:
                client.put_record(DeliveryStreamName=stream, Record={"Data": inv.payload + separator})
                return
            if not records:
                return
            response = client.put_record_batch(DeliveryStreamName=stream, Records=records)
        except Exception as error:
            raise inv.fail("Failed to put record to Firehose", error, "firehose", DeliveryStreamName=stream) from None
        if response.get("FailedPutCount"):
            raise inv.fail("Failed to put records to Firehose",
                           f"{response['FailedPutCount']} of {len(records)} records failed", "firehose",
                           DeliveryStreamName=stream)

    return Job(stream, run)


# kafka ----------------------------------------------------------------------------
def _check_kafka(config, where):
    check_arn(config["destinationArn"], f"{where}.destinationArn", "iot")
    if "ruledestination/vpc/" not in config["destinationArn"]:
        raise invalid(f"{where}.destinationArn must be the ARN of a VPC topic rule destination.")


@action("kafka", "KafkaAction", ("destinationArn", "topic", "clientProperties"), _check_kafka)
def kafka(config, inv):
    topic = inv.sub(config["topic"])
    raise inv.fail("Failed to send the message to Kafka",
                   "the kafka action requires an Apache Kafka producer client, which is not available in localiot",
                   "kafka", Topic=topic, DestinationArn=config["destinationArn"])


# salesforce -----------------------------------------------------------------------
@action("salesforce", "SalesforceAction", ("token", "url"))
def salesforce(config, inv):
    url, token = config["url"], config["token"]
    headers = {"Content-Type": _content_type(inv.payload), "Authorization": f"Bearer {token}"}
    payload = inv.payload

    def run():
        try:
            http_send("POST", url, payload, headers)
        except ActionError as error:
            raise inv.fail("Failed to send the message to Salesforce IoT", error.message, "salesforce",
                           Url=url) from None

    return Job(url, run)
