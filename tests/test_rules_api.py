"""Topic rules and topic rule destinations through boto3: every operation, its
errors, pagination, and the HTTP destination confirmation handshake against a
real local HTTP server."""

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from botocore.config import Config

from localiot.services.rules.engine import start_rules_engine
from localiot.testing import client_error, error_code, make_client

ROLE = "arn:aws:iam::123456789012:role/iot-rules"
SQL = "SELECT * FROM 'sensors/+/temp'"


class Recorder:
    """A local HTTP server that records every request and answers `status`."""

    def __init__(self, status: int = 200):
        self.requests: list[dict] = []
        self.status = status
        self._cond = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recorder._cond:
                    recorder.requests.append({"method": self.command, "path": self.path,
                                              "headers": dict(self.headers), "body": body})
                    recorder._cond.notify_all()
                self.send_response(recorder.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _record

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def engine(localiot_server):
    return localiot_server.call(start_rules_engine, localiot_server.app)


@pytest.fixture
def recorder():
    rec = Recorder()
    yield rec
    rec.close()


def _payload(**extra):
    payload = {"sql": SQL, "actions": [{"republish": {"topic": "out/${topic(2)}", "roleArn": ROLE}}]}
    payload.update(extra)
    return payload


# rules ---------------------------------------------------------------------------
def test_create_and_get_rule(iot, engine):
    error_action = {"republish": {"topic": "errors", "roleArn": ROLE}}
    iot.create_topic_rule(ruleName="temp_rule", topicRulePayload=_payload(description="hot", errorAction=error_action))
    out = iot.get_topic_rule(ruleName="temp_rule")
    assert out["ruleArn"] == "arn:aws:iot:us-east-1:123456789012:rule/temp_rule"
    rule = out["rule"]
    assert rule["ruleName"] == "temp_rule"
    assert rule["sql"] == SQL
    assert rule["description"] == "hot"
    assert rule["awsIotSqlVersion"] == "2015-10-08"
    assert rule["ruleDisabled"] is False
    assert rule["actions"] == [{"republish": {"topic": "out/${topic(2)}", "roleArn": ROLE}}]
    assert rule["errorAction"] == error_action
    assert abs(rule["createdAt"].timestamp() - time.time()) < 60


def test_sql_version_kept(iot, engine):
    iot.create_topic_rule(ruleName="v2016", topicRulePayload=_payload(awsIotSqlVersion="2016-03-23"))
    assert iot.get_topic_rule(ruleName="v2016")["rule"]["awsIotSqlVersion"] == "2016-03-23"


def test_create_twice_is_refused(iot, engine):
    iot.create_topic_rule(ruleName="dup", topicRulePayload=_payload())
    error = client_error(iot.create_topic_rule, ruleName="dup", topicRulePayload=_payload())
    assert error_code(error) == "ResourceAlreadyExistsException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_rule_name_pattern(iot, engine):
    error = client_error(iot.create_topic_rule, ruleName="bad-name", topicRulePayload=_payload())
    assert error_code(error) == "InvalidRequestException"


def test_bad_sql_is_a_parse_error(iot, engine):
    error = client_error(iot.create_topic_rule, ruleName="bad_sql", topicRulePayload=_payload(sql="SELEC * FRM 'a'"))
    assert error_code(error) == "SqlParseException"
    assert error.response["Error"]["Message"]
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error_code(client_error(iot.get_topic_rule, ruleName="bad_sql")) == "UnauthorizedException"


def test_unknown_sql_version(iot, engine):
    error = client_error(iot.create_topic_rule, ruleName="r", topicRulePayload=_payload(awsIotSqlVersion="2020-01-01"))
    assert error_code(error) == "InvalidRequestException"


@pytest.mark.parametrize("action", [
    {"republish": {"topic": "a/b", "roleArn": "not-a-role"}},
    {"republish": {"topic": "a/+/b", "roleArn": ROLE}},
    {"republish": {"topic": "a", "roleArn": ROLE}, "sqs": {"queueUrl": "https://q", "roleArn": ROLE}},
    {},
    {"lambda": {"functionArn": "arn:aws:sns:us-east-1:123456789012:topic"}},
    {"sqs": {"queueUrl": "not a url", "roleArn": ROLE}},
    {"sns": {"targetArn": "arn:aws:sqs:us-east-1:123456789012:q", "roleArn": ROLE}},
    {"http": {"url": "https://example.com/a", "confirmationUrl": "https://other.example.com"}},
    {"http": {"url": "https://example.com/${topic()}"}},
    {"http": {"url": "https://example.com/", "auth": {"sigv4": {"roleArn": ROLE, "serviceName": "execute-api",
                                                                "signingRegion": ""}}}},
    {"iotEvents": {"inputName": "in", "roleArn": ROLE, "batchMode": True, "messageId": "m"}},
    {"iotSiteWise": {"roleArn": ROLE, "putAssetPropertyValueEntries": [
        {"propertyValues": [{"value": {"stringValue": "x"}, "timestamp": {"timeInSeconds": "1"}}]}]}},
    {"iotSiteWise": {"roleArn": ROLE, "putAssetPropertyValueEntries": [
        {"propertyAlias": "/a", "propertyValues": [{"value": {}, "timestamp": {"timeInSeconds": "1"}}]}]}},
    {"timestream": {"databaseName": "d", "tableName": "t", "roleArn": ROLE,
                    "dimensions": [{"name": "measure_name", "value": "x"}]}},
    {"dynamoDB": {"tableName": "t", "hashKeyField": "id", "hashKeyValue": "1", "roleArn": ROLE,
                  "rangeKeyField": "ts"}},
    {"cloudwatchAlarm": {"alarmName": "a", "roleArn": ROLE, "stateReason": "r", "stateValue": "BROKEN"}},
    {"kafka": {"destinationArn": "arn:aws:iot:us-east-1:123456789012:ruledestination/vpc/nope", "topic": "t",
               "clientProperties": {"bootstrap.servers": "b:9092"}}},
    {"iotAnalytics": {"roleArn": ROLE}},
    {"firehose": {"deliveryStreamName": "s", "roleArn": ROLE, "separator": ";"}},
    {"republish": {"topic": "a/${topic(}", "roleArn": ROLE}},
    {"s3": {"bucketName": "b", "key": "${nosuchfunction()}", "roleArn": ROLE}},
])
def test_invalid_actions(iot, engine, action):
    error = client_error(iot.create_topic_rule, ruleName="bad_action", topicRulePayload=_payload(actions=[action]))
    assert error_code(error) == "InvalidRequestException", error.response["Error"]["Message"]


def test_invalid_error_action(iot, engine):
    error = client_error(iot.create_topic_rule, ruleName="bad_error", topicRulePayload=_payload(
              errorAction={"sqs": {"queueUrl": "https://q", "roleArn": "arn:aws:iam::1:user/x"}}))
    assert error_code(error) == "InvalidRequestException"


def test_missing_required_fields_are_checked_by_the_server(localiot_server, engine):
    client = make_client(localiot_server, config=Config(parameter_validation=False))
    error = client_error(client.create_topic_rule, ruleName="missing",
                         topicRulePayload={"sql": SQL, "actions": [{"sqs": {"roleArn": ROLE}}]})
    assert error_code(error) == "InvalidRequestException"
    error = client_error(client.create_topic_rule, ruleName="missing", topicRulePayload={"sql": SQL})
    assert error_code(error) == "InvalidRequestException"


def test_every_action_type_is_accepted(iot, engine):
    actions = [
        {"cloudwatchAlarm": {"alarmName": "a", "roleArn": ROLE, "stateReason": "r", "stateValue": "ALARM"}},
        {"cloudwatchLogs": {"logGroupName": "g", "roleArn": ROLE, "batchMode": False}},
        {"cloudwatchMetric": {"metricName": "m", "metricNamespace": "n", "metricUnit": "Count",
                              "metricValue": "${temp}", "roleArn": ROLE}},
        {"dynamoDB": {"tableName": "t", "hashKeyField": "id", "hashKeyValue": "${id}", "hashKeyType": "STRING",
                      "rangeKeyField": "ts", "rangeKeyValue": "${timestamp()}", "rangeKeyType": "NUMBER",
                      "operation": "INSERT", "payloadField": "data", "roleArn": ROLE}},
        {"dynamoDBv2": {"putItem": {"tableName": "t"}, "roleArn": ROLE}},
        {"firehose": {"deliveryStreamName": "s", "roleArn": ROLE, "batchMode": True, "separator": "\n"}},
        {"kinesis": {"streamName": "s", "partitionKey": "${topic()}", "roleArn": ROLE}},
        {"lambda": {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"}},
        {"s3": {"bucketName": "b", "key": "${topic()}/${timestamp()}", "roleArn": ROLE, "cannedAcl": "private"}},
        {"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:t", "roleArn": ROLE, "messageFormat": "RAW"}},
    ]
    more = [
        {"sqs": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q", "roleArn": ROLE,
                 "useBase64": True}},
        {"stepFunctions": {"stateMachineName": "m", "executionNamePrefix": "p", "roleArn": ROLE}},
        {"timestream": {"databaseName": "d", "tableName": "t", "roleArn": ROLE,
                        "dimensions": [{"name": "device", "value": "${topic(2)}"}],
                        "timestamp": {"unit": "MILLISECONDS", "value": "${timestamp()}"}}},
        {"iotEvents": {"inputName": "in", "roleArn": ROLE, "messageId": "${newuuid()}"}},
        {"iotAnalytics": {"channelName": "c", "roleArn": ROLE, "batchMode": False}},
        {"iotSiteWise": {"roleArn": ROLE, "putAssetPropertyValueEntries": [
            {"propertyAlias": "/plant/${topic(2)}", "propertyValues": [
                {"value": {"doubleValue": "${temp}"}, "timestamp": {"timeInSeconds": "${floor(timestamp() / 1000)}"},
                 "quality": "GOOD"}]}]}},
        {"location": {"deviceId": "${topic(2)}", "latitude": "${lat}", "longitude": "${lon}", "roleArn": ROLE,
                      "trackerName": "tr", "timestamp": {"value": "${timestamp()}", "unit": "MILLISECONDS"}}},
        {"openSearch": {"endpoint": "https://search.example.com", "id": "${newuuid()}", "index": "i",
                        "type": "_doc", "roleArn": ROLE}},
        {"elasticsearch": {"endpoint": "https://search.example.com", "id": "1", "index": "i", "type": "t",
                           "roleArn": ROLE}},
        {"salesforce": {"token": "t" * 40, "url": "https://ingestion-abc.def.sfdc-matrix.net/streams/a/b/event"}},
        {"republish": {"topic": "out", "roleArn": ROLE, "qos": 1, "headers": {
            "payloadFormatIndicator": "UTF8_DATA", "contentType": "application/json", "responseTopic": "resp",
            "correlationData": "YWJj", "messageExpiry": "60", "userProperties": [{"key": "k", "value": "v"}]}}},
    ]
    groups = [actions, more[:6], more[6:]]
    for i, group in enumerate(groups):
        iot.create_topic_rule(ruleName=f"all_{i}", topicRulePayload=_payload(actions=group))
    for i, group in enumerate(groups):
        assert iot.get_topic_rule(ruleName=f"all_{i}")["rule"]["actions"] == group


def test_missing_rule_is_unauthorized(iot, engine):
    for call in (iot.get_topic_rule, iot.delete_topic_rule, iot.enable_topic_rule, iot.disable_topic_rule):
        error = client_error(call, ruleName="ghost")
        assert error_code(error) == "UnauthorizedException"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    error = client_error(iot.replace_topic_rule, ruleName="ghost", topicRulePayload=_payload())
    assert error_code(error) == "UnauthorizedException"


def test_replace_rule(iot, engine):
    iot.create_topic_rule(ruleName="repl", topicRulePayload=_payload(description="one"))
    before = iot.get_topic_rule(ruleName="repl")["rule"]
    new_actions = [{"sqs": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q", "roleArn": ROLE}}]
    iot.replace_topic_rule(ruleName="repl", topicRulePayload={
        "sql": "SELECT temp FROM 'other/#'", "actions": new_actions, "awsIotSqlVersion": "2016-03-23",
        "ruleDisabled": True})
    after = iot.get_topic_rule(ruleName="repl")["rule"]
    assert after["sql"] == "SELECT temp FROM 'other/#'"
    assert after["actions"] == new_actions
    assert after["awsIotSqlVersion"] == "2016-03-23"
    assert after["ruleDisabled"] is True
    assert "description" not in after
    assert after["createdAt"] == before["createdAt"]
    listed = iot.list_topic_rules(topic="other/#")["rules"]
    assert [r["ruleName"] for r in listed] == ["repl"]
    error = client_error(iot.replace_topic_rule, ruleName="repl", topicRulePayload=_payload(sql="SELECT FROM"))
    assert error_code(error) == "SqlParseException"
    assert iot.get_topic_rule(ruleName="repl")["rule"]["sql"] == "SELECT temp FROM 'other/#'"


def test_enable_disable(iot, engine):
    iot.create_topic_rule(ruleName="toggle", topicRulePayload=_payload(ruleDisabled=True))
    assert iot.get_topic_rule(ruleName="toggle")["rule"]["ruleDisabled"] is True
    iot.enable_topic_rule(ruleName="toggle")
    assert iot.get_topic_rule(ruleName="toggle")["rule"]["ruleDisabled"] is False
    iot.disable_topic_rule(ruleName="toggle")
    assert iot.get_topic_rule(ruleName="toggle")["rule"]["ruleDisabled"] is True
    iot.disable_topic_rule(ruleName="toggle")  # idempotent
    assert iot.list_topic_rules(ruleDisabled=True)["rules"][0]["ruleName"] == "toggle"
    assert iot.list_topic_rules(ruleDisabled=False)["rules"] == []


def test_delete_rule(iot, engine):
    iot.create_topic_rule(ruleName="gone", topicRulePayload=_payload(), tags="a=1")
    arn = iot.get_topic_rule(ruleName="gone")["ruleArn"]
    iot.delete_topic_rule(ruleName="gone")
    assert error_code(client_error(iot.get_topic_rule, ruleName="gone")) == "UnauthorizedException"
    assert error_code(client_error(iot.delete_topic_rule, ruleName="gone")) == "UnauthorizedException"
    iot.create_topic_rule(ruleName="gone", topicRulePayload=_payload())
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == []


def test_list_rules_fields_filters_and_pages(iot, engine):
    for i in range(7):
        topic = "sensors/+/temp" if i % 2 == 0 else "other/#"
        iot.create_topic_rule(ruleName=f"r{i}", topicRulePayload=_payload(sql=f"SELECT * FROM '{topic}'",
                                                                         ruleDisabled=i == 4))
    listed = iot.list_topic_rules()["rules"]
    assert [r["ruleName"] for r in listed] == [f"r{i}" for i in range(7)]
    item = listed[0]
    assert item["ruleArn"].endswith(":rule/r0")
    assert item["topicPattern"] == "sensors/+/temp"
    assert item["ruleDisabled"] is False
    assert "createdAt" in item
    assert [r["ruleName"] for r in iot.list_topic_rules(topic="sensors/+/temp")["rules"]] == ["r0", "r2", "r4", "r6"]
    assert [r["ruleName"] for r in iot.list_topic_rules(topic="sensors/+/temp", ruleDisabled=False)["rules"]] == \
        ["r0", "r2", "r6"]
    assert iot.list_topic_rules(topic="sensors/a/temp")["rules"] == []
    names, token = [], None
    while True:
        page = iot.list_topic_rules(maxResults=3, **({"nextToken": token} if token else {}))
        assert len(page["rules"]) <= 3
        names += [r["ruleName"] for r in page["rules"]]
        token = page.get("nextToken")
        if not token:
            break
    assert names == [f"r{i}" for i in range(7)]
    paginated = [r["ruleName"] for p in iot.get_paginator("list_topic_rules").paginate(PaginationConfig={"PageSize": 2})
                 for r in p["rules"]]
    assert paginated == names
    assert error_code(client_error(iot.list_topic_rules, nextToken="garbage!")) == "InvalidRequestException"


def test_tags(iot, engine):
    iot.create_topic_rule(ruleName="tagged", topicRulePayload=_payload(), tags="team=iot&env=dev%20box")
    arn = iot.get_topic_rule(ruleName="tagged")["ruleArn"]
    tags = {t["Key"]: t["Value"] for t in iot.list_tags_for_resource(resourceArn=arn)["tags"]}
    assert tags == {"team": "iot", "env": "dev box"}
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "extra", "Value": "1"}])
    iot.untag_resource(resourceArn=arn, tagKeys=["team"])
    tags = {t["Key"]: t["Value"] for t in iot.list_tags_for_resource(resourceArn=arn)["tags"]}
    assert tags == {"env": "dev box", "extra": "1"}


