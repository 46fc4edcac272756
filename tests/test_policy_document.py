"""Policy document grammar: pure unit tests of localiot.policy.document."""

import json

import pytest

from localiot.policy import PolicyError, parse_policy
from localiot.policy.document import MAX_SIZE, size_of, split_operator


def text(statements, version="2012-10-17", **extra):
    body = {"Statement": statements, **extra}
    if version is not None:
        body = {"Version": version, **body}
    return json.dumps(body)


ALLOW_ALL = {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}


def test_single_statement_object():
    doc = parse_policy(text(ALLOW_ALL))
    assert doc.version == "2012-10-17"
    assert doc.variables_enabled
    assert len(doc.statements) == 1
    statement = doc.statements[0]
    assert statement.effect == "Allow"
    assert statement.actions == ("iot:*",)
    assert statement.resources == ("*",)
    assert not statement.not_action and not statement.not_resource


def test_statement_list_and_every_element():
    doc = parse_policy(text([
        {"Sid": "one", "Effect": "Deny", "NotAction": ["iot:Connect", "iot:Publish"],
         "NotResource": ["arn:aws:iot:us-east-1:123456789012:topic/a", "arn:aws:iot:*:*:client/*"],
         "Condition": {"ForAnyValue:StringLikeIfExists": {"iot:ClientId": ["a*", "b"]},
                       "Bool": {"iot:Connection.Thing.IsAttached": True},
                       "NumericLessThan": {"aws:EpochTime": 10}}},
        ALLOW_ALL,
    ], Id="my-policy"))
    assert doc.id == "my-policy"
    first = doc.statements[0]
    assert first.sid == "one" and first.effect == "Deny"
    assert first.not_action and first.not_resource
    assert first.actions == ("iot:Connect", "iot:Publish")
    conditions = {c.operator: c for c in first.conditions}
    like = conditions["StringLike"]
    assert like.qualifier == "ForAnyValue" and like.if_exists and like.values == ("a*", "b")
    assert like.label == "ForAnyValue:StringLikeIfExists"
    assert conditions["Bool"].values == ("true",)
    assert conditions["NumericLessThan"].values == ("10",)


@pytest.mark.parametrize("version,enabled", [("2012-10-17", True), ("2008-10-17", False), (None, False)])
def test_versions(version, enabled):
    assert parse_policy(text(ALLOW_ALL, version=version)).variables_enabled is enabled


def test_accepts_a_loaded_dict():
    assert parse_policy({"Version": "2012-10-17", "Statement": ALLOW_ALL}).statements[0].effect == "Allow"


