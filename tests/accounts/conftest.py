"""Fixtures of the accounts tests: the test-suite OpenID provider and a browser-like sign-in.

The flow is the real one: Django's /oidc/authenticate/ → the provider's authorize form (submitted
with `requests`, whose cookie jar is the browser's provider session) → /oidc/callback/ with code +
state → token, JWKS and userinfo fetched by the portal from the endpoints it discovered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core import mail
from django.test import Client

from accounts import oidc
from tests.accounts.provider import BACKENDS, Provider, point_portal_at

BACKEND, PASSWORD_BACKEND = BACKENDS


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    """Sign-in, sign-up and PIN counters are keyed by 127.0.0.1: start each test at zero."""
    from tests.conftest import reset_cache

    reset_cache()


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    running = Provider().start()
    yield running
    running.stop()


@pytest.fixture
def sso(settings: Any, provider: Provider) -> Iterator[Provider]:
    point_portal_at(settings, provider)
    yield provider
    oidc.forget_discovery()


class Browser:
    """A person at a browser: the portal's test client plus the provider's cookies."""

    def __init__(self, client: Client | None = None) -> None:
        self.client = client or Client()
        self.at_provider = requests.Session()

    def start(self, next_url: str = "/") -> tuple[str, dict[str, str]]:
        """GET /oidc/authenticate/: the provider's authorize URL and its parameters."""
        response = self.client.get("/oidc/authenticate/", {"next": next_url})
        assert response.status_code == 302, response
        location = response["Location"]
        return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def authorize(self, location: str, sub: str | None) -> dict[str, str]:
        """At the provider: answered at once while its session lives, else the form is shown
        and submitted as `sub`. Returns the callback's query parameters."""
        answer = self.at_provider.get(location, allow_redirects=False, timeout=5)
        if answer.status_code == 200:
            assert 'name="sub"' in answer.text and sub is not None, "the provider asks who"
            answer = self.at_provider.post(
                location, data={"sub": sub}, allow_redirects=False, timeout=5
            )
        assert answer.status_code == 302, answer.text
        callback = urlsplit(answer.headers["Location"])
        assert callback.path == "/oidc/callback/"
        return {k: v[0] for k, v in parse_qs(callback.query).items()}

    def sign_in(self, sub: str | None, next_url: str = "/") -> Any:
        location, _ = self.start(next_url)
        return self.client.get("/oidc/callback/", self.authorize(location, sub))

    def provider_session_alive(self, location: str) -> bool:
        return self.at_provider.get(location, allow_redirects=False, timeout=5).status_code == 302


def last_pin(to: str) -> str:
    """The PIN of the last e-mail sent to `to`."""
    for message in reversed(mail.outbox):
        if to in message.to:
            found = re.search(r"\b(\d{6})\b", message.body)
            assert found, message.body
            return found.group(1)
    raise AssertionError(f"no e-mail to {to}: {[m.to for m in mail.outbox]}")


SIGNUP_PASSWORD = "analytical-engine-1843"


def sign_up(
    client: Client,
    email: str,
    *,
    name: str = "Ada Lovelace",
    password: str = SIGNUP_PASSWORD,
    next_url: str = "",
) -> Any:
    """The whole local sign-up over HTTP: the form, then the PIN from the e-mail."""
    query = f"?next={next_url}" if next_url else ""
    first = client.post(
        f"/signup/{query}",
        {"email": email, "name": name, "password1": password, "password2": password},
    )
    assert first.status_code == 302 and first["Location"].startswith("/signup/confirm/"), first
    return client.post(first["Location"], {"pin": last_pin(email.lower())})


def verified_user(username: str, email: str | None = None) -> Any:
    """A local account whose address was confirmed (as a PIN sign-up leaves it)."""
    from accounts.models import VerifiedEmail
    from tests.conftest import make_user

    user = make_user(username)
    if email is not None:
        user.email = email
        user.save(update_fields=["email"])
    VerifiedEmail.objects.create(user=user, email=user.email.lower(), method="pin")
    return user
