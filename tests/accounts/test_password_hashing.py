"""Passwords are hashed with Argon2id at OWASP's cost; PBKDF2 hashes of older versions still sign
in and are re-hashed on the way (issue 12: 50 simultaneous sign-ins in ≤ 5 s on 2 cores — PBKDF2's
0.4 s of CPU a hash made that 10 s at best)."""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth.hashers import make_password
from django.test import Client

from catalyst_portal import settings as portal_settings
from tests.conftest import PASSWORD, make_user


def _production_hashers(settings: Any) -> None:
    settings.PASSWORD_HASHERS = portal_settings.PASSWORD_HASHERS  # the suite's autouse MD5 off


def test_new_passwords_are_argon2id_at_the_configured_cost(sovereign: Any, settings: Any) -> None:
    _production_hashers(settings)
    user = make_user("argon")
    user.set_password(PASSWORD)
    user.save()
    assert user.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$"), user.password
    signed_in = Client().post("/login/", {"username": "argon", "password": PASSWORD})
    assert signed_in.status_code == 302


def test_a_pbkdf2_password_signs_in_and_is_rehashed(sovereign: Any, settings: Any) -> None:
    _production_hashers(settings)
    user = make_user("legacy")
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])

    wrong = Client().post("/login/", {"username": "legacy", "password": "not-the-password"})
    assert wrong.status_code == 200 and "_auth_user_id" not in wrong.client.session
    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sha256$")  # a wrong password changes nothing

    right = Client().post("/login/", {"username": "legacy", "password": PASSWORD})
    assert right.status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$"), user.password
    assert Client().post("/login/", {"username": "legacy", "password": PASSWORD}).status_code == 302


def test_a_changed_cost_rehashes_at_the_next_sign_in(sovereign: Any, settings: Any) -> None:
    _production_hashers(settings)
    user = make_user("tuned")
    user.set_password(PASSWORD)
    user.save()
    settings.PASSWORD_ARGON2_TIME_COST = 3
    assert Client().post("/login/", {"username": "tuned", "password": PASSWORD}).status_code == 302
    user.refresh_from_db()
    assert ",t=3," in user.password, user.password


def test_checking_a_password_costs_tens_of_milliseconds_not_half_a_second(
    sovereign: Any, settings: Any
) -> None:
    """CPU time of this process (not wall time: a loaded machine waits, it does not compute
    more). PBKDF2 with Django's 1,000,000 iterations took ~400 ms here; Argon2id ~30 ms."""
    _production_hashers(settings)
    encoded = make_password(PASSWORD)
    from django.contrib.auth.hashers import check_password

    start = time.process_time()
    for _ in range(5):
        assert check_password(PASSWORD, encoded)
    per_check = (time.process_time() - start) / 5
    assert per_check < 0.15, f"{per_check * 1000:.0f} ms of CPU per password check"
