"""IoT policies, versions and attachments through boto3 against the real server."""

import hashlib
import json
import re
import time
from datetime import datetime, timezone
from functools import lru_cache

import pytest
from botocore.exceptions import ClientError

from localiot.testing import ACCOUNT, REGION, error_message, error_of

COGNITO_ID = "us-east-1:1234abcd-12ab-34cd-56ef-1234567890ab"
MARKER = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


def doc(*statements, version="2012-10-17"):
    return json.dumps({"Version": version, "Statement": list(statements) or [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}
    ]})


def allow(action="iot:Publish", resource="*"):
    return {"Effect": "Allow", "Action": action, "Resource": resource}


@lru_cache(maxsize=None)
def certificate(common_name: str = "dev-cn"):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=timezone.utc))
        .not_valid_after(datetime(2050, 1, 1, tzinfo=timezone.utc))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return cert.public_bytes(serialization.Encoding.PEM).decode(), hashlib.sha256(der).hexdigest()


def insert_cert(server, common_name="dev-cn"):
    """A "cert" document written straight into the store (independent of the certificates family)."""
    pem, cert_id = certificate(common_name)
    arn = f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{cert_id}"

    def put():
        with server.app.store.transaction(ACCOUNT, REGION) as tx:
            tx.put("cert", cert_id, {
                "certificateId": cert_id, "certificateArn": arn, "certificatePem": pem,
                "status": "ACTIVE", "creationDate": time.time(),
            })

    server.call(put)
    return arn


@pytest.fixture
def cert(localiot_server):
    return insert_cert(localiot_server)


# create / get / delete -----------------------------------------------------------
def test_create_and_get_policy(iot):
    text = doc(allow())
    out = iot.create_policy(policyName="p1", policyDocument=text)
    assert out["policyName"] == "p1"
    assert out["policyArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:policy/p1"
    assert out["policyDocument"] == text
    assert out["policyVersionId"] == "1"
    got = iot.get_policy(policyName="p1")
    assert got["policyDocument"] == text
    assert got["defaultVersionId"] == "1"
    assert got["policyArn"] == out["policyArn"]
    assert isinstance(got["creationDate"], datetime)
    assert isinstance(got["lastModifiedDate"], datetime)
    assert got["generationId"]


def test_create_duplicate_policy(iot):
    iot.create_policy(policyName="p1", policyDocument=doc())
    with pytest.raises(ClientError) as info:
        iot.create_policy(policyName="p1", policyDocument=doc())
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)
    assert info.value.response["resourceArn"].endswith(":policy/p1")


@pytest.mark.parametrize("text,fragment", [
    ("not json", "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"Version": "2012-10-17"}', "Statement"),
    ('{"Version": "2011-01-01", "Statement": []}', "Version"),
    ('{"Version": "2012-10-17", "Statement": []}', "at least one statement"),
    (json.dumps({"Version": "2012-10-17", "Statement": {"Effect": "Maybe", "Action": "iot:*", "Resource": "*"}}), "Effect"),
    (json.dumps({"Version": "2012-10-17", "Statement": {"Action": "iot:*", "Resource": "*"}}), "Effect"),
    (json.dumps({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Resource": "*"}}), "Action"),
    (json.dumps({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*"}}), "Resource"),
    (json.dumps({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "NotAction": "x:y",
                                                        "Resource": "*"}}), "both Action and NotAction"),
    (json.dumps({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "publish", "Resource": "*"}}), "invalid action"),
    (json.dumps({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "topic/a"}}), "ARN"),
    (json.dumps({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": [],
                                                        }}), "must not be empty"),
    (json.dumps({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*",
                                                        "Principal": "*"}}), "Principal"),
    (json.dumps({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*",
                                                        "Condition": {"StringSorta": {"iot:ClientId": "a"}}}}), "unknown condition operator"),
    ("", "must not be empty"),
    ("   \n\t ", "must not be empty"),
])
def test_malformed_policy(iot, text, fragment):
    with pytest.raises(ClientError) as info:
        iot.create_policy(policyName="bad", policyDocument=text)
    assert error_of(info) == ("MalformedPolicyException", 400)
    assert fragment in error_message(info)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.get_policy(policyName="bad")


def test_policy_size_limit_excludes_whitespace(iot):
    def sized(n):
        base = doc(allow(resource="arn:aws:iot:us-east-1:123456789012:topic/"))
        pad = n - len(re.sub(r"\s", "", base))
        return doc(allow(resource="arn:aws:iot:us-east-1:123456789012:topic/" + "x" * pad))

    exactly = sized(2048)
    iot.create_policy(policyName="max", policyDocument=exactly)
    with pytest.raises(ClientError) as info:
        iot.create_policy(policyName="over", policyDocument=sized(2049))
    assert error_of(info) == ("MalformedPolicyException", 400)
    assert "2048" in error_message(info)
    spaced = json.dumps(json.loads(exactly), indent=8)  # far more than 2048 characters with whitespace
    assert len(spaced) > 2048
    iot.create_policy(policyName="spaced", policyDocument=spaced)


def test_create_policy_with_tags(iot):
    arn = iot.create_policy(policyName="p", policyDocument=doc(), tags=[{"Key": "env", "Value": "dev"}])["policyArn"]
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "env", "Value": "dev"}]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "team", "Value": "a"}])
    assert len(iot.list_tags_for_resource(resourceArn=arn)["tags"]) == 2
    iot.delete_policy(policyName="p")
    iot.create_policy(policyName="p", policyDocument=doc())
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == []


