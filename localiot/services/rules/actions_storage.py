"""Actions that store or measure the message: s3, dynamoDB, dynamoDBv2,
openSearch, elasticsearch, timestream, cloudwatchMetric, cloudwatchAlarm,
cloudwatchLogs, stepFunctions, iotEvents, iotAnalytics, iotSiteWise, location."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal, InvalidOperation
from urllib.parse import quote, urlparse

from localiot.protocol.errors import invalid
from localiot.services.rules.actions import (
    ActionError,
    Job,
    action,
    check_enum,
    check_url,
    credentials,
    http_send,
)

TIME_UNITS = ("SECONDS", "MILLISECONDS", "MICROSECONDS", "NANOSECONDS")
_PER_SECOND = {"SECONDS": 1, "MILLISECONDS": 10**3, "MICROSECONDS": 10**6, "NANOSECONDS": 10**9}


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _number(text, what: str) -> Decimal:
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        raise ActionError(f"{what} {text!r} is not a number.") from None
    if not value.is_finite():
        raise ActionError(f"{what} {text!r} is not a finite number.")
    return value


# s3 -------------------------------------------------------------------------------
CANNED_ACLS = ("private", "public-read", "public-read-write", "aws-exec-read", "authenticated-read",
               "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write")


def _check_s3(config, where):
    check_enum(config.get("cannedAcl"), CANNED_ACLS, f"{where}.cannedAcl")


@action("s3", "S3Action", ("bucketName", "key", "roleArn"), _check_s3)
def s3(config, inv):
    bucket, key = inv.sub(config["bucketName"]), inv.sub(config["key"])
    extra = {"ACL": config["cannedAcl"]} if config.get("cannedAcl") else {}
    payload = inv.payload

    def run():
        try:
            inv.client("s3").put_object(Bucket=bucket, Key=key, Body=payload, **extra)
        except Exception as error:
            raise inv.fail("Failed to put S3 object", error, "s3", Bucket=bucket, Key=f'"{key}"') from None

    return Job(bucket, run)


# dynamoDB -------------------------------------------------------------------------
def _check_dynamodb(config, where):
    check_enum(config.get("hashKeyType"), ("STRING", "NUMBER"), f"{where}.hashKeyType")
    check_enum(config.get("rangeKeyType"), ("STRING", "NUMBER"), f"{where}.rangeKeyType")
    check_enum(config.get("operation"), ("INSERT", "UPDATE", "DELETE"), f"{where}.operation")
    if bool(config.get("rangeKeyField")) != bool(config.get("rangeKeyValue")):
        raise invalid(f"{where}: rangeKeyField and rangeKeyValue go together.")


def _key_attribute(value: str, key_type: str | None):
    if key_type == "NUMBER":
        return {"N": str(_number(value, "The key value"))}
    return {"S": value}


def _serializer():
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


def _payload_attribute(inv):
    doc = inv.json(decimals=True)
    if doc is None:
        return {"B": inv.payload}
    return _serializer().serialize(doc)


@action("dynamoDB", "DynamoDBAction", ("tableName", "hashKeyField", "hashKeyValue", "roleArn"), _check_dynamodb)
def dynamodb(config, inv):
    table = inv.sub(config["tableName"])
    operation = (inv.sub(config.get("operation")) or "INSERT").upper()
    if operation not in ("INSERT", "UPDATE", "DELETE"):
        raise inv.fail("Failed to write to DynamoDB", f"invalid operation {operation!r}", "dynamo", Table=table)
    key = {config["hashKeyField"]: _key_attribute(inv.sub(config["hashKeyValue"]), config.get("hashKeyType"))}
    if config.get("rangeKeyField"):
        key[config["rangeKeyField"]] = _key_attribute(inv.sub(config["rangeKeyValue"]), config.get("rangeKeyType"))
    field = config.get("payloadField") or "payload"
    value = _payload_attribute(inv) if operation != "DELETE" else None

    def run():
        client = inv.client("dynamodb")
        try:
            if operation == "INSERT":
                client.put_item(TableName=table, Item={**key, field: value})
            elif operation == "UPDATE":
                client.update_item(TableName=table, Key=key, UpdateExpression="SET #p = :p",
                                   ExpressionAttributeNames={"#p": field}, ExpressionAttributeValues={":p": value})
            else:
                client.delete_item(TableName=table, Key=key)
        except Exception as error:
            raise inv.fail("Failed to write to DynamoDB", error, "dynamo", Table=table) from None

    return Job(table, run)


@action("dynamoDBv2", "DynamoDBv2Action", ("putItem", "roleArn"))
def dynamodb_v2(config, inv):
    table = inv.sub((config["putItem"] or {}).get("tableName"))
    if not table:
        raise ActionError("putItem.tableName is required.")
    doc = inv.json(decimals=True)
    if not isinstance(doc, dict):
        raise inv.fail("Failed to write to DynamoDB", "the SQL result is not a JSON object", "dynamoDBv2",
                       Table=table)
    serializer = _serializer()
    try:
        item = {k: serializer.serialize(v) for k, v in doc.items()}
    except (TypeError, ValueError) as error:
        raise inv.fail("Failed to write to DynamoDB", error, "dynamoDBv2", Table=table) from None

    def run():
        try:
            inv.client("dynamodb").put_item(TableName=table, Item=item)
        except Exception as error:
            raise inv.fail("Failed to write to DynamoDB", error, "dynamoDBv2", Table=table) from None

    return Job(table, run)


# openSearch / elasticsearch -----------------------------------------------------
def _check_search(config, where):
    check_url(config["endpoint"], f"{where}.endpoint")


def _index_document(config, inv, name: str, with_type: bool):
    endpoint = config["endpoint"].rstrip("/")
    index, doc_id = inv.sub(config["index"]), inv.sub(config["id"])
    kind = inv.sub(config["type"]) if with_type else "_doc"
    if inv.json() is None:
        raise inv.fail("Failed to index the document", "the SQL result is not JSON", name, Endpoint=endpoint)
    url = f"{endpoint}/{quote(index, safe='')}/{quote(kind, safe='')}/{quote(doc_id, safe='')}"
    host = urlparse(endpoint).hostname or ""
    sign = None
    if host.endswith(".amazonaws.com"):  # an Amazon OpenSearch Service domain: signed as the role would be
        sign = ("es", host.split(".")[-4] if host.count(".") >= 4 else inv.region)
    payload, runtime = inv.payload, inv.runtime

    def run():
        if sign is not None and credentials(runtime) is None:
            raise inv.fail("Failed to index the document", "no credentials to sign the request", name,
                           Endpoint=endpoint)
        try:
            http_send("PUT", url, payload, {"Content-Type": "application/json"}, sign=sign, runtime=runtime)
        except ActionError as error:
            raise inv.fail("Failed to index the document", error.message, name, Endpoint=endpoint,
                           Index=index, Id=doc_id) from None

    return Job(endpoint, run)


@action("openSearch", "OpenSearchAction", ("endpoint", "id", "index", "type", "roleArn"), _check_search)
def open_search(config, inv):
    return _index_document(config, inv, "openSearch", with_type=False)


@action("elasticsearch", "ElasticsearchAction", ("endpoint", "id", "index", "type", "roleArn"), _check_search)
def elasticsearch(config, inv):
    return _index_document(config, inv, "elasticsearch", with_type=True)


# timestream -----------------------------------------------------------------------
def _check_timestream(config, where):
    for dim in config.get("dimensions") or []:
        name = dim.get("name") or ""
        if (name in ("measure_name", "measure_value", "time") or name.startswith(("ts_", "measure_value"))
                or ":" in name):
            raise invalid(f"{where}.dimensions: {name!r} is a reserved dimension name.")
    stamp = config.get("timestamp")
    if stamp is not None:
        check_enum(stamp.get("unit"), TIME_UNITS, f"{where}.timestamp.unit")


def _measure(name, value):
    if isinstance(value, bool):
        return {"MeasureName": name, "MeasureValue": "true" if value else "false", "MeasureValueType": "BOOLEAN"}
    if isinstance(value, int):
        return {"MeasureName": name, "MeasureValue": str(value), "MeasureValueType": "BIGINT"}
    if isinstance(value, float):
        return {"MeasureName": name, "MeasureValue": repr(value), "MeasureValueType": "DOUBLE"}
    if isinstance(value, str):
        return {"MeasureName": name, "MeasureValue": value, "MeasureValueType": "VARCHAR"}
    return {"MeasureName": name, "MeasureValue": json.dumps(value, separators=(",", ":")),
            "MeasureValueType": "VARCHAR"}


@action("timestream", "TimestreamAction", ("databaseName", "tableName", "dimensions", "roleArn"), _check_timestream)
def timestream(config, inv):
    database, table = inv.sub(config["databaseName"]), inv.sub(config["tableName"])
    doc = inv.json()
    if not isinstance(doc, dict):
        raise inv.fail("Failed to write records to Timestream", "the SQL result is not a JSON object",
                       "timestream", Database=database, Table=table)
    dimensions = [{"Name": d["name"], "Value": inv.sub(d["value"]), "DimensionValueType": "VARCHAR"}
                  for d in config["dimensions"]]
    stamp = config.get("timestamp")
    if stamp:
        unit = stamp.get("unit") or "MILLISECONDS"
        time_value = str(int(_number(inv.sub(stamp["value"]), "The timestamp")))
    else:
        unit, time_value = "MILLISECONDS", str(int(inv.runtime.clock.now() * 1000))
    names = {d["Name"] for d in dimensions}
    records = [_measure(k, v) for k, v in doc.items() if k not in names and v is not None]
    common = {"Dimensions": dimensions, "Time": time_value, "TimeUnit": unit}

    def run():
        if not records:
            return
        try:
            inv.client("timestream-write").write_records(DatabaseName=database, TableName=table,
                                                          CommonAttributes=common, Records=records)
        except Exception as error:
            raise inv.fail("Failed to write records to Timestream", error, "timestream", Database=database,
                           Table=table) from None

    return Job(f"{database}.{table}", run)


# cloudwatch -----------------------------------------------------------------------
@action("cloudwatchMetric", "CloudwatchMetricAction",
        ("metricName", "metricNamespace", "metricUnit", "metricValue", "roleArn"))
def cloudwatch_metric(config, inv):
    namespace, name = inv.sub(config["metricNamespace"]), inv.sub(config["metricName"])
    datum = {"MetricName": name, "Unit": inv.sub(config["metricUnit"]),
             "Value": float(_number(inv.sub(config["metricValue"]), "The metric value"))}
    if config.get("metricTimestamp"):
        datum["Timestamp"] = _utc(float(_number(inv.sub(config["metricTimestamp"]), "The metric timestamp")))

    def run():
        try:
            inv.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=[datum])
        except Exception as error:
            raise inv.fail("Failed to put metric data", error, "cloudwatchMetric", Namespace=namespace,
                           MetricName=name) from None

    return Job(f"{namespace}/{name}", run)


def _check_alarm(config, where):
    check_enum(config["stateValue"], ("OK", "ALARM", "INSUFFICIENT_DATA"), f"{where}.stateValue")


@action("cloudwatchAlarm", "CloudwatchAlarmAction", ("alarmName", "stateReason", "stateValue", "roleArn"),
        _check_alarm)
def cloudwatch_alarm(config, inv):
    name = inv.sub(config["alarmName"])
    state, reason = inv.sub(config["stateValue"]), inv.sub(config["stateReason"])

    def run():
        try:
            inv.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
        except Exception as error:
            raise inv.fail("Failed to set alarm state", error, "cloudwatchAlarm", AlarmName=name) from None

    return Job(name, run)


@action("cloudwatchLogs", "CloudwatchLogsAction", ("logGroupName", "roleArn"))
def cloudwatch_logs(config, inv):
    group = inv.sub(config["logGroupName"])
    now_ms = int(inv.runtime.clock.now() * 1000)
    if config.get("batchMode"):
        items = inv.json()
        if not isinstance(items, list) or not all(
                isinstance(i, dict) and isinstance(i.get("timestamp"), int) and "message" in i for i in items):
            raise inv.fail("Failed to put log events", "batchMode requires an array of {timestamp, message} objects",
                           "cloudwatchLogs", LogGroup=group)
        events = [{"timestamp": i["timestamp"],
                   "message": i["message"] if isinstance(i["message"], str) else json.dumps(i["message"])}
                  for i in items]
        events.sort(key=lambda e: e["timestamp"])
    else:
        events = [{"timestamp": now_ms, "message": inv.text()}]
    stream = inv.rule_name  # one stream per rule, created on first use

    def run():
        client = inv.client("logs")
        try:
            try:
                client.create_log_stream(logGroupName=group, logStreamName=stream)
            except client.exceptions.ResourceAlreadyExistsException:
                pass
            if events:
                client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except Exception as error:
            raise inv.fail("Failed to put log events", error, "cloudwatchLogs", LogGroup=group) from None

    return Job(group, run)


# step functions -------------------------------------------------------------------
@action("stepFunctions", "StepFunctionsAction", ("stateMachineName", "roleArn"))
def step_functions(config, inv):
    machine = inv.sub(config["stateMachineName"])
    arn = f"arn:aws:states:{inv.region}:{inv.account}:stateMachine:{machine}"
    prefix = inv.sub(config.get("executionNamePrefix"))
    name = f"{prefix}{uuid.uuid4()}" if prefix else str(uuid.uuid4())
    body = inv.text()

    def run():
        try:
            inv.client("stepfunctions").start_execution(stateMachineArn=arn, name=name[:80], input=body)
        except Exception as error:
            raise inv.fail("Failed to start execution", error, "stepFunctions", StateMachine=machine) from None

    return Job(machine, run)


# iotEvents / iotAnalytics -----------------------------------------------------------
def _check_iot_events(config, where):
    if config.get("batchMode") and config.get("messageId"):
        raise invalid(f"{where}: messageId can't be specified when batchMode is true.")


def _batch(inv, limit: int, name: str, resource: str):
    items = inv.json()
    if not isinstance(items, list):
        raise inv.fail("Failed to send the batch", "batchMode requires the SQL result to be an array", name,
                       Resource=resource)
    if len(items) > limit:
        raise inv.fail("Failed to send the batch", f"a batch holds at most {limit} messages", name, Resource=resource)
    return [json.dumps(i, separators=(",", ":")).encode() for i in items]


@action("iotEvents", "IotEventsAction", ("inputName", "roleArn"), _check_iot_events)
def iot_events(config, inv):
    input_name = config["inputName"]
    if config.get("batchMode"):
        messages = [{"messageId": str(uuid.uuid4()), "inputName": input_name, "payload": p}
                    for p in _batch(inv, 10, "iotEvents", input_name)]
    else:
        message_id = inv.sub(config.get("messageId")) or str(uuid.uuid4())
        messages = [{"messageId": message_id, "inputName": input_name, "payload": inv.payload}]

    def run():
        try:
            response = inv.client("iotevents-data").batch_put_message(messages=messages)
        except Exception as error:
            raise inv.fail("Failed to send message to IoT Events", error, "iotEvents", InputName=input_name) from None
        errors = response.get("BatchPutMessageErrorEntries") or []
        if errors:
            raise inv.fail("Failed to send message to IoT Events", errors[0].get("errorMessage"), "iotEvents",
                           InputName=input_name)

    return Job(input_name, run)


def _check_iot_analytics(config, where):
    if not config.get("channelName") and not config.get("channelArn"):
        raise invalid(f"{where}: channelName is required.")


@action("iotAnalytics", "IotAnalyticsAction", (), _check_iot_analytics)
def iot_analytics(config, inv):
    channel = config.get("channelName") or config["channelArn"].rsplit("/", 1)[-1]
    if config.get("batchMode"):
        payloads = _batch(inv, 100, "iotAnalytics", channel)
    else:
        payloads = [inv.payload]
    messages = [{"messageId": str(uuid.uuid4()), "payload": p} for p in payloads]

    def run():
        try:
            response = inv.client("iotanalytics").batch_put_message(channelName=channel, messages=messages)
        except Exception as error:
            raise inv.fail("Failed to send message to IoT Analytics", error, "iotAnalytics", Channel=channel) from None
        errors = response.get("batchPutMessageErrorEntries") or []
        if errors:
            raise inv.fail("Failed to send message to IoT Analytics", errors[0].get("errorMessage"), "iotAnalytics",
                           Channel=channel)

    return Job(channel, run)


# iotSiteWise ----------------------------------------------------------------------
VARIANTS = ("stringValue", "integerValue", "doubleValue", "booleanValue")


def _check_sitewise(config, where):
    for i, entry in enumerate(config["putAssetPropertyValueEntries"]):
        if not entry.get("propertyAlias") and not (entry.get("assetId") and entry.get("propertyId")):
            raise invalid(f"{where}.putAssetPropertyValueEntries[{i}]: specify a propertyAlias, or an assetId "
                          "and a propertyId.")
        if not entry.get("propertyValues"):
            raise invalid(f"{where}.putAssetPropertyValueEntries[{i}].propertyValues is required.")
        for value in entry["propertyValues"]:
            variants = [k for k in VARIANTS if (value.get("value") or {}).get(k) is not None]
            if len(variants) != 1:
                raise invalid(f"{where}.putAssetPropertyValueEntries[{i}]: each property value needs exactly one "
                              "value type.")
            if not (value.get("timestamp") or {}).get("timeInSeconds"):
                raise invalid(f"{where}.putAssetPropertyValueEntries[{i}]: timestamp.timeInSeconds is required.")


def _variant(value: dict, inv) -> dict:
    kind, text = next((k, inv.sub(v)) for k, v in value.items() if v is not None and k in VARIANTS)
    if kind == "stringValue":
        return {kind: text}
    if kind == "booleanValue":
        if text.lower() not in ("true", "false"):
            raise ActionError(f"booleanValue {text!r} is not true or false.")
        return {kind: text.lower() == "true"}
    number = _number(text, kind)
    return {kind: int(number)} if kind == "integerValue" else {kind: float(number)}


@action("iotSiteWise", "IotSiteWiseAction", ("putAssetPropertyValueEntries", "roleArn"), _check_sitewise)
def iot_sitewise(config, inv):
    entries = []
    for entry in config["putAssetPropertyValueEntries"]:
        out = {"entryId": inv.sub(entry.get("entryId")) or str(uuid.uuid4()), "propertyValues": []}
        for name in ("assetId", "propertyId", "propertyAlias"):
            if entry.get(name):
                out[name] = inv.sub(entry[name])
        for value in entry["propertyValues"]:
            stamp = value["timestamp"]
            item = {"value": _variant(value["value"], inv),
                    "timestamp": {"timeInSeconds": int(_number(inv.sub(stamp["timeInSeconds"]), "timeInSeconds")),
                                  "offsetInNanos": int(_number(inv.sub(stamp.get("offsetInNanos") or "0"),
                                                               "offsetInNanos"))}}
            if value.get("quality"):
                item["quality"] = inv.sub(value["quality"])
            out["propertyValues"].append(item)
        entries.append(out)
    resource = entries[0].get("propertyAlias") or entries[0].get("assetId") or "sitewise"

    def run():
        try:
            response = inv.client("iotsitewise").batch_put_asset_property_value(entries=entries)
        except Exception as error:
            raise inv.fail("Failed to put asset property values", error, "iotSiteWise") from None
        errors = response.get("errorEntries") or []
        if errors:
            first = (errors[0].get("errors") or [{}])[0]
            raise inv.fail("Failed to put asset property values", first.get("errorMessage"), "iotSiteWise",
                           EntryId=errors[0].get("entryId"))

    return Job(resource, run)


# location -------------------------------------------------------------------------
def _check_location(config, where):
    stamp = config.get("timestamp")
    if stamp is not None:
        check_enum(stamp.get("unit"), TIME_UNITS, f"{where}.timestamp.unit")


@action("location", "LocationAction", ("deviceId", "latitude", "longitude", "roleArn", "trackerName"),
        _check_location)
def location(config, inv):
    tracker = config["trackerName"]
    device = inv.sub(config["deviceId"])
    latitude = float(_number(inv.sub(config["latitude"]), "The latitude"))
    longitude = float(_number(inv.sub(config["longitude"]), "The longitude"))
    stamp = config.get("timestamp")
    if stamp:
        raw = _number(inv.sub(stamp["value"]), "The timestamp")
        seconds = float(raw / _PER_SECOND[stamp.get("unit") or "MILLISECONDS"])
    else:
        seconds = inv.runtime.clock.now()
    update = {"DeviceId": device, "Position": [longitude, latitude], "SampleTime": _utc(seconds)}

    def run():
        try:
            response = inv.client("location").batch_update_device_position(TrackerName=tracker, Updates=[update])
        except Exception as error:
            raise inv.fail("Failed to update the device position", error, "location", Tracker=tracker) from None
        errors = response.get("Errors") or []
        if errors:
            raise inv.fail("Failed to update the device position", errors[0].get("Error", {}).get("Message"),
                           "location", Tracker=tracker, DeviceId=device)

    return Job(tracker, run)
