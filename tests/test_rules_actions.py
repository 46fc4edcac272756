"""The rules engine end to end: messages on the bus, rules matching them, and
actions really performed: republish on the bus, HTTP POSTs to a local server,
SQS, DynamoDB, S3, SNS, Kinesis and CloudWatch on a moto server, error
actions with AWS's error document, Basic Ingest, disabled rules."""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from moto.server import ThreadedMotoServer

from localiot.services.rules.engine import start_rules_engine
from localiot.testing import local_server

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/iot-rules"


class Recorder:
    """A local HTTP server that records every request."""

    def __init__(self):
        self.requests: list[dict] = []
        self._cond = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recorder._cond:
                    recorder.requests.append({"method": self.command, "path": self.path,
                                              "headers": dict(self.headers), "body": body})
                    recorder._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_POST

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def paths(self) -> list[str]:
        with self._cond:
            return [r["path"].split("?")[0] for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def server(moto_url):
    with local_server(aws_endpoint_url=moto_url, downstream_access_key="testing",
                      downstream_secret_key="testing") as srv:
        srv.engine = srv.call(start_rules_engine, srv.app)
        yield srv


@pytest.fixture
def iot(server):
    server.reset()
    server.engine.wait_idle(10)
    return boto3.client("iot", endpoint_url=server.endpoint, region_name=REGION)


@pytest.fixture
def aws(moto_url):
    def client(service):
        return boto3.client(service, endpoint_url=moto_url, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    return client


class Bus:
    """Messages the bus carries, as a subscriber sees them."""

    def __init__(self, server):
        self.messages: list[tuple[str, bytes]] = []
        self._unsubscribe = server.call(server.app.bus.subscribe, self._receive)

    def _receive(self, account, region, topic, payload):
        self.messages.append((topic, payload))

    def on(self, prefix: str) -> list[tuple[str, dict]]:
        out = []
        for topic, payload in list(self.messages):
            if topic.startswith(prefix):
                try:
                    out.append((topic, json.loads(payload)))
                except ValueError:
                    out.append((topic, payload))
        return out

    def close(self):
        self._unsubscribe()


@pytest.fixture
def bus(server):
    watcher = Bus(server)
    yield watcher
    server.call(watcher.close)


def publish(server, topic: str, payload, wait: bool = True):
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    server.call(server.app.bus.publish, ACCOUNT, REGION, topic, data)
    if wait:
        assert server.engine.wait_idle(20)


def rule(iot, name, sql, actions, **extra):
    iot.create_topic_rule(ruleName=name, topicRulePayload={"sql": sql, "actions": actions, **extra})


def republish_to(topic):
    return {"republish": {"topic": topic, "roleArn": ROLE}}


# republish -----------------------------------------------------------------------
def test_republish_with_substitution(server, iot, bus):
    rule(iot, "hot", "SELECT temp, topic(2) AS device FROM 'sensors/+/temp' WHERE temp > 30",
         [republish_to("alerts/${topic(2)}")])
    publish(server, "sensors/dev1/temp", {"temp": 42})
    publish(server, "sensors/dev2/temp", {"temp": 10})
    assert bus.on("alerts/") == [("alerts/dev1", {"temp": 42, "device": "dev1"})]


def test_republish_chains_into_other_rules(server, iot, bus):
    rule(iot, "first", "SELECT * FROM 'a/in'", [republish_to("b/in")])
    rule(iot, "second", "SELECT *, 'second' AS via FROM 'b/in'", [republish_to("c/out")])
    publish(server, "a/in", {"n": 1})
    assert bus.on("c/out") == [("c/out", {"n": 1, "via": "second"})]


def test_disabled_rules_do_not_fire(server, iot, bus):
    rule(iot, "sleepy", "SELECT * FROM 'd/in'", [republish_to("d/out")], ruleDisabled=True)
    publish(server, "d/in", {"n": 1})
    assert bus.on("d/out") == []
    iot.enable_topic_rule(ruleName="sleepy")
    publish(server, "d/in", {"n": 2})
    assert bus.on("d/out") == [("d/out", {"n": 2})]
    iot.disable_topic_rule(ruleName="sleepy")
    publish(server, "d/in", {"n": 3})
    assert len(bus.on("d/out")) == 1


def test_replaced_and_deleted_rules_take_effect(server, iot, bus):
    rule(iot, "changing", "SELECT * FROM 'e/in'", [republish_to("e/one")])
    publish(server, "e/in", {"n": 1})
    iot.replace_topic_rule(ruleName="changing", topicRulePayload={"sql": "SELECT * FROM 'e/in'",
                                                                 "actions": [republish_to("e/two")]})
    publish(server, "e/in", {"n": 2})
    iot.delete_topic_rule(ruleName="changing")
    publish(server, "e/in", {"n": 3})
    assert [t for t, _ in bus.on("e/")] == ["e/in", "e/one", "e/in", "e/two", "e/in"]


def test_basic_ingest_reaches_only_the_named_rule(server, iot, bus):
    rule(iot, "ingest_a", "SELECT *, topic() AS seen FROM 'factory/#'", [republish_to("out/a")])
    rule(iot, "ingest_b", "SELECT *, topic() AS seen FROM 'factory/#'", [republish_to("out/b")])
    publish(server, "$aws/rules/ingest_a/factory/line1", {"v": 1})
    assert bus.on("out/") == [("out/a", {"v": 1, "seen": "factory/line1"})]
    publish(server, "$aws/rules/missing/factory/line1", {"v": 2})
    iot.disable_topic_rule(ruleName="ingest_b")
    publish(server, "$aws/rules/ingest_b/factory/line1", {"v": 3})
    assert len(bus.on("out/")) == 1


def test_wildcards_do_not_match_reserved_topics(server, iot, bus):
    rule(iot, "everything", "SELECT * FROM '#' WHERE topic() <> 'seen'", [republish_to("seen")])
    publish(server, "$aws/things/t/shadow/update", {"state": {}})
    assert bus.on("seen") == []
    publish(server, "plain/topic", {"x": 1})
    assert bus.on("seen") == [("seen", {"x": 1})]


# http ------------------------------------------------------------------------------
def test_http_action_only_after_confirmation(server, iot, bus):
    recorder = Recorder()
    try:
        action = {"http": {"url": recorder.url + "/ingest/${topic(2)}", "confirmationUrl": recorder.url + "/ingest",
                           "headers": [{"key": "x-device", "value": "${topic(2)}"}]}}
        rule(iot, "to_http", "SELECT * FROM 'web/+'", [action], errorAction=republish_to("errors/http"))
        confirmation = json.loads(recorder.wait_for(1)[0]["body"])
        publish(server, "web/dev1", {"n": 1})
        assert recorder.paths() == ["/ingest"]  # only the confirmation: the destination isn't enabled
        errors = bus.on("errors/http")
        assert errors and errors[0][1]["failures"][0]["failedAction"] == "HttpAction"

        iot.confirm_topic_rule_destination(confirmationToken=confirmation["confirmationToken"])
        publish(server, "web/dev2", {"n": 2})
        requests = recorder.wait_for(2)
        assert requests[1]["path"] == "/ingest/dev2"
        assert json.loads(requests[1]["body"]) == {"n": 2}
        headers = {k.lower(): v for k, v in requests[1]["headers"].items()}
        assert headers["x-device"] == "dev2"
        assert headers["content-type"] == "application/json"

        iot.update_topic_rule_destination(arn=confirmation["arn"], status="DISABLED")
        publish(server, "web/dev3", {"n": 3})
        assert len(recorder.paths()) == 2
    finally:
        recorder.close()


def test_a_destination_confirmed_from_another_region_enables_its_actions(server, iot, bus):
    recorder = Recorder()
    try:
        action = {"http": {"url": recorder.url + "/in", "confirmationUrl": recorder.url + "/in"}}
        rule(iot, "far", "SELECT * FROM 'far/+'", [action])
        token = json.loads(recorder.wait_for(1)[0]["body"])["confirmationToken"]
        publish(server, "far/a", {"n": 1})  # compiled while the destination waits for confirmation
        west = boto3.client("iot", endpoint_url=server.endpoint, region_name="eu-west-1")
        west.confirm_topic_rule_destination(confirmationToken=token)  # the token's scope is us-east-1
        publish(server, "far/b", {"n": 2})
        requests = recorder.wait_for(2)
        assert recorder.paths() == ["/in", "/in"]
        assert json.loads(requests[1]["body"]) == {"n": 2}
    finally:
        recorder.close()


# compiled scopes -----------------------------------------------------------------------------
def test_rules_stay_compiled_until_a_change_commits(server, iot, bus):
    engine = server.engine
    rule(iot, "steady", "SELECT * FROM 'steady/in'", [republish_to("steady/out")])
    publish(server, "steady/in", {"n": 0})
    compiled = engine.stats["compilations"]
    for n in range(1, 21):
        publish(server, "steady/in", {"n": n}, wait=False)
    assert engine.wait_idle(20)
    assert engine.stats["compilations"] == compiled  # no store read per message
    assert len(bus.on("steady/out")) == 21
    # a change that rolls back (the reserved tag key is refused after the rule was saved) tells nobody
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_topic_rule(ruleName="undone", tags="aws:x=1", topicRulePayload={
            "sql": "SELECT * FROM 'steady/in'", "actions": [republish_to("undone/out")]})
    publish(server, "steady/in", {"n": 21})
    assert engine.stats["compilations"] == compiled
    assert bus.on("undone/out") == []
    # a committed one recompiles the scope once
    iot.disable_topic_rule(ruleName="steady")
    publish(server, "steady/in", {"n": 22})
    publish(server, "steady/in", {"n": 23})
    assert engine.stats["compilations"] == compiled + 1
    assert len(bus.on("steady/out")) == 22


# moto-backed actions -----------------------------------------------------------------------
def test_sqs_action(server, iot, aws):
    sqs = aws("sqs")
    plain = sqs.create_queue(QueueName="rules-plain")["QueueUrl"]
    encoded = sqs.create_queue(QueueName="rules-b64")["QueueUrl"]
    rule(iot, "to_sqs", "SELECT * FROM 'q/in'", [
        {"sqs": {"queueUrl": plain, "roleArn": ROLE}},
        {"sqs": {"queueUrl": encoded, "roleArn": ROLE, "useBase64": True}},
    ])
    publish(server, "q/in", {"hello": "sqs"})
    body = sqs.receive_message(QueueUrl=plain, WaitTimeSeconds=1)["Messages"][0]["Body"]
    assert json.loads(body) == {"hello": "sqs"}
    body = sqs.receive_message(QueueUrl=encoded, WaitTimeSeconds=1)["Messages"][0]["Body"]
    assert json.loads(base64.b64decode(body)) == {"hello": "sqs"}


def test_dynamodb_actions(server, iot, aws):
    ddb = aws("dynamodb")
    ddb.create_table(TableName="readings", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"},
                                                      {"AttributeName": "ts", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"},
                                           {"AttributeName": "ts", "AttributeType": "N"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.create_table(TableName="devices", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    rule(iot, "to_ddb", "SELECT * FROM 'ddb/+'", [
        {"dynamoDB": {"tableName": "readings", "hashKeyField": "id", "hashKeyValue": "${topic(2)}",
                      "rangeKeyField": "ts", "rangeKeyValue": "${ts}", "rangeKeyType": "NUMBER",
                      "payloadField": "data", "roleArn": ROLE}},
        {"dynamoDBv2": {"putItem": {"tableName": "devices"}, "roleArn": ROLE}},
    ])
    publish(server, "ddb/dev7", {"id": "dev7", "ts": 1700, "temp": 21.5, "ok": True})
    item = ddb.get_item(TableName="readings", Key={"id": {"S": "dev7"}, "ts": {"N": "1700"}})["Item"]
    assert item["data"]["M"]["temp"] == {"N": "21.5"}
    assert item["data"]["M"]["ok"] == {"BOOL": True}
    item = ddb.get_item(TableName="devices", Key={"id": {"S": "dev7"}})["Item"]
    assert item == {"id": {"S": "dev7"}, "ts": {"N": "1700"}, "temp": {"N": "21.5"}, "ok": {"BOOL": True}}


def test_s3_sns_kinesis_and_cloudwatch_actions(server, iot, aws):
    s3, sns, sqs, kinesis, cloudwatch = aws("s3"), aws("sns"), aws("sqs"), aws("kinesis"), aws("cloudwatch")
    s3.create_bucket(Bucket="rules-bucket")
    topic_arn = sns.create_topic(Name="rules-topic")["TopicArn"]
    queue = sqs.create_queue(QueueName="from-sns")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    kinesis.create_stream(StreamName="rules-stream", ShardCount=1)
    rule(iot, "many", "SELECT * FROM 'many/+'", [
        {"s3": {"bucketName": "rules-bucket", "key": "${topic(2)}/reading.json", "roleArn": ROLE}},
        {"sns": {"targetArn": topic_arn, "roleArn": ROLE}},
        {"kinesis": {"streamName": "rules-stream", "partitionKey": "${topic(2)}", "roleArn": ROLE}},
        {"cloudwatchMetric": {"metricNamespace": "Rules", "metricName": "temp", "metricUnit": "None",
                              "metricValue": "${temp}", "roleArn": ROLE}},
    ])
    publish(server, "many/dev9", {"temp": 19})
    obj = s3.get_object(Bucket="rules-bucket", Key="dev9/reading.json")["Body"].read()
    assert json.loads(obj) == {"temp": 19}
    body = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"][0]["Body"]
    assert json.loads(body) == {"temp": 19}
    shard = kinesis.describe_stream(StreamName="rules-stream")["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="rules-stream", ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator)["Records"]
    assert [(json.loads(r["Data"]), r["PartitionKey"]) for r in records] == [({"temp": 19}, "dev9")]
    metrics = cloudwatch.list_metrics(Namespace="Rules")["Metrics"]
    assert [m["MetricName"] for m in metrics] == ["temp"]


# failures --------------------------------------------------------------------------------
def test_failing_action_triggers_the_error_action(server, iot, bus, aws):
    good = aws("sqs").create_queue(QueueName="still-works")["QueueUrl"]
    missing = good.rsplit("/", 1)[0] + "/no-such-queue"
    rule(iot, "fails", "SELECT * FROM 'f/in'", [
        {"sqs": {"queueUrl": missing, "roleArn": ROLE}},
        {"sqs": {"queueUrl": good, "roleArn": ROLE}},
    ], errorAction=republish_to("errors/rules"))
    publish(server, "f/in", {"n": 1})
    errors = bus.on("errors/rules")
    assert len(errors) == 1
    doc = errors[0][1]
    assert doc["ruleName"] == "fails"
    assert doc["topic"] == "f/in"
    assert "clientId" in doc and doc["cloudwatchTraceId"]
    assert json.loads(base64.b64decode(doc["base64OriginalPayload"])) == {"n": 1}
    assert len(doc["failures"]) == 1
    failure = doc["failures"][0]
    assert failure["failedAction"] == "SqsAction"
    assert failure["failedResource"] == missing
    assert "Failed to send message to SQS queue" in failure["errorMessage"]
    assert "Message arrived on: f/in" in failure["errorMessage"]
    assert aws("sqs").receive_message(QueueUrl=good, WaitTimeSeconds=1)["Messages"]  # the other action still ran


def test_one_error_message_per_rule_and_message(server, iot, bus):
    rule(iot, "two_failures", "SELECT * FROM 'g/in'", [
        {"dynamoDBv2": {"putItem": {"tableName": "no-such-table"}, "roleArn": ROLE}},
        {"kafka": {"destinationArn": _vpc_destination(iot), "topic": "t",
                   "clientProperties": {"bootstrap.servers": "kafka:9092"}}},
    ], errorAction=republish_to("errors/two"))
    publish(server, "g/in", {"n": 1})
    errors = bus.on("errors/two")
    assert len(errors) == 1
    failures = {f["failedAction"]: f for f in errors[0][1]["failures"]}
    assert set(failures) == {"DynamoDBv2Action", "KafkaAction"}
    assert "not available in localiot" in failures["KafkaAction"]["errorMessage"]
    assert failures["DynamoDBv2Action"]["failedResource"] == "no-such-table"


def _vpc_destination(iot):
    dest = iot.create_topic_rule_destination(destinationConfiguration={"vpcConfiguration": {
        "roleArn": ROLE, "subnetIds": ["subnet-1"], "vpcId": "vpc-1"}})["topicRuleDestination"]
    return dest["arn"]


def test_failures_without_error_action_are_only_logged(server, iot, bus, caplog):
    rule(iot, "quiet", "SELECT * FROM 'h/in'", [{"sqs": {"queueUrl": "http://127.0.0.1:9/nothing",
                                                         "roleArn": ROLE}}])
    with caplog.at_level("WARNING", logger="localiot.rules"):
        publish(server, "h/in", {"n": 1})
    assert any("quiet" in r.getMessage() for r in caplog.records)


def test_actions_do_not_block_the_loop(server, iot):
    """A slow HTTP endpoint keeps the API answering."""
    release = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            release.wait(10)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    slow = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{slow.server_address[1]}/slow"
    try:
        dest = iot.create_topic_rule_destination(destinationConfiguration={"httpUrlConfiguration": {
            "confirmationUrl": url}})["topicRuleDestination"]
        release.set()
        assert server.engine.wait_idle(20)
        release.clear()
        iot.update_topic_rule_destination(arn=dest["arn"], status="ENABLED")
        rule(iot, "slow", "SELECT * FROM 'slow/in'", [{"http": {"url": url}}])
        publish(server, "slow/in", {"n": 1}, wait=False)
        started = time.monotonic()
        iot.list_topic_rules()
        assert time.monotonic() - started < 2
        assert server.engine.pending > 0
        release.set()
        assert server.engine.wait_idle(20)
    finally:
        release.set()
        slow.shutdown()
        slow.server_close()


# MQTT 5 headers, SQL functions that call out ---------------------------------------------
def test_republish_headers_reach_the_publisher(server, iot):
    seen = []
    server.engine.publisher = lambda *args: seen.append(args)
    try:
        rule(iot, "headers", "SELECT * FROM 'hdr/+'", [{"republish": {
            "topic": "hdr_out/${topic(2)}", "roleArn": ROLE, "qos": 1, "headers": {
                "payloadFormatIndicator": "UTF8_DATA", "contentType": "application/${kind}",
                "responseTopic": "reply/${topic(2)}", "correlationData": "YWJj", "messageExpiry": "${ttl}",
                "userProperties": [{"key": "device", "value": "${topic(2)}"}]}}}])
        publish(server, "hdr/dev5", {"kind": "json", "ttl": 30})
    finally:
        server.engine.publisher = None
    assert len(seen) == 1
    account, region, topic, payload, qos, props = seen[0]
    assert (account, region, topic, qos) == (ACCOUNT, REGION, "hdr_out/dev5", 1)
    assert json.loads(payload) == {"kind": "json", "ttl": 30}
    assert props == {"payload_format_indicator": 1, "content_type": "application/json",
                     "response_topic": "reply/dev5", "correlation_data": b"abc", "message_expiry_interval": 30,
                     "user_property": [("device", "dev5")]}


def test_get_thing_shadow_in_sql(server, iot, bus):
    data = boto3.client("iot-data", endpoint_url=server.endpoint, region_name=REGION)
    iot.create_thing(thingName="lamp")
    data.update_thing_shadow(thingName="lamp", payload=json.dumps({"state": {"reported": {"color": "red"}}}))
    rule(iot, "shadowy", "SELECT get_thing_shadow(topic(2), '" + ROLE + "').state.reported.color AS color "
         "FROM 'shadow_in/+'", [republish_to("shadow_out")], awsIotSqlVersion="2016-03-23")
    publish(server, "shadow_in/lamp", {})
    assert bus.on("shadow_out") == [("shadow_out", {"color": "red"})]


def test_sql_calling_out_runs_off_the_loop(server, iot, bus, aws):
    ddb = aws("dynamodb")
    ddb.create_table(TableName="settings", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName="settings", Item={"id": {"S": "lamp"}, "limit": {"N": "25"}})
    iot.create_thing(thingName="lamp")
    boto3.client("iot-data", endpoint_url=server.endpoint, region_name=REGION).update_thing_shadow(
        thingName="lamp", payload=json.dumps({"state": {"reported": {"on": True}}}))
    sql = ("SELECT get_dynamodb('settings', 'id', topic(2), '" + ROLE + "').limit AS limit, "
           "get_thing_shadow(topic(2), '" + ROLE + "').state.reported.on AS on FROM 'calls/+'")
    rule(iot, "calls_out", sql, [republish_to("calls_out")], awsIotSqlVersion="2016-03-23")
    publish(server, "calls/lamp", {})
    assert bus.on("calls_out") == [("calls_out", {"limit": 25, "on": True})]


def test_sql_failures_are_logged_not_error_actions(server, iot, bus, caplog):
    sql = "SELECT aws_lambda('arn:aws:lambda:us-east-1:123456789012:function:missing', *) AS r FROM 'lam/in'"
    rule(iot, "bad_lambda", sql, [republish_to("lam/out")], awsIotSqlVersion="2016-03-23",
         errorAction=republish_to("lam/errors"))
    with caplog.at_level("WARNING", logger="localiot.rules"):
        publish(server, "lam/in", {"n": 1})
    assert bus.on("lam/") == [("lam/in", {"n": 1})]
    assert any("bad_lambda" in r.getMessage() and "SQL" in r.getMessage() for r in caplog.records)


def test_substitution_failure_is_an_action_failure(server, iot, bus):
    rule(iot, "bad_number", "SELECT * FROM 'num/in'", [
        {"cloudwatchMetric": {"metricNamespace": "Rules", "metricName": "m", "metricUnit": "None",
                              "metricValue": "${reading}", "roleArn": ROLE}}], errorAction=republish_to("num/errors"))
    publish(server, "num/in", {"reading": "not a number"})
    errors = bus.on("num/errors")
    assert len(errors) == 1
    assert errors[0][1]["failures"][0]["failedAction"] == "CloudwatchMetricAction"


def test_logs_firehose_timestream_and_step_functions(server, iot, aws, bus):
    logs, firehose, s3 = aws("logs"), aws("firehose"), aws("s3")
    logs.create_log_group(logGroupName="rules-logs")
    s3.create_bucket(Bucket="firehose-out")
    firehose.create_delivery_stream(DeliveryStreamName="rules-fh", S3DestinationConfiguration={
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::firehose-out",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}})
    ts = aws("timestream-write")
    ts.create_database(DatabaseName="rulesdb")
    ts.create_table(DatabaseName="rulesdb", TableName="readings")
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(name="rules-machine", roleArn=ROLE, definition=json.dumps(
        {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}))["stateMachineArn"]
    rule(iot, "stores", "SELECT * FROM 'store/+'", [
        {"cloudwatchLogs": {"logGroupName": "rules-logs", "roleArn": ROLE}},
        {"firehose": {"deliveryStreamName": "rules-fh", "roleArn": ROLE, "separator": "\n"}},
        {"timestream": {"databaseName": "rulesdb", "tableName": "readings", "roleArn": ROLE,
                        "dimensions": [{"name": "device", "value": "${topic(2)}"}]}},
        {"stepFunctions": {"stateMachineName": "rules-machine", "executionNamePrefix": "iot-", "roleArn": ROLE}},
    ], errorAction=republish_to("store/errors"))
    publish(server, "store/dev3", {"temp": 20.5, "on": True})
    assert bus.on("store/errors") == []  # firehose and timestream accepted the records
    events = logs.get_log_events(logGroupName="rules-logs", logStreamName="stores")["events"]
    assert [json.loads(e["message"]) for e in events] == [{"temp": 20.5, "on": True}]
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert len(executions) == 1 and executions[0]["name"].startswith("iot-")
    described = sfn.describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(described["input"]) == {"temp": 20.5, "on": True}


def test_http_sigv4_and_search_documents(server, iot, bus):
    recorder = Recorder()
    try:
        dest = iot.create_topic_rule_destination(destinationConfiguration={"httpUrlConfiguration": {
            "confirmationUrl": recorder.url + "/api"}})["topicRuleDestination"]
        recorder.wait_for(1)
        iot.update_topic_rule_destination(arn=dest["arn"], status="ENABLED")
        sigv4 = {"sigv4": {"roleArn": ROLE, "serviceName": "execute-api", "signingRegion": "eu-central-1"}}
        rule(iot, "signed", "SELECT * FROM 'sig/+'", [
            {"http": {"url": recorder.url + "/api/in", "auth": sigv4}},
            {"openSearch": {"endpoint": recorder.url, "index": "readings", "type": "_doc", "id": "${topic(2)}",
                            "roleArn": ROLE}},
            {"elasticsearch": {"endpoint": recorder.url, "index": "old", "type": "reading", "id": "${topic(2)}",
                               "roleArn": ROLE}},
        ], errorAction=republish_to("sig/errors"))
        publish(server, "sig/dev4", {"v": 4})
        assert bus.on("sig/errors") == []
        requests = {(r["method"], r["path"]): r for r in recorder.wait_for(4)[1:]}
        assert set(requests) == {("POST", "/api/in"), ("PUT", "/readings/_doc/dev4"), ("PUT", "/old/reading/dev4")}
        signed = {k.lower(): v for k, v in requests[("POST", "/api/in")]["headers"].items()}
        assert signed["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
        assert "/eu-central-1/execute-api/aws4_request" in signed["authorization"]
        assert json.loads(requests[("PUT", "/readings/_doc/dev4")]["body"]) == {"v": 4}
    finally:
        recorder.close()
