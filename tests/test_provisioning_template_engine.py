"""The provisioning template engine on its own: validation and evaluation, no server."""

import json

import pytest

from localiot.provisioning import (
    EvaluationError,
    TemplateError,
    evaluate,
    policy_name_for,
    validate_template,
)

CERT_ID = "c0ffee" + "0" * 58
POLICY_TEXT = (
    '{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action":["iot:Publish"], '
    '"Resource": ["arn:aws:iot:us-east-1:123456789012:topic/foo/bar"] }] }'
)

# The developer guide's fleet provisioning template: thing, certificate by ID, policy, device configuration.
FLEET = {
    "Parameters": {
        "ThingName": {"Type": "String"},
        "SerialNumber": {"Type": "String"},
        "Location": {"Type": "String", "Default": "WA"},
        "AWS::IoT::Certificate::Id": {"Type": "String"},
    },
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "ThingName": {"Ref": "ThingName"},
                "AttributePayload": {"version": "v1", "serialNumber": {"Ref": "SerialNumber"}},
                "ThingTypeName": "lightBulb-versionA",
                "ThingGroups": ["v1-lightbulbs", {"Ref": "Location"}],
            },
            "OverrideSettings": {"AttributePayload": "MERGE", "ThingTypeName": "REPLACE", "ThingGroups": "DO_NOTHING"},
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"},
        },
        "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": POLICY_TEXT}},
    },
    "DeviceConfiguration": {
        "FallbackUrl": "https://www.example.com/test-site",
        "LocationUrl": {"Fn::Join": ["", ["https://example.aws/", {"Ref": "SerialNumber"}]]},
    },
}

# The developer guide's JITP template: everything comes from the device certificate.
JITP = {
    "Parameters": {
        "AWS::IoT::Certificate::CommonName": {"Type": "String"},
        "AWS::IoT::Certificate::SerialNumber": {"Type": "String"},
        "AWS::IoT::Certificate::Country": {"Type": "String"},
        "AWS::IoT::Certificate::Id": {"Type": "String"},
    },
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"},
                "AttributePayload": {"version": "v1", "serialNumber": {"Ref": "AWS::IoT::Certificate::SerialNumber"}},
                "ThingTypeName": "lightBulb-versionA",
                "ThingGroups": ["v1-lightbulbs", {"Ref": "AWS::IoT::Certificate::Country"}],
            },
            "OverrideSettings": {"AttributePayload": "REPLACE", "ThingTypeName": "REPLACE", "ThingGroups": "DO_NOTHING"},
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"},
        },
        "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": POLICY_TEXT}},
    },
}

JITP_CERT = {
    "AWS::IoT::Certificate::CommonName": "bulb-7",
    "AWS::IoT::Certificate::SerialNumber": "3A:5F",
    "AWS::IoT::Certificate::Country": "US",
    "AWS::IoT::Certificate::Id": CERT_ID,
}


def thing_template(thing_props, parameters=None, **sections):
    body = {"Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": thing_props}}}
    if parameters is not None:
        body["Parameters"] = parameters
    body.update(sections)
    return json.dumps(body)


def thing_name(body, params=None, **kwargs):
    return evaluate(body, params or {}, **kwargs).thing.thing_name


# documentation examples --------------------------------------------------------
def test_fleet_provisioning_example():
    plan = evaluate(json.dumps(FLEET), {"ThingName": "bulb-1", "SerialNumber": "123", "AWS::IoT::Certificate::Id": CERT_ID})
    thing = plan.thing
    assert thing.logical_id == "thing"
    assert thing.thing_name == "bulb-1"
    assert thing.attributes == {"version": "v1", "serialNumber": "123"}
    assert thing.thing_type_name == "lightBulb-versionA"
    assert thing.thing_groups == ["v1-lightbulbs", "WA"]  # Location's default
    assert thing.override("AttributePayload") == "MERGE"
    assert thing.override("ThingGroups") == "DO_NOTHING"
    assert plan.certificate.certificate_id == CERT_ID
    assert plan.certificate.status == "ACTIVE"
    (policy,) = plan.policies
    assert policy.policy_document == POLICY_TEXT
    assert policy.named is False
    assert plan.device_configuration == {
        "FallbackUrl": "https://www.example.com/test-site",
        "LocationUrl": "https://example.aws/123",
    }
    assert plan.parameters["Location"] == "WA"
    assert [r.logical_id for r in plan.resources] == ["thing", "certificate", "policy"]


