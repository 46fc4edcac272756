"""Device Advisor's TLS test cases against a paho device that verifies the
server (Python's ssl defaults): a run through boto3, the device on the test
endpoint with its certificate."""

from __future__ import annotations

import json

from advisor_kit import explain, log_of, paho_device, results, run_suite


def suite(*cases) -> str:
    return json.dumps({"configuration": {"EXECUTION_TIMEOUT": "15"}, "tests": [{"name": "TLS", "tests": [
        {"name": name, "configuration": conf, "test": {"id": test_id, "version": "0.0.0"}}
        for name, test_id, conf in cases]}]})


def steady(attempt):  # a device that waits a tenth of a second before trying again
    return 0.1


def test_tls_cases_against_a_verifying_device(da, dut):
    topic = f"dut/{dut['thing']}/in"
    run = run_suite(da, dut, suite(
        ("connect", "TLS_Connect", {}),
        ("ciphers", "TLS_Support_AWS_IoT_Cipher_Suites", {}),
        ("unsecure", "TLS_Unsecure_Server_Cert", {}),
        ("expired", "TLS_Expired_Server_Cert", {}),
        ("wrong subject", "TLS_Incorrect_Subject_Name_Server_Cert", {}),
        ("large", "TLS_Large_Size_Server_Cert", {}),
        ("fragments", "TLS_Receive_Maximum_Size_Fragments",
         {"TRIGGER_TOPIC": topic, "PAYLOAD_FORMAT": '{"message":"${payload}"}'}),
    ), lambda d: paho_device(d, delays=steady))
    got = results(run)
    assert got["ciphers"] == "PASS_WITH_WARNINGS", explain(run)  # Python also offers suites AWS IoT does not support
    assert {k: v for k, v in got.items() if k != "ciphers"} == {
        "connect": "PASS", "unsecure": "PASS", "expired": "PASS", "wrong subject": "PASS", "large": "PASS",
        "fragments": "PASS"}, explain(run)
    assert run["status"] == "PASS"
    ciphers = log_of(run, "ciphers")
    assert "TLS_AES_128_GCM_SHA256" in ciphers and "does not support" in ciphers
    assert "The device refused the handshake" in log_of(run, "unsecure")
    assert "bytes: at least one full-size (16384 byte) TLS record" in log_of(run, "fragments")