@pytest.mark.parametrize("source,fragment", [
    ("{", "not valid JSON"),
    ('{"Version": "2012-10-17", "Statement": NaN}', "not valid JSON"),
    ('"just a string"', "JSON object"),
    (text(ALLOW_ALL, version="2020-01-01"), "invalid Version"),
    (text(ALLOW_ALL, Extra=1), "unsupported element: Extra"),
    (json.dumps({"Version": "2012-10-17"}), "missing the required element Statement"),
    (text("nope"), "object or a list"),
    (text([]), "at least one statement"),
    (text(["nope"]), "must be a JSON object"),
    (text({**ALLOW_ALL, "Sid": 3}), "Sid must be a string"),
    (text({**ALLOW_ALL, "Effect": "allow"}), "Effect must be"),
    (text({"Action": "iot:*", "Resource": "*"}), "Effect"),
    (text({"Effect": "Allow", "Resource": "*"}), "Action (or NotAction)"),
    (text({"Effect": "Allow", "Action": "iot:*"}), "Resource (or NotResource)"),
    (text({**ALLOW_ALL, "NotAction": "iot:Publish"}), "both Action and NotAction"),
    (text({**ALLOW_ALL, "NotResource": "*"}), "both Resource and NotResource"),
    (text({**ALLOW_ALL, "Action": []}), "must not be empty"),
    (text({**ALLOW_ALL, "Action": [""]}), "empty string"),
    (text({**ALLOW_ALL, "Action": 5}), "string or a list of strings"),
    (text({**ALLOW_ALL, "Action": "Publish"}), "invalid action"),
    (text({**ALLOW_ALL, "Action": "iot:"}), "invalid action"),
    (text({**ALLOW_ALL, "Action": "*:Publish"}), "invalid action"),
    (text({**ALLOW_ALL, "Resource": "topic/a"}), "must be \"*\" or an ARN"),
    (text({**ALLOW_ALL, "Resource": "arn:aws:iot"}), "must be \"*\" or an ARN"),
    (text({**ALLOW_ALL, "Resource": ["*", 1]}), "string or a list of strings"),
    (text({**ALLOW_ALL, "Principal": {"AWS": "*"}}), "Principal"),
    (text({**ALLOW_ALL, "NotPrincipal": "*"}), "NotPrincipal"),
    (text({**ALLOW_ALL, "Unknown": "*"}), "unsupported element: Unknown"),
    (text({**ALLOW_ALL, "Condition": "x"}), "Condition must be a JSON object"),
    (text({**ALLOW_ALL, "Condition": {"StringMaybe": {"k": "v"}}}), "unknown condition operator"),
    (text({**ALLOW_ALL, "Condition": {"ForSomeValues:StringEquals": {"k": "v"}}}), "unknown condition operator"),
    (text({**ALLOW_ALL, "Condition": {"NullIfExists": {"k": "true"}}}), "unknown condition operator"),
    (text({**ALLOW_ALL, "Condition": {"StringEquals": {}}}), "must map condition keys"),
    (text({**ALLOW_ALL, "Condition": {"StringEquals": "v"}}), "must map condition keys"),
    (text({**ALLOW_ALL, "Condition": {"StringEquals": {"k": None}}}), "must be a string, number, boolean"),
    (text({**ALLOW_ALL, "Condition": {"StringEquals": {"k": []}}}), "non-empty list"),
    (text({**ALLOW_ALL, "Condition": {"StringEquals": {"k": {"a": 1}}}}), "must be a string"),
    (text({**ALLOW_ALL, "Condition": {"Null": {"k": "maybe"}}}), "Null condition operator"),
    ("", "must not be empty"),
    (" \n ", "must not be empty"),
])
def test_malformed(source, fragment):
    with pytest.raises(PolicyError) as info:
        parse_policy(source)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_size_excludes_whitespace():
    assert size_of(' { "a" :\n\t1 } ') == 7
    resource = "arn:aws:iot:us-east-1:123456789012:topic/"
    base = text({"Effect": "Allow", "Action": "iot:*", "Resource": resource})
    padded = text({"Effect": "Allow", "Action": "iot:*", "Resource": resource + "x" * (MAX_SIZE - size_of(base))})
    assert size_of(padded) == MAX_SIZE
    parse_policy(padded)
    parse_policy(json.dumps(json.loads(padded), indent=20))
    over = text({"Effect": "Allow", "Action": "iot:*", "Resource": resource + "x" * (MAX_SIZE + 1 - size_of(base))})
    with pytest.raises(PolicyError, match="exceeds the maximum of 2048"):
        parse_policy(over)


@pytest.mark.parametrize("name,expected", [
    ("StringEquals", (None, "StringEquals", False)),
    ("stringequals", (None, "StringEquals", False)),
    ("StringLikeIfExists", (None, "StringLike", True)),
    ("ForAllValues:StringLike", ("ForAllValues", "StringLike", False)),
    ("ForAnyValue:IpAddressIfExists", ("ForAnyValue", "IpAddress", True)),
    ("Null", (None, "Null", False)),
    ("ArnNotLike", (None, "ArnNotLike", False)),
    ("DateGreaterThanEquals", (None, "DateGreaterThanEquals", False)),
    ("NumericNotEqualsIfExists", (None, "NumericNotEquals", True)),
    ("BinaryEquals", (None, "BinaryEquals", False)),
    ("StringSorta", None),
    ("Bogus:StringEquals", None),
])
def test_split_operator(name, expected):
    assert split_operator(name) == expected


def test_policy_variables_and_wildcards_are_grammatical():
    doc = parse_policy(text({
        "Effect": "Allow", "Action": ["iot:Pub*", "iot:?eceive", "greengrass:*", "*"],
        "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/${*}/${?}/${$}",
                     "arn:aws:iot:*:*:topicfilter/a/+/#", "arn:aws:iot:us-east-1:1:topic/${unterminated"],
    }))
    assert len(doc.statements[0].resources) == 3