# destinations ----------------------------------------------------------------------
def _destination(iot, url):
    return iot.create_topic_rule_destination(
        destinationConfiguration={"httpUrlConfiguration": {"confirmationUrl": url}})["topicRuleDestination"]


def test_http_destination_confirmation_flow(iot, engine, recorder):
    url = recorder.url + "/hook"
    dest = _destination(iot, url)
    assert dest["status"] == "IN_PROGRESS"
    assert dest["httpUrlProperties"] == {"confirmationUrl": url}
    assert dest["arn"].startswith("arn:aws:iot:us-east-1:123456789012:ruledestination/http/")
    request = recorder.wait_for(1)[0]
    assert request["method"] == "POST"
    assert urlparse(request["path"]).path == "/hook"
    body = json.loads(request["body"])
    assert body["arn"] == dest["arn"]
    assert body["messageType"] == "DestinationConfirmation"
    assert parse_qs(urlparse(request["path"]).query)["confirmationToken"] == [body["confirmationToken"]]
    assert body["enableUrl"].endswith("/confirmdestination/" + body["confirmationToken"])
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["x-amz-rules-engine-message-type"] == "DestinationConfirmation"
    assert headers["x-amz-rules-engine-destination-arn"] == dest["arn"]
    assert headers["content-type"] == "application/json"

    assert iot.get_topic_rule_destination(arn=dest["arn"])["topicRuleDestination"]["status"] == "IN_PROGRESS"
    iot.confirm_topic_rule_destination(confirmationToken=body["confirmationToken"])
    got = iot.get_topic_rule_destination(arn=dest["arn"])["topicRuleDestination"]
    assert got["status"] == "ENABLED"
    assert got["lastUpdatedAt"] >= got["createdAt"]
    error = client_error(iot.confirm_topic_rule_destination, confirmationToken=body["confirmationToken"])
    assert error_code(error) == "InvalidRequestException"

    iot.update_topic_rule_destination(arn=dest["arn"], status="DISABLED")
    assert iot.get_topic_rule_destination(arn=dest["arn"])["topicRuleDestination"]["status"] == "DISABLED"
    iot.update_topic_rule_destination(arn=dest["arn"], status="ENABLED")
    assert iot.get_topic_rule_destination(arn=dest["arn"])["topicRuleDestination"]["status"] == "ENABLED"


