"""Certificate transfers across accounts through boto3 against the real server:
preconditions, accept, reject, cancel, ListOutgoingCertificates."""

import pytest
from botocore.exceptions import ClientError

from localiot.services.security import certificates
from localiot.testing import ACCOUNT, REGION, error_of, make_client
# ec_key and other are fixtures
from test_certificates import OTHER, THIRD, attach, ec_key, new_cert, other, store_call  # noqa: F401


def test_transfer_preconditions(iot, other, localiot_server, ec_key):
    out = new_cert(iot, ec_key, active=True)
    cert_id, cert_arn = out["certificateId"], out["certificateArn"]
    with pytest.raises(ClientError) as info:
        iot.transfer_certificate(certificateId=cert_id, targetAwsAccount=OTHER)
    assert error_of(info) == ("CertificateStateException", 406)
    iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")

    attach(localiot_server, "policy-target", "pol", cert_arn)
    with pytest.raises(ClientError) as info:
        iot.transfer_certificate(certificateId=cert_id, targetAwsAccount=OTHER)
    assert error_of(info) == ("TransferConflictException", 409)
    store_call(localiot_server, lambda tx: tx.unlink("policy-target", "pol", cert_arn))

    attach(localiot_server, "thing-principal", "thing", cert_arn)
    with pytest.raises(ClientError) as info:
        iot.transfer_certificate(certificateId=cert_id, targetAwsAccount=OTHER)
    assert error_of(info) == ("TransferConflictException", 409)
    store_call(localiot_server, lambda tx: tx.unlink("thing-principal", "thing", cert_arn))

    with pytest.raises(ClientError) as info:
        iot.transfer_certificate(certificateId=cert_id, targetAwsAccount=ACCOUNT)
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        iot.transfer_certificate(certificateId="c" * 64, targetAwsAccount=OTHER)
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.transfer_certificate(certificateId=cert_id, targetAwsAccount="12345678901a")
    assert error_of(info) == ("InvalidRequestException", 400)

    iot.update_certificate(certificateId=cert_id, newStatus="REVOKED")
    with pytest.raises(ClientError) as info:
        iot.transfer_certificate(certificateId=cert_id, targetAwsAccount=OTHER)
    assert error_of(info) == ("CertificateStateException", 406)
    assert other.list_certificates()["certificates"] == []


