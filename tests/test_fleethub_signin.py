"""Signing in to a Fleet Hub application when the server verifies signatures:
an unsigned client reads nothing of the fleet; a presigned sign-in URL made
with the account's credentials gives a session cookie for that application
only, which ends on the server's clock. The pages over https on the TLS port.
Also ssoClientId and the per-account application limit (boto3, shipped model)."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.request
from urllib.parse import urlsplit

import pytest
from fleethub_kit import ROLE_ARN, active_application, advance, enable_indexing, fleethub_client

from localiot.cli import main as cli
from localiot.fleethub_web.signin import COOKIE, SESSION_SECONDS, signin_url
from localiot.testing import error_of, local_server, make_client

ACCOUNT, OTHER = "111111111111", "222222222222"
SECRETS = {ACCOUNT: "secret-one", OTHER: "secret-two"}


@pytest.fixture(scope="module")
def strict():
    credentials = ",".join(f"{k}:{v}" for k, v in SECRETS.items())
    with local_server(strict_signatures=True, credentials=credentials, background_period=0) as server:
        yield server


@pytest.fixture
def app(strict):
    strict.reset()
    iot = make_client(strict, "iot", access_key=ACCOUNT, secret_key=SECRETS[ACCOUNT])
    enable_indexing(iot, strict)
    iot.create_thing(thingName="pump-7", attributePayload={"attributes": {"site": "north"}})
    return active_application(fleethub_client(strict, access_key=ACCOUNT, secret_key=SECRETS[ACCOUNT]), strict)


def get(url: str, cookie: str | None = None, context=None) -> tuple[int, dict, bytes]:
    """GET `url` without following redirects: (status, headers, body)."""
    parts = urlsplit(url)
    connection = (http.client.HTTPSConnection(parts.netloc, context=context) if parts.scheme == "https"
                  else http.client.HTTPConnection(parts.netloc))
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    connection.request("GET", target, headers={"Cookie": f"{COOKIE}={cookie}"} if cookie else {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def session_of(headers: dict) -> str:
    cookie = headers["set-cookie"]
    assert cookie.startswith(COOKIE + "=")
    return cookie.split(";", 1)[0].split("=", 1)[1]


def sign_in(app, access_key=ACCOUNT, secret=None, region="us-east-1", **kw) -> tuple[int, dict, bytes]:
    return get(signin_url(app["applicationUrl"], access_key, secret or SECRETS[access_key], region, **kw))


def test_an_unsigned_browser_reads_nothing_of_the_fleet(app):
    status, headers, body = get(app["applicationUrl"])
    assert status == 401 and b"Sign in first" in body and b"pump-7" not in body
    for route in ("api/search?q=thingName:*", "api/things/pump-7", "api/alarms", "api/application", "events"):
        status, _, body = get(app["applicationUrl"] + route)
        assert status == 401, route
        assert json.loads(body)["code"] == "UnauthorizedException"


def test_a_presigned_url_signs_in_to_this_application_only(app, strict):
    status, headers, _ = sign_in(app)
    assert status == 303 and headers["location"] == urlsplit(app["applicationUrl"]).path
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and f"Path={urlsplit(app['applicationUrl']).path}" in cookie
    session = session_of(headers)
    status, _, body = get(app["applicationUrl"] + "api/search?q=thingName:pump*", session)
    assert status == 200 and [t["thingName"] for t in json.loads(body)["things"]] == ["pump-7"]
    assert get(app["applicationUrl"], session)[0] == 200
    # the same account's second application wants its own sign-in
    other = active_application(fleethub_client(strict, access_key=ACCOUNT, secret_key=SECRETS[ACCOUNT]), strict,
                               name="second")
    assert get(other["applicationUrl"] + "api/application", session)[0] == 401
    # a forged cookie (another expiry under the same MAC) is refused
    key, expiry, mac = session.split(".")
    assert get(app["applicationUrl"] + "api/application", f"{key}.{int(expiry) + 999}.{mac}")[0] == 401
    # the session ends on the server's clock
    advance(strict, SESSION_SECONDS + 1)
    assert get(app["applicationUrl"] + "api/application", session)[0] == 401


@pytest.mark.parametrize("case, status, text", [
    ("other account", 403, b"another account or region"),
    ("other region", 403, b"another account or region"),
    ("wrong secret", 403, b"signature we calculated does not match"),
    ("unknown key", 403, b"security token included in the request is invalid"),
    ("too long", 403, b"X-Amz-Expires"),
])
def test_a_sign_in_that_does_not_fit_is_refused(app, case, status, text):
    if case == "other account":
        answer = sign_in(app, access_key=OTHER)
    elif case == "other region":
        answer = sign_in(app, region="eu-west-1")
    elif case == "wrong secret":
        answer = sign_in(app, secret="not-the-secret")
    elif case == "unknown key":
        answer = sign_in(app, access_key="333333333333", secret="x")
    else:
        url = signin_url(app["applicationUrl"], ACCOUNT, SECRETS[ACCOUNT], "us-east-1")
        answer = get(url.replace("X-Amz-Expires=300", "X-Amz-Expires=86400"))
    assert answer[0] == status and text in answer[2], answer[2]
    assert "set-cookie" not in answer[1]


def test_an_expired_sign_in_url_is_refused(app, strict):
    url = signin_url(app["applicationUrl"], ACCOUNT, SECRETS[ACCOUNT], "us-east-1", expires=60)
    advance(strict, 61)
    status, headers, body = get(url)
    assert status == 403 and b"expired" in body and "set-cookie" not in headers


def test_the_cli_prints_a_working_sign_in_url(app, strict, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCOUNT)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRETS[ACCOUNT])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    cli(["fleethub-signin-url", app["applicationId"], "--endpoint", strict.endpoint])
    url = capsys.readouterr().out.strip()
    assert url.startswith(app["applicationUrl"] + "signin?") and "X-Amz-Signature=" in url
    status, headers, _ = get(url)
    assert status == 303 and get(app["applicationUrl"] + "api/application", session_of(headers))[0] == 200


def test_the_pages_over_https_on_the_tls_port(app, strict):
    context = ssl.create_default_context()
    with urllib.request.urlopen(strict.endpoint + "/_localiot/ca.pem") as response:
        context.load_verify_locations(cadata=response.read().decode())
    host, port = strict.listener("mqtt-alpn")
    https_url = f"https://{host}:{port}{urlsplit(app['applicationUrl']).path}"
    url = signin_url(https_url, ACCOUNT, SECRETS[ACCOUNT], "us-east-1")
    status, headers, _ = get(url, context=context)
    assert status == 303 and "Secure" in headers["set-cookie"]
    status, _, body = get(https_url + "api/things/pump-7", session_of(headers), context=context)
    assert status == 200 and json.loads(body)["thing"]["attributes"] == {"site": "north"}


def test_sso_client_id_and_the_application_limit(strict):
    strict.reset()
    iot = make_client(strict, "iot", access_key=ACCOUNT, secret_key=SECRETS[ACCOUNT])
    enable_indexing(iot, strict)
    hub = fleethub_client(strict, access_key=ACCOUNT, secret_key=SECRETS[ACCOUNT])
    made = [hub.create_application(applicationName=f"app-{i}", roleArn=ROLE_ARN)["applicationId"] for i in range(100)]
    ids = {hub.describe_application(applicationId=a)["ssoClientId"] for a in made[:3]}
    assert len(ids) == 3 and all(len(i) >= 20 for i in ids)
    assert error_of(hub.create_application, applicationName="one-more", roleArn=ROLE_ARN) == (
        "LimitExceededException", 410)
    assert len(hub.list_applications()["applicationSummaries"]) == 50  # nothing was added
    # another account has its own quota
    other_iot = make_client(strict, "iot", access_key=OTHER, secret_key=SECRETS[OTHER])
    enable_indexing(other_iot, strict)
    other = fleethub_client(strict, access_key=OTHER, secret_key=SECRETS[OTHER])
    assert other.create_application(applicationName="theirs", roleArn=ROLE_ARN)["applicationId"]
    hub.delete_application(applicationId=made[0])
    advance(strict)
    assert hub.create_application(applicationName="after-delete", roleArn=ROLE_ARN)["applicationId"]