def test_enable_url_confirms(iot, engine, recorder):
    dest = _destination(iot, recorder.url)
    body = json.loads(recorder.wait_for(1)[0]["body"])
    with urllib.request.urlopen(body["enableUrl"]) as response:  # unsigned, as a browser opens it
        assert response.status == 200
    assert iot.get_topic_rule_destination(arn=dest["arn"])["topicRuleDestination"]["status"] == "ENABLED"


def test_rechallenge_sends_a_new_token(iot, engine, recorder):
    dest = _destination(iot, recorder.url)
    first = json.loads(recorder.wait_for(1)[0]["body"])["confirmationToken"]
    iot.update_topic_rule_destination(arn=dest["arn"], status="IN_PROGRESS")
    second = json.loads(recorder.wait_for(2)[1]["body"])["confirmationToken"]
    assert second != first
    assert error_code(client_error(iot.confirm_topic_rule_destination, confirmationToken=first)) == "InvalidRequestException"
    iot.confirm_topic_rule_destination(confirmationToken=second)
    assert iot.get_topic_rule_destination(arn=dest["arn"])["topicRuleDestination"]["status"] == "ENABLED"


def test_update_can_enable_without_the_handshake(iot, engine, recorder):
    dest = _destination(iot, recorder.url)
    iot.update_topic_rule_destination(arn=dest["arn"], status="ENABLED")
    assert iot.get_topic_rule_destination(arn=dest["arn"])["topicRuleDestination"]["status"] == "ENABLED"


