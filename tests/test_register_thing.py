"""RegisterThing with provisioning templates through boto3 against the real server,
apply_plan as the fleet-provisioning topics call it, the pre-provisioning hook."""

import hashlib
import io
import json

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from localiot.services.security.provisioning_templates import run_pre_provisioning_hook
from localiot.testing import ACCOUNT, REGION, error_message, error_of
from provisioning_helpers import (BODY, HOOK, POLICY_TEXT, create, fleet_template, in_store, make_certificate, params,
                                  put_certificate, template_arn)


# RegisterThing -----------------------------------------------------------------
def test_register_thing_end_to_end(iot, localiot_server):
    cert = put_certificate(localiot_server)
    out = iot.register_thing(templateBody=BODY, parameters=params(cert))
    policy_name = hashlib.sha1(POLICY_TEXT.encode()).hexdigest().upper()
    policy_arn = f"arn:aws:iot:{REGION}:{ACCOUNT}:policy/{policy_name}"
    assert out["certificatePem"] == cert["certificatePem"]
    assert out["resourceArns"] == {
        "thing": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/bulb-1",
        "certificate": cert["certificateArn"],
        "policy": policy_arn,
    }
    thing = iot.describe_thing(thingName="bulb-1")
    assert thing["attributes"] == {"version": "v1", "serialNumber": "42"}
    assert thing["version"] == 1

    def read(tx):
        return {
            "cert": tx.get("cert", cert["certificateId"]),
            "policy": tx.get("policy", policy_name),
            "policy_targets": tx.linked("policy-target", policy_name),
            "principals": tx.linked("thing-principal", "bulb-1"),
            "attachment": tx.get("thing-principal", f"bulb-1|{cert['certificateArn']}"),
        }

    state = in_store(localiot_server, read)
    assert state["cert"]["status"] == "ACTIVE"
    assert state["cert"]["lastModifiedDate"] > 0
    policy = state["policy"]
    assert (policy["policyName"], policy["policyArn"], policy["defaultVersionId"]) == (policy_name, policy_arn, "1")
    assert policy["versions"]["1"]["document"] == POLICY_TEXT
    assert policy["versions"]["1"]["isDefault"] is True
    assert state["policy_targets"] == [cert["certificateArn"]]
    assert state["principals"] == [cert["certificateArn"]]
    assert state["attachment"]["thingPrincipalType"] == "NON_EXCLUSIVE_THING"

    # Provisioning the same device again changes nothing and duplicates nothing.
    again = iot.register_thing(templateBody=BODY, parameters=params(cert))
    assert again["resourceArns"] == out["resourceArns"]
    assert iot.describe_thing(thingName="bulb-1")["version"] == 1
    assert in_store(localiot_server, lambda tx: tx.count_links("policy-target", dst=cert["certificateArn"])) == 1


def test_register_thing_missing_parameter(iot, localiot_server):
    cert = put_certificate(localiot_server)
    p = params(cert)
    del p["SerialNumber"]
    with pytest.raises(ClientError) as info:
        iot.register_thing(templateBody=BODY, parameters=p)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "'SerialNumber'" in error_message(info)


def test_register_thing_invalid_body(iot):
    with pytest.raises(ClientError) as info:
        iot.register_thing(templateBody='{"Resources": {"x": {"Type": "AWS::IoT::Gizmo"}}}')
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "AWS::IoT::Gizmo" in error_message(info)


def test_register_thing_unknown_certificate_rolls_back(iot):
    with pytest.raises(ClientError) as info:
        iot.register_thing(templateBody=BODY, parameters={
            "ThingName": "bulb-1", "SerialNumber": "1", "AWS::IoT::Certificate::Id": "ab" * 32,
        })
    assert error_of(info) == ("ResourceRegistrationFailureException", 400)
    assert "ab" * 32 in error_message(info)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName="bulb-1")


def test_register_thing_failure_after_thing_creation_rolls_back(iot, localiot_server):
    cert = put_certificate(localiot_server)
    body = fleet_template(policy={"PolicyName": "NoSuchPolicy"})
    with pytest.raises(ClientError) as info:
        iot.register_thing(templateBody=body, parameters=params(cert))
    assert error_of(info) == ("ResourceRegistrationFailureException", 400)
    assert "NoSuchPolicy" in error_message(info)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName="bulb-1")
    assert in_store(localiot_server, lambda tx: tx.get("cert", cert["certificateId"])["status"]) == "INACTIVE"


