"""Domain configurations: AWS- and customer-managed, authorizer config, status,
delete only when disabled, list with serviceType and markers, tags."""

import re

import pytest
from botocore.exceptions import ClientError

from localiot.testing import ACCOUNT, advance, error_of

CERT = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/11111111-2222-3333-4444-555555555555"
VALIDATION = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/66666666-7777-8888-9999-000000000000"
FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:auth"


def authorizer(iot, name="auth"):
    iot.create_authorizer(authorizerName=name, authorizerFunctionArn=FUNCTION, signingDisabled=True)


def test_create_aws_managed(iot):
    out = iot.create_domain_configuration(domainConfigurationName="data", tags=[{"Key": "k", "Value": "v"}])
    assert out["domainConfigurationName"] == "data"
    assert re.fullmatch(rf"arn:aws:iot:us-east-1:{ACCOUNT}:domainconfiguration/data/[a-z0-9]{{5}}",
                        out["domainConfigurationArn"])
    desc = iot.describe_domain_configuration(domainConfigurationName="data")
    assert desc["domainConfigurationName"] == "data"
    assert desc["domainConfigurationArn"] == out["domainConfigurationArn"]
    assert desc["domainType"] == "AWS_MANAGED"
    assert re.fullmatch(r"[a-z0-9]{14}-ats\.iot\.us-east-1\.amazonaws\.com", desc["domainName"])
    assert desc["serverCertificates"] == []
    assert desc["domainConfigurationStatus"] == "ENABLED"
    assert desc["serviceType"] == "DATA"
    assert desc["tlsConfig"] == {"securityPolicy": "IoTSecurityPolicy_TLS13_1_2_2022_10"}
    assert desc["authenticationType"] == "DEFAULT"
    assert desc["applicationProtocol"] == "DEFAULT"
    assert "authorizerConfig" not in desc
    assert desc["lastStatusChangeDate"].year >= 2024
    assert iot.list_tags_for_resource(resourceArn=out["domainConfigurationArn"])["tags"] == [{"Key": "k", "Value": "v"}]


def test_create_customer_managed_with_everything(iot):
    authorizer(iot)
    iot.create_domain_configuration(
        domainConfigurationName="custom.domain-1",
        domainName="iot.example.com",
        serverCertificateArns=[CERT],
        validationCertificateArn=VALIDATION,
        authorizerConfig={"defaultAuthorizerName": "auth", "allowAuthorizerOverride": True},
        serviceType="JOBS",
        tlsConfig={"securityPolicy": "IoTSecurityPolicy_TLS13_1_3_2022_10"},
        serverCertificateConfig={"enableOCSPCheck": True},
        authenticationType="CUSTOM_AUTH",
        applicationProtocol="MQTT_WSS",
        clientCertificateConfig={"clientCertificateCallbackArn": FUNCTION},
    )
    desc = iot.describe_domain_configuration(domainConfigurationName="custom.domain-1")
    assert desc["domainType"] == "CUSTOMER_MANAGED"
    assert desc["domainName"] == "iot.example.com"
    assert desc["serverCertificates"] == [{"serverCertificateArn": CERT, "serverCertificateStatus": "VALID"}]
    assert desc["authorizerConfig"] == {"defaultAuthorizerName": "auth", "allowAuthorizerOverride": True}
    assert desc["serviceType"] == "JOBS"
    assert desc["tlsConfig"] == {"securityPolicy": "IoTSecurityPolicy_TLS13_1_3_2022_10"}
    assert desc["serverCertificateConfig"] == {"enableOCSPCheck": True}
    assert desc["authenticationType"] == "CUSTOM_AUTH"
    assert desc["applicationProtocol"] == "MQTT_WSS"
    assert desc["clientCertificateConfig"] == {"clientCertificateCallbackArn": FUNCTION}


def test_create_errors(iot):
    first = iot.create_domain_configuration(domainConfigurationName="d", domainName="a.example.com",
                                            serverCertificateArns=[CERT])
    with pytest.raises(ClientError) as info:
        iot.create_domain_configuration(domainConfigurationName="d")
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)
    assert info.value.response["resourceArn"] == first["domainConfigurationArn"]
    with pytest.raises(ClientError) as info:
        iot.create_domain_configuration(domainConfigurationName="d2", domainName="a.example.com",
                                        serverCertificateArns=[CERT])
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)
    assert "a.example.com" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        iot.create_domain_configuration(domainConfigurationName="d3", domainName="b.example.com")
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "serverCertificateArns" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        iot.create_domain_configuration(domainConfigurationName="d4", serverCertificateArns=[CERT])
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        iot.create_domain_configuration(domainConfigurationName="d5",
                                        authorizerConfig={"defaultAuthorizerName": "ghost"})
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "ghost" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        iot.create_domain_configuration(domainConfigurationName="d6", serverCertificateArns=["arn:aws:iam::1:x"],
                                        domainName="c.example.com")
    assert error_of(info) == ("InvalidRequestException", 400)
    assert [d["domainConfigurationName"] for d in iot.list_domain_configurations()["domainConfigurations"]] == ["d"]