def test_unreachable_confirmation_url_goes_to_error(iot, engine, localiot_server):
    dead = Recorder()
    url = dead.url + "/x"
    dead.close()
    dest = _destination(iot, url)
    assert engine.wait_idle(20)
    got = iot.get_topic_rule_destination(arn=dest["arn"])["topicRuleDestination"]
    assert got["status"] == "ERROR"
    assert "could not be delivered" in got["statusReason"]
    error = client_error(iot.update_topic_rule_destination, arn=dest["arn"], status="ENABLED")
    assert error_code(error) == "InvalidRequestException"
    iot.update_topic_rule_destination(arn=dest["arn"], status="IN_PROGRESS")  # a new challenge


def test_destination_errors(iot, engine, recorder):
    _destination(iot, recorder.url + "/dup")
    assert error_code(client_error(_destination, iot, recorder.url + "/dup")) == "ResourceAlreadyExistsException"
    assert error_code(client_error(_destination, iot, "ftp://example.com")) == "InvalidRequestException"
    error = client_error(iot.create_topic_rule_destination, destinationConfiguration={})
    assert error_code(error) == "InvalidRequestException"
    missing = "arn:aws:iot:us-east-1:123456789012:ruledestination/http/00000000-0000-0000-0000-000000000000"
    assert error_code(client_error(iot.get_topic_rule_destination, arn=missing)) == "InvalidRequestException"
    assert error_code(client_error(iot.delete_topic_rule_destination, arn=missing)) == "InvalidRequestException"
    assert error_code(client_error(iot.update_topic_rule_destination, arn=missing, status="ENABLED")) == "InvalidRequestException"
    assert error_code(client_error(iot.confirm_topic_rule_destination, confirmationToken="nope")) == "InvalidRequestException"


