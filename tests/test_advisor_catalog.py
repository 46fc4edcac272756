"""The catalog: AWS's test case ids and configuration keys, and the rootGroup check."""

import json

import pytest

from localiot.advisor import catalog
from localiot.advisor.catalog import CatalogError


def suite(*tests, suite_conf=None, group_conf=None):
    return json.dumps({"configuration": suite_conf or {}, "tests": [
        {"name": "G1", "configuration": group_conf or {}, "tests": [
            {"name": f"t{i}", "configuration": conf, "test": {"id": test_id, "version": "0.0.0"}}
            for i, (test_id, conf) in enumerate(tests)]}]})


def test_plan_keeps_order_and_merges_configuration_suite_group_test():
    planned = catalog.validate_root_group(suite(
        ("MQTT_Connect", {}), ("MQTT_Publish", {"TOPIC_FOR_PUBLISH_VALIDATION": "a/b", "EXECUTION_TIMEOUT": "20"}),
        suite_conf={"EXECUTION_TIMEOUT": 5, "X": 1}, group_conf={"X": 2}))
    assert [p.case.id for p in planned] == ["MQTT_Connect", "MQTT_Publish"]
    assert planned[0].timeout == 5 and planned[0].configuration["X"] == 2
    assert planned[1].timeout == 20 and planned[1].configuration["TOPIC_FOR_PUBLISH_VALIDATION"] == "a/b"


def test_default_timeouts_are_awss():
    planned = catalog.plan(suite(("MQTT_Connect", {}), ("Security_Device_Policies", {})))
    assert [p.timeout for p in planned] == [300.0, 60.0]


def test_older_spellings_are_accepted():
    planned = catalog.plan(suite(("MQTT_Client_Puback_Qos1", {}), ("TLS_Device_Support_For_AWS_IoT_Cipher_Suites", {})))
    assert [p.case.id for p in planned] == ["MQTT_Client_Puback_QoS1", "TLS_Support_AWS_IoT_Cipher_Suites"]


@pytest.mark.parametrize("root, words", [
    ("not json", "not valid JSON"),
    (json.dumps({"tests": []}), "at least one test group"),
    (json.dumps({"tests": [{"name": "g", "tests": []}]}), "at least one test case"),
    (suite(("MQTT_Nope", {})), "unknown test id 'MQTT_Nope'"),
    (suite(("MQTT_Connect", {"EXECUTION_TIMEOUT": "soon"})), "EXECUTION_TIMEOUT must be a number"),
    (suite(("MQTT_Connect", {"EXECUTION_TIMEOUT": -1})), "positive"),
    (suite(("Shadow_Update_Reported_State", {})), "needs the configuration DESIRED_STATE"),
    (suite(("Shadow_Update_Reported_State", {"DESIRED_STATE": {}})), "at least one attribute"),
    (suite(("MQTT_Reconnect_Backoff_Retries_On_Server_Disconnect", {"RECONNECTION_ATTEMPTS": 11})), "between 5 and 10"),
    (suite(("Job_Execution", {})), "JOB_DOCUMENT, JOB_DOCUMENT_SOURCE or JOB_JOBID"),
    (suite(("Job_Execution", {"JOB_DOCUMENT": "{bad"})), "JOB_DOCUMENT must be a JSON document"),
    (suite(("MQTT_Persistent_Session_Happy_Case", {})), "TRIGGER_TOPIC"),
])
def test_refusals_say_what_and_where(root, words):
    with pytest.raises(CatalogError) as e:
        catalog.validate_root_group(root)
    assert words in str(e.value)


def test_object_keys_accept_json_text():
    planned = catalog.plan(suite(("Shadow_Update_Reported_State", {"DESIRED_STATE": '{"led": "on"}'})))
    assert catalog.object_value(planned[0].configuration, "DESIRED_STATE") == {"led": "on"}