def test_jitp_example_takes_everything_from_the_certificate():
    plan = evaluate(json.dumps(JITP), JITP_CERT)
    assert plan.thing.thing_name == "bulb-7"
    assert plan.thing.attributes == {"version": "v1", "serialNumber": "3A:5F"}
    assert plan.thing.thing_groups == ["v1-lightbulbs", "US"]
    assert plan.thing.override("AttributePayload") == "REPLACE"
    assert plan.certificate.certificate_id == CERT_ID


def test_guide_fleet_example_with_mappings_object_policy_and_undeclared_certificate_id():
    body = {
        "Parameters": {"SerialNumber": {"Type": "String"}, "DeviceLocation": {"Type": "String"}},
        "Mappings": {"LocationTable": {"Seattle": {"LocationUrl": "https://example.aws"}}},
        "Resources": {
            "thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {
                    "ThingName": {"Fn::Join": ["", ["ThingPrefix_", {"Ref": "SerialNumber"}]]},
                    "AttributePayload": {"version": "v1", "serialNumber": "serialNumber"},
                    "BillingGroup": "LightBulbBillingGroup",
                },
            },
            # The guide references AWS::IoT::Certificate::Id without declaring it, with "Active".
            "certificate": {
                "Type": "AWS::IoT::Certificate",
                "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"},
            },
            "policy": {
                "Type": "AWS::IoT::Policy",
                "Properties": {"PolicyDocument": {"Version": "2012-10-17", "Statement": []}},
            },
        },
        "DeviceConfiguration": {
            "LocationUrl": {"Fn::FindInMap": ["LocationTable", {"Ref": "DeviceLocation"}, "LocationUrl"]},
        },
    }
    plan = evaluate(json.dumps(body), {"SerialNumber": "9", "DeviceLocation": "Seattle", "AWS::IoT::Certificate::Id": CERT_ID})
    assert plan.thing.thing_name == "ThingPrefix_9"
    assert plan.thing.billing_group == "LightBulbBillingGroup"
    assert plan.certificate.status == "ACTIVE"
    assert json.loads(plan.policies[0].policy_document) == {"Version": "2012-10-17", "Statement": []}
    assert plan.device_configuration == {"LocationUrl": "https://example.aws"}


# policies ----------------------------------------------------------------------
def test_policy_named_after_document_hash():
    plan = evaluate(json.dumps(JITP), JITP_CERT)
    (policy,) = plan.policies
    assert policy.policy_name == policy_name_for(POLICY_TEXT)
    assert len(policy.policy_name) == 40 and policy.policy_name == policy.policy_name.upper()


