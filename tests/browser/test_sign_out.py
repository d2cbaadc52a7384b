"""Sign-out in Chromium really ends the provider's session too (issue 9, defect 4).

The sign-out button posts a form; the portal answers with a redirect to the provider's
end-session endpoint. Chromium checks each redirect of a form submission against the page's
CSP form-action, so with `form-action 'self'` alone the redirect was blocked, the provider
session survived and "Sign in with single sign-on" signed the same person straight back in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accounts import oidc
from tests.accounts.provider import Provider, point_portal_at

pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture
def sso_provider(settings: Any) -> Any:
    provider = Provider().start()
    point_portal_at(settings, provider)
    yield provider
    oidc.forget_discovery()
    provider.stop()


def sso_sign_in(page: Any, live_server: Any, provider: Provider) -> None:
    page.goto(f"{live_server.url}/login/")
    page.click("text=Sign in with single sign-on")
    page.wait_for_url(f"{provider.url}/oauth2/authorize?*")


def test_sign_out_ends_the_provider_session(page, live_server, sovereign, sso_provider) -> None:
    failed: list[str] = []
    page.on(
        "response",
        lambda r: (
            failed.append(r.url) if r.url.startswith(live_server.url) and r.status >= 400 else None
        ),
    )
    sso_provider.set_user(
        "olga-sub", email="olga@corp.example", email_verified=True, preferred_username="olga"
    )
    sso_sign_in(page, live_server, sso_provider)
    page.fill("input[name=sub]", "olga-sub")
    page.click("button:has-text('Authorize')")
    page.wait_for_url(f"{live_server.url}/orgs/")
    assert "Account:\nolga" in page.locator("header").inner_text()

    page.click("header summary:has-text('olga')")  # the account menu
    page.click("header button:has-text('Sign out')")
    page.wait_for_url(f"{live_server.url}/")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "sign-out-done.png"))
    assert sso_provider.ended_sessions == ["olga-sub"]
    assert page.locator("header").inner_text().count("Sign in") == 1

    # The next person at this browser is asked who they are: no silent sign-in as Olga.
    sso_sign_in(page, live_server, sso_provider)
    assert page.locator("input[name=sub]").is_visible()
    page.screenshot(path=str(SHOTS / "sign-out-next-person.png"))
    # (the provider's own pages load things from the internet: only the portal's must not fail)
    assert failed == []