def test_list_and_delete_destinations(iot, engine, recorder):
    arns = [_destination(iot, f"{recorder.url}/d{i}")["arn"] for i in range(5)]
    summaries = iot.list_topic_rule_destinations()["destinationSummaries"]
    assert sorted(s["arn"] for s in summaries) == sorted(arns)
    assert all(s["httpUrlSummary"]["confirmationUrl"].startswith(recorder.url) for s in summaries)
    assert all(s["status"] == "IN_PROGRESS" for s in summaries)
    seen, token = [], None
    while True:
        page = iot.list_topic_rule_destinations(maxResults=2, **({"nextToken": token} if token else {}))
        seen += [s["arn"] for s in page["destinationSummaries"]]
        token = page.get("nextToken")
        if not token:
            break
    assert sorted(seen) == sorted(arns)
    iot.delete_topic_rule_destination(arn=arns[0])
    assert error_code(client_error(iot.get_topic_rule_destination, arn=arns[0])) == "InvalidRequestException"
    assert len(iot.list_topic_rule_destinations()["destinationSummaries"]) == 4


def test_vpc_destination(iot, engine):
    config = {"roleArn": ROLE, "subnetIds": ["subnet-1", "subnet-2"], "securityGroups": ["sg-1"], "vpcId": "vpc-1"}
    dest = iot.create_topic_rule_destination(destinationConfiguration={"vpcConfiguration": config})[
        "topicRuleDestination"]
    assert dest["status"] == "IN_PROGRESS"
    assert dest["arn"].startswith("arn:aws:iot:us-east-1:123456789012:ruledestination/vpc/")
    assert dest["vpcProperties"] == config
    assert engine.wait_idle(10)
    got = iot.get_topic_rule_destination(arn=dest["arn"])["topicRuleDestination"]
    assert got["status"] == "ENABLED"
    summary = iot.list_topic_rule_destinations()["destinationSummaries"][0]
    assert summary["vpcDestinationSummary"] == config

    kafka = {"kafka": {"destinationArn": dest["arn"], "topic": "t",
                       "clientProperties": {"bootstrap.servers": "b:9092"}}}
    iot.create_topic_rule(ruleName="to_kafka", topicRulePayload=_payload(actions=[kafka]))
    error = client_error(iot.delete_topic_rule_destination, arn=dest["arn"])
    assert error_code(error) == "InvalidRequestException"
    iot.delete_topic_rule(ruleName="to_kafka")
    iot.update_topic_rule_destination(arn=dest["arn"], status="DISABLED")
    iot.delete_topic_rule_destination(arn=dest["arn"])

    error = client_error(iot.create_topic_rule_destination, destinationConfiguration={"vpcConfiguration": {
              **config, "roleArn": "arn:aws:iam::123456789012:user/x"}})
    assert error_code(error) == "InvalidRequestException"


