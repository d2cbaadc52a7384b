"""Password sign-in is throttled per account and per client IP on the shared cache, with a
clear message and an audit event. Issue 9, defect 8 (40 wrong passwords in 18 s, all answered)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from core.models import AuditEvent
from tests.conftest import PASSWORD, make_user


def attempt(username: str, password: str, ip: str = "203.0.113.7") -> Any:
    return Client(REMOTE_ADDR=ip).post("/login/", {"username": username, "password": password})


def test_wrong_passwords_for_one_account_are_throttled(sovereign: Any, settings: Any) -> None:
    settings.LOGIN_LIMIT_PER_ACCOUNT = 5
    victim = make_user("victim")
    answers = [attempt("victim", f"guess-{i}", ip=f"198.51.100.{i}").status_code for i in range(40)]

    assert answers[:5] == [200] * 5  # the form again, "please enter a correct username…"
    assert set(answers[5:]) == {429}
    refused = attempt("victim", PASSWORD, ip="198.51.100.99")
    assert refused.status_code == 429  # even the right password, until the window ends
    assert "Too many failed sign-in attempts" in refused.content.decode()
    assert "_auth_user_id" not in Client().session
    event = AuditEvent.objects.get(action="account.login.throttled")
    assert event.target_type == "login-account" and event.target_id == "victim"
    assert event.after["limit"] == 5
    # Another account is not affected.
    make_user("bystander")
    assert attempt("bystander", PASSWORD).status_code == 302
    victim.refresh_from_db()
    assert victim.last_login is None


def test_the_account_key_ignores_case_and_needs_no_existing_account(
    sovereign: Any, settings: Any
) -> None:
    settings.LOGIN_LIMIT_PER_ACCOUNT = 3
    codes = [
        attempt(name, "x", ip=f"198.51.100.{i}").status_code
        for i, name in enumerate(["Ghost", "ghost", "GHOST", "ghost"])
    ]
    assert codes == [200, 200, 200, 429]


def test_one_address_trying_many_accounts_is_throttled(sovereign: Any, settings: Any) -> None:
    settings.LOGIN_LIMIT_PER_IP = 10
    make_user("someone")
    codes = [attempt(f"user{i}", "wrong", ip="192.0.2.1").status_code for i in range(12)]
    assert codes[:10] == [200] * 10 and codes[10:] == [429, 429]
    assert attempt("someone", PASSWORD, ip="192.0.2.1").status_code == 429
    assert attempt("someone", PASSWORD, ip="192.0.2.2").status_code == 302  # another address
    event = AuditEvent.objects.get(action="account.login.throttled")
    assert event.target_type == "login-ip" and event.after["ip"] == "192.0.2.1"


def test_wrong_pins_count_as_failed_sign_ins(sovereign: Any, settings: Any) -> None:
    settings.LOGIN_LIMIT_PER_ACCOUNT = 2
    client = Client()
    asked = client.post("/login/pin/", {"email": "who@example.test"})
    confirm = asked["Location"]
    assert client.post(confirm, {"pin": "111111"}).status_code == 400
    assert client.post(confirm, {"pin": "222222"}).status_code == 400
    assert client.post(confirm, {"pin": "333333"}).status_code == 429


@pytest.mark.django_db(transaction=True)
def test_a_sign_in_holds_no_database_connection_while_hashing(settings, cast):
    """PBKDF2 takes about half a second of CPU on purpose: a burst of sign-ins must not hold
    every pooled connection meanwhile (the other pages would wait for one, then fail)."""
    from tests.accounts import hashers

    settings.PASSWORD_HASHERS = ["tests.accounts.hashers.RecordingHasher"]
    hashers.held_during_check.clear()
    response = Client().post("/login/", {"username": cast["viewer"].username, "password": PASSWORD})
    assert response.status_code == 302
    assert hashers.held_during_check == [False]
