"""Device Advisor's MQTT long duration test case (MQTT_Long_Duration, a suite
with isLongDurationTest) through boto3 against paho devices on the test
endpoint, with AWS's hours shortened by the configuration: a device with
backoff and jitter passes every scenario and the summary log lists them; a
device that reconnects at once fails the reconnect backoff, long server
disconnect and intermittent connectivity scenarios, and the failure names
them; bad configuration values get a ValidationException."""

from __future__ import annotations

import json
import random
import re
import time

import pytest
from advisor_kit import ROLE, PahoDevice, explain, log_of, results, run_suite, sdk_device

from localiot.testing import client_error
from test_advisor_mqtt import RawDevice


class Device(PahoDevice):
    """The kit's application on paho, subscribing with QoS 0. With backoff: exponential with equal jitter
    (half the bound plus a random half; bound 0.4 s doubling up to 3.2 s), reset once the device has been
    connected for a second (the SDKs reset theirs after a connection that lasted). Without: at once."""

    def __init__(self, dut, backoff=True):
        super().__init__("localhost", dut["port"], dut["ca"], dut["cert"], dut["thing"],
                         delays=self._delay if backoff else None)
        self.connected_at, self.tries = None, 0

    def _connected(self, rc, session_present) -> None:
        if rc == 0:
            self.connected_at = time.monotonic()
            self.client.subscribe([(t, 0) for t in self.app.subscriptions])
            self.app.on_connected()

    def _delay(self, attempt) -> float:
        if self.connected_at is not None and time.monotonic() - self.connected_at >= 1.0:
            self.tries = 0
        self.connected_at = None
        self.tries += 1
        bound = min(3.2, 0.4 * 2 ** (self.tries - 1))
        return bound / 2 + random.uniform(0, bound / 2)


def long_suite(**conf) -> str:
    return json.dumps({"tests": [{"name": "Long duration", "tests": [
        {"name": "long duration", "configuration": conf, "test": {"id": "MQTT_Long_Duration", "version": "0.0.0"}}]}]})


SHORT = {"EXECUTION_TIMEOUT": "90", "OPERATIONS": ["PUBLISH", "SUBSCRIBE"],
         "SCENARIOS": ["LONG_SERVER_DISCONNECT", "RECONNECT_BACK_OFF", "INTERMITTENT_CONNECTIVITY"],
         "LONG_SERVER_DISCONNECT_TIME": "0.05", "ADDITIONAL_EXECUTION_TIME": "0.05"}
SCENARIOS = ("CONNECT", "PUBLISH QoS 0", "SUBSCRIBE QoS 0", "RECONNECT", "RECONNECT_BACK_OFF",
             "LONG_SERVER_DISCONNECT", "INTERMITTENT_CONNECTIVITY", "ADDITIONAL_EXECUTION_TIME")


def summary(log: str) -> dict:
    """Scenario -> status, from the summary log's rows (name, status, what was seen; two spaces apart)."""
    rows = log.split("Summary log: MQTT long duration\n", 1)[1].split("  Device: ", 1)[0].splitlines()[:-1]
    return dict(re.split(r"\s{2,}", row.split("] ", 1)[1].strip())[:2] for row in rows)


def test_a_device_with_backoff_and_jitter_passes_every_scenario(da, dut):
    started = time.monotonic()
    run = run_suite(da, dut, long_suite(**SHORT), lambda d: Device(d), timeout=100, long_duration=True)
    took = time.monotonic() - started
    assert results(run) == {"long duration": "PASS"}, explain(run)
    log = log_of(run, "long duration")
    assert summary(log) == dict.fromkeys(SCENARIOS, "PASS"), log
    assert "3 outages survived" in log and "server down 3 s" in log and "Backoff with jitter" in log
    assert "8 of 8 scenarios passed" in log
    assert took < 60, took


