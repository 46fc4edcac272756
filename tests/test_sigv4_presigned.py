"""localiot.protocol.sigv4.verify_presigned: presigned WebSocket URLs checked by
botocore's signer, against URLs signed the ways the AWS SDKs sign them."""

import calendar
import time
import urllib.parse

import pytest
from botocore.auth import S3SigV4QueryAuth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from localiot.protocol.errors import ServiceError
from localiot.protocol.sigv4 import verify_presigned

KEY, SECRET, ACCOUNT = "AKIDSTRICT", "strict-secret", "000000000000"
HOST = "example.iot.eu-west-1.amazonaws.com:443"


def presign(signer_class=SigV4QueryAuth, *, secret=SECRET, key=KEY, token=None, token_after=False, expires=300):
    request = AWSRequest(method="GET", url=f"wss://{HOST}/mqtt")
    credentials = Credentials(key, secret, None if token_after else token)
    signer_class(credentials, "iotdevicegateway", "eu-west-1", expires=expires).add_auth(request)
    url = request.url
    if token_after and token:
        url += "&X-Amz-Security-Token=" + urllib.parse.quote(token, safe="")
    parts = urllib.parse.urlsplit(url)
    signed_at = calendar.timegm(time.strptime(dict(urllib.parse.parse_qsl(parts.query))["X-Amz-Date"],
                                              "%Y%m%dT%H%M%SZ"))
    return parts.path, urllib.parse.parse_qsl(parts.query, keep_blank_values=True), signed_at


def verify(path, query, now, *, strict=True, host=HOST):
    return verify_presigned("GET", path, query, {"host": host}, secrets={KEY: SECRET, "111122223333": "other"},
                            strict=strict, now=now, default_account=ACCOUNT)


def refusal(path, query, now, **kw):
    with pytest.raises(ServiceError) as info:
        verify(path, query, now, **kw)
    assert info.value.status == 403
    return info.value.message


@pytest.mark.parametrize("signer_class", [SigV4QueryAuth, S3SigV4QueryAuth], ids=["payload-hash", "unsigned-payload"])
@pytest.mark.parametrize("token,after", [(None, False), ("tok/en+=", False), ("tok/en+=", True)])
def test_urls_signed_as_the_sdks_sign_them_are_accepted(signer_class, token, after):
    path, query, at = presign(signer_class, token=token, token_after=after)
    assert verify(path, query, at + 10) == (ACCOUNT, "eu-west-1", KEY)


def test_a_twelve_digit_access_key_is_the_account():
    path, query, at = presign(key="111122223333", secret="other")
    assert verify(path, query, at) == ("111122223333", "eu-west-1", "111122223333")


def test_a_wrong_secret_a_changed_parameter_or_another_host_do_not_match():
    path, query, at = presign(secret="not-the-secret")
    assert refusal(path, query, at).startswith("The request signature we calculated does not match")
    path, query, at = presign()
    changed = [(k, "999" if k == "X-Amz-Expires" else v) for k, v in query]
    assert refusal(path, changed, at).startswith("The request signature we calculated does not match")
    assert refusal(path, query, at, host="elsewhere:443").startswith("The request signature we calculated")
    assert refusal("/other", query, at).startswith("The request signature we calculated")


def test_unknown_keys_expired_future_and_malformed_urls_are_refused():
    path, query, at = presign(key="AKIDUNKNOWN")
    assert refusal(path, query, at) == "The security token included in the request is invalid."
    path, query, at = presign(expires=300)
    assert refusal(path, query, at + 301) == "The presigned URL has expired."
    assert verify(path, query, at + 300)[2] == KEY
    assert refusal(path, query, at - 901) == "Signature not yet current."
    dated = [(k, "yesterday" if k == "X-Amz-Date" else v) for k, v in query]
    assert refusal(path, dated, at) == "X-Amz-Date is missing or malformed."
    no_algorithm = [(k, v) for k, v in query if k != "X-Amz-Algorithm"]
    assert refusal(path, no_algorithm, at) == "The presigned URL lacks a valid X-Amz-Credential or X-Amz-Algorithm."


def test_outside_strict_mode_only_the_scope_is_read():
    path, query, at = presign(secret="anything", key="AKIDANY")
    assert verify(path, query, at + 10_000, strict=False) == (ACCOUNT, "eu-west-1", "AKIDANY")
