"""Local sign-up with a confirmed address (a PIN by e-mail), one account per address whatever its
case, and PIN sign-in for customers. Issue 9, defects 1 and 3."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import IntegrityError, connection, transaction
from django.test import Client

from accounts.models import EmailChallenge, VerifiedEmail
from core.models import AuditEvent
from tests.accounts.conftest import last_pin, sign_up
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

User = get_user_model()

GOOD = {
    "email": "Ada@Example.test",
    "name": "Ada Lovelace",
    "password1": "analytical-engine-1843",
    "password2": "analytical-engine-1843",
}


def test_signup_confirms_the_address_before_the_account_exists_and_follows_next(sovereign):
    client = Client()
    assert client.get("/signup/?next=/redeem/").status_code == 200
    started = client.post("/signup/?next=/checkout/%3Fcode%3DABC", GOOD)

    assert started.status_code == 302
    assert started["Location"] == "/signup/confirm/?next=%2Fcheckout%2F%3Fcode%3DABC"
    assert not User.objects.exists() and "_auth_user_id" not in client.session
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.test"]
    pin = last_pin("ada@example.test")
    challenge = EmailChallenge.objects.get()
    assert pin not in challenge.pin_hash and len(challenge.pin_hash) == 64  # stored keyed-hashed
    page = client.get(started["Location"])
    assert page.status_code == 200 and b"ada@example.test" in page.content

    wrong = client.post(started["Location"], {"pin": "000000" if pin != "000000" else "111111"})
    assert wrong.status_code == 400 and b"There is a problem" in wrong.content
    assert not User.objects.exists()

    done = client.post(started["Location"], {"pin": pin})
    assert done.status_code == 302 and done["Location"] == "/checkout/?code=ABC"
    user = User.objects.get()
    assert user.username == "ada@example.test" and user.email == "ada@example.test"
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    assert user.check_password(GOOD["password1"])
    assert int(client.session["_auth_user_id"]) == user.pk
    assert VerifiedEmail.objects.get(user=user).method == "pin"
    assert AuditEvent.objects.filter(action="account.signup", actor=user).exists()
    assert EmailChallenge.objects.get().used_at is not None  # the PIN worked once


def test_a_pin_dies_after_too_many_wrong_tries(sovereign, settings):
    settings.PIN_MAX_ATTEMPTS = 3
    client = Client()
    started = client.post("/signup/", GOOD)
    pin = last_pin("ada@example.test")
    wrong = "000000" if pin != "000000" else "111111"
    for _ in range(3):
        assert client.post(started["Location"], {"pin": wrong}).status_code == 400
    dead = client.post(started["Location"], {"pin": pin})
    assert dead.status_code == 400 and b"expired or was used up" in dead.content
    assert not User.objects.exists()


def test_signup_without_a_password_signs_in_by_pin(sovereign):
    client = Client()
    response = sign_up(client, "pat@example.test", name="Pat", password="")
    assert response.status_code == 302
    user = User.objects.get(email="pat@example.test")
    assert not user.has_usable_password()

    later = Client()
    asked = later.post("/login/pin/?next=/orgs/", {"email": "PAT@example.test"})
    assert asked.status_code == 302 and asked["Location"].startswith("/login/pin/confirm/")
    signed = later.post(asked["Location"], {"pin": last_pin("pat@example.test")})
    assert signed.status_code == 302 and signed["Location"] == "/orgs/"
    assert int(later.session["_auth_user_id"]) == user.pk
    assert AuditEvent.objects.get(action="account.login", actor=user).after == {"method": "pin"}


def test_pin_sign_in_does_not_tell_whether_an_address_has_an_account(sovereign):
    client = Client()
    asked = client.post("/login/pin/", {"email": "nobody@example.test"})
    assert asked.status_code == 302 and asked["Location"].startswith("/login/pin/confirm/")
    assert mail.outbox == []
    page = client.get(asked["Location"])
    assert b"If an account uses" in page.content
    assert client.post(asked["Location"], {"pin": "123456"}).status_code == 400
    assert "_auth_user_id" not in client.session


def test_operators_do_not_sign_in_by_pin(cast):
    from accounts.models import VerifiedEmail

    operator = cast["sovereign_operator"]
    VerifiedEmail.objects.create(user=operator, email=operator.email, method="operator")
    client = Client()
    client.post("/login/pin/", {"email": operator.email})
    assert mail.outbox == []  # an inbox must not open the console


@pytest.mark.parametrize("email", ["ALICE@demo.local", "Alice@Demo.Local", "alice@demo.local"])
def test_one_account_per_address_whatever_its_case(sovereign, email):
    alice = make_user("alice")
    alice.email = "alice@demo.local"
    alice.save()
    response = Client().post("/signup/", {**GOOD, "email": email})
    assert response.status_code == 400
    assert "already exists" in str(response.context["form"].errors)
    assert User.objects.filter(email__iexact="alice@demo.local").count() == 1
    assert mail.outbox == []


def test_the_database_refuses_a_second_account_with_the_same_address(db):
    make_user("alice").__class__.objects.filter(username="alice").update(email="alice@demo.local")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("alice2", email="ALICE@demo.local")
    User.objects.create_user("nomail1", email="")
    User.objects.create_user("nomail2", email="")  # no address is no clash


def test_the_migration_names_accounts_that_share_an_address(db):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("accounts.migrations.0002_verified_email_identities_token_chains")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX {migration.EMAIL_INDEX}")
        User.objects.create_user("alice", email="alice@demo.local")
        User.objects.create_user("ALICE2", email="ALICE@demo.local")
        User.objects.create_user("bob", email="bob@demo.local")
        with pytest.raises(RuntimeError) as failure:
            migration.report_email_clashes(apps, None)
        transaction.set_rollback(True)
    assert "alice@demo.local: alice, ALICE2" in str(failure.value)
    assert "bob" not in str(failure.value)


def test_signup_refuses_open_redirects(sovereign):
    client = Client()
    started = client.post("/signup/", {**GOOD, "next": "https://evil.example/"})
    assert started["Location"] == "/signup/confirm/?next=%2F"
    done = client.post(started["Location"], {"pin": last_pin("ada@example.test")})
    assert done.status_code == 302 and done["Location"] == "/"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"password1": "short", "password2": "short"}, "password1", "too short"),
        ({"password1": "password1234", "password2": "password1234"}, "password1", "too common"),
        (
            {"password1": "8172635498127", "password2": "8172635498127"},
            "password1",
            "entirely numeric",
        ),
        ({"password2": "something-else-entirely"}, "password2", "differ"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"name": ""}, "name", "required"),
        ({"name": "<>"}, "name", "Enter your name"),
    ],
)
def test_signup_errors(sovereign, data, field, message):
    response = Client().post("/signup/", {**GOOD, **data})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert b"There is a problem" in response.content  # the error summary
    assert re.search(rf'href="#id_{field}"', response.content.decode())
    assert not User.objects.exists() and mail.outbox == []


def test_signup_is_rate_limited_per_ip(sovereign, settings):
    settings.SIGNUP_LIMIT_PER_IP = 2
    codes = [
        Client().post("/signup/", {**GOOD, "email": f"u{i}@example.test"}).status_code
        for i in range(2)
    ]
    assert codes == [302, 302]
    limited = Client().post("/signup/", {**GOOD, "email": "u9@example.test"})
    assert limited.status_code == 429 and b"Too many sign-up attempts" in limited.content
    assert len(mail.outbox) == 2


def test_pins_to_one_address_are_rate_limited(sovereign, settings):
    settings.PIN_SEND_LIMIT_PER_EMAIL = 2
    for _ in range(2):
        assert Client().post("/login/pin/", {"email": "x@example.test"}).status_code == 302
    limited = Client().post("/login/pin/", {"email": "x@example.test"})
    assert limited.status_code == 429 and b"Too many codes" in limited.content


def test_login_page_links_to_signup_and_pin_sign_in(sovereign):
    page = Client().get("/login/?next=/redeem/")
    assert b'href="/signup/?next=/redeem/"' in page.content
    assert b'href="/login/pin/?next=/redeem/"' in page.content
    assert b'href="/password-reset/"' in page.content