def test_existing_policy_by_name():
    body = json.dumps({"Resources": {"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "Shared"}}}})
    (policy,) = evaluate(body, {}).policies
    assert (policy.policy_name, policy.policy_document, policy.named) == ("Shared", None, True)


# intrinsic functions -------------------------------------------------------------
@pytest.mark.parametrize("expr,params,expected", [
    ({"Fn::Join": ["-", ["a", {"Ref": "P"}, "c"]]}, {"P": "b"}, "a-b-c"),
    ({"Fn::Join": ["", ["x", "y"]]}, {}, "xy"),
    ({"Fn::Select": ["1", {"Fn::Split": [",", {"Ref": "P"}]}]}, {"P": "a,b,c"}, "b"),
    ({"Fn::Select": [0, ["first", "second"]]}, {}, "first"),
    ({"Fn::Sub": "dev-${P}"}, {"P": "7"}, "dev-7"),
    ({"Fn::Sub": ["${Prefix}-${P}", {"Prefix": "pre"}]}, {"P": "7"}, "pre-7"),
    ({"Fn::Sub": "${AWS::Region}-${P}"}, {"P": "1"}, "eu-west-1-1"),
    ({"Fn::Sub": "literal-${!P}"}, {"P": "1"}, "literal-${P}"),
    ({"Fn::FindInMap": ["Names", {"Ref": "P"}, "name"]}, {"P": "k"}, "mapped"),
    ({"Fn::If": ["IsProd", "prod-thing", "test-thing"]}, {"P": "prod"}, "prod-thing"),
    ({"Fn::If": ["IsProd", "prod-thing", "test-thing"]}, {"P": "dev"}, "test-thing"),
    ({"Fn::Join": ["_", {"Fn::Split": [":", {"Ref": "P"}]}]}, {"P": "a:b"}, "a_b"),
])
def test_intrinsic_functions(expr, params, expected):
    body = thing_template(
        {"ThingName": expr},
        {"P": {"Type": "String"}},
        Mappings={"Names": {"k": {"name": "mapped"}}},
        Conditions={"IsProd": {"Fn::Equals": [{"Ref": "P"}, "prod"]}},
    )
    assert thing_name(body, params, region="eu-west-1") == expected


@pytest.mark.parametrize("env,tier,expected", [
    ("prod", "gold", ["all", "prod-gold"]),
    ("prod", "silver", ["all"]),
    ("test", "gold", ["all", "not-prod", "gold-or-test"]),
    ("dev", "bronze", ["all", "not-prod"]),
])
def test_conditions_and_or_not_and_nested_conditions(env, tier, expected):
    body = thing_template(
        {
            "ThingName": "t",
            "ThingGroups": [
                "all",
                {"Fn::If": ["ProdGold", "prod-gold", {"Ref": "AWS::NoValue"}]},
                {"Fn::If": ["NotProd", "not-prod", {"Ref": "AWS::NoValue"}]},
                {"Fn::If": ["GoldOrTest", "gold-or-test", {"Ref": "AWS::NoValue"}]},
            ],
        },
        {"Env": {"Type": "String"}, "Tier": {"Type": "String"}},
        Conditions={
            "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
            "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
            "ProdGold": {"Fn::And": [{"Condition": "IsProd"}, {"Fn::Equals": ["gold", {"Ref": "Tier"}]}]},
            "GoldOrTest": {"Fn::And": [
                {"Condition": "NotProd"},
                {"Fn::Or": [{"Fn::Equals": [{"Ref": "Tier"}, "gold"]}, {"Fn::Equals": [{"Ref": "Env"}, "test"]}]},
            ]},
        },
    )
    assert evaluate(body, {"Env": env, "Tier": tier}).thing.thing_groups == expected


def test_resource_condition_skips_resource():
    body = json.dumps({
        "Parameters": {"WithPolicy": {"Type": "String", "Default": "no"}},
        "Conditions": {"Attach": {"Fn::Equals": [{"Ref": "WithPolicy"}, "yes"]}},
        "Resources": {
            "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "t"}},
            "policy": {"Type": "AWS::IoT::Policy", "Condition": "Attach", "Properties": {"PolicyName": "p"}},
        },
    })
    assert evaluate(body, {}).policies == []
    assert [p.policy_name for p in evaluate(body, {"WithPolicy": "yes"}).policies] == ["p"]


def test_no_value_removes_an_optional_property():
    body = thing_template(
        {"ThingName": "t", "ThingTypeName": {"Fn::If": ["Typed", {"Ref": "Type"}, {"Ref": "AWS::NoValue"}]}},
        {"Type": {"Type": "String", "Default": ""}},
        Conditions={"Typed": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Type"}, ""]}]}},
    )
    assert evaluate(body, {}).thing.thing_type_name is None
    assert evaluate(body, {"Type": "sensor"}).thing.thing_type_name == "sensor"


# parameters --------------------------------------------------------------------
def test_defaults_apply_and_given_values_win():
    body = thing_template({"ThingName": {"Ref": "Name"}}, {"Name": {"Type": "String", "Default": "fallback"}})
    assert thing_name(body) == "fallback"
    assert thing_name(body, {"Name": "given"}) == "given"


def test_missing_required_parameter_is_named():
    with pytest.raises(EvaluationError, match="parameter 'SerialNumber' is required"):
        evaluate(json.dumps(FLEET), {"ThingName": "x", "AWS::IoT::Certificate::Id": CERT_ID})


def test_missing_certificate_parameter_is_named():
    params = dict(JITP_CERT)
    del params["AWS::IoT::Certificate::CommonName"]
    with pytest.raises(EvaluationError, match="AWS::IoT::Certificate::CommonName"):
        evaluate(json.dumps(JITP), params)


def test_unused_branch_does_not_need_its_parameter():
    body = thing_template(
        {"ThingName": {"Fn::If": ["UseSerial", {"Ref": "Serial"}, "fixed-name"]}},
        {"Serial": {"Type": "String"}, "Mode": {"Type": "String", "Default": "fixed"}},
        Conditions={"UseSerial": {"Fn::Equals": [{"Ref": "Mode"}, "serial"]}},
    )
    assert thing_name(body) == "fixed-name"
    with pytest.raises(EvaluationError, match="'Serial'"):
        evaluate(body, {"Mode": "serial"})


@pytest.mark.parametrize("decl,value,ok", [
    ({"Type": "Number"}, "42", True),
    ({"Type": "Number"}, "forty-two", False),
    ({"Type": "String", "AllowedValues": ["a", "b"]}, "b", True),
    ({"Type": "String", "AllowedValues": ["a", "b"]}, "c", False),
    ({"Type": "String", "AllowedPattern": "[A-Z]+"}, "ABC", True),
    ({"Type": "String", "AllowedPattern": "[A-Z]+"}, "abc", False),
    ({"Type": "String", "MaxLength": 3}, "abcd", False),
    ({"Type": "Number", "MinValue": 10}, "9", False),
])
def test_parameter_types_and_constraints(decl, value, ok):
    body = thing_template({"ThingName": {"Fn::Join": ["-", ["t", {"Ref": "P"}]]}}, {"P": decl})
    if ok:
        assert thing_name(body, {"P": value}) == f"t-{value}"
    else:
        with pytest.raises(EvaluationError, match="Parameter 'P'"):
            evaluate(body, {"P": value})


def test_comma_delimited_list_parameter_feeds_thing_groups():
    body = thing_template({"ThingName": "t", "ThingGroups": {"Ref": "Groups"}}, {"Groups": {"Type": "CommaDelimitedList"}})
    assert evaluate(body, {"Groups": "a,b"}).thing.thing_groups == ["a", "b"]


def test_attribute_payload_accepts_api_nesting_and_numbers():
    body = thing_template({"ThingName": "t", "AttributePayload": {"attributes": {"n": 5, "s": "x"}}})
    assert evaluate(body, {}).thing.attributes == {"n": "5", "s": "x"}


# bad templates -----------------------------------------------------------------
@pytest.mark.parametrize("body,fragment", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (json.dumps({"Parameters": {}}), "no Resources section"),
    (json.dumps({"Resources": {}}), "at least one resource"),
    (json.dumps({"Resource": {}}), "Unknown template section 'Resource'"),
    (json.dumps({"Resources": {"x": {"Type": "AWS::IoT::Widget", "Properties": {}}}}), "unsupported resource type 'AWS::IoT::Widget'"),
    (json.dumps({"Resources": {"x": {"Type": "AWS::S3::Bucket"}}}), "Resources.x.Type"),
    (json.dumps({"Resources": {"x": {"Properties": {}}}}), "Resources.x.Type: is required"),
    (thing_template({"ThingName": {"Ref": "Nope"}}), "Ref to undefined parameter 'Nope'"),
    (thing_template({"ThingName": {"Fn::GetAtt": ["a", "b"]}}), "unsupported intrinsic function 'Fn::GetAtt'"),
    (thing_template({"ThingName": {"Fn::Base64": "x"}}), "unsupported intrinsic function"),
    (thing_template({"ThingName": {"Fn::If": ["Nope", "a", "b"]}}), "undefined condition 'Nope'"),
    (thing_template({"ThingName": {"Fn::Sub": "${Missing}"}}), "undefined parameter 'Missing'"),
    (thing_template({"ThingName": {"Fn::Join": ["-"]}}), "Fn::Join takes a list of 2 arguments"),
    (thing_template({"ThingName": {"Fn::FindInMap": ["NoMap", "a", "b"]}}), "undefined mapping 'NoMap'"),
    (thing_template({"ThingName": {"Ref": "AWS::Bogus"}}), "unknown pseudo parameter"),
    (thing_template({"ThingName": "t", "Color": "red"}), "unknown AWS::IoT::Thing property 'Color'"),
    (thing_template({"AttributePayload": {}}), "needs a ThingName"),
    (thing_template({"ThingName": "t"}, {"P": {"Type": "Widget"}}), "unsupported parameter type 'Widget'"),
    (thing_template({"ThingName": "t"}, {"P": {"Default": "x"}}), "Parameters.P.Type: is required"),
    (thing_template({"ThingName": "t"}, {"P": {"Type": "Number", "Default": "abc"}}), "Parameters.P.Default"),
    (thing_template({"ThingName": "t"}, Conditions={"A": {"Condition": "B"}, "B": {"Condition": "A"}}), "circular condition"),
    (thing_template({"ThingName": "t"}, Conditions={"A": {"Ref": "X"}}), "a condition must be"),
    (thing_template({"ThingName": "t"}, Mappings={"M": {"k": {"v": {"Ref": "P"}}}}), "not allowed in the Mappings"),
    (json.dumps({"Resources": {"c": {"Type": "AWS::IoT::Certificate", "Properties": {"Status": "ACTIVE"}}}}), "exactly one of"),
    (json.dumps({"Resources": {"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "abc"}}}}), "not a certificate ID"),
    (json.dumps({"Resources": {"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": CERT_ID, "Status": "REVOKED"}}}}), "must be ACTIVE or INACTIVE"),
    (json.dumps({"Resources": {"p": {"Type": "AWS::IoT::Policy", "Properties": {}}}}), "PolicyName or a PolicyDocument"),
    (json.dumps({"Resources": {"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": "{oops"}}}}), "PolicyDocument is not valid JSON"),
    (json.dumps({"Resources": {"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "p"}, "OverrideSettings": {}}}}), "not available for AWS::IoT::Policy"),
    (json.dumps({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "t"}, "OverrideSettings": {"ThingTypeName": "MERGE"}}}}), "invalid override 'MERGE'"),
    (json.dumps({"Resources": {"a": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "a"}},
                               "b": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "b"}}}}), "only one AWS::IoT::Thing"),
])
def test_invalid_templates(body, fragment):
    with pytest.raises(TemplateError) as info:
        validate_template(body)
    assert isinstance(info.value, ValueError)
    assert fragment in str(info.value)