def test_reserved_iot_names(iot):
    # "iot:" names belong to the AWS-managed default domains: Create's pattern has no ':'.
    with pytest.raises(ClientError) as info:
        iot.create_domain_configuration(domainConfigurationName="iot:Data-ATS")
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "[\\w.-]+" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        iot.describe_domain_configuration(domainConfigurationName="iot:Jobs")
    assert error_of(info) == ("ResourceNotFoundException", 404)


def test_describe_missing(iot):
    with pytest.raises(ClientError) as info:
        iot.describe_domain_configuration(domainConfigurationName="ghost")
    assert error_of(info) == ("ResourceNotFoundException", 404)


def test_update(localiot_server, iot):
    authorizer(iot, "one")
    authorizer(iot, "two")
    arn = iot.create_domain_configuration(domainConfigurationName="d",
                                          authorizerConfig={"defaultAuthorizerName": "one"})["domainConfigurationArn"]
    created = iot.describe_domain_configuration(domainConfigurationName="d")
    advance(localiot_server, 30)
    out = iot.update_domain_configuration(domainConfigurationName="d",
                                          authorizerConfig={"defaultAuthorizerName": "two",
                                                            "allowAuthorizerOverride": False},
                                          tlsConfig={"securityPolicy": "IoTSecurityPolicy_TLS12_1_2_2022_10"},
                                          authenticationType="CUSTOM_AUTH_X509", applicationProtocol="SECURE_MQTT",
                                          serverCertificateConfig={"enableOCSPCheck": False})
    assert out["domainConfigurationName"] == "d" and out["domainConfigurationArn"] == arn
    desc = iot.describe_domain_configuration(domainConfigurationName="d")
    assert desc["authorizerConfig"] == {"defaultAuthorizerName": "two", "allowAuthorizerOverride": False}
    assert desc["tlsConfig"] == {"securityPolicy": "IoTSecurityPolicy_TLS12_1_2_2022_10"}
    assert desc["authenticationType"] == "CUSTOM_AUTH_X509"
    assert desc["applicationProtocol"] == "SECURE_MQTT"
    assert desc["serverCertificateConfig"] == {"enableOCSPCheck": False}
    # No status change, no new status date.
    assert desc["lastStatusChangeDate"] == created["lastStatusChangeDate"]
    iot.update_domain_configuration(domainConfigurationName="d", domainConfigurationStatus="DISABLED")
    desc = iot.describe_domain_configuration(domainConfigurationName="d")
    assert desc["domainConfigurationStatus"] == "DISABLED"
    assert (desc["lastStatusChangeDate"] - created["lastStatusChangeDate"]).total_seconds() >= 29
    assert desc["authorizerConfig"]["defaultAuthorizerName"] == "two"
    iot.update_domain_configuration(domainConfigurationName="d", removeAuthorizerConfig=True)
    desc = iot.describe_domain_configuration(domainConfigurationName="d")
    assert "authorizerConfig" not in desc
    assert desc["domainConfigurationStatus"] == "DISABLED"
    # With the reference gone the authorizer can be deleted.
    iot.update_authorizer(authorizerName="two", status="INACTIVE")
    iot.delete_authorizer(authorizerName="two")


def test_update_errors(iot):
    with pytest.raises(ClientError) as info:
        iot.update_domain_configuration(domainConfigurationName="ghost", domainConfigurationStatus="DISABLED")
    assert error_of(info) == ("ResourceNotFoundException", 404)
    authorizer(iot)
    iot.create_domain_configuration(domainConfigurationName="d")
    with pytest.raises(ClientError) as info:
        iot.update_domain_configuration(domainConfigurationName="d", removeAuthorizerConfig=True,
                                        authorizerConfig={"defaultAuthorizerName": "auth"})
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        iot.update_domain_configuration(domainConfigurationName="d",
                                        authorizerConfig={"defaultAuthorizerName": "ghost"})
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "authorizerConfig" not in iot.describe_domain_configuration(domainConfigurationName="d")