def test_register_thing_attaches_existing_policy_by_name(iot, localiot_server):
    cert = put_certificate(localiot_server)

    def put_policy(tx):
        tx.put("policy", "Shared", {
            "policyName": "Shared", "policyArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:policy/Shared",
            "defaultVersionId": "1", "versions": {"1": {"document": POLICY_TEXT, "creationDate": 1, "isDefault": True}},
            "creationDate": 1, "lastModifiedDate": 1,
        })

    in_store(localiot_server, put_policy)
    out = iot.register_thing(templateBody=fleet_template(policy={"PolicyName": "Shared"}), parameters=params(cert))
    assert out["resourceArns"]["policy"].endswith(":policy/Shared")
    assert in_store(localiot_server, lambda tx: tx.linked("policy-target", "Shared")) == [cert["certificateArn"]]


def test_register_thing_certificate_status_inactive_and_revoked(iot, localiot_server):
    active = put_certificate(localiot_server, status="ACTIVE")
    body = fleet_template(certificate={"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "INACTIVE"})
    iot.register_thing(templateBody=body, parameters=params(active))
    assert in_store(localiot_server, lambda tx: tx.get("cert", active["certificateId"])["status"]) == "INACTIVE"
    revoked = put_certificate(localiot_server, status="REVOKED")
    with pytest.raises(ClientError) as info:
        iot.register_thing(templateBody=BODY, parameters=params(revoked, name="bulb-2"))
    assert error_of(info) == ("ResourceRegistrationFailureException", 400)
    assert "REVOKED" in error_message(info)


def test_register_thing_certificate_status_override_do_nothing(iot, localiot_server):
    cert = put_certificate(localiot_server, status="INACTIVE")
    body = json.loads(BODY)
    body["Resources"]["certificate"]["OverrideSettings"] = {"Status": "DO_NOTHING"}
    iot.register_thing(templateBody=json.dumps(body), parameters=params(cert))
    assert in_store(localiot_server, lambda tx: tx.get("cert", cert["certificateId"])["status"]) == "INACTIVE"


def test_register_thing_overrides_on_existing_thing(iot, localiot_server):
    iot.create_thing_type(thingTypeName="old-type")
    iot.create_thing_type(thingTypeName="new-type")
    iot.create_thing(thingName="bulb-1", thingTypeName="old-type",
                     attributePayload={"attributes": {"version": "v0", "color": "red"}})
    cert = put_certificate(localiot_server)
    body = fleet_template(
        thing_extra={"ThingTypeName": "new-type"},
        thing_overrides={"AttributePayload": "MERGE", "ThingTypeName": "REPLACE"},
    )
    iot.register_thing(templateBody=body, parameters=params(cert))
    thing = iot.describe_thing(thingName="bulb-1")
    assert thing["attributes"] == {"version": "v1", "serialNumber": "42", "color": "red"}
    assert thing["thingTypeName"] == "new-type"
    assert thing["version"] == 2

    replace = fleet_template(thing_overrides={"AttributePayload": "REPLACE"})
    iot.register_thing(templateBody=replace, parameters=params(cert, serial="43"))
    assert iot.describe_thing(thingName="bulb-1")["attributes"] == {"version": "v1", "serialNumber": "43"}

    # Without OverrideSettings an existing thing is left as it is.
    iot.register_thing(templateBody=BODY, parameters=params(cert, serial="99"))
    assert iot.describe_thing(thingName="bulb-1")["attributes"]["serialNumber"] == "43"

    fail = fleet_template(thing_overrides={"AttributePayload": "FAIL"})
    with pytest.raises(ClientError) as info:
        iot.register_thing(templateBody=fail, parameters=params(cert, serial="44"))
    assert error_of(info) == ("ResourceRegistrationFailureException", 400)
    assert "AttributePayload" in error_message(info)
    iot.register_thing(templateBody=fail, parameters=params(cert, serial="43"))  # nothing differs: fine


def test_register_thing_unknown_thing_type(iot, localiot_server):
    cert = put_certificate(localiot_server)
    with pytest.raises(ClientError) as info:
        iot.register_thing(templateBody=fleet_template(thing_extra={"ThingTypeName": "nope"}), parameters=params(cert))
    assert error_of(info) == ("ResourceRegistrationFailureException", 400)
    assert "nope" in error_message(info)


def test_register_thing_bad_thing_name_is_checked_against_the_model(iot, localiot_server):
    cert = put_certificate(localiot_server)
    with pytest.raises(ClientError) as info:
        iot.register_thing(templateBody=BODY, parameters=params(cert, name="no spaces allowed"))
    assert error_of(info) == ("ResourceRegistrationFailureException", 400)
    assert "thingName" in error_message(info)


def test_register_thing_groups_and_billing_group(iot, localiot_server):
    cert = put_certificate(localiot_server)
    body = fleet_template(thing_extra={"ThingGroups": ["lights", {"Ref": "Location"}], "BillingGroup": "billing"})
    with pytest.raises(ClientError) as info:
        iot.register_thing(templateBody=body, parameters=params(cert))
    assert error_of(info) == ("ResourceRegistrationFailureException", 400)
    assert "billing" in error_message(info).lower()
    iot.create_billing_group(billingGroupName="billing")
    iot.create_thing_group(thingGroupName="lights")
    with pytest.raises(ClientError) as info:
        iot.register_thing(templateBody=body, parameters=params(cert))
    assert "WA" in error_message(info)  # the default Location's group does not exist yet
    iot.create_thing_group(thingGroupName="WA")
    iot.register_thing(templateBody=body, parameters=params(cert))
    groups = iot.list_thing_groups_for_thing(thingName="bulb-1")["thingGroups"]
    assert sorted(g["groupName"] for g in groups) == ["WA", "lights"]
    assert iot.describe_thing(thingName="bulb-1")["billingGroupName"] == "billing"

    # REPLACE moves the thing to exactly the template's groups; MERGE only adds.
    iot.create_thing_group(thingGroupName="OR")
    replace = fleet_template(thing_extra={"ThingGroups": ["lights", {"Ref": "Location"}]},
                             thing_overrides={"ThingGroups": "REPLACE"})
    p = dict(params(cert), Location="OR")
    iot.register_thing(templateBody=replace, parameters=p)
    groups = iot.list_thing_groups_for_thing(thingName="bulb-1")["thingGroups"]
    assert sorted(g["groupName"] for g in groups) == ["OR", "lights"]


PEM_BODY = json.dumps({
    "Parameters": {"Pem": {"Type": "String"}, "CaPem": {"Type": "String", "Default": ""}},
    "Conditions": {"WithCa": {"Fn::Not": [{"Fn::Equals": [{"Ref": "CaPem"}, ""]}]}},
    "Resources": {
        "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "device-9"}},
        "cert": {"Type": "AWS::IoT::Certificate", "Properties": {
            "CertificatePem": {"Ref": "Pem"},
            "CACertificatePem": {"Fn::If": ["WithCa", {"Ref": "CaPem"}, {"Ref": "AWS::NoValue"}]},
        }},
    },
})


def test_register_thing_registers_a_certificate_signed_by_a_registered_ca(iot, localiot_server):
    _, _, ca_cert, ca_key = make_certificate("Test CA")
    ca_pem = ca_cert.public_bytes(Encoding.PEM).decode()
    certificate_id, pem, _, _ = make_certificate("device-9", issuer=(ca_cert, ca_key))
    with pytest.raises(ClientError) as info:
        iot.register_thing(templateBody=PEM_BODY, parameters={"Pem": pem})
    assert error_of(info) == ("ResourceRegistrationFailureException", 400)
    assert "CA" in error_message(info)
    ca_id = iot.register_ca_certificate(caCertificate=ca_pem, certificateMode="SNI_ONLY", setAsActive=True)["certificateId"]

    out = iot.register_thing(templateBody=PEM_BODY, parameters={"Pem": pem, "CaPem": ca_pem})
    arn = f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{certificate_id}"
    assert out["resourceArns"] == {"thing": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/device-9", "cert": arn}
    assert out["certificatePem"] == pem
    described = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
    assert (described["status"], described["caCertificateId"]) == ("ACTIVE", ca_id)
    assert iot.list_thing_principals(thingName="device-9")["principals"] == [arn]

    # Without CACertificatePem the issuer is found among the registered CAs.
    other_id, other_pem, _, _ = make_certificate("device-10", issuer=(ca_cert, ca_key))
    body = PEM_BODY.replace("device-9", "device-10")
    iot.register_thing(templateBody=body, parameters={"Pem": other_pem})
    assert iot.describe_certificate(certificateId=other_id)["certificateDescription"]["status"] == "ACTIVE"

    _, stray_pem, _, _ = make_certificate("device-11")  # self-signed: no registered CA signed it
    with pytest.raises(ClientError) as info:
        iot.register_thing(templateBody=PEM_BODY.replace("device-9", "device-11"), parameters={"Pem": stray_pem})
    assert error_of(info) == ("ResourceRegistrationFailureException", 400)


def test_register_thing_from_csr_issues_a_certificate(iot):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr-device")]))
        .sign(key, hashes.SHA256())
        .public_bytes(Encoding.PEM)
        .decode()
    )
    body = fleet_template(certificate={"CertificateSigningRequest": {"Ref": "CSR"}, "Status": "ACTIVE"})
    body = json.loads(body)
    body["Parameters"]["CSR"] = {"Type": "String"}
    out = iot.register_thing(templateBody=json.dumps(body), parameters={"ThingName": "csr-thing", "SerialNumber": "5", "CSR": csr})
    issued = x509.load_pem_x509_certificate(out["certificatePem"].encode())
    assert issued.public_key().public_numbers() == key.public_key().public_numbers()
    certificate_id = hashlib.sha256(issued.public_bytes(Encoding.DER)).hexdigest()
    assert out["resourceArns"]["certificate"].endswith(f":cert/{certificate_id}")
    assert iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]["status"] == "ACTIVE"
    assert iot.list_thing_principals(thingName="csr-thing")["principals"] == [out["resourceArns"]["certificate"]]


def test_register_thing_with_api_made_certificate_is_visible_through_the_api(iot):
    made = iot.create_keys_and_certificate(setAsActive=False)
    out = iot.register_thing(templateBody=BODY, parameters={
        "ThingName": "api-thing", "SerialNumber": "1", "AWS::IoT::Certificate::Id": made["certificateId"],
    })
    assert iot.describe_certificate(certificateId=made["certificateId"])["certificateDescription"]["status"] == "ACTIVE"
    policies = iot.list_attached_policies(target=made["certificateArn"])["policies"]
    assert [p["policyArn"] for p in policies] == [out["resourceArns"]["policy"]]
    principals = iot.list_thing_principals_v2(thingName="api-thing")["thingPrincipalObjects"]
    assert principals == [{"principal": made["certificateArn"], "thingPrincipalType": "NON_EXCLUSIVE_THING"}]
    assert iot.list_principal_things(principal=made["certificateArn"])["things"] == ["api-thing"]


def test_register_thing_keeps_an_exclusive_attachment_and_refuses_a_second_thing(iot, localiot_server):
    cert = put_certificate(localiot_server)
    iot.create_thing(thingName="owner")
    iot.attach_thing_principal(thingName="owner", principal=cert["certificateArn"], thingPrincipalType="EXCLUSIVE_THING")
    iot.register_thing(templateBody=BODY, parameters=params(cert, name="owner"))
    assert iot.list_thing_principals_v2(thingName="owner")["thingPrincipalObjects"][0]["thingPrincipalType"] == "EXCLUSIVE_THING"
    with pytest.raises(ClientError) as info:
        iot.register_thing(templateBody=BODY, parameters=params(cert, name="intruder"))
    assert error_of(info) == ("ResourceRegistrationFailureException", 400)
    assert "exclusive" in error_message(info)


def test_template_used_by_a_ca_cannot_be_deleted(iot):
    create(iot, "jitp", type="JITP")
    _, _, ca_cert, _ = make_certificate("JITP CA")
    ca = iot.register_ca_certificate(
        caCertificate=ca_cert.public_bytes(Encoding.PEM).decode(), certificateMode="SNI_ONLY",
        registrationConfig={"templateName": "jitp"},
    )
    with pytest.raises(ClientError) as info:
        iot.delete_provisioning_template(templateName="jitp")
    assert error_of(info) == ("DeleteConflictException", 409)
    iot.update_ca_certificate(certificateId=ca["certificateId"], newStatus="INACTIVE")
    iot.delete_ca_certificate(certificateId=ca["certificateId"])
    iot.delete_provisioning_template(templateName="jitp")


# apply_plan as the fleet-provisioning topics call it ---------------------------------
def provision(server, body, parameters, certificate_id):
    from localiot.protocol.errors import ServiceError
    from localiot.provisioning import evaluate
    from localiot.provisioning.apply import apply_plan
    from localiot.services.context import RequestContext

    def run():
        try:
            with server.app.store.transaction(ACCOUNT, REGION) as tx:
                ctx = RequestContext(ACCOUNT, REGION, tx, server.app.runtime)
                plan = evaluate(body, parameters, region=REGION, account=ACCOUNT)
                return apply_plan(ctx, plan, certificate_id=certificate_id)
        except ServiceError as error:
            return error

    return server.call(run)


def test_apply_plan_for_the_devices_certificate(iot, localiot_server):
    device = put_certificate(localiot_server)
    result = provision(localiot_server, BODY, params(device, name="fleet-1"), device["certificateId"])
    assert result.fleet_provisioning_response() == {
        "deviceConfiguration": {"Url": "https://example.aws/42"}, "thingName": "fleet-1",
    }
    assert result.certificate_id == device["certificateId"]
    assert iot.describe_certificate(certificateId=device["certificateId"])["certificateDescription"]["status"] == "ACTIVE"

    # A template whose certificate is another one than the device's is refused.
    other = put_certificate(localiot_server)
    error = provision(localiot_server, BODY, params(other, name="fleet-2"), device["certificateId"])
    assert error.code == "ResourceRegistrationFailureException"
    assert "not the device's certificate" in error.message
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName="fleet-2")


