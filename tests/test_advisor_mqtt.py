"""Device Advisor's MQTT, persistent session, keep-alive, policy and
reconnection test cases, through boto3 against paho devices and a raw
MQTT device (for retries paho does not make) on the test endpoint."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time

from advisor_kit import DONE, ROLE, explain, log_of, paho_device, results, run_suite

from localiot.broker import codec
from localiot.testing import ALLOW_ALL, new_certificate


def suite(*cases, timeout="15") -> str:
    return json.dumps({"configuration": {"EXECUTION_TIMEOUT": timeout}, "tests": [{"name": "MQTT", "tests": [
        {"name": name, "configuration": conf, "test": {"id": test_id, "version": "0.0.0"}}
        for name, test_id, conf in cases]}]})


def failure(run, name):
    return next(t for g in run["testResult"]["groups"] for t in g["tests"]
                if t["testCaseDefinitionName"] == name).get("failure")


def test_sessions_keep_alive_and_policies(da, dut):
    topic = f"dut/{dut['thing']}/in"
    run = run_suite(da, dut, suite(
        ("puback", "MQTT_Client_Puback_QoS1", {"TRIGGER_TOPIC": topic, "PAYLOAD_SIZE": "100"}),
        ("persistent", "MQTT_Persistent_Session_Happy_Case", {"TRIGGER_TOPIC": topic, "PAYLOAD": "stored"}),
        ("expired", "MQTT_Expired_Persistent_Session", {"TRIGGER_TOPIC": topic}),
        ("policies", "Security_Device_Policies", {}),
        ("no pingresp", "MQTT_No_Ack_PingResp", {}),
        ("subscribe retry", "MQTT_Subscribe_Retry_No_Suback", {"EXECUTION_TIMEOUT": "4"}),
    ), lambda d: paho_device(d, resume_session=True, keepalive=1, delays=lambda n: 0.1))
    assert results(run) == {"puback": "PASS", "persistent": "PASS", "expired": "PASS", "policies": "PASS",
                            "no pingresp": "PASS", "subscribe retry": "FAIL"}, explain(run)
    assert "without subscribing again" in log_of(run, "persistent")
    assert "iot:Connect on" in log_of(run, "policies")
    # its session resumed, the device never subscribes again: nothing to retry
    assert failure(run, "subscribe retry").startswith("Timed out after 4 s waiting for a SUBSCRIBE")


def test_an_allow_all_policy_is_overly_permissive(da, iot, tmp_path, localiot_server):
    thing = "dut-allow-all"
    iot.create_thing(thingName=thing)
    cert = new_certificate(iot, tmp_path, thing, policy=ALLOW_ALL)
    iot.attach_thing_principal(thingName=thing, principal=cert.arn)
    from localiot.testing import ca_file

    loose = {"thing": thing, "cert": cert, "ca": ca_file(localiot_server, tmp_path),
             "port": localiot_server.listener("device-advisor")[1],
             "thingArn": iot.describe_thing(thingName=thing)["thingArn"]}
    run = run_suite(da, loose, suite(("policies", "Security_Device_Policies", {})), paho_device)
    assert results(run) == {"policies": "FAIL"}
    assert "overly permissive" in failure(run, "policies") and "subscribe to every topic (#)" in failure(run, "policies")


class RawDevice:
    """A device on raw MQTT 3.1.1 that retries what gets no answer within half a second, with the same
    packet id: a SUBSCRIBE again, a PUBLISH again with DUP set."""

    def __init__(self, dut):
        self.dut, self.stop = dut, threading.Event()
        self.context = ssl.create_default_context(cafile=dut["ca"])
        self.context.load_cert_chain(str(dut["cert"].cert_file), str(dut["cert"].key_file))
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _exchange(self, sock, parser, packet, answer_type, retry):
        sock.sendall(codec.encode(packet))
        while True:
            sock.settimeout(0.5)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                sock.sendall(codec.encode(retry))
                continue
            if not data:
                raise ConnectionError("closed")
            if any(p.type == answer_type for p in parser.feed(data)):
                return

    def _session(self):
        thing = self.dut["thing"]
        with socket.create_connection(("127.0.0.1", self.dut["port"]), timeout=5) as raw, \
                self.context.wrap_socket(raw, server_hostname="localhost") as sock:
            parser = codec.Parser(codec.MQTT311)
            connect = codec.Connect(thing, codec.MQTT311, keep_alive=30)
            self._exchange(sock, parser, connect, codec.CONNACK, connect)
            subscribe = codec.Subscribe(10, [(f"dut/{thing}/in", codec.SubOptions(1))])
            self._exchange(sock, parser, subscribe, codec.SUBACK, subscribe)
            publish = codec.Publish(f"dut/{thing}/telemetry", b"21", qos=1, packet_id=11)
            again = codec.Publish(f"dut/{thing}/telemetry", b"21", qos=1, packet_id=11, dup=True)
            self._exchange(sock, parser, publish, codec.PUBACK, again)
            sock.settimeout(None)
            while not self.stop.is_set() and sock.recv(65536):
                pass

    def _run(self):
        while not self.stop.is_set():
            try:
                self._session()
            except (OSError, ConnectionError, ssl.SSLError):
                pass
            self.stop.wait(0.1)

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.stop.set()
        self.thread.join(5)


def test_retries_with_the_same_packet_id_pass(da, dut):
    topic = f"dut/{dut['thing']}/in"
    run = run_suite(da, dut, suite(
        ("subscribe retry", "MQTT_Subscribe_Retry_No_Suback", {"TOPIC_LIST_FOR_SUBSCRIPTION_VALIDATION_ID": [topic]}),
        ("publish retry", "MQTT_Publish_Retry_No_Puback", {}),
    ), RawDevice)
    assert results(run) == {"subscribe retry": "PASS", "publish retry": "PASS"}, explain(run)
    assert "with packet id 10" in log_of(run, "subscribe retry")
    assert "republished packet id 11" in log_of(run, "publish retry")


def test_reconnection_delays_are_measured(da, dut):
    run = run_suite(da, dut, suite(
        ("exponential", "MQTT_Connect_Exponential_Backoff_Retries", {}),
        ("one second", "MQTT_ReconnectionAfterSuccessfulConnection", {}),
        timeout="20"), lambda d: paho_device(d, delays=lambda n: 0.2 * 2 ** (n - 1)))
    assert results(run) == {"exponential": "PASS", "one second": "FAIL"}, explain(run)
    # the device waited 0.2, 0.4 ... 3.2 s (plus each connection's set-up) between its six CONNECTs
    measured = [float(line.split(" after ")[1].split(" s")[0]) for line in log_of(run, "exponential").splitlines()
                if "CONNECT attempt" in line and " after " in line]
    assert len(measured) == 5 and all(0.2 * 2 ** i <= m < 0.2 * 2 ** i + 0.5 for i, m in enumerate(measured)), measured
    assert "it must wait at least 1 s" in failure(run, "one second")


def test_stopping_a_run_stops_its_case(da, dut):
    suite_id = da.create_suite_definition(suiteDefinitionConfiguration={
        "suiteDefinitionName": "stop", "rootGroup": suite(("connect", "MQTT_Connect", {}), ("again", "MQTT_Connect", {}),
                                                          timeout="60"),
        "devicePermissionRoleArn": ROLE})["suiteDefinitionId"]
    run_id = da.start_suite_run(suiteDefinitionId=suite_id, suiteRunConfiguration={
        "primaryDevice": {"thingArn": dut["thingArn"]}})["suiteRunId"]
    for _ in range(100):
        got = da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run_id)
        if got["testResult"]["groups"][0]["tests"][0]["status"] == "RUNNING":
            break
        time.sleep(0.05)
    da.stop_suite_run(suiteDefinitionId=suite_id, suiteRunId=run_id)
    for _ in range(100):
        got = da.get_suite_run(suiteDefinitionId=suite_id, suiteRunId=run_id)
        if got["status"] in DONE:
            break
        time.sleep(0.05)
    assert got["status"] == "STOPPED" and got["endTime"]
    first, second = got["testResult"]["groups"][0]["tests"]
    assert (first["status"], first["failure"]) == ("STOPPED", "The suite run was stopped.")
    assert second["status"] == "STOPPED"