def test_missing_policy(iot):
    for call in (
        lambda: iot.get_policy(policyName="ghost"),
        lambda: iot.delete_policy(policyName="ghost"),
        lambda: iot.list_policy_versions(policyName="ghost"),
        lambda: iot.get_policy_version(policyName="ghost", policyVersionId="1"),
        lambda: iot.create_policy_version(policyName="ghost", policyDocument=doc()),
        lambda: iot.list_targets_for_policy(policyName="ghost"),
        lambda: iot.attach_policy(policyName="ghost", target=COGNITO_ID),
        lambda: iot.detach_policy(policyName="ghost", target=COGNITO_ID),
        lambda: iot.list_policy_principals(policyName="ghost"),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert error_of(info) == ("ResourceNotFoundException", 404)


def test_delete_policy(iot):
    iot.create_policy(policyName="p", policyDocument=doc())
    iot.delete_policy(policyName="p")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.get_policy(policyName="p")
    assert iot.list_policies()["policies"] == []


def test_delete_policy_with_versions_conflicts(iot):
    iot.create_policy(policyName="p", policyDocument=doc())
    iot.create_policy_version(policyName="p", policyDocument=doc(allow()))
    with pytest.raises(ClientError) as info:
        iot.delete_policy(policyName="p")
    assert error_of(info) == ("DeleteConflictException", 409)
    iot.delete_policy_version(policyName="p", policyVersionId="2")
    iot.delete_policy(policyName="p")


def test_delete_attached_policy_conflicts(iot, cert):
    iot.create_policy(policyName="p", policyDocument=doc())
    iot.attach_policy(policyName="p", target=cert)
    with pytest.raises(ClientError) as info:
        iot.delete_policy(policyName="p")
    assert error_of(info) == ("DeleteConflictException", 409)
    assert "attached" in error_message(info)
    iot.detach_policy(policyName="p", target=cert)
    iot.delete_policy(policyName="p")


def test_delete_policy_ignores_attachments_to_deleted_thing_groups(iot):
    iot.create_policy(policyName="p", policyDocument=doc())
    group_arn = iot.create_thing_group(thingGroupName="g")["thingGroupArn"]
    iot.attach_policy(policyName="p", target=group_arn)
    iot.delete_thing_group(thingGroupName="g")
    assert iot.list_targets_for_policy(policyName="p")["targets"] == []
    iot.delete_policy(policyName="p")


# versions ------------------------------------------------------------------------
def test_policy_versions(iot):
    v1, v2, v3 = doc(allow("iot:Connect")), doc(allow("iot:Publish")), doc(allow("iot:Subscribe"))
    iot.create_policy(policyName="p", policyDocument=v1)
    generation = iot.get_policy(policyName="p")["generationId"]
    out = iot.create_policy_version(policyName="p", policyDocument=v2)
    assert out["policyVersionId"] == "2"
    assert out["isDefaultVersion"] is False
    assert out["policyArn"].endswith(":policy/p")
    assert iot.get_policy(policyName="p")["policyDocument"] == v1
    out = iot.create_policy_version(policyName="p", policyDocument=v3, setAsDefault=True)
    assert out == {**out, "policyVersionId": "3", "isDefaultVersion": True, "policyDocument": v3}
    got = iot.get_policy(policyName="p")
    assert got["policyDocument"] == v3
    assert got["defaultVersionId"] == "3"
    assert got["generationId"] != generation

    versions = iot.list_policy_versions(policyName="p")["policyVersions"]
    assert sorted((v["versionId"], v["isDefaultVersion"]) for v in versions) == [("1", False), ("2", False), ("3", True)]
    assert all(isinstance(v["createDate"], datetime) for v in versions)

    version = iot.get_policy_version(policyName="p", policyVersionId="2")
    assert version["policyDocument"] == v2
    assert version["isDefaultVersion"] is False
    assert version["policyName"] == "p"
    assert version["policyVersionId"] == "2"
    assert isinstance(version["creationDate"], datetime)
    assert version["generationId"]

    iot.set_default_policy_version(policyName="p", policyVersionId="1")
    assert iot.get_policy(policyName="p")["policyDocument"] == v1
    assert iot.get_policy_version(policyName="p", policyVersionId="1")["isDefaultVersion"] is True
    assert iot.get_policy_version(policyName="p", policyVersionId="3")["isDefaultVersion"] is False


def test_version_limit_and_ids_not_reused(iot):
    iot.create_policy(policyName="p", policyDocument=doc())
    for expected in ("2", "3", "4", "5"):
        assert iot.create_policy_version(policyName="p", policyDocument=doc())["policyVersionId"] == expected
    with pytest.raises(ClientError) as info:
        iot.create_policy_version(policyName="p", policyDocument=doc())
    assert error_of(info) == ("VersionsLimitExceededException", 409)
    iot.delete_policy_version(policyName="p", policyVersionId="3")
    assert iot.create_policy_version(policyName="p", policyDocument=doc())["policyVersionId"] == "6"
    ids = sorted(int(v["versionId"]) for v in iot.list_policy_versions(policyName="p")["policyVersions"])
    assert ids == [1, 2, 4, 5, 6]


def test_version_errors(iot):
    iot.create_policy(policyName="p", policyDocument=doc())
    with pytest.raises(ClientError) as info:
        iot.delete_policy_version(policyName="p", policyVersionId="1")
    assert error_of(info) == ("DeleteConflictException", 409)
    for call in (
        lambda: iot.delete_policy_version(policyName="p", policyVersionId="9"),
        lambda: iot.get_policy_version(policyName="p", policyVersionId="9"),
        lambda: iot.set_default_policy_version(policyName="p", policyVersionId="9"),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.create_policy_version(policyName="p", policyDocument='{"Statement": "nope"}')
    assert error_of(info) == ("MalformedPolicyException", 400)
    assert len(iot.list_policy_versions(policyName="p")["policyVersions"]) == 1
    with pytest.raises(ClientError) as info:
        iot.get_policy_version(policyName="p", policyVersionId="x")
    assert error_of(info) == ("InvalidRequestException", 400)


# listing -------------------------------------------------------------------------
def test_list_policies_order_and_pagination(iot, localiot_server):
    names = ["c", "a", "e", "b", "d"]
    for name in names:
        iot.create_policy(policyName=name, policyDocument=doc())
        localiot_server.clock.advance(1)
    ascending = iot.list_policies(ascendingOrder=True)["policies"]
    assert [p["policyName"] for p in ascending] == names
    assert ascending[0]["policyArn"].endswith(":policy/c")
    # the documented creation order, ascending unless ascendingOrder=false
    assert [p["policyName"] for p in iot.list_policies()["policies"]] == names
    newest_first = iot.list_policies(ascendingOrder=False)["policies"]
    assert [p["policyName"] for p in newest_first] == names[::-1]

    seen, marker = [], None
    while True:
        kwargs = {"pageSize": 2, "ascendingOrder": True}
        if marker:
            kwargs["marker"] = marker
        out = iot.list_policies(**kwargs)
        seen.extend(p["policyName"] for p in out["policies"])
        marker = out.get("nextMarker")
        if not marker:
            break
        assert MARKER.match(marker)
        assert len(out["policies"]) == 2
    assert seen == names
    paginated = [p["policyName"] for page in iot.get_paginator("list_policies").paginate(PaginationConfig={"PageSize": 2})
                 for p in page["policies"]]
    assert paginated == names


def test_list_policies_bad_marker(iot):
    with pytest.raises(ClientError) as info:
        iot.list_policies(marker="AAAA")
    assert error_of(info) == ("InvalidRequestException", 400)


# attachments -----------------------------------------------------------------------
def test_attach_policy_to_certificate(iot, cert):
    iot.create_policy(policyName="p1", policyDocument=doc())
    iot.create_policy(policyName="p2", policyDocument=doc())
    iot.attach_policy(policyName="p1", target=cert)
    iot.attach_policy(policyName="p1", target=cert)  # idempotent
    iot.attach_policy(policyName="p2", target=cert)
    attached = iot.list_attached_policies(target=cert)["policies"]
    assert [p["policyName"] for p in attached] == ["p1", "p2"]
    assert attached[0]["policyArn"].endswith(":policy/p1")
    assert iot.list_targets_for_policy(policyName="p1")["targets"] == [cert]
    iot.detach_policy(policyName="p1", target=cert)
    iot.detach_policy(policyName="p1", target=cert)  # not attached any more: fine
    assert [p["policyName"] for p in iot.list_attached_policies(target=cert)["policies"]] == ["p2"]
    assert iot.list_targets_for_policy(policyName="p1")["targets"] == []


def test_attach_policy_errors(iot, cert):
    iot.create_policy(policyName="p", policyDocument=doc())
    missing_cert = f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/" + "0" * 64
    missing_group = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/nope"
    other_region = cert.replace(REGION, "eu-west-1")
    for target in (missing_cert, missing_group, other_region):
        with pytest.raises(ClientError) as info:
            iot.attach_policy(policyName="p", target=target)
        assert error_of(info) == ("ResourceNotFoundException", 404), target
    for target in ("not-a-target", f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/t1", "arn:aws:s3:::bucket"):
        with pytest.raises(ClientError) as info:
            iot.attach_policy(policyName="p", target=target)
        assert error_of(info) == ("InvalidRequestException", 400), target
    with pytest.raises(ClientError) as info:
        iot.list_attached_policies(target=missing_cert)
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.detach_policy(policyName="p", target=missing_cert)
    assert error_of(info) == ("ResourceNotFoundException", 404)


def test_attached_policies_limit(iot, cert):
    for i in range(11):
        iot.create_policy(policyName=f"p{i:02d}", policyDocument=doc())
    for i in range(10):
        iot.attach_policy(policyName=f"p{i:02d}", target=cert)
    with pytest.raises(ClientError) as info:
        iot.attach_policy(policyName="p10", target=cert)
    assert error_of(info) == ("LimitExceededException", 410)
    iot.attach_policy(policyName="p00", target=cert)  # already attached: not a new attachment
    iot.attach_policy(policyName="p10", target=COGNITO_ID)  # the limit is per target


def test_attach_to_cognito_identity_and_thing_group(iot):
    iot.create_policy(policyName="p", policyDocument=doc())
    root = iot.create_thing_group(thingGroupName="root")["thingGroupArn"]
    child = iot.create_thing_group(thingGroupName="child", parentGroupName="root")["thingGroupArn"]
    iot.create_policy(policyName="q", policyDocument=doc())
    iot.attach_policy(policyName="p", target=root)
    iot.attach_policy(policyName="q", target=child)
    iot.attach_policy(policyName="p", target=COGNITO_ID)
    assert sorted(iot.list_targets_for_policy(policyName="p")["targets"]) == sorted([root, COGNITO_ID])
    assert [p["policyName"] for p in iot.list_attached_policies(target=child)["policies"]] == ["q"]
    assert [p["policyName"] for p in iot.list_attached_policies(target=child, recursive=True)["policies"]] == ["p", "q"]
    assert [p["policyName"] for p in iot.list_attached_policies(target=root, recursive=True)["policies"]] == ["p"]
    assert [p["policyName"] for p in iot.list_attached_policies(target=COGNITO_ID)["policies"]] == ["p"]


def test_list_attached_policies_and_targets_pagination(iot):
    for i in range(5):
        iot.create_policy(policyName=f"p{i}", policyDocument=doc())
        iot.attach_policy(policyName=f"p{i}", target=COGNITO_ID)
    out = iot.list_attached_policies(target=COGNITO_ID, pageSize=2)
    assert [p["policyName"] for p in out["policies"]] == ["p0", "p1"]
    out = iot.list_attached_policies(target=COGNITO_ID, pageSize=2, marker=out["nextMarker"])
    assert [p["policyName"] for p in out["policies"]] == ["p2", "p3"]
    out = iot.list_attached_policies(target=COGNITO_ID, pageSize=2, marker=out["nextMarker"])
    assert [p["policyName"] for p in out["policies"]] == ["p4"]
    assert "nextMarker" not in out

    identities = [f"us-east-1:0000000{i}-aaaa-bbbb-cccc-dddddddddddd" for i in range(5)]
    for identity in identities:
        iot.attach_policy(policyName="p0", target=identity)
    targets = [t for page in iot.get_paginator("list_targets_for_policy").paginate(
        policyName="p0", PaginationConfig={"PageSize": 2}) for t in page["targets"]]
    assert targets == sorted(identities + [COGNITO_ID])


def test_deprecated_principal_policy_calls(iot, cert, localiot_server):
    iot.create_policy(policyName="old", policyDocument=doc())
    localiot_server.clock.advance(1)
    iot.create_policy(policyName="new", policyDocument=doc())
    iot.attach_principal_policy(policyName="old", principal=cert)
    iot.attach_principal_policy(policyName="new", principal=cert)
    assert [p["policyName"] for p in iot.list_principal_policies(principal=cert, ascendingOrder=True)["policies"]] == ["old", "new"]
    assert [p["policyName"] for p in iot.list_principal_policies(principal=cert)["policies"]] == ["old", "new"]
    assert [p["policyName"] for p in iot.list_principal_policies(principal=cert, ascendingOrder=False)["policies"]] == ["new", "old"]
    out = iot.list_principal_policies(principal=cert, ascendingOrder=True, pageSize=1)
    assert [p["policyName"] for p in out["policies"]] == ["old"]
    out = iot.list_principal_policies(principal=cert, ascendingOrder=True, pageSize=1, marker=out["nextMarker"])
    assert [p["policyName"] for p in out["policies"]] == ["new"]
    iot.attach_principal_policy(policyName="old", principal=COGNITO_ID)
    assert iot.list_policy_principals(policyName="old", ascendingOrder=True)["principals"] == sorted([cert, COGNITO_ID])
    iot.detach_principal_policy(policyName="old", principal=cert)
    assert [p["policyName"] for p in iot.list_principal_policies(principal=cert)["policies"]] == ["new"]
    assert iot.list_policy_principals(policyName="old")["principals"] == [COGNITO_ID]
    with pytest.raises(ClientError) as info:
        iot.list_principal_policies(principal=f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/" + "1" * 64)
    assert error_of(info) == ("ResourceNotFoundException", 404)


# effective policies ----------------------------------------------------------------
def test_get_effective_policies(iot, cert):
    for name in ("direct", "leafp", "rootp", "other"):
        iot.create_policy(policyName=name, policyDocument=doc(allow(f"iot:{name}")))
    root = iot.create_thing_group(thingGroupName="root")["thingGroupArn"]
    leaf = iot.create_thing_group(thingGroupName="leaf", parentGroupName="root")["thingGroupArn"]
    iot.create_thing(thingName="t1")
    iot.add_thing_to_thing_group(thingGroupName="leaf", thingName="t1")
    iot.attach_policy(policyName="direct", target=cert)
    iot.attach_policy(policyName="leafp", target=leaf)
    iot.attach_policy(policyName="rootp", target=root)
    iot.attach_policy(policyName="other", target=COGNITO_ID)

    out = iot.get_effective_policies(principal=cert, thingName="t1")["effectivePolicies"]
    assert [p["policyName"] for p in out] == ["direct", "leafp", "rootp"]
    assert out[0]["policyDocument"] == doc(allow("iot:direct"))
    assert out[0]["policyArn"].endswith(":policy/direct")
    assert [p["policyName"] for p in iot.get_effective_policies(principal=cert)["effectivePolicies"]] == ["direct"]
    assert [p["policyName"] for p in iot.get_effective_policies(thingName="t1")["effectivePolicies"]] == ["leafp", "rootp"]
    assert [p["policyName"] for p in iot.get_effective_policies(principal=leaf)["effectivePolicies"]] == ["leafp", "rootp"]
    assert [p["policyName"] for p in iot.get_effective_policies(
        principal=COGNITO_ID, cognitoIdentityPoolId="us-east-1:pool")["effectivePolicies"]] == ["other"]

    iot.create_policy_version(policyName="direct", policyDocument=doc(allow("iot:v2")), setAsDefault=True)
    out = iot.get_effective_policies(principal=cert)["effectivePolicies"]
    assert out[0]["policyDocument"] == doc(allow("iot:v2"))


def test_get_effective_policies_errors(iot):
    with pytest.raises(ClientError) as info:
        iot.get_effective_policies(thingName="ghost")
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.get_effective_policies(principal=f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/" + "2" * 64)
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.get_effective_policies(principal="garbage")
    assert error_of(info) == ("InvalidRequestException", 400)


# thing principals --------------------------------------------------------------------
def test_thing_principals(iot, cert):
    iot.create_thing(thingName="t1")
    iot.create_thing(thingName="t2")
    iot.attach_thing_principal(thingName="t1", principal=cert)
    iot.attach_thing_principal(thingName="t2", principal=cert, thingPrincipalType="NON_EXCLUSIVE_THING")
    iot.attach_thing_principal(thingName="t1", principal=COGNITO_ID)
    assert sorted(iot.list_thing_principals(thingName="t1")["principals"]) == sorted([cert, COGNITO_ID])
    assert iot.list_principal_things(principal=cert)["things"] == ["t1", "t2"]
    v2 = iot.list_thing_principals_v2(thingName="t1")["thingPrincipalObjects"]
    assert {o["principal"]: o["thingPrincipalType"] for o in v2} == {
        cert: "NON_EXCLUSIVE_THING", COGNITO_ID: "NON_EXCLUSIVE_THING"}
    things = iot.list_principal_things_v2(principal=cert)["principalThingObjects"]
    assert things == [{"thingName": "t1", "thingPrincipalType": "NON_EXCLUSIVE_THING"},
                      {"thingName": "t2", "thingPrincipalType": "NON_EXCLUSIVE_THING"}]
    with pytest.raises(ClientError) as info:
        iot.delete_thing(thingName="t1")
    assert error_of(info) == ("InvalidRequestException", 400)
    iot.detach_thing_principal(thingName="t1", principal=cert)
    iot.detach_thing_principal(thingName="t1", principal=cert)  # not attached any more: fine
    assert iot.list_principal_things(principal=cert)["things"] == ["t2"]
    iot.detach_thing_principal(thingName="t1", principal=COGNITO_ID)
    iot.delete_thing(thingName="t1")


def test_exclusive_thing_principal(iot, cert):
    iot.create_thing(thingName="t1")
    iot.create_thing(thingName="t2")
    iot.attach_thing_principal(thingName="t1", principal=cert, thingPrincipalType="EXCLUSIVE_THING")
    with pytest.raises(ClientError) as info:
        iot.attach_thing_principal(thingName="t2", principal=cert)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "exclusively" in error_message(info)
    with pytest.raises(ClientError) as info:
        iot.attach_thing_principal(thingName="t2", principal=cert, thingPrincipalType="EXCLUSIVE_THING")
    assert error_of(info) == ("InvalidRequestException", 400)
    assert iot.list_principal_things_v2(principal=cert)["principalThingObjects"] == [
        {"thingName": "t1", "thingPrincipalType": "EXCLUSIVE_THING"}]
    assert iot.list_principal_things_v2(principal=cert, thingPrincipalType="NON_EXCLUSIVE_THING")["principalThingObjects"] == []
    assert iot.list_thing_principals_v2(thingName="t1", thingPrincipalType="EXCLUSIVE_THING")["thingPrincipalObjects"] == [
        {"principal": cert, "thingPrincipalType": "EXCLUSIVE_THING"}]
    # Re-attaching to the same thing may change the type.
    iot.attach_thing_principal(thingName="t1", principal=cert, thingPrincipalType="NON_EXCLUSIVE_THING")
    iot.attach_thing_principal(thingName="t2", principal=cert)
    with pytest.raises(ClientError) as info:
        iot.attach_thing_principal(thingName="t1", principal=cert, thingPrincipalType="EXCLUSIVE_THING")
    assert error_of(info) == ("InvalidRequestException", 400)
    iot.detach_thing_principal(thingName="t2", principal=cert)
    iot.attach_thing_principal(thingName="t1", principal=cert, thingPrincipalType="EXCLUSIVE_THING")


def test_thing_principal_errors(iot, cert):
    iot.create_thing(thingName="t1")
    missing_cert = f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/" + "3" * 64
    cases = [
        (lambda: iot.attach_thing_principal(thingName="ghost", principal=cert), "ResourceNotFoundException"),
        (lambda: iot.attach_thing_principal(thingName="t1", principal=missing_cert), "ResourceNotFoundException"),
        (lambda: iot.attach_thing_principal(thingName="t1", principal="nonsense"), "InvalidRequestException"),
        (lambda: iot.detach_thing_principal(thingName="ghost", principal=cert), "ResourceNotFoundException"),
        (lambda: iot.detach_thing_principal(thingName="t1", principal=missing_cert), "ResourceNotFoundException"),
        (lambda: iot.list_thing_principals(thingName="ghost"), "ResourceNotFoundException"),
        (lambda: iot.list_thing_principals_v2(thingName="ghost"), "ResourceNotFoundException"),
        (lambda: iot.list_principal_things(principal=missing_cert), "ResourceNotFoundException"),
        (lambda: iot.list_principal_things_v2(principal=missing_cert), "ResourceNotFoundException"),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as info:
            call()
        assert info.value.response["Error"]["Code"] == code


def test_thing_principal_pagination(iot, cert):
    names = [f"t{i}" for i in range(5)]
    for name in names:
        iot.create_thing(thingName=name)
        iot.attach_thing_principal(thingName=name, principal=cert)
    got = [t for page in iot.get_paginator("list_principal_things").paginate(
        principal=cert, PaginationConfig={"PageSize": 2}) for t in page["things"]]
    assert got == names
    out = iot.list_principal_things_v2(principal=cert, maxResults=3)
    assert len(out["principalThingObjects"]) == 3
    rest = iot.list_principal_things_v2(principal=cert, maxResults=3, nextToken=out["nextToken"])
    assert [o["thingName"] for o in rest["principalThingObjects"]] == ["t3", "t4"]
    identities = [f"us-east-1:1000000{i}-aaaa-bbbb-cccc-dddddddddddd" for i in range(3)]
    for identity in identities:
        iot.attach_thing_principal(thingName="t0", principal=identity)
    principals = [p for page in iot.get_paginator("list_thing_principals").paginate(
        thingName="t0", PaginationConfig={"PageSize": 2}) for p in page["principals"]]
    assert principals == sorted(identities + [cert])


# test authorization (the evaluator itself is covered in test_policy_evaluator.py) ------
def test_test_authorization_shape(iot, cert):
    topic = f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/a"
    iot.create_policy(policyName="yes", policyDocument=doc(allow("iot:Publish", topic)))
    iot.create_policy(policyName="no", policyDocument=doc({"Effect": "Deny", "Action": "iot:Publish", "Resource": topic}))
    iot.create_policy(policyName="other", policyDocument=doc(allow("iot:Subscribe")))
    for name in ("yes", "no", "other"):
        iot.attach_policy(policyName=name, target=cert)
    out = iot.test_authorization(principal=cert, authInfos=[
        {"actionType": "PUBLISH", "resources": [topic]},
        {"actionType": "SUBSCRIBE", "resources": [f"arn:aws:iot:{REGION}:{ACCOUNT}:topicfilter/a"]},
    ])["authResults"]
    assert out[0]["authInfo"] == {"actionType": "PUBLISH", "resources": [topic]}
    assert out[0]["authDecision"] == "EXPLICIT_DENY"
    assert [p["policyName"] for p in out[0]["allowed"]["policies"]] == ["yes"]
    assert [p["policyName"] for p in out[0]["denied"]["explicitDeny"]["policies"]] == ["no"]
    assert [p["policyName"] for p in out[0]["denied"]["implicitDeny"]["policies"]] == ["other"]
    assert out[0]["denied"]["explicitDeny"]["policies"][0]["policyArn"].endswith(":policy/no")
    assert out[1]["authDecision"] == "ALLOWED"
    out = iot.test_authorization(principal=cert, authInfos=[{"actionType": "CONNECT", "resources": ["x"]}],
                                 policyNamesToSkip=["yes", "no", "other"])["authResults"]
    assert out[0]["authDecision"] == "IMPLICIT_DENY"


def test_test_authorization_errors(iot, cert):
    with pytest.raises(ClientError) as info:
        iot.test_authorization(principal=f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/" + "4" * 64,
                               authInfos=[{"actionType": "CONNECT", "resources": ["*"]}])
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.test_authorization(principal=cert, authInfos=[{"actionType": "CONNECT", "resources": ["*"]}],
                               policyNamesToAdd=["ghost"])
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.test_authorization(principal=cert, authInfos=[{"resources": ["*"]}])
    assert error_of(info) == ("InvalidRequestException", 400)