def test_apply_plan_without_certificate_resource_attaches_the_devices_certificate(iot, localiot_server):
    device = put_certificate(localiot_server, status="ACTIVE")
    body = json.dumps({
        "Parameters": {"SerialNumber": {"Type": "String"}},
        "Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Sub": "sensor-${SerialNumber}"}}}},
    })
    result = provision(localiot_server, body, {"SerialNumber": "7"}, device["certificateId"])
    assert (result.thing_name, result.resource_arns) == ("sensor-7", {"thing": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/sensor-7"})
    assert iot.list_thing_principals(thingName="sensor-7")["principals"] == [device["certificateArn"]]


# pre-provisioning hook ---------------------------------------------------------
class FakeLambda:
    def __init__(self, answer=None, function_error=None, raises=None):
        self.answer, self.function_error, self.raises = answer, function_error, raises
        self.calls = []

    def invoke(self, **kwargs):
        self.calls.append(kwargs)
        if self.raises:
            raise self.raises
        out = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(self.answer).encode())}
        if self.function_error:
            out["FunctionError"] = self.function_error
        return out


class FakeRuntime:
    def __init__(self, client):
        self.client = client
        self.asked = []

    def aws_client(self, service, region):
        self.asked.append((service, region))
        return self.client


TEMPLATE_DOC = {
    "templateName": "tpl", "templateArn": template_arn("tpl"),
    "preProvisioningHook": {"targetArn": HOOK, "payloadVersion": "2020-04-01"},
}


