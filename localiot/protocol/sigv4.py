"""SigV4: read the credential scope (service, region, access key) and, in
strict mode, verify the signature with botocore's own signer: SigV4Auth for
signed API requests, SigV4QueryAuth for presigned URLs (MQTT over
WebSocket). The expected signature is botocore's canonical request, string
to sign and signing key over what the client sent; nothing here hashes by
hand."""

from __future__ import annotations

import calendar
import hmac
import re
import time

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials
from multidict import istr

from localiot.protocol.errors import ServiceError

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<sig>[0-9a-fA-F]+)"
)


class Scope:
    """A request's SigV4 credential scope. Every request signed under the same
    Authorization head (up to its signature) shares one (see read_scope): it holds
    no signature, which `signature_of` reads from the request when a strict server
    verifies it. The signed header list is split only then too."""

    __slots__ = ("access_key", "date", "region", "service", "_signed", "presigned", "engine_memo")

    def __init__(self, access_key: str, date: str, region: str, service: str, signed: str, presigned: bool = False):
        self.access_key, self.date, self.region, self.service = access_key, date, region, service
        self._signed, self.presigned = signed, presigned
        # What an engine read from this scope once (its region checked, the services
        # its signing name names, the account): (engine, services, account).
        self.engine_memo = None

    @property
    def signed_headers(self) -> list[str]:
        return self._signed.split(";")


# Authorization headers up to their ", Signature=" -> their Scope: a client signs every
# request with the same scope, so the regex runs once per scope. A head is remembered
# only when the regex put the signature right after that first ", Signature=": a later
# header with the same head then reads as the regex reads it whenever its tail starts
# with a hex digit (the regex takes the tail's hex digits as the signature), and as no
# scope at all otherwise.
_HEADS: dict[str, Scope] = {}
_AUTHORIZATION = istr("Authorization")  # (multidict keeps its case-folded form: no folding per request)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
MAX_HEADS = 1024


def _remember(header: str, m: re.Match, scope: Scope) -> None:
    at = header.find(", Signature=")
    if at >= 0 and m.start("sig") == at + 12:
        if len(_HEADS) >= MAX_HEADS:
            _HEADS.clear()
        _HEADS[header[:at]] = scope


# The last head found in _HEADS, up to and with its ", Signature=" (which it holds once, at its
# end): a header starting with it has its first ", Signature=" there too, so it is that head's,
# tested without cutting, hashing and looking up the head (a client's requests share one).
_last: tuple[str, int, Scope] | None = None


def read_scope(headers, query) -> Scope | None:
    global _last
    header = headers.get(_AUTHORIZATION)
    if header:
        last = _last
        if last is not None and header.startswith(last[0]) and header[last[1]:last[1] + 1] in _HEX_DIGITS:
            return last[2]
        at = header.find(", Signature=")
        if at >= 0:
            scope = _HEADS.get(header[:at])
            if scope is not None and header[at + 12:at + 13] in _HEX_DIGITS:
                _last = (header[:at + 12], at + 12, scope)
                return scope
        m = _AUTH.match(header)
        if not m:
            return None
        cred, signed = m.group("cred", "signed")
        cred = cred.split("/")
        if len(cred) != 5:
            return None
        scope = Scope(cred[0], cred[1], cred[2], cred[3], signed)
        _remember(header, m, scope)
        return scope
    if query and "X-Amz-Credential" in query:
        cred = query.get("X-Amz-Credential", "").split("/")
        if len(cred) == 5:
            return Scope(cred[0], cred[1], cred[2], cred[3], query.get("X-Amz-SignedHeaders", "host"), True)
    return None


def signature_of(headers, query) -> str:
    """The signature of the request whose scope read_scope read, as the regex reads it."""
    m = _AUTH.match(headers.get("Authorization") or "")
    if m:
        return m.group("sig")
    return query.get("X-Amz-Signature", "") if query else ""


def why_unsigned(headers, query) -> str:
    """Why `read_scope` found no credential scope: the reason a non-strict server
    accepted the request anyway (logged at DEBUG, issue 11 item 6)."""
    header = headers.get("Authorization")
    if header:
        m = _AUTH.match(header)
        if not m:
            return ("its Authorization header is not 'AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., "
                    "Signature=<hex>'")
        parts = m.group("cred").split("/")
        return f"its credential scope has {len(parts)} parts, not 5 (AKID/date/region/service/aws4_request)"
    if "X-Amz-Credential" in query:
        parts = query.get("X-Amz-Credential", "").split("/")
        return f"its X-Amz-Credential has {len(parts)} parts, not 5 (AKID/date/region/service/aws4_request)"
    return "it carries no Authorization header and no presigned X-Amz-Credential"


_REGION = re.compile(r"[a-zA-Z0-9-]{1,64}")


_REGIONS: set[str] = set()  # regions seen valid (a handful: one test run uses a few)


def check_region(scope: Scope | None) -> None:
    """The scope's region names every ARN the call makes: refuse one that is no
    region name at all (non-UTF-8 bytes in the header arrive as surrogates)."""
    if scope is None or scope.region in _REGIONS:
        return
    if _REGION.fullmatch(scope.region):
        if len(_REGIONS) < MAX_HEADS:
            _REGIONS.add(scope.region)
    else:
        raise ServiceError("InvalidSignatureException", "Credential should be scoped to a valid region. ", status=403)


