"""Single sign-on end to end against oidc-provider-mock, started by the test on a free port.

The flow is the real one: Django's /oidc/authenticate/ → the mock's authorize form (submitted with
`requests`) → /oidc/callback/ with code + state → token, JWKS and userinfo fetched by the backend
from the endpoints it discovered.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts import oidc, services
from accounts.models import OIDCIdentity
from core.models import AuditEvent
from rbac import services as rbac_services
from tests.conftest import PASSWORD, make_user, org_scope

CLIENT_ID = "catalyst-portal"
BACKEND = "accounts.oidc.PortalOIDCBackend"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mock_executable() -> str | None:
    beside_python = Path(sys.executable).parent / "oidc-provider-mock"
    return str(beside_python) if beside_python.exists() else shutil.which("oidc-provider-mock")


@pytest.fixture(scope="module")
def provider_url() -> Iterator[str]:
    """Run oidc-provider-mock (nonce required) until the module's tests are done."""
    executable = _mock_executable()
    if executable is None:
        pytest.skip("oidc-provider-mock is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [executable, "--host", "127.0.0.1", "--port", str(port), "--require-nonce", "true"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    output: list[str] = []
    try:
        while True:
            line = lines.get(timeout=30)
            if line is None:
                pytest.skip(f"oidc-provider-mock exited at start-up: {''.join(output)[-500:]}")
            output.append(line)
            if "Uvicorn running on" in line:
                break
    except queue.Empty:
        process.kill()
        pytest.skip("oidc-provider-mock did not start within 30 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def sso(settings: Any, provider_url: str) -> Iterator[str]:
    settings.OIDC_ISSUER = provider_url
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = "not-so-secret"
    settings.OIDC_VERIFY_KID = False  # the mock's ID token carries no kid
    settings.AUTHENTICATION_BACKENDS = [BACKEND, "django.contrib.auth.backends.ModelBackend"]
    oidc.forget_discovery()
    yield provider_url
    oidc.forget_discovery()


def set_claims(provider_url: str, sub: str, **claims: Any) -> None:
    response = requests.put(f"{provider_url}/users/{sub}", json=claims, timeout=5)
    assert response.status_code == 204


def start(client: Client, next_url: str = "/") -> tuple[str, dict[str, str]]:
    """GET /oidc/authenticate/ and return the issuer's authorize URL and its parameters."""
    response = client.get("/oidc/authenticate/", {"next": next_url})
    assert response.status_code == 302
    location = response["Location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return location, params


def authorize_at_issuer(location: str, sub: str) -> dict[str, str]:
    """Show the mock's form, submit it as `sub`, and return the callback's query parameters."""
    form = requests.get(location, timeout=5)
    assert form.status_code == 200 and 'name="sub"' in form.text
    answer = requests.post(location, data={"sub": sub}, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    callback = urlsplit(answer.headers["Location"])
    assert callback.path == "/oidc/callback/"
    return {k: v[0] for k, v in parse_qs(callback.query).items()}


def sign_in(client: Client, sub: str, next_url: str = "/") -> Any:
    location, _ = start(client, next_url)
    return client.get("/oidc/callback/", authorize_at_issuer(location, sub))


def test_sign_in_creates_the_user_from_claims_and_group_grant_gives_access(
    sso: str, cast: dict[str, Any]
) -> None:
    set_claims(
        sso,
        "alice-sub",
        email="alice@corp.example",
        preferred_username="alice",
        given_name="Alice",
        family_name="Liddell",
        groups=["ops", "readers"],
    )
    client = Client()
    location, params = start(client, "/orgs/acme/")

    # The authorization request uses the discovered endpoint, PKCE (S256) and a nonce.
    assert location.startswith(f"{sso}/oauth2/authorize?")
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == "http://testserver/oidc/callback/"
    assert params["scope"] == "openid email profile"
    assert params["code_challenge_method"] == "S256" and params["nonce"]
    pending = client.session["oidc_states"][params["state"]]
    assert pending["nonce"] == params["nonce"]
    digest = hashlib.sha256(pending["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == params["code_challenge"]

    callback = authorize_at_issuer(location, "alice-sub")
    assert callback["state"] == params["state"]
    response = client.get("/oidc/callback/", callback)

    assert response.status_code == 302 and response["Location"] == "/orgs/acme/"
    user = get_user_model().objects.get(email="alice@corp.example")
    assert (user.username, user.first_name, user.last_name) == ("alice", "Alice", "Liddell")
    assert not user.has_usable_password()
    identity = OIDCIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject, identity.groups) == (
        sso,
        "alice-sub",
        ["ops", "readers"],
    )
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session["_auth_user_backend"] == BACKEND
    assert client.session[oidc.GROUPS_SESSION_KEY] == ["ops", "readers"]
    assert AuditEvent.objects.filter(action="account.user.create", target_id=str(user.pk)).exists()

    # Signed in, but no grant yet: the organization does not exist for Alice.
    assert client.get("/orgs/acme/").status_code == 404
    rbac_services.assign(by=None, group="ops", tier="viewer", scopes=org_scope("acme"))
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/orgs/acme/").status_code == 200
    # The groups come from the session: no query for them.
    assert not [q for q in queries.captured_queries if "oidcidentity" in q["sql"].lower()]
    # A personal API token carries the groups of the last sign-in.
    _, raw = services.create_api_token(user=user, name="cli", days=1)
    api = Client().get("/api/v1/orgs/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert [o["slug"] for o in api.json()] == ["acme"]
    # A group Alice is not in gives nothing elsewhere.
    rbac_services.assign(by=None, group="globex-team", tier="viewer", scopes=org_scope("globex"))
    assert client.get("/orgs/globex/").status_code == 404


def test_next_sign_in_updates_the_user_and_drops_lost_groups(
    sso: str, cast: dict[str, Any]
) -> None:
    rbac_services.assign(by=None, group="ops", tier="viewer", scopes=org_scope("acme"))
    set_claims(sso, "bob-sub", email="bob@corp.example", preferred_username="bob", groups=["ops"])
    first = Client()
    assert sign_in(first, "bob-sub").status_code == 302
    assert first.get("/orgs/acme/").status_code == 200

    set_claims(
        sso,
        "bob-sub",
        email="robert@corp.example",
        preferred_username="robert",
        family_name="Builder",
        groups=[],
    )
    second = Client()
    assert sign_in(second, "bob-sub").status_code == 302

    users = get_user_model().objects.filter(oidc_identity__subject="bob-sub")
    assert users.count() == 1
    user = users.get()
    assert (user.username, user.email, user.last_name) == (
        "robert",
        "robert@corp.example",
        "Builder",
    )
    assert OIDCIdentity.objects.get(user=user).groups == []
    assert second.get("/orgs/acme/").status_code == 404


def test_sign_in_links_an_existing_local_account_by_email(sso: str, db: Any) -> None:
    local = make_user("carol")
    set_claims(sso, "carol-sub", email="CAROL@example.test", preferred_username="carol")
    client = Client()
    assert sign_in(client, "carol-sub").status_code == 302
    assert get_user_model().objects.filter(username__startswith="carol").count() == 1
    assert OIDCIdentity.objects.get(subject="carol-sub").user == local
    assert client.session["_auth_user_id"] == str(local.pk)


def test_unverified_email_does_not_take_over_a_local_account(sso: str, db: Any) -> None:
    local = make_user("dave")
    set_claims(
        sso,
        "mallory-sub",
        email="dave@example.test",
        email_verified=False,
        preferred_username="dave",
    )
    client = Client()
    assert sign_in(client, "mallory-sub").status_code == 302
    linked = OIDCIdentity.objects.get(subject="mallory-sub").user
    assert linked != local
    assert linked.username == "dave-2"
    assert client.session["_auth_user_id"] == str(linked.pk)


def test_callback_with_a_forged_state_is_refused(sso: str, db: Any) -> None:
    set_claims(sso, "erin-sub", email="erin@corp.example")
    client = Client()
    location, _ = start(client)
    callback = authorize_at_issuer(location, "erin-sub")

    response = client.get("/oidc/callback/", {**callback, "state": "forged-state"})

    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    assert not get_user_model().objects.filter(email="erin@corp.example").exists()


def test_a_callback_cannot_be_replayed(sso: str, db: Any) -> None:
    set_claims(sso, "frank-sub", email="frank@corp.example")
    client = Client()
    location, _ = start(client)
    callback = authorize_at_issuer(location, "frank-sub")
    assert client.get("/oidc/callback/", callback).status_code == 302

    # The state was used up: the same browser gets 400, another one is sent to sign in.
    assert client.get("/oidc/callback/", callback).status_code == 400
    thief = Client()
    response = thief.get("/oidc/callback/", callback)
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in thief.session


def test_a_code_the_issuer_already_redeemed_fails_cleanly(sso: str, db: Any) -> None:
    set_claims(sso, "ivan-sub", email="ivan@corp.example")
    first = Client()
    location, _ = start(first)
    callback = authorize_at_issuer(location, "ivan-sub")
    assert first.get("/oidc/callback/", callback).status_code == 302

    second = Client()
    _, params = start(second)
    response = second.get(
        "/oidc/callback/", {"code": callback["code"], "state": params["state"]}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/login/"
    assert "Single sign-on failed" in response.content.decode()
    assert "_auth_user_id" not in second.session


def test_next_cannot_send_the_user_off_site(sso: str, db: Any) -> None:
    set_claims(sso, "judy-sub", email="judy@corp.example")
    client = Client()
    response = sign_in(client, "judy-sub", next_url="https://evil.example/")
    assert response.status_code == 302 and response["Location"] == "/"


def test_sso_urls_are_404_when_sso_is_off(settings: Any, db: Any) -> None:
    settings.OIDC_ISSUER = ""
    client = Client()
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/", {"code": "c", "state": "s"}).status_code == 404
    assert "single sign-on" not in client.get("/login/").content.decode()


def test_issuer_error_lands_on_the_login_page(sso: str, db: Any) -> None:
    client = Client()
    _, params = start(client)
    response = client.get(
        "/oidc/callback/", {"error": "access_denied", "state": params["state"]}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/login/"
    assert "Single sign-on failed" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logout_ends_the_portal_session_and_the_issuer_session(sso: str, db: Any) -> None:
    set_claims(sso, "gina-sub", email="gina@corp.example", groups=["ops"])
    client = Client()
    sign_in(client, "gina-sub")
    id_token = client.session[oidc.ID_TOKEN_SESSION_KEY]

    response = client.post("/logout/")

    assert response.status_code == 302
    end_session = urlsplit(response["Location"])
    assert f"{end_session.scheme}://{end_session.netloc}{end_session.path}" == (
        f"{sso}/oauth2/end_session"
    )
    query = parse_qs(end_session.query)
    assert query["id_token_hint"] == [id_token]
    assert query["post_logout_redirect_uri"] == ["http://testserver/"]
    assert "_auth_user_id" not in client.session
    assert oidc.GROUPS_SESSION_KEY not in client.session
    assert client.get("/orgs/").status_code == 302  # back to the login page


def test_local_sign_in_and_logout_work_while_the_issuer_is_down(
    settings: Any, db: Any, caplog: Any
) -> None:
    settings.OIDC_ISSUER = f"http://127.0.0.1:{_free_port()}"
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.AUTHENTICATION_BACKENDS = [BACKEND, "django.contrib.auth.backends.ModelBackend"]
    oidc.forget_discovery()
    user = make_user("henry")
    client = Client()

    with caplog.at_level(logging.ERROR, logger="accounts.oidc"):
        sso = client.get("/oidc/authenticate/")
    assert sso.status_code == 503
    assert "Single sign-on is unavailable" in sso.content.decode()
    assert "OIDC_ISSUER=" in caplog.text

    login_page = client.get("/login/")
    assert "Sign in with single sign-on" in login_page.content.decode()
    response = client.post("/login/", {"username": "henry", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session[oidc.GROUPS_SESSION_KEY] == []

    out = client.post("/logout/")
    assert out.status_code == 302 and out["Location"] == "/"
    assert "_auth_user_id" not in client.session


def test_discovery_errors_name_oidc_issuer(settings: Any, sso: str) -> None:
    found = oidc.provider()
    assert found.token_endpoint == f"{sso}/oauth2/token"
    assert found.jwks_uri == f"{sso}/jwks"
    assert oidc.provider() is found  # cached

    settings.OIDC_ISSUER = f"{sso}/elsewhere"
    with pytest.raises(
        oidc.DiscoveryError, match=r"OIDC_ISSUER='http://127\.0\.0\.1:\d+/elsewhere'"
    ):
        oidc.provider()


def test_discovery_refuses_a_document_for_another_issuer(settings: Any, monkeypatch: Any) -> None:
    class Answer:
        def raise_for_status(self) -> None:
            pass

        def json(self) -> dict[str, str]:
            return {
                "issuer": "https://evil.example",
                "authorization_endpoint": "https://evil.example/auth",
                "token_endpoint": "https://evil.example/token",
                "userinfo_endpoint": "https://evil.example/userinfo",
                "jwks_uri": "https://evil.example/jwks",
            }

    monkeypatch.setattr(oidc.requests, "get", lambda url, timeout: Answer())
    settings.OIDC_ISSUER = "https://idp.example"
    oidc.forget_discovery()
    with pytest.raises(
        oidc.DiscoveryError, match=re.escape("OIDC_ISSUER='https://idp.example' does not match")
    ):
        oidc.provider()


def test_groups_claim_is_configurable_and_normalized(settings: Any) -> None:
    settings.OIDC_GROUPS_CLAIM = "roles"
    assert oidc.groups_from({"roles": ["b", "a", "b", " ", 3]}) == ["3", "a", "b"]
    assert oidc.groups_from({"roles": "solo"}) == ["solo"]
    assert oidc.groups_from({"groups": ["ignored"]}) == []
    assert oidc.groups_from({"roles": {"not": "a list"}}) == []
