"""Signing in to a Fleet Hub application when the server runs with strict
signatures (AWS signs users in through IAM Identity Center; localiot has no
identity provider, so the configured credentials play its part).

1. The operator makes a presigned sign-in URL with credentials the server
   knows (`localiot fleethub-signin-url`, or `signin_url` below, or any SigV4
   query signer: service `iotfleethub`, the application's region):

       GET <applicationUrl>signin?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=...

   It is valid for X-Amz-Expires seconds (at most MAX_URL_SECONDS).
2. Opening it in a browser, the server verifies the signature with botocore's
   SigV4QueryAuth (localiot.protocol.sigv4.verify_presigned), refuses an access
   key of another account or a URL scoped to another region, and answers with
   a session cookie for this application only (Path=/fleethub/<id>/, HttpOnly,
   SameSite=Strict, Secure over https) and a redirect to the dashboard.
3. The cookie is `<access key>.<expiry>.<HMAC-SHA256 with the key's secret>`:
   nothing is stored, it ends after SESSION_SECONDS on the server's clock, and
   it stops working as soon as the access key leaves the configured credentials.

Without strict signatures the pages ask for nothing (development mode).
"""

from __future__ import annotations

import hashlib
import hmac

from localiot.protocol import sigv4
from localiot.protocol.errors import ServiceError

SERVICE = "iotfleethub"
COOKIE = "fleethub-session"
SESSION_SECONDS = 8 * 3600  # IAM Identity Center's default session length
MAX_URL_SECONDS = 3600


def signin_url(application_url: str, access_key: str, secret_key: str, region: str, expires: int = 300,
               session_token: str | None = None) -> str:
    """A presigned sign-in URL of the application at `application_url` (botocore's SigV4QueryAuth)."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=application_url.rstrip("/") + "/signin")
    SigV4QueryAuth(Credentials(access_key, secret_key, session_token), SERVICE, region,
                   expires=min(int(expires), MAX_URL_SECONDS)).add_auth(request)
    return request.url


def signin_url_from_session(endpoint: str, application_id: str, region: str | None, expires: int) -> str:
    """`signin_url` with the credentials and region of boto3's usual chain (what the CLI prints)."""
    import botocore.session

    session = botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        raise SystemExit("localiot: no AWS credentials found (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a profile)")
    frozen = credentials.get_frozen_credentials()
    region = region or session.get_config_variable("region") or "us-east-1"
    url = f"{endpoint.rstrip('/')}/fleethub/{application_id}/"
    return signin_url(url, frozen.access_key, frozen.secret_key, region, expires, frozen.token)


def _mac(secret: str, application_id: str, access_key: str, expiry: int) -> str:
    message = f"{SERVICE}|{application_id}|{access_key}|{expiry}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def session_cookie(config, application_id: str, access_key: str, now: float) -> tuple[str, int]:
    """(cookie value, expiry) for `access_key` signed in to the application."""
    expiry = int(now) + SESSION_SECONDS
    secret = config.credential_map()[access_key]
    return f"{access_key}.{expiry}.{_mac(secret, application_id, access_key, expiry)}", expiry


def session_ok(config, scope, value: str | None, now: float) -> bool:
    """Whether the cookie `value` is a live session of the application `scope` serves."""
    if not value or value.count(".") < 2:
        return False
    access_key, expiry, mac = value.rsplit(".", 2)
    secret = config.credential_map().get(access_key)
    if secret is None or not expiry.isdigit() or int(expiry) <= now:
        return False
    if sigv4.account_for(access_key, config.default_account) != scope.account:
        return False
    return hmac.compare_digest(mac, _mac(secret, scope.application["applicationId"], access_key, int(expiry)))


def verify_signin(request, config, scope, now: float) -> str:
    """The access key of a valid presigned sign-in `request` for `scope`'s application, or ServiceError."""
    query = list(request.rel_url.query.items())
    params = dict(query)
    expires = params.get("X-Amz-Expires", "")
    if not expires.isdigit() or int(expires) > MAX_URL_SECONDS:
        raise ServiceError("InvalidRequestException",
                           f"X-Amz-Expires must be a number of seconds up to {MAX_URL_SECONDS}.", status=403)
    credential = params.get("X-Amz-Credential", "").split("/")
    if len(credential) == 5 and credential[3] != SERVICE:
        raise ServiceError("InvalidSignatureException", f"The sign-in URL must be signed for {SERVICE}.", status=403)
    account, region, access_key = sigv4.verify_presigned(
        "GET", request.rel_url.raw_path, query, request.headers, secrets=config.credential_map(), strict=True,
        now=now, default_account=config.default_account)
    if account != scope.account or region != scope.region:
        raise ServiceError("AccessDeniedException",
                           "These credentials do not sign in to this application: it belongs to another "
                           "account or region.", status=403)
    return access_key