def test_an_sdk_v2_device_with_its_default_reconnect_settings_survives_intermittent_connectivity(da, dut):
    """The SDK's MQTT 5 client keeps its grown backoff until a connection has lasted 30 s, so one advanced
    scenario keeps the run short; it publishes with QoS 0 (its SUBSCRIBEs are QoS 1, which it does not
    retry without a SUBACK: OPERATIONS says what the device does)."""
    conf = {"EXECUTION_TIMEOUT": "90", "OPERATIONS": ["PUBLISH"], "SCENARIOS": ["INTERMITTENT_CONNECTIVITY"]}
    run = run_suite(da, dut, long_suite(**conf), sdk_device, timeout=100, long_duration=True)
    assert results(run) == {"long duration": "PASS"}, explain(run)
    assert summary(log_of(run, "long duration")) == {"CONNECT": "PASS", "PUBLISH QoS 0": "PASS", "RECONNECT": "PASS",
                                                      "INTERMITTENT_CONNECTIVITY": "PASS"}


def test_qos_1_publish_and_subscribe_retries_in_the_basic_phase(da, dut):
    """A device publishing and subscribing with QoS 1 gets the basic phase's retry scenarios: its first PUBACK
    and SUBACK are held back and it must send the packet again with the same packet id."""
    conf = {"EXECUTION_TIMEOUT": "60", "SCENARIOS": ["LONG_SERVER_DISCONNECT"], "LONG_SERVER_DISCONNECT_TIME": "0.005"}
    run = run_suite(da, dut, long_suite(**conf), RawDevice, timeout=70, long_duration=True)
    assert results(run) == {"long duration": "PASS"}, explain(run)
    log = log_of(run, "long duration")
    assert summary(log) == {"CONNECT": "PASS", "PUBLISH QoS 1 with retry": "PASS", "SUBSCRIBE QoS 1 with retry": "PASS",
                            "RECONNECT": "PASS", "LONG_SERVER_DISCONNECT": "PASS"}, log
    assert "republished packet id 11" in log and "with packet id 10" in log


def test_a_device_without_backoff_fails_the_backoff_scenarios_and_the_report_names_them(da, dut):
    run = run_suite(da, dut, long_suite(**SHORT), lambda d: Device(d, backoff=False), timeout=100,
                    long_duration=True)
    assert results(run) == {"long duration": "FAIL"}, explain(run)
    test = run["testResult"]["groups"][0]["tests"][0]
    failure = test["failure"]
    assert failure.startswith("Failed scenarios: RECONNECT_BACK_OFF (The device reconnected without backoff")
    assert "LONG_SERVER_DISCONNECT (" in failure and "INTERMITTENT_CONNECTIVITY (in outage 1 of 3" in failure
    assert "no backoff" in failure
    rows = summary(log_of(run, "long duration"))
    assert rows == {"CONNECT": "PASS", "PUBLISH QoS 0": "PASS", "SUBSCRIBE QoS 0": "PASS", "RECONNECT": "PASS",
                    "RECONNECT_BACK_OFF": "FAIL", "LONG_SERVER_DISCONNECT": "FAIL", "INTERMITTENT_CONNECTIVITY": "FAIL",
                    "ADDITIONAL_EXECUTION_TIME": "PASS"}, rows


def error_of(call) -> dict:
    return client_error(call).response["Error"]


def _create(da, dut, root, long_duration=True):
    return da.create_suite_definition(suiteDefinitionConfiguration={
        "suiteDefinitionName": "long", "rootGroup": root, "devicePermissionRoleArn": ROLE,
        "devices": [{"thingArn": dut["thingArn"]}], "isLongDurationTest": long_duration})