def account_for(access_key: str, default_account: str) -> str:
    """A 12-digit access key id is the account id, as moto and LocalStack do."""
    return access_key if len(access_key) == 12 and access_key.isdigit() else default_account


def verify(scope: Scope | None, method: str, host: str, raw_path_qs: str, headers, body: bytes, secrets: dict[str, str]) -> None:
    if scope is None:
        raise ServiceError("MissingAuthenticationTokenException", "Missing Authentication Token", status=403)
    secret = secrets.get(scope.access_key)
    if secret is None:
        raise ServiceError(
            "UnrecognizedClientException", "The security token included in the request is invalid.", status=403
        )
    if scope.presigned:
        raise ServiceError(
            "InvalidSignatureException", "Presigned requests are verified by the MQTT WebSocket listener only.", status=403
        )
    signed = {name: headers.get(name, "") for name in scope.signed_headers}
    request = AWSRequest(method=method, url=f"http://{host}{raw_path_qs}", data=body, headers=signed)
    signer = SigV4Auth(Credentials(scope.access_key, secret), scope.service, scope.region)
    if not _matches(signer, request, headers.get("X-Amz-Date", ""), signature_of(headers, None)):
        raise ServiceError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            status=403,
        )


def _matches(signer: SigV4Auth, request: AWSRequest, amz_date: str, signature: str) -> bool:
    """Whether `signature` is what botocore's `signer` computes for `request` signed at `amz_date`."""
    request.context["timestamp"] = amz_date
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return hmac.compare_digest(expected, signature)


def _forbidden(code: str, message: str) -> ServiceError:
    return ServiceError(code, message, status=403)


PRESIGNED_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
                      "Check your AWS Secret Access Key and signing method.")


class _ClientSignedHeaders(SigV4QueryAuth):
    """botocore's presigned-URL signer over exactly the headers the client signed: the AWS IoT Device
    SDK v2 (awscrt) signs its WebSocket upgrade's `connection` header, which botocore leaves out of
    the headers it chooses to sign itself."""

    def __init__(self, names: list[str], *args):
        super().__init__(*args)
        self._names = names

    def headers_to_sign(self, request):
        chosen = HTTPHeaders()
        for name in self._names:
            chosen[name] = request.headers.get(name, "")
        return chosen


def verify_presigned(method: str, raw_path: str, query: list[tuple[str, str]], headers, *, secrets: dict[str, str],
                     strict: bool, now: float, default_account: str) -> tuple[str, str, str]:
    """(account, region, access key id) of a SigV4-presigned URL, as the AWS SDKs build
    them for MQTT over WebSocket (service iotdevicegateway). `query` is the decoded
    query pairs in their order. In strict mode the signature is checked with the
    configured secret by botocore's SigV4QueryAuth, with or without the
    X-Amz-Security-Token among the signed parameters (the SDKs differ) and with the
    empty payload's hash or UNSIGNED-PAYLOAD, and the URL must not have expired;
    otherwise only the credential scope is read. Raises ServiceError (status 403)."""
    params = dict(query)
    credential = params.get("X-Amz-Credential", "").split("/")
    if len(credential) != 5 or params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise _forbidden("IncompleteSignatureException",
                         "The presigned URL lacks a valid X-Amz-Credential or X-Amz-Algorithm.")
    access_key, _date, region, service, _ = credential
    account = account_for(access_key, default_account)
    if not strict:
        return account, region, access_key
    secret = secrets.get(access_key)
    if secret is None:
        raise _forbidden("UnrecognizedClientException", "The security token included in the request is invalid.")
    amz_date = params.get("X-Amz-Date", "")
    try:
        signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise _forbidden("IncompleteSignatureException", "X-Amz-Date is missing or malformed.") from None
    expires = params.get("X-Amz-Expires")
    if expires is not None and expires.isdigit() and now > signed_at + int(expires):
        raise _forbidden("InvalidSignatureException", "The presigned URL has expired.")
    if signed_at > now + 900:
        raise _forbidden("InvalidSignatureException", "Signature not yet current.")
    signed_names = params.get("X-Amz-SignedHeaders", "host").split(";")
    signed_headers = {name: headers.get(name) or "" for name in signed_names}
    signer = _ClientSignedHeaders(signed_names, Credentials(access_key, secret), service, region)
    unsigned = [pair for pair in query if pair[0] != "X-Amz-Signature"]
    variants = [unsigned]
    if "X-Amz-Security-Token" in params:  # the AWS IoT Device SDKs may add the token after signing
        variants.append([pair for pair in unsigned if pair[0] != "X-Amz-Security-Token"])
    host = headers.get("host") or "localhost"
    for pairs in variants:
        for scheme, payload_signed in (("http", True), ("https", False)):  # empty payload hash, UNSIGNED-PAYLOAD
            request = AWSRequest(method=method, url=f"{scheme}://{host}{raw_path}", headers=signed_headers,
                                 params=pairs)
            request.context["payload_signing_enabled"] = payload_signed
            if _matches(signer, request, amz_date, params.get("X-Amz-Signature", "")):
                return account, region, access_key
    raise _forbidden("InvalidSignatureException", PRESIGNED_MISMATCH)
