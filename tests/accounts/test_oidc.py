"""Single sign-on end to end against the test-suite provider (tests/accounts/provider.py).

The flow is the real one: Django's /oidc/authenticate/ → the provider's authorize form (submitted
with `requests`) → /oidc/callback/ with code + state → token, JWKS and userinfo fetched by the
backend from the endpoints it discovered.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts import identities, oidc, services, sessions
from accounts.models import OIDCIdentity
from core.models import AuditEvent
from rbac import services as rbac_services
from tests.accounts.conftest import BACKEND, PASSWORD_BACKEND, Browser
from tests.accounts.provider import CLIENT_ID, Provider
from tests.conftest import PASSWORD, make_user, org_scope


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def set_claims(provider: Provider, sub: str, **claims: Any) -> None:
    provider.set_user(sub, **claims)


def start(client: Client, next_url: str = "/") -> tuple[str, dict[str, str]]:
    return Browser(client).start(next_url)


def authorize_at_issuer(location: str, sub: str) -> dict[str, str]:
    """A fresh browser at the provider: the form is shown and submitted as `sub`."""
    return Browser().authorize(location, sub)


def sign_in(client: Client, sub: str, next_url: str = "/") -> Any:
    return Browser(client).sign_in(sub, next_url)


def test_sign_in_creates_the_user_from_claims_and_group_grant_gives_access(
    sso: Provider, cast: dict[str, Any]
) -> None:
    set_claims(
        sso,
        "alice-sub",
        email="alice@corp.example",
        email_verified=True,
        preferred_username="alice",
        given_name="Alice",
        family_name="Liddell",
        groups=["ops", "readers"],
    )
    client = Client()
    location, params = start(client, "/orgs/acme/")

    # The authorization request uses the discovered endpoint, PKCE (S256) and a nonce.
    assert location.startswith(f"{sso.url}/oauth2/authorize?")
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
        sso.url,
        "alice-sub",
        ["ops", "readers"],
    )
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session["_auth_user_backend"] == BACKEND
    assert client.session[sessions.GROUPS_KEY] == ["ops", "readers"]
    assert AuditEvent.objects.filter(action="account.user.create", target_id=str(user.pk)).exists()
    link = AuditEvent.objects.get(action="account.identity.link", actor=user)
    assert link.after["subject"] == "alice-sub" and link.after["groups"] == ["ops", "readers"]
    assert user.verified_email.email == "alice@corp.example"

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


def test_next_sign_in_updates_the_user_and_drops_lost_groups_but_keeps_the_username(
    sso: Provider, cast: dict[str, Any]
) -> None:
    rbac_services.assign(by=None, group="ops", tier="viewer", scopes=org_scope("acme"))
    set_claims(
        sso,
        "bob-sub",
        email="bob@corp.example",
        email_verified=True,
        preferred_username="bob",
        groups=["ops"],
    )
    first = Client()
    assert sign_in(first, "bob-sub").status_code == 302
    assert first.get("/orgs/acme/").status_code == 200

    set_claims(
        sso,
        "bob-sub",
        email="robert@corp.example",
        email_verified=True,
        preferred_username="robert",
        family_name="Builder",
        groups=[],
    )
    second = Client()
    assert sign_in(second, "bob-sub").status_code == 302

    users = get_user_model().objects.filter(oidc_identities__subject="bob-sub")
    assert users.count() == 1
    user = users.get()
    # The username was given once: a rename at the provider does not move it.
    assert (user.username, user.email, user.last_name) == ("bob", "robert@corp.example", "Builder")
    assert OIDCIdentity.objects.get(user=user).groups == []
    assert second.get("/orgs/acme/").status_code == 404
    change = AuditEvent.objects.get(action="account.identity.claims", actor=user)
    assert change.before == {
        "email": "bob@corp.example",
        "account_email": "bob@corp.example",
        "groups": ["ops"],
        "last_name": "",
    }
    assert change.after == {
        "email": "robert@corp.example",
        "account_email": "robert@corp.example",
        "groups": [],
        "last_name": "Builder",
    }


def test_callback_with_a_forged_state_is_refused(sso: Provider, db: Any) -> None:
    set_claims(sso, "erin-sub", email="erin@corp.example")
    client = Client()
    location, _ = start(client)
    callback = authorize_at_issuer(location, "erin-sub")

    response = client.get("/oidc/callback/", {**callback, "state": "forged-state"})

    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    assert not get_user_model().objects.filter(email="erin@corp.example").exists()


def test_a_callback_cannot_be_replayed(sso: Provider, db: Any) -> None:
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


def test_a_code_the_issuer_already_redeemed_fails_cleanly(sso: Provider, db: Any) -> None:
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


def test_next_cannot_send_the_user_off_site(sso: Provider, db: Any) -> None:
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


def test_issuer_error_lands_on_the_login_page(sso: Provider, db: Any) -> None:
    client = Client()
    _, params = start(client)
    response = client.get(
        "/oidc/callback/", {"error": "access_denied", "state": params["state"]}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/login/"
    assert "Single sign-on failed" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logout_ends_the_portal_session_and_the_issuer_session(sso: Provider, db: Any) -> None:
    set_claims(sso, "gina-sub", email="gina@corp.example", groups=["ops"])
    client = Client()
    sign_in(client, "gina-sub")
    id_token = client.session[sessions.ID_TOKEN_KEY]

    response = client.post("/logout/")

    assert response.status_code == 302
    end_session = urlsplit(response["Location"])
    assert f"{end_session.scheme}://{end_session.netloc}{end_session.path}" == (
        f"{sso.url}/oauth2/end_session"
    )
    query = parse_qs(end_session.query)
    assert query["id_token_hint"] == [id_token]
    assert query["post_logout_redirect_uri"] == ["http://testserver/"]
    assert "_auth_user_id" not in client.session
    assert sessions.GROUPS_KEY not in client.session
    assert client.get("/orgs/").status_code == 302  # back to the login page


def test_local_sign_in_and_logout_work_while_the_issuer_is_down(
    settings: Any, db: Any, caplog: Any
) -> None:
    settings.OIDC_ISSUER = f"http://127.0.0.1:{_free_port()}"
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.AUTHENTICATION_BACKENDS = [BACKEND, PASSWORD_BACKEND]
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
    assert client.session[sessions.GROUPS_KEY] == []

    out = client.post("/logout/")
    assert out.status_code == 302 and out["Location"] == "/"
    assert "_auth_user_id" not in client.session


def test_discovery_errors_name_oidc_issuer(settings: Any, sso: Provider) -> None:
    found = oidc.provider()
    assert found.token_endpoint == f"{sso.url}/oauth2/token"
    assert found.jwks_uri == f"{sso.url}/jwks"
    assert oidc.provider() is found  # cached

    settings.OIDC_ISSUER = f"{sso.url}/elsewhere"
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
    assert identities.groups_from({"roles": ["b", "a", "b", " ", 3]}) == ["3", "a", "b"]
    assert identities.groups_from({"roles": "solo"}) == ["solo"]
    assert identities.groups_from({"groups": ["ignored"]}) == []
    assert identities.groups_from({"roles": {"not": "a list"}}) == []


def test_a_provider_that_died_after_discovery_gets_the_portals_own_page(
    settings: Any, db: Any, caplog: Any
) -> None:
    """Issue 9, defect 12: the cached discovery document must not send browsers to a dead host."""
    doomed = Provider().start()
    settings.OIDC_ISSUER = doomed.url
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.AUTHENTICATION_BACKENDS = [BACKEND, PASSWORD_BACKEND]
    oidc.forget_discovery()
    try:
        assert oidc.provider().authorization_endpoint.startswith(doomed.url)  # cached
        first = Client().get("/oidc/authenticate/")
        assert first.status_code == 302 and first["Location"].startswith(doomed.url)
    finally:
        doomed.stop()

    with caplog.at_level(logging.ERROR, logger="accounts.oidc"):
        response = Client().get("/oidc/authenticate/")
    assert response.status_code == 503
    assert "Single sign-on is unavailable" in response.content.decode()
    assert "OIDC_ISSUER=" in caplog.text
    oidc.forget_discovery()


def test_the_csp_lets_the_sign_out_form_reach_the_provider(sso: Provider, db: Any) -> None:
    """Issue 9, defect 4 (HTTP side; tests/browser/test_sign_out.py follows it in Chromium)."""
    policy = Client().get("/login/")["Content-Security-Policy"]
    form_action = next(d for d in policy.split(";") if d.strip().startswith("form-action"))
    assert form_action.split()[1:] == ["'self'", sso.url]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
