"""Certificate providers through boto3 against the real server: lifecycle,
tags, the account default for CreateCertificateFromCsr, validation."""

import pytest
from botocore.exceptions import ClientError

from localiot.services.security import certificate_providers
from test_certificates import ACCOUNT, REGION, error_of, store_call


LAMBDA = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sign-csr"


def test_certificate_provider_lifecycle(iot, localiot_server):
    token = "t" * 36
    out = iot.create_certificate_provider(
        certificateProviderName="signer", lambdaFunctionArn=LAMBDA,
        accountDefaultForOperations=["CreateCertificateFromCsr"], clientToken=token,
        tags=[{"Key": "team", "Value": "pki"}],
    )
    provider_arn = f"arn:aws:iot:{REGION}:{ACCOUNT}:certprovider/signer"
    assert out["certificateProviderArn"] == provider_arn and out["certificateProviderName"] == "signer"
    again = iot.create_certificate_provider(
        certificateProviderName="signer", lambdaFunctionArn=LAMBDA,
        accountDefaultForOperations=["CreateCertificateFromCsr"], clientToken=token,
    )
    assert again["certificateProviderArn"] == provider_arn
    with pytest.raises(ClientError) as info:
        iot.create_certificate_provider(
            certificateProviderName="signer", lambdaFunctionArn=LAMBDA,
            accountDefaultForOperations=["CreateCertificateFromCsr"],
        )
    assert error_of(info) == ("ResourceAlreadyExistsException", 409)
    with pytest.raises(ClientError) as info:
        iot.create_certificate_provider(
            certificateProviderName="second", lambdaFunctionArn=LAMBDA,
            accountDefaultForOperations=["CreateCertificateFromCsr"],
        )
    assert error_of(info) == ("LimitExceededException", 410)

    desc = iot.describe_certificate_provider(certificateProviderName="signer")
    assert desc["lambdaFunctionArn"] == LAMBDA
    assert desc["accountDefaultForOperations"] == ["CreateCertificateFromCsr"]
    assert desc["certificateProviderArn"] == provider_arn
    assert desc["creationDate"] == desc["lastModifiedDate"]
    assert iot.list_tags_for_resource(resourceArn=provider_arn)["tags"] == [{"Key": "team", "Value": "pki"}]
    found = store_call(localiot_server, lambda tx: certificate_providers.certificate_provider_for(tx, "CreateCertificateFromCsr"))
    assert found["certificateProviderName"] == "signer"

    localiot_server.clock.advance(3)
    new_lambda = LAMBDA.replace("sign-csr", "sign-v2")
    updated = iot.update_certificate_provider(certificateProviderName="signer", lambdaFunctionArn=new_lambda)
    assert updated["certificateProviderArn"] == provider_arn
    desc2 = iot.describe_certificate_provider(certificateProviderName="signer")
    assert desc2["lambdaFunctionArn"] == new_lambda
    assert desc2["lastModifiedDate"] > desc2["creationDate"]

    listed = iot.list_certificate_providers()["certificateProviders"]
    assert listed == [{"certificateProviderName": "signer", "certificateProviderArn": provider_arn}]

    iot.delete_certificate_provider(certificateProviderName="signer")
    for call in (
        lambda: iot.describe_certificate_provider(certificateProviderName="signer"),
        lambda: iot.delete_certificate_provider(certificateProviderName="signer"),
        lambda: iot.update_certificate_provider(certificateProviderName="signer", lambdaFunctionArn=LAMBDA),
        lambda: iot.list_tags_for_resource(resourceArn=provider_arn),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert error_of(info) == ("ResourceNotFoundException", 404)
    assert iot.list_certificate_providers()["certificateProviders"] == []


def test_certificate_provider_validation(iot):
    with pytest.raises(ClientError) as info:
        iot.create_certificate_provider(
            certificateProviderName="p", lambdaFunctionArn="not-an-arn",
            accountDefaultForOperations=["CreateCertificateFromCsr"],
        )
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        iot.create_certificate_provider(
            certificateProviderName="p", lambdaFunctionArn=LAMBDA, accountDefaultForOperations=["Other"],
        )
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        iot.create_certificate_provider(
            certificateProviderName="p", lambdaFunctionArn=LAMBDA,
            accountDefaultForOperations=["CreateCertificateFromCsr", "CreateCertificateFromCsr"],
        )
    assert error_of(info) == ("InvalidRequestException", 400)
