"""Sessions end: absolute and idle lifetimes, and single sign-on re-validated at the provider
(groups re-read, a deleted account shut out). Streams authorize with the same groups as pages.

Issue 9, defects 5 (sessions never re-check the provider) and 6 (streams ignore group grants).
"""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from accounts import sessions
from accounts.models import OIDCIdentity
from core.models import AuditEvent
from rbac import services as rbac_services
from tests.accounts.conftest import Browser
from tests.accounts.provider import Provider
from tests.conftest import PASSWORD, make_user, org_scope
from tests.gitops.test_sse import Stream


def rewind(client: Client, key: str, seconds: float) -> None:
    """Move one of the session's clocks back, as if that much time had passed."""
    session = client.session
    session[key] = float(session[key]) - seconds
    session.save()


def test_the_session_cookie_lives_hours_not_weeks(sovereign: Any, settings: Any) -> None:
    make_user("lena")
    response = Client().post("/login/", {"username": "lena", "password": PASSWORD})
    assert response.status_code == 302
    max_age = int(response.cookies["sessionid"]["max-age"])
    assert max_age == settings.SESSION_ABSOLUTE_HOURS * 3600 <= 24 * 3600


def test_an_idle_session_ends(sovereign: Any, settings: Any) -> None:
    make_user("lena")
    client = Client()
    client.post("/login/", {"username": "lena", "password": PASSWORD})
    assert client.get("/orgs/").status_code == 200
    rewind(client, sessions.SEEN_AT_KEY, settings.SESSION_IDLE_MINUTES * 60 + 1)

    response = client.get("/orgs/", HTTP_ACCEPT="text/html")
    assert response.status_code == 302 and response["Location"] == "/login/?next=%2Forgs%2F"
    assert "_auth_user_id" not in client.session
    page = client.get(response["Location"])
    assert b"Your session expired" in page.content


def test_a_session_ends_at_its_absolute_lifetime_however_busy(
    sovereign: Any, settings: Any
) -> None:
    make_user("lena")
    client = Client()
    client.post("/login/", {"username": "lena", "password": PASSWORD})
    rewind(client, sessions.SIGNED_IN_AT_KEY, settings.SESSION_ABSOLUTE_HOURS * 3600 + 1)
    assert client.get("/api/v1/orgs/").status_code == 401  # the API: no redirect, just out
    assert "_auth_user_id" not in client.session


def test_groups_removed_at_the_provider_stop_counting_within_the_interval(
    sso: Provider, cast: dict[str, Any], settings: Any
) -> None:
    rbac_services.assign(by=None, group="ops", tier="viewer", scopes=org_scope("acme"))
    sso.set_user("kim-sub", email="kim@corp.example", email_verified=True, groups=["ops"])
    browser = Browser()
    browser.sign_in("kim-sub")
    assert browser.client.get("/orgs/acme/").status_code == 200
    assert browser.client.session[sessions.REFRESH_TOKEN_KEY]

    sso.set_user("kim-sub", email="kim@corp.example", email_verified=True, groups=[])
    # Within the interval the session keeps what the provider said at sign-in...
    assert browser.client.get("/orgs/acme/").status_code == 200
    # ...and once it is due, the provider is asked again and the group is gone.
    rewind(browser.client, sessions.VALIDATED_AT_KEY, settings.OIDC_REVALIDATE_MINUTES * 60 + 1)
    assert browser.client.get("/orgs/acme/").status_code == 404
    assert browser.client.session[sessions.GROUPS_KEY] == []
    identity = OIDCIdentity.objects.get(subject="kim-sub")
    assert identity.groups == []
    change = AuditEvent.objects.filter(action="account.identity.claims").latest("pk")
    assert change.before["groups"] == ["ops"] and change.after["groups"] == []
    assert "_auth_user_id" in browser.client.session  # still signed in, without the group