def test_hook_allows_and_overrides_parameters():
    client = FakeLambda({"allowProvisioning": True, "parameterOverrides": {"Location": "OR", "Count": 3}})
    runtime = FakeRuntime(client)
    allowed, overrides = run_pre_provisioning_hook(
        runtime, REGION, TEMPLATE_DOC, {"SerialNumber": "42"},
        claim_certificate_id="claim", certificate_id="c" * 64, certificate_pem="PEM", client_id="client-1",
    )
    assert (allowed, overrides) == (True, {"Location": "OR", "Count": "3"})
    assert runtime.asked == [("lambda", REGION)]
    (call,) = client.calls
    assert call["FunctionName"] == HOOK
    assert call["InvocationType"] == "RequestResponse"
    assert json.loads(call["Payload"]) == {
        "claimCertificateId": "claim", "certificateId": "c" * 64, "certificatePem": "PEM",
        "templateArn": template_arn("tpl"), "clientId": "client-1", "parameters": {"SerialNumber": "42"},
    }


@pytest.mark.parametrize("client", [
    FakeLambda({"allowProvisioning": False}),
    FakeLambda({"parameterOverrides": {}}),
    FakeLambda("not an object"),
    FakeLambda({"errorMessage": "boom"}, function_error="Unhandled"),
    FakeLambda(raises=RuntimeError("endpoint unreachable")),
])
def test_hook_refuses(client):
    assert run_pre_provisioning_hook(FakeRuntime(client), REGION, TEMPLATE_DOC, {}) == (False, {})


def test_no_hook_means_allowed():
    runtime = FakeRuntime(FakeLambda())
    assert run_pre_provisioning_hook(runtime, REGION, {"templateArn": "x", "preProvisioningHook": None}, {}) == (True, {})
    assert runtime.asked == []