def test_transfer_and_accept(iot, other, localiot_server, ec_key):
    out = new_cert(iot, ec_key)
    cert_id, cert_arn = out["certificateId"], out["certificateArn"]
    localiot_server.clock.advance(10)
    answer = iot.transfer_certificate(certificateId=cert_id, targetAwsAccount=OTHER, transferMessage="yours now")
    assert answer["transferredCertificateArn"] == cert_arn

    source_view = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert source_view["status"] == "PENDING_TRANSFER"
    assert source_view["transferData"]["transferMessage"] == "yours now"
    assert source_view["transferData"]["transferDate"] > source_view["creationDate"]
    outgoing = iot.list_outgoing_certificates()["outgoingCertificates"]
    assert len(outgoing) == 1
    assert outgoing[0]["certificateId"] == cert_id
    assert outgoing[0]["certificateArn"] == cert_arn
    assert outgoing[0]["transferredTo"] == OTHER
    assert outgoing[0]["transferMessage"] == "yours now"
    assert outgoing[0]["transferDate"] == source_view["transferData"]["transferDate"]

    # the target sees the pending transfer in its list, as the API reference says
    pending = other.list_certificates()["certificates"]
    assert [(c["certificateId"], c["status"]) for c in pending] == [(cert_id, "PENDING_TRANSFER")]
    target_view = other.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert target_view["ownedBy"] == ACCOUNT and target_view["status"] == "PENDING_TRANSFER"
    assert other.list_outgoing_certificates()["outgoingCertificates"] == []

    # while pending: no status change, no deletion, no second transfer, no accept by the source
    for call in (
        lambda: iot.update_certificate(certificateId=cert_id, newStatus="ACTIVE"),
        lambda: iot.delete_certificate(certificateId=cert_id),
        lambda: iot.transfer_certificate(certificateId=cert_id, targetAwsAccount=THIRD),
        lambda: other.update_certificate(certificateId=cert_id, newStatus="ACTIVE"),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert error_of(info) == ("CertificateStateException", 406)
    with pytest.raises(ClientError) as info:
        iot.accept_certificate_transfer(certificateId=cert_id)
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        other.cancel_certificate_transfer(certificateId=cert_id)
    assert error_of(info) == ("InvalidRequestException", 400)
    third = make_client(localiot_server, access_key=THIRD)
    with pytest.raises(ClientError) as info:
        third.accept_certificate_transfer(certificateId=cert_id)
    assert error_of(info) == ("ResourceNotFoundException", 404)

    localiot_server.clock.advance(10)
    other.accept_certificate_transfer(certificateId=cert_id, setAsActive=True)
    moved = other.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert moved["status"] == "ACTIVE"
    assert moved["ownedBy"] == OTHER
    assert moved["previousOwnedBy"] == ACCOUNT
    assert moved["certificateArn"] == f"arn:aws:iot:{REGION}:{OTHER}:cert/{cert_id}"
    assert moved["certificatePem"] == out["certificatePem"]
    assert moved["creationDate"] == source_view["creationDate"]
    assert moved["transferData"]["transferMessage"] == "yours now"
    assert moved["transferData"]["acceptDate"] > moved["transferData"]["transferDate"]
    assert [c["certificateId"] for c in other.list_certificates()["certificates"]] == [cert_id]

    with pytest.raises(ClientError) as info:
        iot.describe_certificate(certificateId=cert_id)
    assert error_of(info) == ("ResourceNotFoundException", 404)
    assert iot.list_certificates()["certificates"] == []
    assert iot.list_outgoing_certificates()["outgoingCertificates"] == []

    for call in (
        lambda: iot.cancel_certificate_transfer(certificateId=cert_id),
        lambda: other.accept_certificate_transfer(certificateId=cert_id),
        lambda: other.reject_certificate_transfer(certificateId=cert_id),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert error_of(info) == ("TransferAlreadyCompletedException", 410)

    # the new owner manages it like its own
    other.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
    assert store_call(localiot_server, lambda tx: certificates.locate(tx, cert_id)) == [(OTHER, REGION)]
    other.delete_certificate(certificateId=cert_id)
    assert other.list_certificates()["certificates"] == []
    assert store_call(localiot_server, lambda tx: certificates.locate(tx, cert_id)) == []


def test_accept_defaults_to_inactive(iot, other, ec_key):
    cert_id = new_cert(iot, ec_key)["certificateId"]
    iot.transfer_certificate(certificateId=cert_id, targetAwsAccount=OTHER)
    other.accept_certificate_transfer(certificateId=cert_id)
    assert other.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == "INACTIVE"


def test_transfer_rejected(iot, other, ec_key):
    cert_id = new_cert(iot, ec_key)["certificateId"]
    iot.transfer_certificate(certificateId=cert_id, targetAwsAccount=OTHER, transferMessage="take it")
    other.reject_certificate_transfer(certificateId=cert_id, rejectReason="not ours")

    back = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert back["status"] == "INACTIVE"
    assert back["ownedBy"] == ACCOUNT
    assert back["transferData"]["rejectReason"] == "not ours"
    assert back["transferData"]["rejectDate"] >= back["transferData"]["transferDate"]
    assert other.list_certificates()["certificates"] == []
    with pytest.raises(ClientError) as info:
        other.describe_certificate(certificateId=cert_id)
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        other.accept_certificate_transfer(certificateId=cert_id)
    assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.cancel_certificate_transfer(certificateId=cert_id)
    assert error_of(info) == ("InvalidRequestException", 400)
    assert iot.list_outgoing_certificates()["outgoingCertificates"] == []

    # and it can be transferred again, to someone who accepts it
    iot.transfer_certificate(certificateId=cert_id, targetAwsAccount=OTHER)
    assert "rejectReason" not in iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["transferData"]
    other.accept_certificate_transfer(certificateId=cert_id)
    assert other.describe_certificate(certificateId=cert_id)["certificateDescription"]["ownedBy"] == OTHER


def test_transfer_cancelled(iot, other, ec_key):
    cert_id = new_cert(iot, ec_key)["certificateId"]
    iot.transfer_certificate(certificateId=cert_id, targetAwsAccount=OTHER)
    iot.cancel_certificate_transfer(certificateId=cert_id)

    desc = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert desc["status"] == "INACTIVE"
    assert desc["transferData"] == {}
    assert other.list_certificates()["certificates"] == []
    assert iot.list_outgoing_certificates()["outgoingCertificates"] == []
    for call in (
        lambda: other.accept_certificate_transfer(certificateId=cert_id),
        lambda: other.reject_certificate_transfer(certificateId=cert_id),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert error_of(info) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        iot.cancel_certificate_transfer(certificateId=cert_id)
    assert error_of(info) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as info:
        iot.cancel_certificate_transfer(certificateId="d" * 64)
    assert error_of(info) == ("ResourceNotFoundException", 404)
    iot.update_certificate(certificateId=cert_id, newStatus="ACTIVE")


def test_list_outgoing_certificates_pages(iot, localiot_server, ec_key):
    ids = []
    for _ in range(3):
        ids.append(new_cert(iot, ec_key)["certificateId"])
        localiot_server.clock.advance(1)
        iot.transfer_certificate(certificateId=ids[-1], targetAwsAccount=OTHER)
    page = iot.list_outgoing_certificates(pageSize=2, ascendingOrder=True)
    assert [c["certificateId"] for c in page["outgoingCertificates"]] == ids[:2]
    rest = iot.list_outgoing_certificates(pageSize=2, ascendingOrder=True, marker=page["nextMarker"])
    assert [c["certificateId"] for c in rest["outgoingCertificates"]] == ids[2:]
    assert "nextMarker" not in rest
    assert [c["certificateId"] for c in iot.list_outgoing_certificates()["outgoingCertificates"]] == ids
    assert [c["certificateId"] for c in iot.list_outgoing_certificates(ascendingOrder=False)["outgoingCertificates"]] == ids[::-1]