def test_delete_only_when_disabled(iot, localiot_server):
    arn = iot.create_domain_configuration(domainConfigurationName="d",
                                          tags=[{"Key": "a", "Value": "b"}])["domainConfigurationArn"]
    with pytest.raises(ClientError) as info:
        iot.delete_domain_configuration(domainConfigurationName="d")
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "disable" in info.value.response["Error"]["Message"]
    iot.update_domain_configuration(domainConfigurationName="d", domainConfigurationStatus="DISABLED")
    advance(localiot_server, 7 * 86400)
    iot.delete_domain_configuration(domainConfigurationName="d")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_domain_configuration(domainConfigurationName="d")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_tags_for_resource(resourceArn=arn)
    with pytest.raises(ClientError) as info:
        iot.delete_domain_configuration(domainConfigurationName="d")
    assert error_of(info) == ("ResourceNotFoundException", 404)
    assert iot.list_domain_configurations()["domainConfigurations"] == []


def test_aws_managed_stays_disabled_seven_days_before_deletion(iot, localiot_server):
    """The Developer Guide: AWS-managed domains stay DISABLED 7 days before deletion; custom domains may go at once."""
    iot.create_domain_configuration(domainConfigurationName="managed")
    advance(localiot_server, 30 * 86400)  # enabled time does not count
    iot.update_domain_configuration(domainConfigurationName="managed", domainConfigurationStatus="DISABLED")
    advance(localiot_server, 7 * 86400 - 60)
    with pytest.raises(ClientError) as info:
        iot.delete_domain_configuration(domainConfigurationName="managed")
    assert error_of(info) == ("InvalidRequestException", 400)
    assert "7 days" in info.value.response["Error"]["Message"]
    assert iot.describe_domain_configuration(domainConfigurationName="managed")["domainConfigurationStatus"] == "DISABLED"
    advance(localiot_server, 60)
    iot.delete_domain_configuration(domainConfigurationName="managed")
    assert iot.list_domain_configurations()["domainConfigurations"] == []


def test_custom_domain_deleted_at_once_when_disabled(iot):
    iot.create_domain_configuration(domainConfigurationName="custom", domainName="iot.example.com",
                                    serverCertificateArns=[CERT])
    iot.update_domain_configuration(domainConfigurationName="custom", domainConfigurationStatus="DISABLED")
    iot.delete_domain_configuration(domainConfigurationName="custom")
    assert iot.list_domain_configurations()["domainConfigurations"] == []


def test_re_enable(iot):
    iot.create_domain_configuration(domainConfigurationName="d")
    iot.update_domain_configuration(domainConfigurationName="d", domainConfigurationStatus="DISABLED")
    iot.update_domain_configuration(domainConfigurationName="d", domainConfigurationStatus="ENABLED")
    assert iot.describe_domain_configuration(domainConfigurationName="d")["domainConfigurationStatus"] == "ENABLED"
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.delete_domain_configuration(domainConfigurationName="d")


def test_list_filter_and_pages(iot):
    types = {"e": "DATA", "a": "DATA", "c": "JOBS", "b": "CREDENTIAL_PROVIDER", "d": "DATA"}
    arns = {name: iot.create_domain_configuration(domainConfigurationName=name, serviceType=kind)["domainConfigurationArn"]
            for name, kind in types.items()}
    out = iot.list_domain_configurations()
    assert out["domainConfigurations"] == [
        {"domainConfigurationName": n, "domainConfigurationArn": arns[n], "serviceType": types[n]} for n in "abcde"
    ]
    assert "nextMarker" not in out
    names = lambda out: [d["domainConfigurationName"] for d in out["domainConfigurations"]]
    assert names(iot.list_domain_configurations(serviceType="DATA")) == ["a", "d", "e"]
    assert names(iot.list_domain_configurations(serviceType="JOBS")) == ["c"]
    page1 = iot.list_domain_configurations(pageSize=2)
    assert names(page1) == ["a", "b"]
    page2 = iot.list_domain_configurations(pageSize=2, marker=page1["nextMarker"])
    assert names(page2) == ["c", "d"]
    page3 = iot.list_domain_configurations(pageSize=2, marker=page2["nextMarker"])
    assert names(page3) == ["e"] and "nextMarker" not in page3
    data1 = iot.list_domain_configurations(pageSize=2, serviceType="DATA")
    assert names(data1) == ["a", "d"]
    data2 = iot.list_domain_configurations(pageSize=2, serviceType="DATA", marker=data1["nextMarker"])
    assert names(data2) == ["e"] and "nextMarker" not in data2
    pages = iot.get_paginator("list_domain_configurations").paginate(PaginationConfig={"PageSize": 3})
    assert [d["domainConfigurationName"] for page in pages for d in page["domainConfigurations"]] == list("abcde")


def test_tags(iot):
    arn = iot.create_domain_configuration(domainConfigurationName="d")["domainConfigurationArn"]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    iot.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_tags_for_resource(resourceArn=arn.rsplit("/", 1)[0] + "/zzzzz")