@pytest.mark.parametrize("conf, message", [
    ({"SCENARIOS": ["RECONNECT_BACK_OFF", "FLAPPING"]},
     "Test case 'long duration' (MQTT_Long_Duration): SCENARIOS: 'FLAPPING' is not one of LONG_SERVER_DISCONNECT, "
     "RECONNECT_BACK_OFF, INTERMITTENT_CONNECTIVITY."),
    ({"OPERATIONS": "PUBLISH_ALL"},
     "Test case 'long duration' (MQTT_Long_Duration): OPERATIONS: 'PUBLISH_ALL' is not one of CONNECT, PUBLISH, "
     "SUBSCRIBE."),
    ({"OPERATIONS": {"PUBLISH": 1}},
     "Test case 'long duration' (MQTT_Long_Duration): OPERATIONS must be a list of some of CONNECT, PUBLISH, "
     "SUBSCRIBE."),
    ({"LONG_SERVER_DISCONNECT_TIME": "soon"},
     "Test case 'long duration' (MQTT_Long_Duration): LONG_SERVER_DISCONNECT_TIME must be a number of minutes "
     "(0 or more), not 'soon'."),
    ({"SCENARIOS": ["KEEP_ALIVE"]},
     "Test case 'long duration' (MQTT_Long_Duration): SCENARIOS: 'KEEP_ALIVE' is not one of LONG_SERVER_DISCONNECT, "
     "RECONNECT_BACK_OFF, INTERMITTENT_CONNECTIVITY."),
    ({"ADDITIONAL_EXECUTION_TIME": "-1"},
     "Test case 'long duration' (MQTT_Long_Duration): ADDITIONAL_EXECUTION_TIME must be a number of minutes "
     "(0 or more), not '-1'."),
    ({"BACKOFF_CONNECTION_ATTEMPTS": "4"},
     "Test case 'long duration' (MQTT_Long_Duration): BACKOFF_CONNECTION_ATTEMPTS must be between 5 and 10."),
])
def test_bad_configuration_values_are_refused(da, dut, conf, message):
    error = error_of(lambda: _create(da, dut, long_suite(**conf)))
    assert (error["Code"], error["Message"]) == ("ValidationException", message)
    assert da.list_suite_definitions()["suiteDefinitionInformationList"] == []


def test_the_long_duration_case_and_long_duration_suites_go_together(da, dut):
    error = error_of(lambda: _create(da, dut, long_suite(), long_duration=False))
    assert (error["Code"], error["Message"]) == (
        "ValidationException", "The test case MQTT_Long_Duration runs only in a long duration test suite: "
                               "set isLongDurationTest to true.")
    other = json.dumps({"tests": [{"name": "g", "tests": [
        {"name": "connect", "test": {"id": "MQTT_Connect", "version": "0.0.0"}}]}]})
    error = error_of(lambda: _create(da, dut, other))
    assert error["Message"] == ("A long duration test suite (isLongDurationTest) holds only the MQTT_Long_Duration "
                                "test case.")
    created = _create(da, dut, long_suite(**SHORT))
    got = da.get_suite_definition(suiteDefinitionId=created["suiteDefinitionId"])
    assert got["suiteDefinitionConfiguration"]["isLongDurationTest"] is True


def test_a_run_cut_short_by_its_execution_timeout_still_logs_the_summary(da, dut):
    conf = {"EXECUTION_TIMEOUT": "3", "SCENARIOS": ["LONG_SERVER_DISCONNECT"], "LONG_SERVER_DISCONNECT_TIME": "0.5"}
    run = run_suite(da, dut, long_suite(**conf), lambda d: Device(d), timeout=20, long_duration=True)
    assert results(run) == {"long duration": "FAIL"}, explain(run)
    assert run["testResult"]["groups"][0]["tests"][0]["failure"].startswith("Timed out after 3 s")
    log = log_of(run, "long duration")
    assert "Summary log: MQTT long duration (cut short: only the scenarios that ended)" in log
    assert summary(log.replace(" (cut short: only the scenarios that ended)", "")) == {
        "CONNECT": "PASS", "PUBLISH QoS 0": "PASS", "SUBSCRIBE QoS 0": "PASS", "RECONNECT": "PASS"}, log