def test_http_action_creates_its_destination(iot, engine, recorder):
    action = {"http": {"url": recorder.url + "/ingest/data", "confirmationUrl": recorder.url + "/ingest"}}
    iot.create_topic_rule(ruleName="to_http", topicRulePayload=_payload(actions=[action]))
    summaries = iot.list_topic_rule_destinations()["destinationSummaries"]
    assert [s["httpUrlSummary"]["confirmationUrl"] for s in summaries] == [recorder.url + "/ingest"]
    assert summaries[0]["status"] == "IN_PROGRESS"
    assert json.loads(recorder.wait_for(1)[0]["body"])["arn"] == summaries[0]["arn"]
    # a second rule with the same URL reuses the destination
    iot.create_topic_rule(ruleName="to_http2", topicRulePayload=_payload(actions=[action]))
    assert len(iot.list_topic_rule_destinations()["destinationSummaries"]) == 1


def test_destinations_are_scoped_by_region(localiot_server, engine, recorder):
    east = make_client(localiot_server)
    west = make_client(localiot_server, region="eu-west-1")
    dest = _destination(west, recorder.url)
    assert dest["arn"].startswith("arn:aws:iot:eu-west-1:")
    assert east.list_topic_rule_destinations()["destinationSummaries"] == []
    token = json.loads(recorder.wait_for(1)[0]["body"])["confirmationToken"]
    east.confirm_topic_rule_destination(confirmationToken=token)  # the token knows its region
    assert west.get_topic_rule_destination(arn=dest["arn"])["topicRuleDestination"]["status"] == "ENABLED"
