"""Accounts figures: what sessions cost per request, an SSO re-validation, a throttled sign-in.

`python -m bench bench_accounts` (add `DATABASE_URL=…` / `VALKEY_URL=…` for the services). The
provider is the test suite's OpenID provider (tests/accounts/provider.py) in a thread of this
process, so a re-validation's two round trips (token, userinfo) are loopback HTTP. Each figure is
printed beside a baseline measured in the same run.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import median, report, setup_django, throwaway_database, timed

REPEAT = 50
PASSWORD = "correct-horse-battery"


def _signed_in(username: str) -> Any:
    from django.test import Client

    client = Client()
    response = client.post("/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response
    return client


def _sso_client(provider: Any) -> Any:
    from tests.accounts.conftest import Browser

    provider.set_user("bench-sub", email="bench@corp.example", email_verified=True, groups=["ops"])
    browser = Browser()
    assert browser.sign_in("bench-sub").status_code == 302
    return browser.client


def _due(client: Any) -> None:
    from accounts import sessions

    session = client.session
    session[sessions.VALIDATED_AT_KEY] = time.time() - 3600 * 24
    session.save()


def run() -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import Client

    from tests.accounts.provider import Provider, point_portal_at

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOGIN_LIMIT_PER_ACCOUNT = 5
    settings.LOGIN_LIMIT_PER_IP = 10**6
    get_user_model().objects.create_user("bench", email="bench@example.test", password=PASSWORD)
    local = _signed_in("bench")

    provider = Provider().start()
    try:
        point_portal_at(settings, provider)
        sso = _sso_client(provider)

        page = median(timed(lambda: local.get("/account/tokens/"), repeat=REPEAT))
        report("signed-in page, local session, median", page)
        same = median(timed(lambda: sso.get("/account/tokens/"), repeat=REPEAT))
        report("same page, SSO session (not due)", same, baseline=page, baseline_name="local")

        def revalidating() -> None:
            _due(sso)
            assert sso.get("/account/tokens/").status_code == 200

        due = median(timed(revalidating, repeat=REPEAT))
        report(
            "same page when re-validation is due (refresh + userinfo)",
            due,
            baseline=same,
            baseline_name="not due",
        )
    finally:
        provider.stop()

    cache.clear()
    wrong = median(
        timed(
            lambda: Client().post("/login/", {"username": f"u{time.time_ns()}", "password": "x"}),
            repeat=REPEAT,
        )
    )
    report("failed sign-in (counted), median", wrong)
    for _ in range(6):
        Client().post("/login/", {"username": "bench", "password": "wrong"})
    refused = median(
        timed(
            lambda: Client().post("/login/", {"username": "bench", "password": PASSWORD}),
            repeat=REPEAT,
        )
    )
    report("throttled sign-in (429)", refused, baseline=wrong, baseline_name="failed sign-in")


def main() -> None:
    setup_django()
    with throwaway_database():
        run()


if __name__ == "__main__":
    main()
