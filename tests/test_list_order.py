"""One list order for every List operation (issue 11 item 15): ascending by
name where AWS documents no order, ascending by the documented key where the
spec names one (creation date for certificates and policies), and descending
only when the caller sends ascendingOrder=false."""

import json

import pytest

NAMES = ["m", "c", "x", "a"]  # created in this order, one second apart
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]})
ROLE = "arn:aws:iam::123456789012:role/r"


def created(localiot_server, make):
    out = []
    for name in NAMES:
        out.append(make(name))
        localiot_server.clock.advance(1)
    return out


@pytest.mark.parametrize("create, listing", [
    (lambda iot, n: iot.create_thing(thingName=n),
     lambda iot, **kw: [t["thingName"] for t in iot.list_things(**kw)["things"]]),
    (lambda iot, n: iot.create_thing_group(thingGroupName=n),
     lambda iot, **kw: [g["groupName"] for g in iot.list_thing_groups(**kw)["thingGroups"]]),
    (lambda iot, n: iot.create_thing_type(thingTypeName=n),
     lambda iot, **kw: [t["thingTypeName"] for t in iot.list_thing_types(**kw)["thingTypes"]]),
    (lambda iot, n: iot.create_role_alias(roleAlias=n, roleArn=ROLE),
     lambda iot, **kw: iot.list_role_aliases(**kw)["roleAliases"]),
    (lambda iot, n: iot.create_job(jobId=n, targets=["arn:aws:iot:us-east-1:123456789012:thing/t"],
                                   document="{}"),
     lambda iot, **kw: [j["jobId"] for j in iot.list_jobs(**kw)["jobs"]]),
    (lambda iot, n: iot.create_job_template(jobTemplateId=n, description="d", document="{}"),
     lambda iot, **kw: [t["jobTemplateId"] for t in iot.list_job_templates(**kw)["jobTemplates"]]),
])
def test_ascending_by_name_where_aws_documents_no_order(localiot_server, iot, create, listing):
    iot.create_thing(thingName="t")  # the jobs' target
    created(localiot_server, lambda n: create(iot, n))
    names = [n for n in listing(iot) if n in NAMES]
    assert names == sorted(NAMES)


def test_role_aliases_descend_only_when_asked(localiot_server, iot):
    created(localiot_server, lambda n: iot.create_role_alias(roleAlias=n, roleArn=ROLE))
    assert iot.list_role_aliases(ascendingOrder=False)["roleAliases"] == sorted(NAMES, reverse=True)


def test_policies_follow_their_documented_creation_order(localiot_server, iot):
    created(localiot_server, lambda n: iot.create_policy(policyName=n, policyDocument=POLICY))
    assert [p["policyName"] for p in iot.list_policies()["policies"]] == NAMES
    assert [p["policyName"] for p in iot.list_policies(ascendingOrder=True)["policies"]] == NAMES
    assert [p["policyName"] for p in iot.list_policies(ascendingOrder=False)["policies"]] == NAMES[::-1]


def test_certificates_follow_their_documented_creation_order(localiot_server, iot):
    ids = created(localiot_server, lambda n: iot.create_keys_and_certificate()["certificateId"])
    assert [c["certificateId"] for c in iot.list_certificates()["certificates"]] == ids
    assert [c["certificateId"] for c in iot.list_certificates(ascendingOrder=False)["certificates"]] == ids[::-1]


def test_policy_principals_ascend_unless_asked(localiot_server, iot):
    iot.create_policy(policyName="p", policyDocument=POLICY)
    arns = sorted(iot.create_keys_and_certificate()["certificateArn"] for _ in range(3))
    for arn in arns[::-1]:
        iot.attach_policy(policyName="p", target=arn)
    assert iot.list_policy_principals(policyName="p")["principals"] == arns
    assert iot.list_policy_principals(policyName="p", ascendingOrder=False)["principals"] == arns[::-1]
