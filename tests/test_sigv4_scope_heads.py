"""SigV4 scopes read through remembered Authorization heads (sigv4._HEADS) are what the
regex reads from the whole header, for well-formed and odd headers alike, before and
after their head is remembered."""

import random

from localiot.protocol import sigv4

CRED = "Credential=AKIDEXAMPLE/20261203/us-east-1/iot/aws4_request"
SIG = "0123456789abcdef" * 4


def by_regex(header: str):
    m = sigv4._AUTH.match(header)
    if not m:
        return None
    cred, signed, sig = m.group("cred", "signed", "sig")
    cred = cred.split("/")
    return None if len(cred) != 5 else (cred[0], cred[1], cred[2], cred[3], signed, sig)


def fields(header: str):
    """What read_scope reads from `header`, with the signature a strict server would check."""
    scope = sigv4.read_scope({"Authorization": header}, None)
    if scope is None:
        return None
    signature = sigv4.signature_of({"Authorization": header}, None)
    return scope.access_key, scope.date, scope.region, scope.service, scope._signed, signature


HEADERS = [
    f"AWS4-HMAC-SHA256 {CRED}, SignedHeaders=host;x-amz-date, Signature={SIG}",
    f"AWS4-HMAC-SHA256 {CRED}, SignedHeaders=host;x-amz-date, Signature={SIG.upper()}",
    f"AWS4-HMAC-SHA256 {CRED}, SignedHeaders=host;x-amz-date, Signature={SIG}, Extra=1",
    f"AWS4-HMAC-SHA256 {CRED}, SignedHeaders=host;x-amz-date, Signature={SIG}zz",
    f"AWS4-HMAC-SHA256 {CRED}, SignedHeaders=host;x-amz-date, Signature=",
    f"AWS4-HMAC-SHA256 {CRED}, SignedHeaders=host;x-amz-date, Signature=xyz",
    f"AWS4-HMAC-SHA256 {CRED}, SignedHeaders=host, Signature=ab, Signature={SIG}",
    f"AWS4-HMAC-SHA256 {CRED},SignedHeaders=host,Signature={SIG}",
    f"AWS4-HMAC-SHA256   {CRED},\tSignedHeaders=host, Signature={SIG}",
    f"AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature={SIG}",
    f"AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=host, Signature={SIG}",
    f"AWS4-HMAC-SHA256 Credential=AKID/20261203/eu-west-1/iotdata/aws4_request, SignedHeaders=a;b, Signature={SIG}",
    "Basic dXNlcjpwYXNz",
    f"aws4-hmac-sha256 {CRED}, SignedHeaders=host, Signature={SIG}",
]


def test_every_header_reads_as_the_regex_reads_it_cold_and_warm():
    rng = random.Random(22)
    for header in HEADERS:
        sigv4._HEADS.clear()
        expected = by_regex(header)
        assert fields(header) == expected, header
        assert fields(header) == expected, header  # remembered
        head, sep, _ = header.partition(", Signature=")
        for tail in ("f" * 64, "00", "ABCdef12", "", "g", "ab cd", "ab,", SIG + " "):
            variant = head + sep + tail if sep else header + tail
            assert fields(variant) == by_regex(variant), variant
        noise = "".join(rng.choice("abc09 ,=/;\t") for _ in range(10))
        variant = header + noise
        assert fields(variant) == by_regex(variant), variant


def test_the_heads_remembered_stay_bounded():
    sigv4._HEADS.clear()
    for i in range(sigv4.MAX_HEADS + 10):
        header = f"AWS4-HMAC-SHA256 Credential=AK{i}/20261203/us-east-1/iot/aws4_request, SignedHeaders=host, Signature=ab"
        assert sigv4.read_scope({"Authorization": header}, None).access_key == f"AK{i}"
    assert len(sigv4._HEADS) <= sigv4.MAX_HEADS


def test_heads_read_in_turn_each_read_as_the_regex_reads_them():
    """The last head found is tested first (sigv4._last): headers of other heads, and of heads
    that start like it, still read as the regex reads them."""
    rng = random.Random(12)
    heads = [f"AWS4-HMAC-SHA256 {CRED}, SignedHeaders=host",
             f"AWS4-HMAC-SHA256 {CRED}, SignedHeaders=host;x-amz-date",
             f"AWS4-HMAC-SHA256 {CRED.replace('/iot/', '/iotdata/')}, SignedHeaders=host",
             f"AWS4-HMAC-SHA256 {CRED}, SignedHeaders=host, Signature=ab"]
    for _ in range(400):
        tail = rng.choice([SIG, SIG.upper(), "ab", "", "g1", "ab, Signature=" + SIG, SIG + ", x=1"])
        header = f"{rng.choice(heads)}, Signature={tail}"
        assert fields(header) == by_regex(header), header