def test_error_message_says_where():
    with pytest.raises(TemplateError) as info:
        validate_template(thing_template({"ThingName": "t", "AttributePayload": {"a": {"Ref": "Nope"}}}))
    assert str(info.value).startswith("Resources.thing.Properties.AttributePayload.a.Ref")


# evaluation errors -------------------------------------------------------------
@pytest.mark.parametrize("expr,params,fragment", [
    ({"Fn::Select": ["5", {"Fn::Split": [",", {"Ref": "P"}]}]}, {"P": "a,b"}, "out of bounds"),
    ({"Fn::FindInMap": ["Names", {"Ref": "P"}, "name"]}, {"P": "absent"}, "has no key 'absent'"),
    ({"Fn::Join": ["-", {"Ref": "P"}]}, {"P": "not-a-list"}, "expected a list"),
])
def test_evaluation_errors(expr, params, fragment):
    body = thing_template({"ThingName": expr}, {"P": {"Type": "String"}}, Mappings={"Names": {"k": {"name": "v"}}})
    with pytest.raises(EvaluationError, match=fragment):
        evaluate(body, params)


def test_evaluate_accepts_a_parsed_template_and_is_repeatable():
    parsed = validate_template(json.dumps(JITP))
    first = evaluate(parsed, JITP_CERT)
    other = dict(JITP_CERT, **{"AWS::IoT::Certificate::CommonName": "bulb-8"})
    second = evaluate(parsed, other)
    assert (first.thing.thing_name, second.thing.thing_name) == ("bulb-7", "bulb-8")
    assert "AWS::IoT::Certificate::CommonName" in parsed.referenced_parameters