def test_an_account_deleted_at_the_provider_is_shut_out(
    sso: Provider, cast: dict[str, Any], settings: Any
) -> None:
    rbac_services.assign(by=None, group="ops", tier="viewer", scopes=org_scope("acme"))
    sso.set_user("leo-sub", email="leo@corp.example", email_verified=True, groups=["ops"])
    browser = Browser()
    browser.sign_in("leo-sub")
    user = OIDCIdentity.objects.get(subject="leo-sub").user
    token = _mint(browser.client)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/orgs/acme/").status_code == 200  # through the group
    sso.delete_user("leo-sub")

    rewind(browser.client, sessions.VALIDATED_AT_KEY, settings.OIDC_REVALIDATE_MINUTES * 60 + 1)
    response = browser.client.get("/orgs/acme/", HTTP_ACCEPT="text/html")

    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert "_auth_user_id" not in browser.client.session
    assert b"ended at the identity provider" in browser.client.get(response["Location"]).content
    identity = OIDCIdentity.objects.get(subject="leo-sub")
    assert identity.lost_at is not None and identity.groups == []
    event = AuditEvent.objects.get(action="account.identity.lost")
    assert event.target_id == str(identity.pk) and event.before["groups"] == ["ops"]
    # The group no longer counts for the account's API tokens either.
    assert api.get("/api/v1/orgs/acme/").status_code == 404
    assert user.is_active  # the portal account stays (its history and direct grants are kept)


def _mint(client: Client) -> str:
    response = client.post(
        "/api/v1/tokens/", {"name": "cli", "days": 1}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return str(response.json()["token"])


def test_a_session_without_a_refresh_token_reauthenticates_silently(
    sso: Provider, db: Any, settings: Any
) -> None:
    sso.set_user("mia-sub", email="mia@corp.example", email_verified=True, groups=["a"])
    browser = Browser()
    browser.sign_in("mia-sub")
    session = browser.client.session
    session[sessions.REFRESH_TOKEN_KEY] = ""
    session.save()
    rewind(browser.client, sessions.VALIDATED_AT_KEY, settings.OIDC_REVALIDATE_MINUTES * 60 + 1)

    due = browser.client.get("/orgs/", HTTP_ACCEPT="text/html")
    assert due.status_code == 302 and due["Location"].startswith("/oidc/authenticate/")
    start = browser.client.get(due["Location"])
    assert "prompt=none" in start["Location"]
    # The provider's session lives: it answers at once, and the person is signed in again.
    back = browser.client.get("/oidc/callback/", browser.authorize(start["Location"], None))
    assert back.status_code == 302 and back["Location"] == "/orgs/"
    assert browser.client.session[sessions.GROUPS_KEY] == ["a"]


def test_streams_authorize_with_the_sessions_groups(sso: Provider, cast: dict[str, Any]) -> None:
    rbac_services.assign(by=None, group="ops", tier="viewer", scopes=org_scope("acme"))
    sso.set_user("ned-sub", email="ned@corp.example", email_verified=True, groups=["ops"])
    browser = Browser()
    browser.sign_in("ned-sub")
    assert browser.client.get("/orgs/acme/").status_code == 200

    async def open_stream() -> int:
        client = AsyncClient()
        client.cookies = browser.client.cookies
        response = await client.get("/events/orgs/acme/", headers={"Accept": "text/event-stream"})
        if response.status_code == 200:
            stream = Stream(response)
            first = await stream.event()
            assert first.get("comment") == "connected" or "retry" in first
            await stream.close()
        return int(response.status_code)

    assert async_to_sync(open_stream)() == 200
    # Someone without the group still gets 404 from the stream.
    outsider = AsyncClient()

    async def outsider_stream() -> int:
        await outsider.aforce_login(cast["outsider"])
        return int((await outsider.get("/events/orgs/acme/")).status_code)

    assert async_to_sync(outsider_stream)() == 404


def test_the_session_clock_starts_at_sign_in(sovereign: Any) -> None:
    make_user("lena")
    client = Client()
    before = time.time()
    client.post("/login/", {"username": "lena", "password": PASSWORD})
    assert before <= client.session[sessions.SIGNED_IN_AT_KEY] <= time.time()
