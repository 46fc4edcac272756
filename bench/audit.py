#!/usr/bin/env python
"""Device Defender audit duration over a large account: N device certificates
(real X.509, each PEM parsed by the checks) and M IoT policies.

A localiot server runs in this process (SQLite file in a temporary data
directory). The state is written straight into its store in one transaction
(so the bench times the audit, not 100,000 API calls); a tenth of the
certificates expire within 30 days, one in a thousand has a 1024-bit RSA key,
a tenth of the policies allow iot:* on *. Then one on-demand audit of the
certificate and policy checks is started through boto3 and timed until
DescribeAuditTask reports COMPLETED; the findings count is checked against
what was planted. No peer implements Device Defender audits (moto answers
NotImplemented), so the figures are absolute.

Usage:  .venv/bin/python bench/audit.py [--certificates 100000] [--policies 10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from localiot.testing import local_server

ACCOUNT, REGION = "123456789012", "us-east-1"
CHECKS = ["DEVICE_CERTIFICATE_EXPIRING_CHECK", "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK", "DEVICE_CERTIFICATE_AGE_CHECK",
          "IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK"]


def certificates(n: int):
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    device_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    now = dt.datetime.now(dt.timezone.utc)
    for i in range(n):
        days = 10 if i % 10 == 0 else 3650
        cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"d{i}")]))
                .issuer_name(ca_name).public_key(weak_key if i % 1000 == 1 else device_key)
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=days)).sign(ca_key, hashes.SHA256()))
        yield cert.fingerprint(hashes.SHA256()).hex(), cert.public_bytes(serialization.Encoding.PEM).decode()


def plant(server, n_certs: int, n_policies: int) -> None:
    now = time.time()
    rows = list(certificates(n_certs))
    broad = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]})
    scoped = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect",
                        "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:client/${{iot:Connection.Thing.ThingName}}"}]})

    def write():
        with server.app.store.transaction(ACCOUNT, REGION) as tx:
            for cid, pem in rows:
                tx.put("cert", cid, {"certificateId": cid, "certificateArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{cid}",
                                     "certificatePem": pem, "status": "ACTIVE", "ownedBy": ACCOUNT,
                                     "caCertificateId": None, "creationDate": now, "lastModifiedDate": now},
                       {"status": "ACTIVE"})
            for i in range(n_policies):
                name = f"p{i}"
                tx.put("policy", name, {"policyName": name, "policyArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:policy/{name}",
                                        "defaultVersionId": "1", "versions": {"1": {
                                            "document": broad if i % 10 == 0 else scoped, "creationDate": now,
                                            "lastModifiedDate": now, "isDefault": True}}})
    server.call(write)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--policies", type=int, default=10_000)
    args = parser.parse_args()
    with local_server(background_period=0) as server:
        iot = boto3.client("iot", endpoint_url=server.endpoint, region_name=REGION,
                           aws_access_key_id="bench", aws_secret_access_key="bench")
        t0 = time.perf_counter()
        plant(server, args.certificates, args.policies)
        print(f"planted {args.certificates} certificates and {args.policies} policies in "
              f"{time.perf_counter() - t0:.1f} s")
        iot.update_account_audit_configuration(roleArn=f"arn:aws:iam::{ACCOUNT}:role/audit",
                                               auditCheckConfigurations={c: {"enabled": True} for c in CHECKS})
        t0 = time.perf_counter()
        task_id = iot.start_on_demand_audit_task(targetCheckNames=CHECKS)["taskId"]
        while (task := iot.describe_audit_task(taskId=task_id))["taskStatus"] == "IN_PROGRESS":
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        details = task["auditDetails"]
        for name in CHECKS:
            d = details[name]
            print(f"  {name}: {d['checkRunStatus']} {d.get('nonCompliantResourcesCount')}/{d.get('totalResourcesCount')}")
        expected = {"DEVICE_CERTIFICATE_EXPIRING_CHECK": (args.certificates + 9) // 10,
                    "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK": (args.certificates + 998) // 1000,
                    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": (args.policies + 9) // 10}
        for name, count in expected.items():
            assert details[name]["nonCompliantResourcesCount"] == count, (name, details[name], count)
        print(f"audit of {args.certificates} certificates and {args.policies} policies "
              f"({len(CHECKS)} checks): {elapsed:.1f} s")


if __name__ == "__main__":
    main()
