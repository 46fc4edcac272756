"""Requests exactly as a boto3 IoT client sends them (User-Agent, X-Amz-Date,
amz-sdk-* headers, SigV4 for service "iot" in us-east-1), built before a
timed phase by a cached-key signer that `check_signer_against_botocore`
compares byte for byte with botocore's SigV4Auth (bench/control_plane.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import platform
import uuid
from dataclasses import dataclass
from urllib.parse import quote

from yarl import URL


REGION = "us-east-1"
SERVICE = "iot"
ACCESS_KEY = "AKIDEXAMPLE"  # not 12 digits: both servers use their default account
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NAME_FMT = "bench-thing-{:07d}"


def _boto3_user_agent() -> str:
    import boto3
    import botocore

    return (
        f"Boto3/{boto3.__version__} md/Botocore#{botocore.__version__} ua/2.1 "
        f"os/{platform.system().lower()}#{platform.release()} md/arch#{platform.machine().lower()} "
        f"lang/python#{platform.python_version()} md/pyimpl#{platform.python_implementation()} "
        f"cfg/retry-mode#legacy Botocore/{botocore.__version__}"
    )


def _q(value: str) -> str:
    return quote(value, safe="-_.~")


class Signer:
    """SigV4 for one (key, date, region, service): the signing key is derived once."""

    def __init__(self, host: str, access_key: str = ACCESS_KEY, secret: str = SECRET_KEY,
                 when: dt.datetime | None = None):
        when = when or dt.datetime.now(dt.timezone.utc)
        self.host = host
        self.access_key = access_key
        self.amz_date = when.strftime("%Y%m%dT%H%M%SZ")
        self.day = when.strftime("%Y%m%d")
        self.scope = f"{self.day}/{REGION}/{SERVICE}/aws4_request"
        key = hmac.new(("AWS4" + secret).encode(), self.day.encode(), hashlib.sha256).digest()
        for part in (REGION, SERVICE, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self.key = key
        self.user_agent = _boto3_user_agent()

    def sign(self, method: str, path: str, query: dict[str, str] | None, body: bytes | None) -> tuple[str, dict]:
        """Return (path?query as sent, headers). `path` is already URI-encoded."""
        canonical_qs = "&".join(f"{_q(k)}={_q(v)}" for k, v in sorted((query or {}).items()))
        headers = {"Content-Type": "application/json"} if body is not None else {}
        lower = {"host": self.host, "x-amz-date": self.amz_date}
        if body is not None:
            lower["content-type"] = "application/json"
        signed = ";".join(sorted(lower))
        canonical_headers = "".join(f"{k}:{lower[k]}\n" for k in sorted(lower))
        payload_hash = hashlib.sha256(body or b"").hexdigest()
        canonical = "\n".join([method, path, canonical_qs, canonical_headers, signed, payload_hash])
        to_sign = "\n".join(["AWS4-HMAC-SHA256", self.amz_date, self.scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        signature = hmac.new(self.key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers.update({
            "User-Agent": self.user_agent,
            "X-Amz-Date": self.amz_date,
            "Authorization": (f"AWS4-HMAC-SHA256 Credential={self.access_key}/{self.scope}, "
                              f"SignedHeaders={signed}, Signature={signature}"),
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            "amz-sdk-request": "attempt=1",
        })
        return (path + ("?" + canonical_qs if canonical_qs else "")), headers


def check_signer_against_botocore() -> None:
    """Our signer must produce exactly botocore's Authorization header."""
    from unittest import mock

    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    signer = Signer("127.0.0.1:4566", when=when)
    cases = [
        ("POST", "/things/bench-thing-0000001", None, b"{}"),
        ("GET", "/things/bench-thing-0000001", None, None),
        ("GET", "/things", None, None),
        ("GET", "/things", {"maxResults": "250", "nextToken": "eyJhZnRlciI6ICJ4In0=+/~"}, None),
    ]
    for method, path, query, body in cases:
        target, ours = signer.sign(method, path, query, body)
        req = AWSRequest(method=method, url=f"http://127.0.0.1:4566{target}", data=body or b"",
                         headers={"Content-Type": "application/json"} if body is not None else {})
        with mock.patch.object(botocore.auth, "get_current_datetime", lambda: when.replace(tzinfo=None)):
            SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), SERVICE, REGION).add_auth(req)
        if req.headers["Authorization"] != ours["Authorization"]:
            raise SystemExit(f"signer mismatch for {method} {target}:\n {req.headers['Authorization']}\n {ours['Authorization']}")


@dataclass
class Req:
    method: str
    url: URL
    headers: dict
    body: bytes | None = None


class Client:
    def __init__(self, base: str):
        self.base = base
        self.signer = Signer(base.split("://", 1)[1])

    def build(self, method: str, path: str, query: dict | None = None, body: bytes | None = None) -> Req:
        target, headers = self.signer.sign(method, path, query, body)
        return Req(method, URL(self.base + target, encoded=True), headers, body)

    def create_thing(self, name: str) -> Req:
        return self.build("POST", "/things/" + _q(name), None, b"{}")

    def describe_thing(self, name: str) -> Req:
        return self.build("GET", "/things/" + _q(name))

    def list_things(self, max_results: int | None = None, token: str | None = None) -> Req:
        query = {}
        if max_results is not None:
            query["maxResults"] = str(max_results)
        if token:
            query["nextToken"] = token
        return self.build("GET", "/things", query)
